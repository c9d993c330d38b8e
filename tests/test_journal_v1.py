"""A journal written by schema 1 opens, is upgraded in place, and resumes.

The v1 file is made here the way the old code made it: its DDL and its rows are
copied below as literals (errors as ``str(error)`` text, snapshots as the old
hand-written JSON), not produced by the current code.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from atlas_async import (
    AtlasClient,
    GenerationRequest,
    InvalidRequestError,
    ItemState,
    Journal,
    JournalError,
    Kind,
    NotFoundError,
    Prediction,
    PredictionFailedError,
    PredictionStatus,
    SubmissionUnknownError,
)
from atlas_async.emulator import Emulator, EmulatorConfig
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

MODEL = "google/nano-banana-2/text-to-image"

# The schema 1 DDL, exactly as atlas_async 0.1 created it.
V1_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE items (idx INTEGER PRIMARY KEY, key TEXT NOT NULL, "
    "request TEXT NOT NULL, state TEXT NOT NULL, prediction_id TEXT, "
    "prediction TEXT, outputs TEXT NOT NULL DEFAULT '[]', "
    "files TEXT NOT NULL DEFAULT '[]', error_type TEXT, error_message TEXT, "
    "attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, "
    "updated_at REAL NOT NULL)",
)
V1_COLUMNS = (
    "idx, key, request, state, prediction_id, prediction, outputs, files, "
    "error_type, error_message, attempts, created_at, updated_at"
)
INTERRUPTED = (
    "the previous run stopped while this submit was being sent; it may exist and "
    "bill, so it is not sent again unless asked (resubmit_unknown=True)"
)

# (state, prediction_id, prediction, outputs, files, error_type, error_message,
#  attempts), as the old code wrote each state.
V1_ROWS: list[tuple[Any, ...]] = [
    (
        "completed",
        "p-0",
        '{"created_at":"2026-01-02T03:04:05+00:00","error":null,"error_code":null,'
        '"has_nsfw_contents":[false],"id":"p-0","metrics":{"predict_time":4.5},'
        '"model":"google/nano-banana-2/text-to-image","status":"completed",'
        '"status_raw":"succeeded","urls":{"get":"https://api.example/p-0"}}',
        '["https://cdn.example/p-0.png"]',
        '["out/00000-p-0-0.png"]',
        None,
        None,
        1,
    ),
    (
        "failed",
        None,
        None,
        "[]",
        "[]",
        "InvalidRequestError",
        "400: size 720x1280 is not supported (request id r-1)",
        1,
    ),
    (
        "failed",
        "p-2",
        '{"created_at":null,"error":"content policy","error_code":1039,'
        '"has_nsfw_contents":null,"id":"p-2","metrics":{},"model":null,'
        '"status":"failed","status_raw":"failed","urls":{}}',
        "[]",
        "[]",
        "PredictionFailedError",
        "prediction p-2 failed: content policy",
        1,
    ),
    ("unknown", None, None, "[]", "[]", "SubmissionUnknownError", INTERRUPTED, 1),
    ("submitted", "p-4", None, "[]", "[]", None, None, 1),
    ("pending", None, None, "[]", "[]", None, None, 0),
    ("submitting", None, None, "[]", "[]", None, None, 1),
    (
        "failed",
        "p-7",
        None,
        "[]",
        "[]",
        "NotFoundError",
        "404: prediction not found (prediction p-7)",
        1,
    ),
    ("failed", None, None, "[]", "[]", "EmulatorStopped", "the emulator stopped", 1),
]
REQUESTS = [
    GenerationRequest(kind=Kind.IMAGE, model=MODEL, params={"prompt": f"a fox {i}"})
    for i in range(len(V1_ROWS))
]


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def write_v1(path: Path, rows: list[tuple[Any, ...]]) -> None:
    """Write a schema 1 journal of ``rows`` as the old code did, WAL included."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("PRAGMA application_id = 1096043603")
    for statement in V1_SCHEMA:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("format", "atlas_async.journal"), ("schema_version", "1")],
    )
    keys = []
    for index, row in enumerate(rows):
        request = canonical(
            {"kind": "image", "model": MODEL, "params": {"prompt": f"a fox {index}"}}
        )
        keys.append(hashlib.sha256(request.encode()).hexdigest())
        conn.execute(
            f"INSERT INTO items ({V1_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?)",
            (index, keys[-1], request, *row, 1_000.0, 1_000.0 + index),
        )
    fingerprint = canonical(["atlas-batch-v1", keys])
    conn.execute(
        "INSERT INTO meta VALUES ('fingerprint', ?)",
        (hashlib.sha256(fingerprint.encode()).hexdigest(),),
    )
    conn.execute("COMMIT")
    conn.close()


def read(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    path = tmp_path / "v1.db"
    write_v1(path, V1_ROWS)
    return path


async def test_a_v1_journal_is_upgraded_in_place_and_no_row_is_lost(
    v1: Path,
) -> None:
    """Schema 1 -> 4 on open: every row kept as it was, the error column added,
    a completed item with its files recorded now ``saved``."""
    before = read(v1, f"SELECT {V1_COLUMNS} FROM items ORDER BY idx")
    async with Journal(v1, clock=FakeClock(wall=5_000.0)) as journal:
        assert journal.recovered_unknown == (6,)  # v1's crash recovery still runs
        entries = await journal.begin(REQUESTS)  # same batch: the keys still match
    assert [e.state.value for e in entries] == [
        "saved", "failed", "failed", "unknown", "submitted", "pending",
        "unknown", "failed", "failed",
    ]  # fmt: skip
    after = read(v1, f"SELECT {V1_COLUMNS} FROM items ORDER BY idx")
    assert len(after) == len(before) == len(V1_ROWS)
    kept = [r for r in before if r[0] not in (0, 6)]
    assert [r for r in after if r[0] not in (0, 6)] == kept
    assert after[0][3] == "saved"
    assert after[0][:3] == before[0][:3]
    assert after[6][3] == "unknown"
    assert after[6][-1] == 5_000.0  # stamped by the journal's clock
    assert dict(read(v1, "SELECT name, value FROM meta"))["schema_version"] == "4"
    columns = [c[1] for c in read(v1, "PRAGMA table_info(items)")]
    assert columns[-3:] == ["error", "sent_after", "sent_before"]


async def test_v1_rows_are_read_as_before(v1: Path) -> None:
    """Snapshots, outputs, files and ids of a v1 file come back unchanged."""
    async with Journal(v1) as journal:
        entries = await journal.begin(REQUESTS)
    assert entries[0].prediction == Prediction(
        id="p-0",
        status=PredictionStatus.COMPLETED,
        status_raw="succeeded",
        model=MODEL,
        outputs=("https://cdn.example/p-0.png",),
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        has_nsfw_contents=(False,),
        urls={"get": "https://api.example/p-0"},
        metrics={"predict_time": 4.5},
    )
    assert entries[0].files == (Path("out/00000-p-0-0.png"),)
    assert entries[4].prediction_id == "p-4"
    assert entries[1].error_message == V1_ROWS[1][6]


async def test_v1_failures_come_back_as_their_classes_with_their_fields(
    v1: Path,
) -> None:
    """The v1 type name and text become the error's class, code and snapshot."""
    async with Journal(v1) as journal:
        entries = await journal.begin(REQUESTS)
    refused = entries[1].error
    assert isinstance(refused, InvalidRequestError)
    assert refused.status_code == 400
    assert str(refused) == "400: size 720x1280 is not supported (request id r-1)"
    moderated = entries[2].error
    assert isinstance(moderated, PredictionFailedError)
    assert (moderated.prediction_id, moderated.error, moderated.error_code) == (
        "p-2",
        "content policy",
        1039,
    )
    assert moderated.status is PredictionStatus.FAILED
    assert moderated.prediction == entries[2].prediction
    assert isinstance(entries[3].error, SubmissionUnknownError)
    assert isinstance(entries[6].error, SubmissionUnknownError)  # recovered now
    missing = entries[7].error
    assert isinstance(missing, NotFoundError)
    assert (missing.status_code, missing.prediction_id) == (404, "p-7")
    label = entries[8].error  # a name outside the tree: a plain AtlasError
    assert type(label).__name__ == "AtlasError"
    assert (entries[8].error_type, str(label)) == (
        "EmulatorStopped",
        "the emulator stopped",
    )


async def test_an_upgraded_journal_keeps_working_and_is_upgraded_once(
    v1: Path,
) -> None:
    """After the upgrade the file takes new steps and reopens as schema 2."""
    async with Journal(v1) as journal:
        await journal.begin(REQUESTS)
        await journal.mark_submitting(5)
        await journal.mark_submitted(5, "p-5")
        await journal.reset_to_pending(1)
    async with Journal(v1) as journal:
        entries = await journal.begin(REQUESTS)
        assert journal.recovered_unknown == ()
    assert (entries[5].state, entries[5].prediction_id) == (ItemState.SUBMITTED, "p-5")
    assert (entries[1].state, entries[1].error) == (ItemState.PENDING, None)
    assert isinstance(entries[7].error, NotFoundError)


async def test_a_failed_upgrade_leaves_the_v1_file_untouched(v1: Path) -> None:
    """The upgrade is one transaction: if any part fails, nothing of it is kept."""
    before = read(v1, f"SELECT {V1_COLUMNS} FROM items ORDER BY idx")
    conn = sqlite3.connect(v1)
    with conn:  # the upgrade's last step, the version bump, will fail
        conn.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON meta "
            "BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END"
        )
    conn.close()
    with pytest.raises(JournalError, match="the disk is on fire"):
        await Journal(v1).open()
    assert read(v1, f"SELECT {V1_COLUMNS} FROM items ORDER BY idx") == before
    assert dict(read(v1, "SELECT name, value FROM meta"))["schema_version"] == "1"
    assert "error" not in [c[1] for c in read(v1, "PRAGMA table_info(items)")]
    conn = sqlite3.connect(v1)
    with conn:
        conn.execute("DROP TRIGGER refuse")
    conn.close()
    async with Journal(v1) as journal:  # the next open upgrades it
        assert len(await journal.begin(REQUESTS)) == len(V1_ROWS)


async def test_a_batch_resumed_from_a_v1_journal_replays_without_a_request(
    tmp_path: Path,
) -> None:
    """generate_many on a v1 journal yields its results and errors, sends nothing."""
    path = tmp_path / "v1.db"
    write_v1(path, V1_ROWS[:2])  # one completed (files saved), one refused
    clock = FakeClock()
    emulator = Emulator(EmulatorConfig(seed=3), clock=clock.now, sleep=clock.sleep)
    async with (
        clock.autojump(),
        AtlasClient(
            "test-key",
            base_url=emulator.base_url,
            transport=emulator.transport,
            clock=clock,
            rng=random.Random(0),
        ) as client,
    ):
        results = {
            r.index: r async for r in client.generate_many(REQUESTS[:2], journal=path)
        }
    assert emulator.stats.snapshot().requests_by_endpoint == {}
    assert results[0].ok
    assert results[0].resumed
    assert results[0].prediction is not None
    assert results[0].prediction.outputs == ("https://cdn.example/p-0.png",)
    error = results[1].error
    assert isinstance(error, InvalidRequestError)
    assert results[1].resumed
    assert error.status_code == 400
