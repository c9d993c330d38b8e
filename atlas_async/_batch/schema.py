"""
The journal file's layout, and bringing an older file up to it.

Part of `journal`: the tables, the columns as the journal reads them, and
`prepare`, which runs in the transaction that takes the file's lock, so an
upgrade is committed whole or not at all.

Schema history: 2 added ``error`` (a failure's record), 3 the send window
(``sent_after``, ``sent_before``), 4 the ``saved`` state and items keyed by
their content (the batch's fingerprint is gone: a journal takes added,
removed and reordered lines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._core.errors import JournalError
from .._wire import records as codec
from .keys import canonical
from .rows import error_columns

if TYPE_CHECKING:
    import sqlite3

__all__ = ["COLUMNS", "SCHEMA_VERSION", "SELECT", "prepare"]

SCHEMA_VERSION = 4
FORMAT = "atlas_async.journal"
APPLICATION_ID = 0x41544C53  # "ATLS": lets humans and file(1) spot our files

_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE items (idx INTEGER PRIMARY KEY, key TEXT NOT NULL, "
    "request TEXT NOT NULL, state TEXT NOT NULL, prediction_id TEXT, "
    "prediction TEXT, outputs TEXT NOT NULL DEFAULT '[]', "
    "files TEXT NOT NULL DEFAULT '[]', error_type TEXT, error_message TEXT, "
    "attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, "
    "updated_at REAL NOT NULL, error TEXT, sent_after REAL, sent_before REAL)",
    # error, then sent_after and sent_before: last, as schema 2 and 3 added them
)
COLUMNS = (
    "index", "key", "request", "state", "prediction_id", "prediction", "outputs",
    "files", "error_type", "error_message", "attempts", "created_at", "updated_at",
    "error", "sent_after", "sent_before",
)  # fmt: skip
SELECT = f"SELECT {', '.join(COLUMNS).replace('index', 'idx')} FROM items"
INTERRUPTED = (
    "the previous run stopped while this submit was being sent; it may exist and "
    "bill, so it is not sent again unless asked (resubmit_unknown=True)"
)


def prepare(
    conn: sqlite3.Connection,
    tables: set[str],
    *,
    now: float,
    refuse: Callable[[str], JournalError],
    newer: Callable[[str], JournalError],
) -> tuple[int, ...]:
    """
    Create the tables of a new file, or check and upgrade an existing one;
    turn items left ``submitting`` into ``unknown`` and return their indices.

    ``refuse(why)`` is the error for a file that is not a journal, ``newer``
    the one for a journal of a later schema.
    """
    if not tables:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))],
        )
    elif "meta" not in tables or "items" not in tables:
        raise refuse("a SQLite file, but not a journal")
    meta = dict(conn.execute("SELECT name, value FROM meta"))
    if meta.get("format") != FORMAT:
        raise refuse("a SQLite file, but not a journal")
    version = meta.get("schema_version", "")
    upgrades = {"1": _from_1, "2": _from_2, "3": _from_3}
    if version not in upgrades and version != str(SCHEMA_VERSION):
        raise newer(version)
    while version in upgrades:
        version = upgrades[version](conn)
    conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (version,))
    stuck = conn.execute("SELECT idx FROM items WHERE state = 'submitting'")
    recovered = tuple(r[0] for r in stuck.fetchall())
    error = error_columns("SubmissionUnknownError", INTERRUPTED)
    conn.execute(
        "UPDATE items SET state = 'unknown', error_type = ?, error_message = ?, "
        "error = ?, updated_at = ? WHERE state = 'submitting'",
        (*error.values(), now),
    )
    return recovered


def _from_1(conn: sqlite3.Connection) -> str:
    conn.execute("ALTER TABLE items ADD COLUMN error TEXT")
    failed = conn.execute(
        "SELECT idx, error_type, error_message, prediction_id, prediction "
        "FROM items WHERE error_type IS NOT NULL"
    ).fetchall()
    record = codec.error_record_from_text  # its parameters: the columns above
    records = [(canonical(record(*row[1:])), row[0]) for row in failed]
    conn.executemany("UPDATE items SET error = ? WHERE idx = ?", records)
    return "2"


def _from_2(conn: sqlite3.Connection) -> str:
    # Items sent before the upgrade have no window: they settle as before.
    conn.execute("ALTER TABLE items ADD COLUMN sent_after REAL")
    conn.execute("ALTER TABLE items ADD COLUMN sent_before REAL")
    return "3"


def _from_3(conn: sqlite3.Connection) -> str:
    # A completed item with its files recorded was saved; one without them
    # stays completed, and a resume fetches it afresh and downloads it.
    conn.execute(
        "UPDATE items SET state = 'saved' WHERE state = 'completed' AND files != '[]'"
    )
    # Items are found by their content now, not by the batch's fingerprint.
    conn.execute("DELETE FROM meta WHERE name = 'fingerprint'")
    return "4"
