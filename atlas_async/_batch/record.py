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
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from .._core import errors as errors
from .._core.errors import AtlasError, PredictionError, PredictionFailedError
from .._core.models import Prediction
from .journal import Journal, JournalEntry

__all__ = ["Record", "open_journal", "rebuild_error"]


@asynccontextmanager
async def open_journal(
    journal: Journal | str | os.PathLike[str] | None,
) -> AsyncIterator[Journal | None]:
    """
    Yield ``journal`` ready for use: opened (and closed after) when it is a path
    or a `Journal` not open yet; an open `Journal` is used as is and left open.
    """
    if journal is None:
        yield None
        return
    owned = not isinstance(journal, Journal) or journal._conn is None
    opened = journal if isinstance(journal, Journal) else Journal(journal)
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

    async def mark_submitting(self, index: int) -> None:
        """Commit ``submitting`` before the POST (not shielded: see the module)."""
        if self.journal is not None:
            await self.journal.mark_submitting(index)

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
        """Commit a failure, with the last snapshot when the error has one."""
        if self.journal is not None:
            prediction = (
                error.prediction if isinstance(error, PredictionError) else None
            )
            with anyio.CancelScope(shield=True):
                await self.journal.mark_failed(
                    index, type(error).__name__, str(error), prediction=prediction
                )

    async def mark_unknown(self, index: int, message: str) -> None:
        """Commit ``unknown``: sent, and no answer came."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.mark_unknown(index, message)

    async def reset_to_pending(self, index: int) -> None:
        """Commit ``pending``: it provably never left, or resubmitting was asked."""
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.journal.reset_to_pending(index)


# Errors whose constructor takes just a message (other keywords are optional).
_SIMPLE: dict[str, type[AtlasError]] = {
    name: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type)
    and issubclass(cls, AtlasError)
    and not issubclass(cls, PredictionError)
}
_PREDICTION: dict[str, type[PredictionError]] = {
    cls.__name__: cls
    for cls in (
        errors.PredictionFailedError,
        errors.PredictionTimeoutError,
        errors.PredictionCancelledError,
    )
}
_STATUS_PREFIX = re.compile(r"(\d{3}): (.*)", re.DOTALL)


def rebuild_error(entry: JournalEntry) -> AtlasError:
    """
    Rebuild the error a ``failed`` entry recorded: the same type when known, the
    same text, the status code of an `APIError`, the snapshot's details for a
    `PredictionFailedError`.
    """
    message = entry.error_message or "failed in an earlier run"
    name = entry.error_type or ""
    prediction = entry.prediction
    pid = entry.prediction_id
    if name in _PREDICTION:
        if name == "PredictionFailedError" and prediction is not None:
            return PredictionFailedError(
                message,
                prediction_id=pid or prediction.id,
                prediction=prediction,
                error=prediction.error,
                error_code=prediction.error_code,
                status=prediction.status,
            )
        return _PREDICTION[name](
            message, prediction_id=pid or "", prediction=prediction
        )
    cls = _SIMPLE.get(name, AtlasError)
    if issubclass(cls, errors.APIError):
        # str(APIError) is "400: text (request id ...)"; keep the code apart.
        found = _STATUS_PREFIX.fullmatch(message)
        if found:
            error = cls(found[2], status_code=int(found[1]))
            error.prediction_id = pid  # kept out of str(): the text names it already
            return error
    return cls(message)
