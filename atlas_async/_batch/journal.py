"""
The batch journal: one SQLite file that remembers every item of a batch, so a
crash is a pause, not a loss, and nothing is paid twice.

Theory of operation
-------------------
Each item walks one state machine (`_FROM` holds it as data), and every step is
committed (WAL, ``synchronous=FULL``: durable at each commit, even on power loss)
before the caller takes the next one::

    pending ─▶ submitting ─▶ submitted(id) ─▶ completed(prediction, files)
                   │  │            └────────▶ failed(error)
                   │  └─▶ unknown ─▶ submitted(id) | failed
    reset_to_pending: submitting | unknown | failed ─▶ pending

``submitting`` is committed *before* the POST leaves and ``submitted`` as soon as
the id arrives, so an item found in ``submitting`` when the file is opened was
perhaps sent and never answered: it may exist and bill. `Journal.open` turns it
into ``unknown`` and lists it in `Journal.recovered_unknown`; only an explicit
`Journal.reset_to_pending` (``resubmit_unknown=True``) sends it again.

The connection holds SQLite's exclusive lock for its whole life, so a second
process on the same file is refused instead of submitting the same items again.
That lock is also what makes the recovery sound: while we hold it, nobody can be
between a ``submitting`` commit and its answer.

A failure is kept as its class name and text (for people) and as a record that
rebuilds it (``error``: class, message, status code, request id, Retry-After...).
``_wire.convert`` encodes it and the snapshots. Schema 2 added ``error``: `open`
fills it for a schema 1 file in the transaction that takes the lock, so no row
is lost.

Every row is checked as it is read, since the file is the user's and can be
edited: each column must have its type (text, a count, a finite time, JSON of
the right shape), the state must be one we write and agree with the other
columns (a ``submitted`` or ``completed`` item has an id, a ``completed`` one
its snapshot, of that same id; a ``failed`` or ``unknown`` one its error;
``pending`` and ``submitting`` ones none of these), and the key must be the
hash of the stored request. `begin` also checks that the rows are exactly the
batch's items, each holding the request passed for it. Anything else is a
`JournalError` naming the item and its key, never a ``ValueError`` or
``KeyError`` from deep inside.

sqlite3 blocks, so every call runs in a worker thread (``anyio.to_thread``) on
one connection: a capacity limiter of one queues callers on the event loop, and
a threading lock guards the connection itself (`open` imports sqlite3: importing
the package does not). Rows are stamped with the `Clock`'s wall time.

The key never reaches the file: every text written from what the server said
(error messages and types, request ids, the error record, the snapshot, the
prediction id) goes through the one redaction, ``redact_text(text, secret)``,
with the ``secret`` the journal was given (the client's key), which also
removes any quoted ``Authorization``/``Bearer`` value. Outputs are stored as
they are: they are the generated content (a transcript may say "bearer"),
and a resumed batch downloads from them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .._core.clock import Clock
from .._core.errors import AtlasError, JournalError, PredictionError
from .._core.models import Prediction
from .._core.safety import redact_text
from .._net.clock import wall_time
from .._wire import convert as codec
from .keys import (
    JournalRequest,
    batch_fingerprint,
    canonical,
    request_dict,
    request_key,
)
from .rows import (
    _BUMP,
    _FAILURE,
    _FROM,
    _NO_ERROR,
    _NULL,
    _S,
    ItemState,
    JournalEntry,
    _error_columns,
    _paths,
    _read_row,
    _snapshot_columns,
)

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "ItemState",
    "Journal",
    "JournalEntry",
    "JournalRequest",
    "batch_fingerprint",
    "request_key",
]

logger = logging.getLogger("atlas_async.journal")
_T = TypeVar("_T")

SCHEMA_VERSION = 3
_FORMAT = "atlas_async.journal"
_APPLICATION_ID = 0x41544C53  # "ATLS": lets humans and file(1) spot our files
_LOCK_TIMEOUT = 1.0  # seconds to wait for another holder before refusing


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
_COLUMNS = (
    "index", "key", "request", "state", "prediction_id", "prediction", "outputs",
    "files", "error_type", "error_message", "attempts", "created_at", "updated_at",
    "error", "sent_after", "sent_before",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS).replace('index', 'idx')} FROM items"
_TAMPERED = "changed outside atlas_async? move it away or choose another journal path"
_INTERRUPTED = (
    "the previous run stopped while this submit was being sent; it may exist and "
    "bill, so it is not sent again unless asked (resubmit_unknown=True)"
)


class Journal:
    """
    A durable record of one batch in the SQLite file at ``path``.

    Example::

        async with Journal("run.db") as journal:
            entries = await journal.begin(requests)  # new batch, or resume
            await journal.mark_submitting(0)          # committed before the POST

    Args:
        path: the file; it and its parent directories are created if missing.
        clock: whose ``wall()`` stamps the rows (the client's, or a test's
            ``FakeClock``); by default the system's wall time.
        secret: the API key, removed from every text written from server data
            (``generate_many`` passes its client's key when given a path).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        secret: str | None = None,
    ) -> None:
        self.path = Path(path)
        self._wall: Callable[[], float] = wall_time if clock is None else clock.wall
        self._secret = secret or None
        self._conn: sqlite3.Connection | None = None
        self._db_errors: tuple[type[Exception], ...] = ()  # sqlite3's, once open
        self._guard = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None
        self._recovered: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, open={self.is_open})"

    @property
    def is_open(self) -> bool:
        """True between `open` and `close`."""
        return self._conn is not None

    @property
    def recovered_unknown(self) -> tuple[int, ...]:
        """Indices `open` found in ``submitting`` and made ``unknown``."""
        return self._recovered

    async def __aenter__(self) -> Journal:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """
        Open (or create) the file, take its lock, upgrade it, recover submits.

        Raises:
            JournalError: the file is corrupt, not a journal, from a newer
                version, in use by another process, or cannot be created.
        """
        if self._conn is not None:
            raise JournalError(f"journal {self.path} is already open")
        self._limiter = anyio.CapacityLimiter(1)
        self._conn = await self._thread(self._open_sync)

    async def close(self) -> None:
        """Close the file and release its lock; closing twice is harmless."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._thread(conn.close)

    async def begin(self, requests: Sequence[JournalRequest]) -> list[JournalEntry]:
        """
        Record a new batch, or check that the file holds this same batch, and
        return every item as recorded (completed ones too, to replay them).

        Raises:
            JournalError: the file holds another batch (other requests or order).
            ConfigurationError: a request's kind is unknown or a param not JSON.
        """
        rows = [(canonical(request_dict(r)), request_key(r)) for r in requests]
        fingerprint = batch_fingerprint(key for _, key in rows)
        return await self._run(lambda conn: self._begin_sync(conn, fingerprint, rows))

    async def items(
        self, states: Iterable[ItemState] | None = None
    ) -> list[JournalEntry]:
        """Return the items in index order, or only those in ``states``."""
        wanted = None if states is None else {s.value for s in states}

        def query(conn: sqlite3.Connection) -> list[JournalEntry]:
            # fetchall: a cursor left open by a damaged row would keep the lock.
            rows = conn.execute(f"{_SELECT} ORDER BY idx").fetchall()
            return [self._entry(r) for r in rows if wanted is None or r[3] in wanted]

        return await self._run(query)

    async def get(self, index: int) -> JournalEntry:
        """Return one item; `JournalError` if the batch has no such index."""
        return await self._run(lambda conn: self._get_sync(conn, index))

    async def summary(self) -> dict[ItemState, int]:
        """Return the number of items in each state (every state is a key)."""

        def query(conn: sqlite3.Connection) -> dict[ItemState, int]:
            found = dict(conn.execute("SELECT state, COUNT(*) FROM items GROUP BY 1"))
            counts = {state: found.pop(state.value, 0) for state in ItemState}
            if found:
                unknown = f"unknown states {sorted(found)}"
                raise JournalError(f"journal {self.path}: {unknown}: {_TAMPERED}")
            return counts

        return await self._run(query)

    async def mark_submitting(
        self,
        index: int,
        *,
        sent_after: float | None = None,
        sent_before: float | None = None,
    ) -> None:
        """
        ``pending -> submitting``: await it *before* the POST is sent, with
        its send window when known (see `JournalEntry`).
        """
        window = {"sent_after": sent_after, "sent_before": sent_before}
        columns = {k: _NULL if v is None else v for k, v in window.items()}
        await self._move(index, _S.SUBMITTING, attempts=_BUMP, **columns)

    async def extend_send_window(self, index: int, sent_before: float) -> None:
        """A ``submitting`` item is sent again (its first try provably never
        left): the server may receive it until ``sent_before`` now."""
        await self._move(index, _S.SUBMITTING, {_S.SUBMITTING}, sent_before=sent_before)

    async def mark_submitted(self, index: int, prediction_id: str) -> None:
        """``submitting | unknown -> submitted``: the id to attach to from now on."""
        if not prediction_id:
            raise JournalError(f"item {index}: a prediction id is required")
        stored = redact_text(prediction_id, self._secret)
        await self._move(index, _S.SUBMITTED, prediction_id=stored, **_NO_ERROR)

    async def mark_completed(
        self, index: int, prediction: Prediction, files: Sequence[Path] = ()
    ) -> None:
        """
        ``submitted -> completed``, with the snapshot and its outputs.

        Record it before downloading, so the paid result is safe; then add the
        paths with `record_files`.
        """
        columns = _snapshot_columns(prediction, self._secret)
        await self._move(index, _S.COMPLETED, files=_paths(files), **columns)

    async def record_files(self, index: int, files: Sequence[Path]) -> None:
        """Record (replace) the downloaded paths of a ``completed`` item."""
        await self._move(index, _S.COMPLETED, {_S.COMPLETED}, files=_paths(files))

    async def mark_failed(
        self,
        index: int,
        error: AtlasError | str,
        message: str = "",
        *,
        prediction: Prediction | None = None,
    ) -> None:
        """
        ``pending | submitting | submitted | unknown -> failed``.

        Args:
            error: the exception (`JournalEntry.error` rebuilds it), or for a
                failure without one its type name, e.g. ``"ServerError"``.
            message: the text, with a type name only (redacted, bounded).
            prediction: the last snapshot; by default a `PredictionError`'s.
        """
        if prediction is None and isinstance(error, PredictionError):
            prediction = error.prediction
        columns = _error_columns(error, message, prediction, secret=self._secret)
        if prediction is not None:
            columns.update(_snapshot_columns(prediction, self._secret))
        await self._move(index, _S.FAILED, **columns)

    async def mark_unknown(self, index: int, error: AtlasError | str) -> None:
        """``submitting -> unknown``, with the error or its text: it may bill."""
        how = ("SubmissionUnknownError", error) if isinstance(error, str) else (error,)
        columns = _error_columns(*how, secret=self._secret)
        await self._move(index, _S.UNKNOWN, **columns)

    async def reset_to_pending(self, index: int) -> None:
        """
        ``submitting | unknown | failed -> pending``, so the item is sent again.

        Only for a submit that provably never left, or when the user asked to
        resubmit (``resubmit_unknown=True``): an unknown item may already bill.
        """
        cleared = dict.fromkeys(("prediction_id", "prediction", *_FAILURE), _NULL)
        await self._move(index, _S.PENDING, outputs="[]", files="[]", **cleared)

    # -- the blocking side, in the worker thread ----------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        if conn is None:
            raise JournalError(
                f"journal {self.path} is not open: use `async with Journal(...)`"
            )
        return await self._thread(lambda: fn(conn))

    async def _thread(self, fn: Callable[[], _T]) -> _T:
        def call() -> _T:
            with self._guard:
                try:
                    return fn()
                except self._db_errors as exc:
                    raise JournalError(f"journal {self.path}: {exc}") from exc

        # Never abandoned on cancel: a commit under way completes before we unwind.
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    def _open_sync(self) -> sqlite3.Connection:
        import sqlite3  # here, not at the top: `import atlas_async` stays light

        self._db_errors = (sqlite3.Error,)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=_LOCK_TIMEOUT,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # one connection, serialised by our lock
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        try:
            try:
                # Exclusive before WAL: no shared-memory index, and the lock stays.
                conn.execute("PRAGMA locking_mode = EXCLUSIVE")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("BEGIN IMMEDIATE")  # take the lock now
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            except sqlite3.DatabaseError as exc:
                if "locked" in str(exc):
                    raise JournalError(
                        f"journal {self.path} is in use by another process (or "
                        "another Journal object): one run per journal at a time"
                    ) from exc
                raise self._not_a_journal(str(exc)) from exc
            with conn:  # commits the BEGIN IMMEDIATE above, or rolls it back
                self._prepare(conn, tables)
        except BaseException:
            conn.close()
            raise
        if self._recovered:
            logger.warning(
                "journal %s: interrupted submits are now 'unknown' (they may exist "
                "and bill): items %s",
                self.path,
                list(self._recovered),
            )
        return conn

    def _not_a_journal(self, why: str) -> JournalError:
        return JournalError(
            f"{self.path} is not a usable atlas_async journal ({why}): move it "
            "away or choose another journal path"
        )

    def _prepare(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        if not tables:
            conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("format", _FORMAT), ("schema_version", str(SCHEMA_VERSION))],
            )
        elif "meta" not in tables or "items" not in tables:
            raise self._not_a_journal("a SQLite file, but not a journal")
        meta = dict(conn.execute("SELECT name, value FROM meta"))
        if meta.get("format") != _FORMAT:
            raise self._not_a_journal("a SQLite file, but not a journal")
        version = meta.get("schema_version", "")
        if version == "1":
            self._upgrade_from_1(conn)
            version = "2"
        if version == "2":
            self._upgrade_from_2(conn)
        elif version != str(SCHEMA_VERSION):
            raise JournalError(
                f"journal {self.path} was written by a newer atlas_async (schema "
                f"{version!r}; this one reads {SCHEMA_VERSION}): upgrade atlas_async"
            )
        stuck = conn.execute("SELECT idx FROM items WHERE state = 'submitting'")
        self._recovered = tuple(r[0] for r in stuck.fetchall())
        error = _error_columns("SubmissionUnknownError", _INTERRUPTED)
        conn.execute(
            "UPDATE items SET state = 'unknown', error_type = ?, error_message = ?, "
            "error = ?, updated_at = ? WHERE state = 'submitting'",
            (*error.values(), self._wall()),
        )

    def _upgrade_from_1(self, conn: sqlite3.Connection) -> None:
        # In the transaction `_open_sync` began: all of it is committed, or none.
        conn.execute("ALTER TABLE items ADD COLUMN error TEXT")
        failed = conn.execute(
            "SELECT idx, error_type, error_message, prediction_id, prediction "
            "FROM items WHERE error_type IS NOT NULL"
        ).fetchall()
        record = codec.error_record_from_text  # its parameters: the columns above
        records = [(canonical(record(*row[1:])), row[0]) for row in failed]
        conn.executemany("UPDATE items SET error = ? WHERE idx = ?", records)
        conn.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")

    def _upgrade_from_2(self, conn: sqlite3.Connection) -> None:
        # Items sent before the upgrade have no window: they settle as before.
        conn.execute("ALTER TABLE items ADD COLUMN sent_after REAL")
        conn.execute("ALTER TABLE items ADD COLUMN sent_before REAL")
        conn.execute("UPDATE meta SET value = '3' WHERE name = 'schema_version'")

    def _begin_sync(
        self, conn: sqlite3.Connection, fingerprint: str, rows: list[tuple[str, str]]
    ) -> list[JournalEntry]:
        conn.execute("BEGIN IMMEDIATE")
        with conn:  # commit, or roll back on any error
            found = conn.execute("SELECT value FROM meta WHERE name = 'fingerprint'")
            stored = found.fetchone()
            if stored is not None and stored[0] != fingerprint:
                raise JournalError(
                    f"journal {self.path} belongs to another batch (other requests "
                    "or another order): pass the same requests to resume it, or use "
                    "a new journal path for this batch"
                )
            if stored is None:
                now = self._wall()
                conn.executemany(
                    "INSERT INTO items (idx, key, request, state, created_at, "
                    "updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
                    [(i, key, req, now, now) for i, (req, key) in enumerate(rows)],
                )
                conn.execute(
                    "INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,)
                )
        stored_rows = conn.execute(f"{_SELECT} ORDER BY idx").fetchall()
        entries = [self._entry(r) for r in stored_rows]
        self._check_items(entries, [key for _, key in rows])
        return entries

    def _check_items(self, entries: list[JournalEntry], keys: list[str]) -> None:
        # The fingerprint says which batch this is; the rows must still be its items.
        found = [e.index for e in entries]
        if found != list(range(len(keys))):
            extra = sorted(set(found) - set(range(len(keys))))
            missing = sorted(set(range(len(keys))) - set(found))
            raise JournalError(
                f"journal {self.path}: the items are not the batch's (missing "
                f"{missing[:10]}, unexpected {extra[:10]}); {_TAMPERED}"
            )
        for entry, key in zip(entries, keys, strict=True):
            if entry.key != key:
                raise JournalError(
                    f"journal {self.path}: item {entry.index} (key "
                    f"{entry.key[:12]}) holds another request than item "
                    f"{entry.index} of this batch (key {key[:12]}); {_TAMPERED}"
                )

    def _get_sync(self, conn: sqlite3.Connection, index: int) -> JournalEntry:
        found = conn.execute(f"{_SELECT} WHERE idx = ?", (index,)).fetchone()
        if found is None:
            raise JournalError(f"journal {self.path} has no item {index}")
        return self._entry(found)

    def _entry(self, row: tuple[Any, ...]) -> JournalEntry:
        d = dict(zip(_COLUMNS, row, strict=True))
        try:
            return _read_row(d)
        except (ValueError, TypeError, KeyError) as exc:
            why = f"{exc} is missing" if isinstance(exc, KeyError) else str(exc)
            key = d["key"]
            named = f", key {key[:12]}" if isinstance(key, str) and key else ""
            raise JournalError(
                f"journal {self.path}: item {d['index']} cannot be read ({why}"
                f"{named}); {_TAMPERED}"
            ) from None

    async def _move(
        self,
        index: int,
        target: ItemState,
        allowed: Iterable[ItemState] | None = None,
        /,
        **columns: object,
    ) -> None:
        sources = [s.value for s in (_FROM[target] if allowed is None else allowed)]
        sets = ", ".join(
            f"{c} = {c} + 1" if v is _BUMP else f"{c} = ?" for c, v in columns.items()
        )
        values = [None if v is _NULL else v for v in columns.values() if v is not _BUMP]
        sql = (
            f"UPDATE items SET state = ?, updated_at = ?, {sets} WHERE idx = ? "
            f"AND state IN ({', '.join('?' * len(sources))})"
        )

        def update(conn: sqlite3.Connection) -> None:
            # One conditional UPDATE, committed on return: check and change are atomic.
            args = [target.value, self._wall(), *values, index, *sources]
            if conn.execute(sql, args).rowcount == 0:
                state = self._get_sync(conn, index).state.value
                raise JournalError(
                    f"journal {self.path}: item {index} is {state}, so it cannot "
                    f"become {target.value}"
                )

        await self._run(update)
