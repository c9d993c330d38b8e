"""
The batch's side of the journal: each step the driver records, and turning a
recorded failure back into an exception.

`Record` is the journal as the driver uses it: one method per state change, a
no-op when the batch runs without a journal, and shielded from cancellation
once the step matters (an id that arrived, a completion, a failure), so a
cancelled run still commits what it learned. ``mark_submitting`` is not
shielded: a run cancelled before it leaves the item ``pending``, which is
exact.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from .._core.clock import Clock
from .._core.errors import AtlasError
from .._core.models import Prediction
from .journal import Journal, JournalEntry

__all__ = ["Record", "open_journal", "rebuild_error"]


@asynccontextmanager
async def open_journal(
    journal: Journal | str | os.PathLike[str] | None,
    *,
    clock: Clock | None = None,
    secret: str | None = None,
) -> AsyncIterator[Journal | None]:
    """
    Yield ``journal`` ready for use: opened (and closed after) when it is a path
    or a `Journal` not open yet; an open `Journal` is used as is and left open.
    A path becomes a `Journal` on ``clock`` (the client's) that redacts
    ``secret`` (the client's key) from what it stores.
    """
    if journal is None:
        yield None
        return
    owned = not isinstance(journal, Journal) or not journal.is_open
    opened = (
        journal
        if isinstance(journal, Journal)
        else Journal(journal, clock=clock, secret=secret)
    )
    if owned:
        await opened.open()
    try:
        yield opened
    finally:
        if owned:
            with anyio.CancelScope(shield=True):
                await opened.close()


class Record:
    """The journal steps of one batch run; every method is a no-op without one."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal

    async def mark_submitting(
        self,
        index: int,
        *,
        sent_after: float | None = None,
        sent_before: float | None = None,
    ) -> None:
        """Commit ``submitting`` before the POST (not shielded: see the module)."""
        if self.journal is not None:
            await self.journal.mark_submitting(
                index, sent_after=sent_after, sent_before=sent_before
            )

    async def extend_send_window(self, index: int, sent_before: float) -> None:
        """Commit a later end of the send window (a never-sent try sent again)."""
        if self.journal is not None:
            await self.journal.extend_send_window(index, sent_before)

    async def mark_submitted(self, index: int, prediction_id: str) -> None:
        """Commit the id the server gave."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.mark_submitted(index, prediction_id)

    async def mark_completed(self, index: int, prediction: Prediction) -> None:
        """Commit the completed snapshot, before downloading."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.mark_completed(index, prediction)

    async def record_files(self, index: int, files: Sequence[Path]) -> None:
        """Commit the saved paths."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.record_files(index, files)

    async def mark_failed(self, index: int, error: AtlasError) -> None:
        """Commit a failure: the error's record, and its snapshot when it has one."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.mark_failed(index, error)

    async def mark_unknown(self, index: int, error: AtlasError | str) -> None:
        """Commit ``unknown``: sent, and no answer came (the error, or its text)."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.mark_unknown(index, error)

    async def reset_to_pending(self, index: int) -> None:
        """Commit ``pending``: it provably never left, or resubmitting was asked."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.reset_to_pending(index)


def rebuild_error(entry: JournalEntry) -> AtlasError:
    """
    Return the error a ``failed`` entry recorded: the same class, message and
    fields (status code, request id, Retry-After, the snapshot ...), as the
    journal rebuilt it from its record; never parsed back from the text.
    """
    if entry.error is not None:
        return entry.error
    # No record: the row was written by hand (the journal always writes one).
    message = entry.error_message or "failed in an earlier run"
    return AtlasError(message, prediction_id=entry.prediction_id)
