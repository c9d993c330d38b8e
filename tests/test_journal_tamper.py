"""
A journal changed outside atlas_async, column by column, through a real sqlite3
connection: every damaged row is a `JournalError` naming the item (and its key),
the file can be opened again afterwards, and ``atlas-async batch`` reports it
in one line with exit code 2. Also: the API key never reaches the file.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from atlas_async import (
    AtlasClient,
    ItemState,
    Journal,
    JournalError,
    Kind,
    Prediction,
    PredictionFailedError,
    PredictionStatus,
    ServerError,
    SubmissionUnknownError,
    cli,
)
from atlas_async._batch.types import GenerationRequest
from atlas_async.testing import FakeClock

IMAGE = "google/nano-banana-2/text-to-image"
EMU = ["--emulator", "--time-scale", "200", "--seed", "1"]
KEY = "sk-live-0123456789abcdefSECRET"


@attrs.frozen
class Req:
    """Anything with kind, model and params is a request to the journal."""

    kind: Kind | str
    model: str
    params: Mapping[str, Any]


REQUESTS = [
    Req(Kind.IMAGE, IMAGE, {"prompt": "a red fox"}),
    Req(Kind.IMAGE, IMAGE, {"prompt": "a grey fox"}),
    Req(Kind.IMAGE, IMAGE, {"prompt": "a fox at night"}),
    Req(Kind.IMAGE, IMAGE, {"prompt": "a fox in snow"}),
]
# Item 0 pending, 1 failed, 2 saved (completed, with a file), 3 submitted.
STATES = ["pending", "failed", "saved", "submitted"]


def snapshot(prediction_id: str, **fields: Any) -> Prediction:
    fields.setdefault("status", PredictionStatus.COMPLETED)
    return Prediction(
        id=prediction_id, model=IMAGE, outputs=("https://cdn.example/a.png",), **fields
    )


async def write_journal(path: Path) -> None:
    async with Journal(path) as journal:
        await journal.begin(REQUESTS)
        await journal.mark_failed(
            1, ServerError("boom", status_code=500, request_id="req-1")
        )
        await journal.mark_submitting(2)
        await journal.mark_submitted(2, "p-2")
        await journal.mark_completed(2, snapshot("p-2"), [Path("/out/p-2-0.png")])
        await journal.mark_submitting(3)
        await journal.mark_submitted(3, "p-3")


def tamper(path: Path, sql: str, *args: object) -> None:
    """Change the closed journal's file behind its back."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(sql, args)
    finally:
        conn.close()


def stored_key(path: Path, index: int) -> str:
    conn = sqlite3.connect(path)
    try:
        (key,) = conn.execute(
            "SELECT key FROM items WHERE idx = ?", (index,)
        ).fetchone()
    finally:
        conn.close()
    assert isinstance(key, str)
    return key


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run.db"


def request_json(**fields: object) -> str:
    """A stored request with ``fields`` changed (None: left out)."""
    request = {"kind": "image", "model": IMAGE, "params": {}, **fields}
    return json.dumps({k: v for k, v in request.items() if v is not None})


def on_disk(directory: Path, name: str) -> bytes:
    """The journal's bytes, its WAL and shared memory files included."""
    return b"".join(p.read_bytes() for p in directory.glob(f"{name}*"))


# (column, item, value, what the message says). Each value is one a person or a
# program could write with sqlite3; SQLite's NOT NULL columns refuse NULL.
CASES = [
    ("key", 0, "0" * 64, "key is not the hash of its request"),
    ("key", 0, 7, "key is not the hash"),
    ("key", 0, b"\x00", "key is bytes, not text"),
    ("request", 0, "[]", "request is not a JSON object"),
    ("request", 0, "{oops", "request: Expecting property name"),
    ("request", 0, b"\xff", "request is bytes"),
    ("request", 0, "null", "request is not a JSON object"),
    ("request", 0, request_json(model=None), "'model' is missing"),
    ("request", 0, request_json(model=7), "kind or model is not text"),
    ("request", 0, request_json(params=[]), "params is not a JSON object"),
    ("request", 0, request_json(kind="gif"), "'gif' is not a valid Kind"),
    ("request", 0, request_json(params={"prompt": "a red fox"}, model="other"),
     "key is not the hash of its request"),
    ("request", 0, request_json(x=1), "request has other fields"),
    ("state", 0, "exploded", "'exploded' is not a valid ItemState"),
    ("state", 0, 7, "'7' is not a valid ItemState"),
    ("state", 0, "completed", "no prediction id"),
    ("state", 0, "submitted", "no prediction id"),
    ("state", 2, "pending", "a pending item has a prediction recorded"),
    ("state", 3, "completed", "a completed item has no snapshot"),
    ("state", 0, "failed", "a failed item has no error recorded"),
    ("prediction_id", 2, "p-other", "snapshot is of another prediction"),
    ("prediction_id", 2, b"p-2", "prediction_id is bytes"),
    ("prediction_id", 3, None, "a submitted item has no prediction id"),
    ("prediction", 2, "[]", "expected a JSON object"),
    ("prediction", 2, "{not json", "prediction: Expecting property name"),
    ("prediction", 2, json.dumps({"id": "p-2", "status": "exploded"}), "status"),
    ("prediction", 2, 7, "expected a JSON object"),
    ("outputs", 2, "{}", "outputs is dict, not a list of texts"),
    ("outputs", 2, "[1, 2]", "outputs is list, not a list of texts"),
    ("outputs", 2, '"abc"', "outputs is str, not a list of texts"),
    ("outputs", 2, "nope", "outputs: Expecting value"),
    ("files", 2, '"abc"', "files is str, not a list of texts"),
    ("files", 2, "[null]", "files is list, not a list of texts"),
    ("files", 0, '["/tmp/x.png"]', "a pending item has a prediction recorded"),
    ("error_type", 1, None, "a failed item has no error recorded"),
    ("error_type", 1, b"\x00", "error_type is bytes"),
    ("error_message", 1, b"\x00", "error_message is bytes"),
    ("error", 1, "[]", "expected a JSON object"),
    ("error", 1, json.dumps({"type": "ServerError"}), "message"),
    ("error", 1, json.dumps({"type": "NoSuchError", "message": "x"}), "NoSuchError"),
    ("attempts", 2, "x", "attempts is 'x', not a count"),
    ("attempts", 2, -1, "attempts is -1, not a count"),
    ("attempts", 2, 1.5, "attempts is 1.5, not a count"),
    ("created_at", 0, "yesterday", "created_at is 'yesterday', not a time"),
    ("updated_at", 0, float("inf"), "not a time"),
]  # fmt: skip


class TestDamagedRows:
    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("column", "item", "value", "problem"),
        [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(CASES)],
    )
    async def test_each_damaged_column_is_a_journal_error_naming_the_item(
        self, path: Path, column: str, item: int, value: object, problem: str
    ) -> None:
        """Resuming, listing and reading the item each raise JournalError naming
        the item, its key and the problem; nothing untyped escapes."""
        await write_journal(path)
        key = stored_key(path, item)
        tamper(path, f"UPDATE items SET {column} = ? WHERE idx = ?", value, item)
        async with Journal(path) as journal:
            with pytest.raises(JournalError) as resumed:
                await journal.begin(REQUESTS)
            with pytest.raises(JournalError, match=f"item {item} "):
                await journal.items()
            with pytest.raises(JournalError, match=f"item {item} "):
                await journal.get(item)
        message = str(resumed.value)
        assert f"item {item} " in message
        assert problem in message
        assert str(path) in message
        if column != "key":
            assert key[:12] in message

    @pytest.mark.asyncio
    async def test_a_journal_that_reported_damage_can_be_opened_again(
        self, path: Path
    ) -> None:
        """A damaged row found mid-read does not leave the file locked: the same
        process can open it again (to look at the other items, or after repair)."""
        await write_journal(path)
        tamper(path, "UPDATE items SET prediction = '{not json' WHERE idx = 2")
        for _ in range(2):
            async with Journal(path) as journal:
                with pytest.raises(JournalError):
                    await journal.items()
                with pytest.raises(JournalError):
                    await journal.begin(REQUESTS)
        async with Journal(path) as journal:
            assert (await journal.get(1)).state is ItemState.FAILED

    @pytest.mark.asyncio
    async def test_a_row_holding_another_request_is_another_item(
        self, path: Path
    ) -> None:
        """A row rewritten whole (request and matching key) is that other
        request's item: the batch's request it held is new again, and the
        rewritten row stays in the journal after the batch's items."""
        await write_journal(path)
        other = {"kind": "image", "model": IMAGE, "params": {"prompt": "an owl"}}
        async with Journal(tmp := path.with_name("other.db")) as scratch:
            await scratch.begin([Req(Kind.IMAGE, IMAGE, {"prompt": "an owl"})])
        tamper(
            path,
            "UPDATE items SET request = ?, key = ? WHERE idx = 1",
            json.dumps(other, sort_keys=True, separators=(",", ":")),
            stored_key(tmp, 0),
        )
        async with Journal(path) as journal:
            entries = await journal.begin(REQUESTS)
            assert entries[1].state is ItemState.PENDING
            assert (await journal.get(4)).params == {"prompt": "an owl"}

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("sql", "states"),
        [
            pytest.param(
                "DELETE FROM items WHERE idx = 1",
                ["pending", "pending", "saved", "submitted"],
                id="gone",
            ),
            pytest.param(
                "UPDATE items SET idx = 99 WHERE idx = 2",
                ["pending", "failed", "saved", "submitted"],
                id="moved",
            ),
            pytest.param(
                "INSERT INTO items (idx, key, request, state, created_at, updated_at)"
                " SELECT 7, key, request, 'pending', 0, 0 FROM items WHERE idx = 3",
                ["pending", "failed", "saved", "submitted"],
                id="extra",
            ),
        ],
    )
    async def test_rows_are_found_by_content_not_position(
        self, path: Path, sql: str, states: list[str]
    ) -> None:
        """Gaps and strange indices do not matter: each request finds its row
        by content, and a request without one is new."""
        await write_journal(path)
        tamper(path, sql)
        async with Journal(path) as journal:
            entries = await journal.begin(REQUESTS)
        assert [e.state.value for e in entries] == states
        assert [e.index for e in entries] == [0, 1, 2, 3]


class TestKeyNeverStored:
    @pytest.mark.asyncio
    async def test_the_key_is_redacted_from_every_column(self, path: Path) -> None:
        """The key as the server might echo it (bare, not after "Bearer") in a
        message, a request id, an error text, a snapshot and an id never
        reaches the file."""
        echoed = snapshot(
            f"id-{KEY}",
            status=PredictionStatus.FAILED,
            error=f"key {KEY} was rejected",
            urls={"get": f"https://api/x?k={KEY}"},
        )
        async with Journal(path, secret=KEY) as journal:
            await journal.begin(REQUESTS)
            await journal.mark_failed(
                0,
                ServerError(f"bad key {KEY}", status_code=500, request_id=KEY),
            )
            await journal.mark_submitting(1)
            await journal.mark_submitted(1, f"id-{KEY}")
            await journal.mark_failed(
                1,
                PredictionFailedError(
                    f"failed: {KEY}",
                    prediction_id=f"id-{KEY}",
                    error=f"upstream echoed {KEY}",
                    prediction=echoed,
                ),
            )
            await journal.mark_submitting(2)
            await journal.mark_unknown(2, f"no answer from {KEY}")
            await journal.mark_submitting(3)
            await journal.mark_unknown(3, SubmissionUnknownError(f"lost {KEY}"))
            entries = await journal.items()
        assert KEY.encode() not in on_disk(path.parent, "run.db")
        assert "[redacted]" in (entries[0].error_message or "")
        failed = entries[1].error
        assert isinstance(failed, PredictionFailedError)
        assert failed.error == "upstream echoed [redacted]"
        assert entries[1].prediction is not None
        assert entries[1].prediction.id == entries[1].prediction_id == "id-[redacted]"

    @pytest.mark.asyncio
    async def test_a_batch_never_writes_its_clients_key(self, tmp_path: Path) -> None:
        """generate_many(journal=path) redacts the client's key: a poll answer
        echoing it in `error` (a 200, which no error redaction sees) stays out."""
        path = tmp_path / "run.db"

        def answer(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                return httpx.Response(200, json={"code": 200, "data": {"id": "p-1"}})
            data = {"id": "p-1", "status": "failed", "error": f"bad key {KEY}"}
            return httpx.Response(200, json={"code": 200, "data": data})

        clock = FakeClock()
        request = GenerationRequest("image", IMAGE, {"prompt": "a fox"})
        async with (
            clock.autojump(),
            AtlasClient(
                KEY,
                base_url="https://api.example",
                transport=httpx.MockTransport(answer),
                clock=clock,
            ) as client,
        ):
            results = [r async for r in client.generate_many([request], journal=path)]
        assert results[0].error is not None
        stored = on_disk(tmp_path, "run.db")
        assert KEY.encode() not in stored
        assert b"[redacted]" in stored


# -- the command line ------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished emulator batch (3 prompts): its folder, journal inside."""
    root = tmp_path_factory.mktemp("cli")
    (root / "prompts.txt").write_text("a red fox\na fox in snow\na fox at night\n")
    code = cli.main(
        ["batch", str(root / "prompts.txt"), *EMU, "--out", str(root / "o")]
    )
    assert code == 0
    return root


CLI_CASES = [
    ("UPDATE items SET prediction = '{not json' WHERE idx = 0", "item 0 "),
    ("UPDATE items SET outputs = '[1, 2]' WHERE idx = 1", "item 1 "),
    ("UPDATE items SET key = 'zzz' WHERE idx = 2", "item 2 "),
    ("UPDATE items SET state = 'exploded' WHERE idx = 0", "item 0 "),
    ("UPDATE items SET attempts = 'x' WHERE idx = 1", "item 1 "),
    ("UPDATE items SET files = '\"abc\"' WHERE idx = 2", "item 2 "),
]


class TestCommandLine:
    @pytest.mark.parametrize(("sql", "named"), CLI_CASES)
    def test_resuming_a_damaged_journal_is_one_line_and_exit_2(
        self,
        finished_run: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        sql: str,
        named: str,
    ) -> None:
        """`atlas-async batch` on a tampered journal: exit 2 and one error line
        naming the item, no traceback."""
        shutil.copytree(finished_run, tmp_path / "run")
        out = tmp_path / "run" / "o"
        journal = out / ".atlas-journal.emulator.sqlite"
        tamper(journal, sql)
        capsys.readouterr()
        code = cli.main(
            ["batch", str(tmp_path / "run" / "prompts.txt"), *EMU, "--out", str(out)]
        )
        err = capsys.readouterr().err
        assert code == 2
        assert "Traceback" not in err
        lines = [x for x in err.splitlines() if x.startswith("atlas-async: error: ")]
        assert len(lines) == 1, err
        assert named in lines[0]
        assert "journal" in lines[0]

    def test_the_installed_command_reports_it_the_same_way(
        self, finished_run: Path, tmp_path: Path
    ) -> None:
        """The console script itself (a subprocess): stderr's last line is the
        error, exit status 2, and no traceback."""
        shutil.copytree(finished_run, tmp_path / "run")
        out = tmp_path / "run" / "o"
        tamper(
            out / ".atlas-journal.emulator.sqlite",
            "UPDATE items SET outputs = '{}' WHERE idx = 0",
        )
        argv = ["batch", str(tmp_path / "run" / "prompts.txt"), *EMU, "--out", str(out)]
        done = subprocess.run(
            [sys.executable, "-m", "atlas_async.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        errors = [x for x in done.stderr.splitlines() if "error:" in x]
        assert len(errors) == 1
        assert "item 0 " in errors[0]
