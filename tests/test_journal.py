"""Tests for the batch journal: real SQLite files in tmp_path, no mocks.

The journal is reached through its public methods; a test that must see or
change the file itself opens it with its own ``sqlite3`` connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import textwrap
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from atlas_async import (
    AtlasError,
    ConfigurationError,
    InvalidRequestError,
    ItemState,
    Journal,
    JournalEntry,
    JournalError,
    Kind,
    NotFoundError,
    Prediction,
    PredictionFailedError,
    PredictionStatus,
    PredictionTimeoutError,
    RateLimitError,
    ServerError,
    SubmissionUnknownError,
)
from atlas_async._batch.journal import request_key
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio


@attrs.frozen
class Req:
    """A stand-in for GenerationRequest: anything with kind, model and params."""

    kind: Kind | str
    model: str
    params: Mapping[str, Any]


REQUESTS = [
    Req(Kind.IMAGE, "google/nano-banana-2/text-to-image", {"prompt": "a red fox"}),
    Req("video", "kwaivgi/kling-v3.0-std/image-to-video", {"image": "https://x/y.png"}),
    Req(Kind.IMAGE, "google/nano-banana-2/text-to-image", {"prompt": "a red fox"}),
]


def completed(prediction_id: str = "p-0") -> Prediction:
    """A completed snapshot with every modelled field set."""
    return Prediction(
        id=prediction_id,
        status=PredictionStatus.COMPLETED,
        status_raw="succeeded",
        model="google/nano-banana-2/text-to-image",
        outputs=("https://cdn.example/a.png", "data:image/png;base64,iVBORw0KGgo="),
        error=None,
        error_code=None,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        has_nsfw_contents=(False, True),
        urls={"get": "https://api.atlascloud.ai/api/v1/model/prediction/p-0"},
        metrics={"predict_time": 4.5},
        raw={"ignored": True},
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run.db"


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every connection ``sqlite3.connect`` hands out during the test."""
    made: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def spy(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        made.append(connect(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(sqlite3, "connect", spy)
    return made


def tamper(path: Path, sql: str, *args: object) -> None:
    """Change the closed journal's file behind its back."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


def stored(path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Read the closed journal's file directly."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def begin(path: Path) -> list[JournalEntry]:
    async with Journal(path) as journal:
        return await journal.begin(REQUESTS)


class TestKeys:
    async def test_key_ignores_param_order_and_kind_spelling(self) -> None:
        """The key is the same for equal requests however they are spelled."""
        a = Req(Kind.IMAGE, "m", {"a": 1, "b": [1, 2]})
        b = Req("IMAGE", "m", {"b": [1, 2], "a": 1})
        assert request_key(a) == request_key(b)
        assert len(request_key(a)) == 64

    @pytest.mark.parametrize(
        "other",
        [
            pytest.param(Req(Kind.VIDEO, "m", {"a": 1}), id="kind"),
            pytest.param(Req(Kind.IMAGE, "n", {"a": 1}), id="model"),
            pytest.param(Req(Kind.IMAGE, "m", {"a": 2}), id="params"),
        ],
    )
    async def test_key_differs_when_the_request_does(self, other: Req) -> None:
        """Kind, model and every param value are part of the key."""
        assert request_key(Req(Kind.IMAGE, "m", {"a": 1})) != request_key(other)

    async def test_params_that_are_not_json_are_refused(self) -> None:
        """A param JSON cannot carry is a ConfigurationError naming the problem."""
        with pytest.raises(ConfigurationError, match="must be JSON"):
            request_key(Req(Kind.IMAGE, "m", {"when": datetime(2026, 1, 1)}))


class TestOpen:
    async def test_new_file_is_wal_with_full_sync_and_a_schema_version(
        self, path: Path, connections: list[sqlite3.Connection]
    ) -> None:
        """A new journal is in WAL mode, fsyncs every commit, and records its schema."""
        async with Journal(path):
            [conn] = connections  # the journal's own, as sqlite3 handed it out
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert stored(path, "PRAGMA journal_mode") == [("wal",)]
        meta = dict(stored(path, "SELECT name, value FROM meta"))
        assert meta == {"format": "atlas_async.journal", "schema_version": "4"}
        assert stored(path, "PRAGMA application_id") == [(0x41544C53,)]

    async def test_missing_parent_directories_are_created(self, tmp_path: Path) -> None:
        """The journal's directory is created when it does not exist."""
        nested = tmp_path / "a" / "b" / "run.db"
        async with Journal(nested):
            pass
        assert nested.is_file()

    async def test_corrupt_file_is_refused_with_a_readable_message(
        self, path: Path
    ) -> None:
        """A file that is not SQLite gives a JournalError naming it and what to do."""
        await anyio.Path(path).write_bytes(b"not a database, just text " * 100)
        with pytest.raises(JournalError) as caught:
            await Journal(path).open()
        message = str(caught.value)
        assert str(path) in message
        assert "not a usable atlas_async journal" in message
        assert "choose another journal path" in message

    async def test_another_applications_database_is_refused(self, path: Path) -> None:
        """A valid SQLite file without our schema is not taken over."""
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.commit()
        conn.close()
        with pytest.raises(JournalError, match="not a journal"):
            await Journal(path).open()

    async def test_a_meta_table_of_another_format_is_refused(self, path: Path) -> None:
        """A database with tables named like ours but another format is refused."""
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE meta (name TEXT, value TEXT)")
        conn.execute("CREATE TABLE items (idx INTEGER)")
        conn.execute("INSERT INTO meta VALUES ('format', 'something.else')")
        conn.commit()
        conn.close()
        with pytest.raises(JournalError, match="not a journal"):
            await Journal(path).open()

    @pytest.mark.parametrize("version", ["5", "99", "two"])
    async def test_newer_schema_is_refused(self, path: Path, version: str) -> None:
        """A journal written by a newer version asks for an upgrade."""
        await begin(path)
        tamper(path, "UPDATE meta SET value = ? WHERE name = 'schema_version'", version)
        with pytest.raises(JournalError, match=r"newer atlas_async.*upgrade"):
            await Journal(path).open()

    async def test_second_opener_is_refused_while_the_first_holds_it(
        self, path: Path
    ) -> None:
        """Two runs on one journal would submit twice, so the second is refused."""
        async with Journal(path):
            with pytest.raises(JournalError, match="in use by another process"):
                await Journal(path).open()
        async with Journal(path) as again:  # the lock went with the first close
            assert await again.summary() == dict.fromkeys(ItemState, 0)

    async def test_a_directory_as_path_cannot_be_opened(self, tmp_path: Path) -> None:
        """A path that cannot be a file is a JournalError, not a sqlite3 error."""
        with pytest.raises(JournalError, match="cannot open journal"):
            await Journal(tmp_path).open()

    async def test_using_a_closed_journal_is_an_error(self, path: Path) -> None:
        """Calls outside `async with` say how to open the journal."""
        journal = Journal(path)
        with pytest.raises(JournalError, match="not open"):
            await journal.items()
        async with journal:
            with pytest.raises(JournalError, match="already open"):
                await journal.open()
        await journal.close()  # a second close is harmless
        assert "open=False" in repr(journal)

    async def test_a_database_failure_mid_run_is_a_journal_error(
        self, path: Path, connections: list[sqlite3.Connection]
    ) -> None:
        """sqlite3's own errors never escape: they arrive as JournalError."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            assert journal.is_open
            connections[0].close()  # as if the file system went away under us
            with pytest.raises(JournalError, match="closed database"):
                await journal.mark_submitting(0)

    async def test_is_open_follows_open_and_close(self, path: Path) -> None:
        """`is_open` is True exactly between open and close."""
        journal = Journal(path)
        seen = [journal.is_open]
        async with journal:
            seen.append(journal.is_open)
        seen.append(journal.is_open)
        assert seen == [False, True, False]

    async def test_importing_the_journal_does_not_load_sqlite3(self) -> None:
        """sqlite3 is loaded by Journal.open, not by importing the package."""
        probe = (
            "import sys, atlas_async._batch.journal; print('sqlite3' in sys.modules)"
        )
        done = await anyio.run_process([sys.executable, "-c", probe])
        assert done.stdout.decode().strip() == "False"


class TestBegin:
    async def test_new_batch_is_all_pending_and_duplicates_stay_distinct(
        self, path: Path
    ) -> None:
        """Every request becomes a pending item; equal requests share a key only."""
        entries = await begin(path)
        assert [e.index for e in entries] == [0, 1, 2]
        assert {e.state for e in entries} == {ItemState.PENDING}
        assert entries[0].key == entries[2].key == request_key(REQUESTS[0])
        assert entries[1].kind is Kind.VIDEO
        assert entries[1].params == {"image": "https://x/y.png"}

    async def test_same_batch_resumes(self, path: Path) -> None:
        """Opening with the same requests returns what was recorded."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(1)
            await journal.mark_submitted(1, "p-1")
            assert len(await journal.begin(REQUESTS)) == 3  # idempotent in a run
        entries = await begin(path)
        assert entries[1].state is ItemState.SUBMITTED
        assert entries[1].prediction_id == "p-1"

    async def test_reordered_lines_keep_their_items(self, path: Path) -> None:
        """Items are found by content: a request that moved keeps its state and id."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(1)
            await journal.mark_submitted(1, "p-1")
            entries = await journal.begin([REQUESTS[1], REQUESTS[0], REQUESTS[2]])
        assert [e.index for e in entries] == [0, 1, 2]
        assert entries[0].state is ItemState.SUBMITTED
        assert entries[0].prediction_id == "p-1"
        assert entries[0].key == request_key(REQUESTS[1])
        assert {e.state for e in entries[1:]} == {ItemState.PENDING}

    async def test_an_added_request_is_a_new_pending_item(self, path: Path) -> None:
        """Appending a request extends the batch; the others keep their state."""
        added = Req(Kind.IMAGE, "m", {"prompt": "an owl"})
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(0)
            await journal.mark_submitted(0, "p-0")
            entries = await journal.begin([*REQUESTS, added])
        assert [e.state for e in entries] == [
            ItemState.SUBMITTED,
            ItemState.PENDING,
            ItemState.PENDING,
            ItemState.PENDING,
        ]
        assert entries[3].key == request_key(added)

    async def test_a_removed_request_keeps_its_item_for_later(self, path: Path) -> None:
        """A request left out is not part of the batch, and is its item again
        when it comes back."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(1)
            await journal.mark_submitted(1, "p-1")
            fewer = await journal.begin([REQUESTS[0], REQUESTS[2]])
            assert [e.state for e in fewer] == [ItemState.PENDING] * 2
            assert (await journal.summary())[ItemState.SUBMITTED] == 1
            back = await journal.begin(REQUESTS)
        assert back[1].prediction_id == "p-1"

    async def test_the_nth_identical_request_is_the_nth_item(self, path: Path) -> None:
        """Identical lines are distinct items, matched in order."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            for index in (0, 2):
                await journal.mark_submitting(index)
                await journal.mark_submitted(index, f"p-{index}")
            entries = await journal.begin([REQUESTS[2], REQUESTS[1], REQUESTS[0]])
        assert [e.prediction_id for e in entries] == ["p-0", None, "p-2"]

    async def test_preview_places_requests_and_changes_nothing(
        self, path: Path
    ) -> None:
        """`preview` says which item each request is, without writing."""
        added = Req(Kind.IMAGE, "m", {"prompt": "an owl"})
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            placement = await journal.preview([added, REQUESTS[1]])
            assert placement.items[0] is None
            assert placement.items[1] is not None
            assert placement.items[1].key == request_key(REQUESTS[1])
            assert [e.index for e in placement.leftover] == [0, 2]
            assert len(await journal.items()) == 3

    async def test_a_schema_3_journal_is_upgraded_and_then_grows(
        self, path: Path
    ) -> None:
        """A schema 3 file (a fingerprint, completed rows holding their files)
        opens as schema 4: those rows are saved, the rest as they were, and the
        batch takes an added request instead of calling it another batch."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(0)
            await journal.mark_submitted(0, "p-0")
            await journal.mark_completed(0, completed(), [Path("out/p-0-0.png")])
            await journal.mark_submitting(1)
            await journal.mark_submitted(1, "p-0")
            await journal.mark_completed(1, completed())
        tamper(path, "UPDATE items SET state = 'completed' WHERE state = 'saved'")
        tamper(path, "UPDATE meta SET value = '3' WHERE name = 'schema_version'")
        tamper(path, "INSERT INTO meta VALUES ('fingerprint', 'abc')")
        added = Req(Kind.IMAGE, "m", {"prompt": "an owl"})
        async with Journal(path) as journal:
            entries = await journal.begin([*REQUESTS, added])
        assert [e.state for e in entries] == [
            ItemState.SAVED,
            ItemState.COMPLETED,
            ItemState.PENDING,
            ItemState.PENDING,
        ]
        meta = dict(stored(path, "SELECT name, value FROM meta"))
        assert meta == {"format": "atlas_async.journal", "schema_version": "4"}

    async def test_empty_batch_is_allowed(self, path: Path) -> None:
        """A batch of nothing is recorded, and can grow later."""
        async with Journal(path) as journal:
            assert await journal.begin([]) == []
            assert len(await journal.begin(REQUESTS)) == 3


SENT = "submitting submitted"


class TestTransitions:
    async def test_happy_path_records_everything(self, path: Path) -> None:
        """pending -> submitting -> submitted -> completed keeps id, outputs, files."""
        clock = FakeClock(wall=1_000.0)
        async with Journal(path, clock=clock) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(0)
            assert (await journal.get(0)).state is ItemState.SUBMITTING
            await journal.mark_submitted(0, "p-0")
            clock.advance(5.0)
            await journal.mark_completed(0, completed())
            await journal.record_files(0, [Path("/out/p-0-0.png")])
            entry = await journal.get(0)
        assert entry.state is ItemState.SAVED
        assert entry.prediction_id == "p-0"
        assert entry.prediction == completed()
        assert entry.outputs == completed().outputs
        assert entry.files == (Path("/out/p-0-0.png"),)
        assert entry.attempts == 1
        assert (entry.created_at, entry.updated_at) == (1_000.0, 1_005.0)

    @pytest.mark.parametrize(
        ("setup", "action"),
        [
            pytest.param("", "submitted", id="pending-to-submitted"),
            pytest.param("", "completed", id="pending-to-completed"),
            pytest.param("", "unknown", id="pending-to-unknown"),
            pytest.param("submitting", "submitting", id="submitting-twice"),
            pytest.param("submitting", "completed", id="submitting-to-completed"),
            pytest.param("submitting submitted", "unknown", id="submitted-to-unknown"),
            pytest.param("submitting submitted", "pending", id="submitted-to-pending"),
            pytest.param("submitting submitted", "files", id="files-before-completed"),
            pytest.param(f"{SENT} completed", "submitting", id="completed-resent"),
            pytest.param(f"{SENT} completed", "unknown", id="completed-to-unknown"),
            pytest.param(f"{SENT} completed", "pending", id="completed-to-pending"),
        ],
    )
    async def test_illegal_transitions_are_refused(
        self, path: Path, setup: str, action: str
    ) -> None:
        """A step the state machine does not allow raises and changes nothing."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            for step in setup.split():
                await do(journal, 0, step)
            before = await journal.get(0)
            with pytest.raises(JournalError, match=r"item 0 is .*cannot become"):
                await do(journal, 0, action)
            assert await journal.get(0) == before

    async def test_a_completed_item_takes_a_fresh_snapshot_or_fails(
        self, path: Path
    ) -> None:
        """Completed is not final: a fresh snapshot forgets the files (they are
        downloaded again), and outputs gone for good make the item failed."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            for index in (0, 1):
                await journal.mark_submitting(index)
                await journal.mark_submitted(index, f"p-{index}")
                await journal.mark_completed(index, completed(f"p-{index}"))
                await journal.record_files(index, [Path(f"out/{index}.png")])
            await journal.mark_completed(0, completed("p-0"))
            await journal.mark_failed(1, "OutputsGoneError", "expired")
            fresh, gone = await journal.get(0), await journal.get(1)
        assert (fresh.state, fresh.files) == (ItemState.COMPLETED, ())
        assert (gone.state, gone.error_type) == (ItemState.FAILED, "OutputsGoneError")

    async def test_unknown_index_is_an_error(self, path: Path) -> None:
        """Marking an index the batch does not have is a JournalError."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            with pytest.raises(JournalError, match="no item 7"):
                await journal.mark_submitting(7)
            with pytest.raises(JournalError, match="no item 7"):
                await journal.get(7)

    async def test_submitted_needs_an_id(self, path: Path) -> None:
        """An empty prediction id is refused before anything is written."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(0)
            with pytest.raises(JournalError, match="prediction id is required"):
                await journal.mark_submitted(0, "")

    async def test_unknown_can_be_resolved_by_id_or_resubmitted(
        self, path: Path
    ) -> None:
        """An unknown item accepts an id found later, or a knowing reset."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            for index in (0, 1):
                await journal.mark_submitting(index)
                await journal.mark_unknown(index, "read timeout after sending")
            await journal.mark_submitted(0, "p-found")
            await journal.reset_to_pending(1)
            await journal.mark_submitting(1)
            first, second = await journal.get(0), await journal.get(1)
        assert (first.state, first.prediction_id, first.error_type) == (
            ItemState.SUBMITTED,
            "p-found",
            None,
        )
        assert second.state is ItemState.SUBMITTING
        assert second.attempts == 2
        assert second.error_message is None

    async def test_submit_that_never_left_goes_back_to_pending(
        self, path: Path
    ) -> None:
        """A submit refused before sending (connect error) is simply pending again."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(2)
            await journal.reset_to_pending(2)
            assert (await journal.get(2)).state is ItemState.PENDING

    async def test_failure_keeps_type_message_and_snapshot(self, path: Path) -> None:
        """A failed prediction can be rebuilt: error type, message and snapshot."""
        failed = Prediction(
            id="p-9",
            status=PredictionStatus.FAILED,
            error="content policy",
            error_code=1039,
        )
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_failed(1, "InvalidRequestError", "400: bad size")
            await journal.mark_submitting(0)
            await journal.mark_submitted(0, "p-9")
            await journal.mark_failed(
                0, "PredictionFailedError", "content policy", prediction=failed
            )
            refused, moderated = await journal.get(1), await journal.get(0)
        assert (refused.state, refused.error_type, refused.prediction) == (
            ItemState.FAILED,
            "InvalidRequestError",
            None,
        )
        assert isinstance(refused.error, InvalidRequestError)
        assert refused.error.status_code == 400  # the text's code, read once
        assert moderated.prediction == failed
        assert moderated.error_message == "content policy"
        assert isinstance(moderated.error, PredictionFailedError)
        assert (moderated.error.error_code, moderated.error.prediction) == (
            1039,
            failed,
        )

    async def test_failed_item_can_be_retried_knowingly(self, path: Path) -> None:
        """Resetting a failed item clears its id, snapshot, outputs and error."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(0)
            await journal.mark_submitted(0, "p-0")
            failed = attrs.evolve(completed(), status=PredictionStatus.FAILED)
            await journal.mark_failed(
                0, "PredictionFailedError", "x", prediction=failed
            )
            await journal.reset_to_pending(0)
            entry = await journal.get(0)
        assert entry.state is ItemState.PENDING
        assert (entry.prediction_id, entry.prediction, entry.outputs) == (
            None,
            None,
            (),
        )
        assert (entry.error_type, entry.error_message) == (None, None)

    async def test_summary_and_filtered_items(self, path: Path) -> None:
        """summary() counts every state; items(states) filters in index order."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(0)
            await journal.mark_submitting(2)
            counts = await journal.summary()
            submitting = await journal.items([ItemState.SUBMITTING])
        assert counts[ItemState.SUBMITTING] == 2
        assert counts[ItemState.PENDING] == 1
        assert counts[ItemState.COMPLETED] == 0
        assert [e.index for e in submitting] == [0, 2]


async def do(journal: Journal, index: int, step: str) -> None:
    """Apply one named transition (for the parametrized table)."""
    if step == "submitting":
        await journal.mark_submitting(index)
    elif step == "submitted":
        await journal.mark_submitted(index, f"p-{index}")
    elif step == "completed":
        await journal.mark_completed(index, completed(f"p-{index}"))
    elif step == "files":
        await journal.record_files(index, [Path("a.png")])
    elif step == "failed":
        await journal.mark_failed(index, "ServerError", "500")
    elif step == "unknown":
        await journal.mark_unknown(index, "no answer")
    else:
        assert step == "pending"
        await journal.reset_to_pending(index)


CRASH_SCRIPT = """
import os, sys, anyio
from atlas_async._batch.journal import Journal
from atlas_async._core.models import Kind
sys.path.insert(0, {tests!r})
from test_journal import REQUESTS

async def main():
    journal = Journal({path!r})
    await journal.open()
    await journal.begin(REQUESTS)
    await journal.mark_submitting(0)
    await journal.mark_submitted(0, "p-0")
    await journal.mark_submitting(1)
    os._exit(17)  # the process dies between the commit and the POST's answer

anyio.run(main)
"""


class TestPersistence:
    async def test_every_state_survives_reopening(self, path: Path) -> None:
        """What was committed is what the next run reads, snapshot included."""
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(0)
            await journal.mark_submitted(0, "p-0")
            await journal.mark_completed(0, completed(), [Path("out/p-0-0.png")])
            await journal.mark_failed(1, "InvalidRequestError", "bad")
        entries = await begin(path)
        assert [e.state for e in entries] == [
            ItemState.SAVED,
            ItemState.FAILED,
            ItemState.PENDING,
        ]
        assert entries[0].prediction == completed()
        assert entries[0].files == (Path("out/p-0-0.png"),)

    async def test_crash_while_submitting_becomes_unknown_never_pending(
        self, path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A process killed after committing `submitting` leaves an unknown item."""
        script = CRASH_SCRIPT.format(path=str(path), tests=str(Path(__file__).parent))
        done = await anyio.run_process(
            [sys.executable, "-c", textwrap.dedent(script)], check=False
        )
        assert done.returncode == 17, done.stderr.decode()
        with caplog.at_level(logging.WARNING, logger="atlas_async.journal"):
            async with Journal(path) as journal:
                assert journal.recovered_unknown == (1,)
                entries = await journal.begin(REQUESTS)
        assert [e.state for e in entries] == [
            ItemState.SUBMITTED,
            ItemState.UNKNOWN,
            ItemState.PENDING,
        ]
        assert entries[1].error_type == "SubmissionUnknownError"
        assert "may exist and bill" in (entries[1].error_message or "")
        assert "items [1]" in caplog.text
        async with Journal(path) as journal:  # reported once, not again
            assert journal.recovered_unknown == ()


class TestConcurrency:
    async def test_many_tasks_share_one_journal(self, path: Path) -> None:
        """Hundreds of concurrent tasks each walk their item to completed."""
        requests = [Req(Kind.IMAGE, "m", {"prompt": str(i)}) for i in range(200)]

        async def walk(journal: Journal, index: int) -> None:
            await journal.mark_submitting(index)
            await journal.mark_submitted(index, f"p-{index}")
            await journal.mark_completed(index, completed(f"p-{index}"))

        async with Journal(path) as journal:
            await journal.begin(requests)
            async with anyio.create_task_group() as tg:
                for index in range(len(requests)):
                    tg.start_soon(walk, journal, index)
            counts = await journal.summary()
            entries = await journal.items()
        assert counts[ItemState.COMPLETED] == 200
        assert [e.prediction_id for e in entries] == [f"p-{i}" for i in range(200)]

    async def test_racing_submitters_cannot_both_claim_an_item(
        self, path: Path
    ) -> None:
        """Of many tasks marking one item submitting, exactly one succeeds."""
        wins: list[int] = []

        async def claim(journal: Journal, task: int) -> None:
            try:
                await journal.mark_submitting(0)
            except JournalError:
                return
            wins.append(task)

        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            async with anyio.create_task_group() as tg:
                for task in range(20):
                    tg.start_soon(claim, journal, task)
            assert (await journal.get(0)).attempts == 1
        assert len(wins) == 1


class TestSecrets:
    async def test_bearer_tokens_in_messages_are_redacted(self, path: Path) -> None:
        """An error text quoting a header never puts the key on disk."""
        secret = "sk-live-0123456789abcdef"
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_failed(
                0, "Boom", f"headers: {{'Authorization': 'Bearer {secret}'}}"
            )
            await journal.mark_failed(
                1, "Boom", f"sent authorization={secret} then bearer {secret}"
            )
            await journal.mark_submitting(2)
            await journal.mark_unknown(2, f"Authorization: Bearer {secret}")
            messages = [e.error_message or "" for e in await journal.items()]
        assert all("[redacted]" in m and secret not in m for m in messages)
        stored = b"".join(p.read_bytes() for p in path.parent.glob("run.db*"))
        assert secret.encode() not in stored


def failed_snapshot(prediction_id: str = "p-0") -> Prediction:
    """A snapshot of a prediction the server failed (content moderation)."""
    return Prediction(
        id=prediction_id,
        status=PredictionStatus.FAILED,
        status_raw="failed",
        error="content policy",
        error_code=1039,
    )


async def record_and_reread(path: Path, record: Any) -> JournalEntry:
    """Run ``record(journal)`` on item 0, then read item 0 from a new journal."""
    async with Journal(path) as journal:
        await journal.begin(REQUESTS)
        await journal.mark_submitting(0)
        await record(journal)
    async with Journal(path) as journal:
        return await journal.get(0)


class TestStructuredErrors:
    async def test_an_api_error_comes_back_with_every_field(self, path: Path) -> None:
        """Status code, request id, Retry-After and id survive a reopen, no parsing."""
        error = RateLimitError(
            "slow down: 10 per second",
            status_code=429,
            request_id="req-7",
            retry_after=2.5,
            prediction_id="p-0",
        )
        entry = await record_and_reread(path, lambda j: j.mark_failed(0, error))
        again = entry.error
        assert type(again) is RateLimitError
        assert (again.message, again.status_code, again.request_id) == (
            "slow down: 10 per second",
            429,
            "req-7",
        )
        assert (again.retry_after, again.prediction_id) == (2.5, "p-0")
        assert str(again) == str(error) == entry.error_message
        assert entry.error_type == "RateLimitError"

    async def test_a_prediction_failure_comes_back_with_its_snapshot(
        self, path: Path
    ) -> None:
        """PredictionFailedError keeps error, code, status and its last snapshot."""
        snapshot = failed_snapshot()
        error = PredictionFailedError(
            "prediction p-0 failed: content policy",
            prediction_id="p-0",
            prediction=snapshot,
            error="content policy",
            error_code=1039,
            status=PredictionStatus.FAILED,
        )

        async def record(journal: Journal) -> None:
            await journal.mark_submitted(0, "p-0")
            await journal.mark_failed(0, error)  # the snapshot comes from the error

        entry = await record_and_reread(path, record)
        again = entry.error
        assert isinstance(again, PredictionFailedError)
        assert (again.prediction_id, again.error, again.error_code) == (
            "p-0",
            "content policy",
            1039,
        )
        assert again.status is PredictionStatus.FAILED
        assert again.prediction == snapshot == entry.prediction

    async def test_a_timeout_keeps_its_last_status_and_limit(self, path: Path) -> None:
        """Fields of other error classes (last status, timeout) are kept too."""
        error = PredictionTimeoutError(
            "prediction p-0 did not finish in 60s",
            prediction_id="p-0",
            last_status=PredictionStatus.PROCESSING,
            timeout=60.0,
        )
        entry = await record_and_reread(path, lambda j: j.mark_failed(0, error))
        again = entry.error
        assert isinstance(again, PredictionTimeoutError)
        assert isinstance(again, TimeoutError)
        assert (again.last_status, again.timeout) == (PredictionStatus.PROCESSING, 60.0)

    async def test_an_unknown_submit_keeps_what_was_sent(self, path: Path) -> None:
        """mark_unknown with the exception keeps its method, URL, kind and model."""
        error = SubmissionUnknownError(
            "read timeout after sending",
            method="POST",
            url="https://api.example/api/v1/model/generateImage",
            kind=Kind.IMAGE,
            model="m",
        )
        entry = await record_and_reread(path, lambda j: j.mark_unknown(0, error))
        again = entry.error
        assert entry.state is ItemState.UNKNOWN
        assert isinstance(again, SubmissionUnknownError)
        assert (again.method, again.url, again.kind, again.model) == (
            "POST",
            "https://api.example/api/v1/model/generateImage",
            Kind.IMAGE,
            "m",
        )

    async def test_an_unknown_submit_given_as_text_is_a_submission_unknown_error(
        self, path: Path
    ) -> None:
        """mark_unknown with a text records a SubmissionUnknownError with it."""
        entry = await record_and_reread(path, lambda j: j.mark_unknown(0, "no answer"))
        assert isinstance(entry.error, SubmissionUnknownError)
        assert (entry.error_type, str(entry.error)) == (
            "SubmissionUnknownError",
            "no answer",
        )

    async def test_a_subclass_outside_the_tree_comes_back_as_its_nearest_parent(
        self, path: Path
    ) -> None:
        """An application's own subclass is rebuilt as the SDK class it extends."""

        class TeapotError(ServerError):
            pass

        error = TeapotError("i'm a teapot", status_code=518)
        entry = await record_and_reread(path, lambda j: j.mark_failed(0, error))
        assert type(entry.error) is ServerError
        assert entry.error.status_code == 518
        assert entry.error_type == "TeapotError"

    @pytest.mark.parametrize(
        ("name", "message", "expected", "text"),
        [
            pytest.param(
                "NotFoundError",
                "404: no such prediction",
                NotFoundError,
                "404: no such prediction",
                id="known-name",
            ),
            pytest.param(
                "EmulatorStopped",
                "the emulator stopped",
                AtlasError,
                "the emulator stopped",
                id="a-label",
            ),
        ],
    )
    async def test_a_failure_given_by_name_is_rebuilt_from_it(
        self, path: Path, name: str, message: str, expected: type, text: str
    ) -> None:
        """A name of the tree gives that class; any other name is a plain AtlasError."""
        entry = await record_and_reread(path, lambda j: j.mark_failed(0, name, message))
        assert type(entry.error) is expected
        assert str(entry.error) == text
        assert (entry.error_type, entry.error_message) == (name, message)

    async def test_secrets_in_error_fields_never_reach_the_file(
        self, path: Path
    ) -> None:
        """Every text field of the record is redacted, not only the message."""
        secret = "sk-live-0123456789abcdef"
        error = PredictionFailedError(
            f"failed (Authorization: Bearer {secret})",
            prediction_id="p-0",
            error=f"upstream said: bearer {secret}",
        )
        entry = await record_and_reread(path, lambda j: j.mark_failed(0, error))
        assert isinstance(entry.error, PredictionFailedError)
        assert secret not in str(entry.error)
        assert entry.error.error == "upstream said: bearer [redacted]"
        files = b"".join(p.read_bytes() for p in path.parent.glob("run.db*"))
        assert secret.encode() not in files

    async def test_a_retry_clears_the_recorded_error(self, path: Path) -> None:
        """reset_to_pending forgets the error; mark_submitted does too."""

        async def record(journal: Journal) -> None:
            await journal.mark_unknown(0, "no answer")
            await journal.mark_submitted(0, "p-0")

        entry = await record_and_reread(path, record)
        assert (entry.error, entry.error_type, entry.error_message) == (
            None,
            None,
            None,
        )


class TestTamperedRows:
    """A row changed outside atlas_async is a JournalError naming the item."""

    async def failed_journal(self, path: Path) -> None:
        async with Journal(path) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_failed(1, ServerError("boom", status_code=500))
            await journal.mark_submitting(2)
            await journal.mark_submitted(2, "p-2")
            await journal.mark_completed(2, completed("p-2"))

    @pytest.mark.parametrize(
        ("sql", "value", "item", "problem"),
        [
            pytest.param(
                "UPDATE items SET error = ? WHERE idx = 1",
                json.dumps({"type": "NoSuchError", "message": "x"}),
                1,
                "unknown error type 'NoSuchError'",
                id="unknown-error-type",
            ),
            pytest.param(
                "UPDATE items SET error = ? WHERE idx = 1",
                '{"type": "ServerError", "message": ',
                1,
                "Expecting value",
                id="broken-error-json",
            ),
            pytest.param(
                "UPDATE items SET error = ? WHERE idx = 1",
                json.dumps({"type": "ServerError", "message": "x", "status_code": "x"}),
                1,
                "status_code",
                id="error-field-of-the-wrong-type",
            ),
            pytest.param(
                "UPDATE items SET error = ? WHERE idx = 1",
                json.dumps(["ServerError", "x"]),
                1,
                "expected a JSON object",
                id="error-not-an-object",
            ),
            pytest.param(
                "UPDATE items SET prediction = ? WHERE idx = 2",
                json.dumps({"id": "p-2", "status": "exploded"}),
                2,
                "status",
                id="unknown-prediction-status",
            ),
            pytest.param(
                "UPDATE items SET prediction = ? WHERE idx = 2",
                "{not json",
                2,
                "Expecting property name",
                id="broken-prediction-json",
            ),
            pytest.param(
                "UPDATE items SET request = ? WHERE idx = 0",
                json.dumps({"model": "m", "params": {}}),
                0,
                "'kind' is missing",
                id="request-without-kind",
            ),
            pytest.param(
                "UPDATE items SET files = ? WHERE idx = 2",
                "7",
                2,
                "int",
                id="files-not-a-list",
            ),
        ],
    )
    async def test_a_damaged_row_is_reported_with_its_index(
        self, path: Path, sql: str, value: str, item: int, problem: str
    ) -> None:
        """Resuming, listing and getting the item all say which item is damaged."""
        await self.failed_journal(path)
        tamper(path, sql, value)
        async with Journal(path) as journal:
            with pytest.raises(JournalError) as caught:
                await journal.begin(REQUESTS)
            with pytest.raises(JournalError, match=f"item {item} cannot be read"):
                await journal.get(item)
            with pytest.raises(JournalError, match=f"item {item} cannot be read"):
                await journal.items()
        message = str(caught.value)
        assert f"item {item} cannot be read" in message
        assert problem in message
        assert str(path) in message

    async def test_an_unknown_state_is_reported(self, path: Path) -> None:
        """A state the journal never writes is a JournalError, not a ValueError."""
        await self.failed_journal(path)
        tamper(path, "UPDATE items SET state = 'exploded' WHERE idx = 0")
        async with Journal(path) as journal:
            with pytest.raises(JournalError, match=r"unknown states \['exploded'\]"):
                await journal.summary()
            with pytest.raises(JournalError, match="item 0 cannot be read"):
                await journal.get(0)
            assert (await journal.get(1)).state is ItemState.FAILED  # others still read


class TestClock:
    async def test_recovery_stamps_the_clock_wall_time(self, path: Path) -> None:
        """Every timestamp, recovery's too, is the injected clock's wall()."""
        clock = FakeClock(wall=2_000.0)
        async with Journal(path, clock=clock) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_submitting(1)
        clock.advance(60.0)
        async with Journal(path, clock=clock) as journal:
            entries = await journal.items()
        assert entries[1].state is ItemState.UNKNOWN
        assert (entries[1].created_at, entries[1].updated_at) == (2_000.0, 2_060.0)
        assert (entries[0].created_at, entries[0].updated_at) == (2_000.0, 2_000.0)
