"""
The batch journal: one SQLite file that remembers every item of a batch, so a
crash is a pause, not a loss, and nothing is paid twice.

Theory of operation
-------------------
Each item walks one state machine (`TRANSITIONS` holds it as data), and every
step is committed (WAL, ``synchronous=FULL``: durable at each commit, even on
power loss) before the caller takes the next one::

    pending ─▶ submitting ─▶ submitted(id) ─▶ completed(prediction) ─▶ saved(files)
                   │  │            └────────▶ failed(error)   ◀──── outputs gone
                   │  └─▶ unknown ─▶ submitted(id) | failed
    reset_to_pending: submitting | unknown | failed ─▶ pending

``completed`` is paid for and its outputs known; ``saved`` is completed with its
outputs downloaded to the files recorded. A completed item can be recorded
again with a fresh snapshot (output URLs expire, and an emulator's die with
it), and one whose outputs are gone for good becomes ``failed``.

Items are found by their content, not their position (`placement`): `begin`
matches each request to its item by `request_key`, adds the new ones, and
renumbers the rest, so a batch can grow, shrink and be reordered.

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
``_wire.convert`` encodes it and the snapshots. An older file is upgraded in
the transaction that takes the lock (`schema`), so no row is lost.

Every row is checked as it is read, since the file is the user's and can be
edited: each column must have its type (text, a count, a finite time, JSON of
the right shape), the state must be one we write and agree with the other
columns (a ``submitted``, ``completed`` or ``saved`` item has an id, the last
two its snapshot, of that same id; only a ``saved`` one has files; a ``failed``
or ``unknown`` one its error; ``pending`` and ``submitting`` ones none of
these), and the key must be the hash of the stored request. Anything else is a
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
from .keys import (
    JournalRequest,
    canonical,
    request_dict,
    request_key,
)
from .placement import Placement, place
from .rows import (
    BUMP,
    FAILURE_COLUMNS,
    NO_ERROR,
    NULL,
    TRANSITIONS,
    ItemState,
    JournalEntry,
    error_columns,
    paths_column,
    read_row,
    snapshot_columns,
)
from .schema import COLUMNS, SCHEMA_VERSION, SELECT, prepare

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "SCHEMA_VERSION",
    "ItemState",
    "Journal",
    "JournalEntry",
    "JournalRequest",
    "Placement",
    "request_key",
]

logger = logging.getLogger("atlas_async.journal")
_T = TypeVar("_T")

_LOCK_TIMEOUT = 1.0  # seconds to wait for another holder before refusing
_TAMPERED = "changed outside atlas_async? move it away or choose another journal path"
_S = ItemState


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
        Record a batch: each request is matched to its item by content (see
        `placement`), new requests become ``pending`` items, and every item
        is renumbered to its request's position (the journal's items no
        request claims follow). Return the batch's items in order, as
        recorded (completed ones too, to replay them).

        Raises:
            ConfigurationError: a request's kind is unknown or a param not JSON.
        """
        rows = [(canonical(request_dict(r)), request_key(r)) for r in requests]
        return await self._run(lambda conn: self._begin_sync(conn, rows))

    async def preview(self, requests: Sequence[JournalRequest]) -> Placement:
        """
        Where `begin` would put these requests, changing nothing: each
        request's item (None for a new one), and the items none claims.

        Raises:
            ConfigurationError: a request's kind is unknown or a param not JSON.
        """
        keys = [request_key(r) for r in requests]
        return await self._run(lambda conn: self._place(conn, keys)[1])

    async def items(
        self, states: Iterable[ItemState] | None = None
    ) -> list[JournalEntry]:
        """Return the items in index order, or only those in ``states``."""
        wanted = None if states is None else {s.value for s in states}

        def query(conn: sqlite3.Connection) -> list[JournalEntry]:
            # fetchall: a cursor left open by a damaged row would keep the lock.
            rows = conn.execute(f"{SELECT} ORDER BY idx").fetchall()
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
        columns = {k: NULL if v is None else v for k, v in window.items()}
        await self._move(index, _S.SUBMITTING, attempts=BUMP, **columns)

    async def extend_send_window(self, index: int, sent_before: float) -> None:
        """A ``submitting`` item is sent again (its first try provably never
        left): the server may receive it until ``sent_before`` now."""
        await self._move(index, _S.SUBMITTING, {_S.SUBMITTING}, sent_before=sent_before)

    async def mark_submitted(self, index: int, prediction_id: str) -> None:
        """``submitting | unknown -> submitted``: the id to attach to from now on."""
        if not prediction_id:
            raise JournalError(f"item {index}: a prediction id is required")
        stored = redact_text(prediction_id, self._secret)
        await self._move(index, _S.SUBMITTED, prediction_id=stored, **NO_ERROR)

    async def mark_completed(
        self, index: int, prediction: Prediction, files: Sequence[Path] = ()
    ) -> None:
        """
        ``submitted -> completed``, with the snapshot and its outputs (``saved``
        when ``files`` are given).

        Record it before downloading, so the paid result is safe; then add the
        paths with `record_files`. A ``completed`` or ``saved`` item takes a
        fresh snapshot of the same prediction the same way (its files are
        forgotten: they are downloaded again).
        """
        columns = snapshot_columns(prediction, self._secret)
        target = _S.SAVED if files else _S.COMPLETED
        await self._move(index, target, files=paths_column(files), **columns)

    async def record_files(self, index: int, files: Sequence[Path]) -> None:
        """``completed | saved -> saved``: record (replace) the downloaded paths."""
        await self._move(
            index, _S.SAVED, {_S.COMPLETED, _S.SAVED}, files=paths_column(files)
        )

    async def mark_failed(
        self,
        index: int,
        error: AtlasError | str,
        message: str = "",
        *,
        prediction: Prediction | None = None,
    ) -> None:
        """
        ``pending | submitting | submitted | unknown -> failed``, and
        ``completed | saved -> failed`` when the outputs are gone for good.

        Args:
            error: the exception (`JournalEntry.error` rebuilds it), or for a
                failure without one its type name, e.g. ``"ServerError"``.
            message: the text, with a type name only (redacted, bounded).
            prediction: the last snapshot; by default a `PredictionError`'s.
        """
        if prediction is None and isinstance(error, PredictionError):
            prediction = error.prediction
        columns = error_columns(error, message, prediction, secret=self._secret)
        columns["files"] = "[]"  # a saved item whose outputs are gone has none
        if prediction is not None:
            columns.update(snapshot_columns(prediction, self._secret))
        await self._move(index, _S.FAILED, **columns)

    async def mark_unknown(self, index: int, error: AtlasError | str) -> None:
        """``submitting -> unknown``, with the error or its text: it may bill."""
        how = ("SubmissionUnknownError", error) if isinstance(error, str) else (error,)
        columns = error_columns(*how, secret=self._secret)
        await self._move(index, _S.UNKNOWN, **columns)

    async def reset_to_pending(self, index: int) -> None:
        """
        ``submitting | unknown | failed -> pending``, so the item is sent again.

        Only for a submit that provably never left, or when the user asked to
        resubmit (``resubmit_unknown=True``): an unknown item may already bill.
        """
        cleared = dict.fromkeys(("prediction_id", "prediction", *FAILURE_COLUMNS), NULL)
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
                self._recovered = prepare(
                    conn,
                    tables,
                    now=self._wall(),
                    refuse=self._not_a_journal,
                    newer=self._newer,
                )
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

    def _newer(self, version: str) -> JournalError:
        return JournalError(
            f"journal {self.path} was written by a newer atlas_async (schema "
            f"{version!r}; this one reads {SCHEMA_VERSION}): upgrade atlas_async"
        )

    def _not_a_journal(self, why: str) -> JournalError:
        return JournalError(
            f"{self.path} is not a usable atlas_async journal ({why}): move it "
            "away or choose another journal path"
        )

    def _place(
        self, conn: sqlite3.Connection, keys: list[str]
    ) -> tuple[list[JournalEntry], Placement]:
        rows = conn.execute(f"{SELECT} ORDER BY idx").fetchall()
        stored = [self._entry(r) for r in rows]
        return stored, place(stored, keys)

    def _begin_sync(
        self, conn: sqlite3.Connection, rows: list[tuple[str, str]]
    ) -> list[JournalEntry]:
        conn.execute("BEGIN IMMEDIATE")
        with conn:  # commit, or roll back on any error
            _, placement = self._place(conn, [key for _, key in rows])
            order = placement.order
            moved = [
                (new, entry.index)
                for new, entry in enumerate(order)
                if entry is not None and entry.index != new
            ]
            if moved:
                # Out of the way first: idx is the primary key.
                conn.execute("UPDATE items SET idx = -1 - idx")
                conn.executemany("UPDATE items SET idx = ? WHERE idx = -1 - ?", moved)
                conn.execute("UPDATE items SET idx = -1 - idx WHERE idx < 0")
            now = self._wall()
            conn.executemany(
                "INSERT INTO items (idx, key, request, state, created_at, "
                "updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
                [
                    (i, key, request, now, now)
                    for i, (request, key) in enumerate(rows)
                    if placement.items[i] is None
                ],
            )
            found = conn.execute(f"{SELECT} WHERE idx < ? ORDER BY idx", (len(rows),))
            entries = [self._entry(r) for r in found.fetchall()]
        keys = [entry.key for entry in entries]
        if keys != [key for _, key in rows]:
            raise JournalError(f"journal {self.path}: its items moved; {_TAMPERED}")
        return entries

    def _get_sync(self, conn: sqlite3.Connection, index: int) -> JournalEntry:
        found = conn.execute(f"{SELECT} WHERE idx = ?", (index,)).fetchone()
        if found is None:
            raise JournalError(f"journal {self.path} has no item {index}")
        return self._entry(found)

    def _entry(self, row: tuple[Any, ...]) -> JournalEntry:
        d = dict(zip(COLUMNS, row, strict=True))
        try:
            return read_row(d)
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
        sources = [
            s.value for s in (TRANSITIONS[target] if allowed is None else allowed)
        ]
        sets = ", ".join(
            f"{c} = {c} + 1" if v is BUMP else f"{c} = ?" for c, v in columns.items()
        )
        values = [None if v is NULL else v for v in columns.values() if v is not BUMP]
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
