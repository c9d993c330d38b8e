"""
`generate_many`: run a batch of requests, each to an outcome, resumably.

Theory of operation
-------------------
The iterator the caller gets (`BatchIterator`) starts one driver task in the
client's task group on its first ``__anext__``, and reads `BatchResult` values
from a bounded memory stream. The consumer's task never hosts a cancel scope of
ours, so breaking out of ``async for``, or cancelling the consumer, cannot
corrupt anyone's scopes; the driver's scope is cancelled instead (by `aclose`,
by the iterator being dropped, or by the client closing).

The driver (`_batch_driver.Driver`) opens the journal (if given as a path, or
not yet open), calls ``journal.begin`` (which finds each request's item by content),
then runs a pool of ``max_in_flight`` workers over a queue of indices: memory
stays bounded by the pool, never by the batch size. Each worker takes one item
to its outcome::

    completed in the journal -> replay it (download if files are missing)
    failed in the journal    -> replay the recorded error
    unknown                  -> SubmissionUnknownError, or (resubmit_unknown)
                                reset_to_pending and submit
    submitted                -> attach by id and wait
    pending                  -> mark_submitting, POST, mark_submitted, wait
    then                        mark_completed, download, record_files

Journal writes are shielded from cancellation (each is one short local commit),
so a cancelled run leaves every item in a state the journal's recovery
understands; an item cancelled mid-POST stays ``submitting``, which the next
`Journal.open` turns into ``unknown``: the safe side.

Failure of one item is that item's result, never its siblings': the worker
turns every `AtlasError` into a `BatchResult`. Account-wide refusals (402, 401)
stop further submits; items not sent end with that error but stay ``pending``
in the journal, so a resumed run (after topping up) sends them. Anything else
(a journal that cannot write, a bug, an exception from ``on_progress``) stops
the batch and is raised from the iterator.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream

from .._core.errors import (
    ClientClosedError,
    ConfigurationError,
)
from .budget import CostGate
from .driver import Driver, Options, ProgressCallback
from .host import BatchHost
from .journal import Journal
from .types import BatchResult, GenerationRequest

if TYPE_CHECKING:
    import os


if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["BatchIterator", "ProgressCallback", "RequestInput", "generate_many"]

RequestInput = GenerationRequest | Mapping[str, Any]

DEFAULT_DOWNLOAD_CONCURRENCY = 8


def _coerce(index: int, item: RequestInput) -> GenerationRequest:
    if isinstance(item, GenerationRequest):
        return item
    try:
        return GenerationRequest.from_mapping(item)
    except ConfigurationError as exc:
        raise ConfigurationError(f"request {index}: {exc}") from None


def _unwrap(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


@attrs.define
class _Shared:
    """What the driver task and the iterator both touch (never the iterator)."""

    scope: anyio.CancelScope
    receive: MemoryObjectReceiveStream[BatchResult]
    done: anyio.Event
    error: BaseException | None = None
    finished: bool = False


def _abandon(shared: _Shared) -> None:
    # The iterator was dropped without aclose (e.g. `break`): stop the driver.
    if not shared.finished:
        shared.scope.cancel()
    shared.receive.close()


class BatchIterator:
    """
    The async iterator `generate_many` returns: `BatchResult` values in
    completion order.

    Nothing is sent until the first ``__anext__``. Leaving early is safe: use
    ``async with`` (or call `aclose`) to stop the batch at once; an iterator that
    is simply dropped stops it too. Either way the journal stays consistent and
    a later run with the same journal resumes.

    Example::

        async with client.generate_many(requests, journal="run.db") as results:
            async for result in results:
                print(result.index, result.ok)
    """

    def __init__(
        self,
        host: BatchHost,
        requests: list[GenerationRequest],
        options: Options,
    ) -> None:
        self._host = host
        self._requests = requests
        self._options = options
        self._shared: _Shared | None = None

    def __aiter__(self) -> BatchIterator:
        return self

    async def __aenter__(self) -> BatchIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _start(self) -> _Shared:
        host = self._host
        workers = self._options.max_in_flight or host.max_in_flight
        send, receive = anyio.create_memory_object_stream[BatchResult](
            max(1, min(workers, len(self._requests)))
        )
        shared = _Shared(anyio.CancelScope(), receive, anyio.Event())
        driver = Driver(host, self._requests, self._options, send)
        try:
            # Raises ClientStateError unless the client is open, on this loop.
            host.start_soon(functools.partial(_drive, driver, shared), "atlas-batch")
        except BaseException:
            send.close()
            receive.close()
            raise
        weakref.finalize(self, _abandon, shared)
        return shared

    async def __anext__(self) -> BatchResult:
        shared = self._shared
        if shared is None:
            shared = self._shared = self._start()
        try:
            return await shared.receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            pass
        await shared.done.wait()
        error, shared.error = shared.error, None
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the batch (if it runs) and wait until its tasks have ended."""
        shared = self._shared
        if shared is None:
            return
        if not shared.finished:
            shared.scope.cancel()
            await shared.done.wait()
        shared.error = None
        shared.receive.close()


async def _drive(driver: Driver, shared: _Shared) -> None:
    try:
        with shared.scope:
            await driver.run()
    except anyio.get_cancelled_exc_class():
        if not shared.scope.cancel_called:
            shared.error = ClientClosedError(
                "the client closed before the batch finished: run it again with "
                "the same journal to resume"
            )
        raise
    except anyio.BrokenResourceError:
        pass  # the consumer closed its end: nobody is listening
    except Exception as exc:  # noqa: BLE001  handed to the consumer, never dropped
        error = _unwrap(exc)
        if not isinstance(error, anyio.BrokenResourceError):
            shared.error = error
    finally:
        shared.finished = True
        driver.send.close()
        shared.done.set()


def generate_many(
    host: BatchHost,
    requests: Iterable[RequestInput],
    *,
    journal: Journal | str | os.PathLike[str] | None = None,
    max_in_flight: int | None = None,
    on_progress: ProgressCallback | None = None,
    download_to: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    batch_timeout: float | None = None,
    resubmit_unknown: bool = False,
    download_concurrency: int = DEFAULT_DOWNLOAD_CONCURRENCY,
    gate: CostGate | None = None,
) -> BatchIterator:
    """
    Run ``requests`` on ``host`` and yield a `BatchResult` per item, in
    completion order. ``AtlasClient.generate_many`` is the usual way in.

    Args:
        host: the open client's `BatchHost`.
        requests: `GenerationRequest` values, or mappings
            ``{"kind": "image", "model": ..., **params}`` (kind defaults to image).
        journal: a `Journal`, or the path of one, to make the run resumable.
        max_in_flight: items in progress at once (default: the client's).
        on_progress: called with a `BatchProgress` after each change.
        download_to: a directory; every output is saved there as soon as its
            prediction completes (``<index>-<id>-<n>.<ext>``).
        timeout: per item: seconds from submit (or attach) to the deadline.
        batch_timeout: seconds for the whole batch; then unfinished items end
            with `BatchTimeoutError` (a resumed run picks them up).
        resubmit_unknown: send again items an earlier run sent without getting
            an answer (they may exist and bill).
        download_concurrency: predictions downloading at once.
        gate: the budget and balance check, asked before each submit.

    Raises:
        ConfigurationError: a request is invalid (before anything is sent), or a
            bad option; from the iterator: ``download_to`` cannot be written.
        JournalError: from the iterator: the journal is in use, damaged, or
            cannot be written.
    """
    items = [_coerce(i, item) for i, item in enumerate(requests)]
    for name, value in (("max_in_flight", max_in_flight),):
        if value is not None and value < 1:
            raise ConfigurationError(f"{name} must be at least 1, got {value!r}")
    if download_concurrency < 1:
        raise ConfigurationError("download_concurrency must be at least 1")
    for name, seconds in (("timeout", timeout), ("batch_timeout", batch_timeout)):
        if seconds is not None and not seconds > 0:
            raise ConfigurationError(f"{name} must be > 0 seconds, got {seconds!r}")
    options = Options(
        journal=journal,
        max_in_flight=max_in_flight,
        on_progress=on_progress,
        download_to=None if download_to is None else Path(download_to),
        timeout=timeout,
        batch_timeout=batch_timeout,
        resubmit_unknown=resubmit_unknown,
        download_concurrency=download_concurrency,
        gate=gate,
    )
    return BatchIterator(host, items, options)
