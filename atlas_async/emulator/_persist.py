"""
The emulator's state file: predictions and uploads in SQLite, so an emulator
started again with the same file finds what the last one made.

Theory of operation
-------------------
A prediction is decided entirely when it is created (``_state``), so keeping
one means writing one row, once, at creation: what it was asked, how and when
it ends, what it costs. Every later answer (its status, outputs, files, the
balance it moved) is computed from that row again. A row holds the record as
JSON with its times in unix seconds; loading turns them back into the new
run's clock seconds, so a prediction that was due at 12:00:05 is due at
12:00:05 whatever the new clock reads. Balances are not stored at all: an
account is its start plus what its predictions cost, replayed at load.

Uploads are one row each (name, client file name, type, size); their bytes are
the files in ``<state>.files/``. A row is written only after its file is in
place, and a file whose row is missing is not served.

Each write is one SQLite transaction, so the file is never half-written: a
killed emulator leaves every prediction it had answered, and nothing torn.
The journal is WAL with ``synchronous=NORMAL``: commits survive the process
dying (not the machine losing power), at a small cost per submit.

Each run increments ``runs`` in the ``meta`` table; a run after the first
seeds its id stream with the run number too, so it does not draw the ids of
the run before.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "StateFile"]

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS predictions ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS uploads ("
    " name TEXT PRIMARY KEY, filename TEXT NOT NULL, content_type TEXT NOT NULL,"
    " size INTEGER NOT NULL)",
)


class StateFile:
    """
    One emulator's state file, open.

    Args:
        path: the SQLite file (created with its tables if missing).

    Raises:
        ValueError: if the file holds state of a newer, unknown layout.
        sqlite3.DatabaseError: if it is not an SQLite file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # The emulator may be built in one thread and serve from another; it
        # only ever uses the connection from one at a time.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db = db
        self._closer = weakref.finalize(self, db.close)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():
                for statement in _SCHEMA:
                    db.execute(statement)
                version = self._meta("version")
                if version is not None and int(version) > SCHEMA_VERSION:
                    raise ValueError(
                        f"{path} holds emulator state of a newer layout"
                        f" (version {version}); this emulator reads {SCHEMA_VERSION}"
                    )
                self._set_meta("version", str(SCHEMA_VERSION))
                self.run = int(self._meta("runs") or 0) + 1
                self._set_meta("runs", str(self.run))
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def predictions(self) -> list[dict[str, Any]]:
        """Every stored prediction, oldest first."""
        rows = self._db.execute("SELECT data FROM predictions ORDER BY seq")
        return [json.loads(data) for (data,) in rows]

    def uploads(self) -> list[tuple[str, str, str, int]]:
        """Every stored upload: (name, filename, content type, size)."""
        rows = self._db.execute(
            "SELECT name, filename, content_type, size FROM uploads ORDER BY name"
        )
        return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]

    def add_prediction(self, prediction_id: str, data: dict[str, Any]) -> None:
        """Keep one prediction (one transaction)."""
        self._db.execute(
            "INSERT OR REPLACE INTO predictions (id, data) VALUES (?, ?)",
            (prediction_id, json.dumps(data, separators=(",", ":"))),
        )

    def add_upload(
        self, name: str, filename: str, content_type: str, size: int
    ) -> None:
        """Keep one upload whose file is already in place (one transaction)."""
        self._db.execute(
            "INSERT OR REPLACE INTO uploads (name, filename, content_type, size)"
            " VALUES (?, ?, ?, ?)",
            (name, filename, content_type, size),
        )

    def clear(self) -> None:
        """Forget every prediction and upload (one transaction)."""
        with self._transaction():
            self._db.execute("DELETE FROM predictions")
            self._db.execute("DELETE FROM uploads")

    def close(self) -> None:
        """Close the file (again is harmless)."""
        self._closer()
