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

The driver opens the journal (if given as a path, or not yet open), calls
``journal.begin`` (which refuses another batch's file), then runs a pool of
``max_in_flight`` workers over a queue of indices: memory stays bounded by the
pool, never by the batch size. Each worker takes one item to its outcome::

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

import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import _errors as errors
from ._batch_record import Record, open_journal, rebuild_error
from ._batch_types import BatchProgress, BatchResult, GenerationRequest
from ._download import _prepare_directory
from ._errors import (
    AtlasError,
    AuthenticationError,
    BatchTimeoutError,
    ClientClosedError,
    ClientStateError,
    ConfigurationError,
    InsufficientBalanceError,
    NotFoundError,
    PredictionCancelledError,
    PredictionFailedError,
    SubmissionUnknownError,
)
from ._futures import PredictionFuture
from ._journal import ItemState, Journal, JournalEntry
from ._models import Prediction

if TYPE_CHECKING:
    import os

    from ._client import AtlasClient

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["BatchIterator", "generate_many"]

RequestInput = GenerationRequest | Mapping[str, Any]
ProgressCallback = Callable[[BatchProgress], object]

DEFAULT_DOWNLOAD_CONCURRENCY = 8
# Refusals about the account, not the item: no later submit can succeed either.
_STOPS = (InsufficientBalanceError, AuthenticationError)


def _never_left(error: AtlasError) -> bool:
    """True when a failed submit provably created nothing on the server."""
    if isinstance(error, SubmissionUnknownError):
        return False
    if isinstance(error, (errors.TransportError, ConfigurationError, *_STOPS)):
        return True  # a connect error (the session retries nothing else), no key
    # A 429 or 503 refusal, after the session's own retries.
    return isinstance(error, errors.APIError) and error.status_code in (429, 503)


def _coerce(index: int, item: RequestInput) -> GenerationRequest:
    if isinstance(item, GenerationRequest):
        return item
    try:
        return GenerationRequest.from_mapping(item)
    except ConfigurationError as exc:
        raise ConfigurationError(f"request {index}: {exc}") from None


@attrs.define
class _Options:
    journal: Journal | str | os.PathLike[str] | None
    max_in_flight: int | None
    on_progress: ProgressCallback | None
    download_to: Path | None
    timeout: float | None
    batch_timeout: float | None
    resubmit_unknown: bool
    download_concurrency: int


class _Driver:
    """One run of one batch: the workers, the counters, the stop conditions."""

    def __init__(
        self,
        client: AtlasClient,
        requests: list[GenerationRequest],
        options: _Options,
        send: MemoryObjectSendStream[BatchResult],
    ) -> None:
        self.client = client
        self.requests = requests
        self.options = options
        self.send = send
        self.record = Record(None)
        self.entries: list[JournalEntry] | None = None
        self.queue: deque[int] = deque()
        self.progress = BatchProgress(total=len(requests))
        self.stop_error: AtlasError | None = None  # set by a 402 / 401
        self.expired = False  # the batch deadline passed
        self.waiting: dict[int, PredictionFuture] = {}
        self.downloads = anyio.CapacityLimiter(options.download_concurrency)

    async def run(self) -> None:
        options = self.options
        if options.download_to is not None:
            # Before anything is paid for: outputs must have somewhere to go.
            options.download_to = await anyio.to_thread.run_sync(
                _prepare_directory, options.download_to
            )
        async with open_journal(options.journal) as journal:
            self.record = Record(journal)
            if journal is not None:
                self.entries = await journal.begin(self.requests)
            self.queue = deque(self._order())
            self._report()
            limit = options.max_in_flight or self.client._config.max_in_flight
            async with anyio.create_task_group() as outer:
                if options.batch_timeout is not None:
                    outer.start_soon(self._watchdog, options.batch_timeout)
                async with anyio.create_task_group() as workers:
                    for _ in range(min(limit, len(self.queue))):
                        workers.start_soon(self._worker)
                outer.cancel_scope.cancel()  # the watchdog has nothing left to do

    def _order(self) -> list[int]:
        # Replays first (instant), then attaches (already paid for), then new work.
        if self.entries is None:
            return list(range(len(self.requests)))
        rank = {ItemState.SUBMITTED: 1, ItemState.PENDING: 2}
        states = [entry.state for entry in self.entries]
        return sorted(range(len(states)), key=lambda i: (rank.get(states[i], 0), i))

    def _report(self, **changes: int) -> None:
        progress = self.progress
        self.progress = attrs.evolve(
            progress, **{k: getattr(progress, k) + v for k, v in changes.items()}
        )
        if self.options.on_progress is not None:
            self.options.on_progress(self.progress)

    async def _watchdog(self, seconds: float) -> None:
        clock = self.client._clock
        await clock.sleep_until(clock.now() + seconds)
        self.expired = True
        for future in list(self.waiting.values()):
            future.cancel()  # its worker reports BatchTimeoutError

    async def _worker(self) -> None:
        while self.queue:
            result = await self._item(self.queue.popleft())
            self._report(
                done=1,
                ok=int(result.ok),
                failed=int(not result.ok),
                resumed=int(result.resumed),
            )
            await self.send.send(result)

    def _timed_out(self, prediction_id: str | None = None) -> BatchTimeoutError:
        seconds = self.options.batch_timeout
        what = f"prediction {prediction_id}" if prediction_id else "the item"
        return BatchTimeoutError(
            f"the batch timeout ({seconds:g}s) passed before {what} finished",
            prediction_id=prediction_id,
            timeout=seconds,
        )

    async def _item(self, index: int) -> BatchResult:
        request = self.requests[index]
        entry = self.entries[index] if self.entries is not None else None
        state = entry.state if entry is not None else ItemState.PENDING
        if entry is not None and state is ItemState.COMPLETED:
            return await self._replay(index, entry)
        if entry is not None and state is ItemState.FAILED:
            return BatchResult(index, request, error=rebuild_error(entry), resumed=True)
        if entry is not None and state in (ItemState.UNKNOWN, ItemState.SUBMITTING):
            # `submitting` here: an open journal reused after a cancelled run.
            if not self.options.resubmit_unknown:
                error = SubmissionUnknownError(
                    f"item {index} was sent by an earlier run and no answer came: "
                    "it may exist and bill; resubmit it knowingly with "
                    "resubmit_unknown=True (CLI: --resubmit-unknown)"
                )
                return BatchResult(index, request, error=error, resumed=True)
            await self.record.reset_to_pending(index)
            state = ItemState.PENDING
        if self.expired:
            attached = entry is not None and state is ItemState.SUBMITTED
            pid = entry.prediction_id if entry is not None and attached else None
            return BatchResult(index, request, error=self._timed_out(pid))
        if entry is not None and state is ItemState.SUBMITTED:
            assert entry.prediction_id is not None  # the journal's invariant
            future = self.client.attach(
                entry.prediction_id,
                kind=entry.kind,
                model=entry.model,
                timeout=self.options.timeout,
            )
            self._report(in_flight=1)
            return await self._wait(index, future)
        if self.stop_error is not None:
            return BatchResult(index, request, error=self.stop_error)
        submitted = await self._submit(index, request)
        if isinstance(submitted, BatchResult):
            return submitted
        self._report(in_flight=1, submitted=1)
        return await self._wait(index, submitted)

    async def _submit(
        self, index: int, request: GenerationRequest
    ) -> PredictionFuture | BatchResult:
        await self.record.mark_submitting(index)
        try:
            future = await self.client.submit(
                request.kind,
                request.model,
                timeout=self.options.timeout,
                params=request.params,
            )
        except SubmissionUnknownError as exc:
            await self.record.mark_unknown(index, str(exc))
            return BatchResult(index, request, error=exc)
        except ClientStateError as exc:
            # The client is closing: no more submits. One that got its id just
            # before keeps it for a resume; any other was never sent.
            self.stop_error = self.stop_error or exc
            if exc.prediction_id is not None:
                await self.record.mark_submitted(index, exc.prediction_id)
            else:
                await self.record.reset_to_pending(index)
            return BatchResult(index, request, error=exc)
        except AtlasError as exc:
            if isinstance(exc, _STOPS) and self.stop_error is None:
                self.stop_error = exc
            if _never_left(exc):
                await self.record.reset_to_pending(index)
            else:
                await self.record.mark_failed(index, exc)
            return BatchResult(index, request, error=exc)
        await self.record.mark_submitted(index, future.id)
        return future

    async def _wait(self, index: int, future: PredictionFuture) -> BatchResult:
        request = self.requests[index]
        self.waiting[index] = future
        try:
            if self.expired:
                future.cancel()
            prediction = await future
        except PredictionCancelledError as exc:
            # Left `submitted`: a resumed run attaches to it again.
            error: AtlasError = self._timed_out(future.id) if self.expired else exc
            return self._ended(index, error)
        except (PredictionFailedError, NotFoundError) as exc:
            await self.record.mark_failed(index, exc)
            return self._ended(index, exc)
        except AtlasError as exc:
            # Our deadline, a poll that kept failing, the client closing: the
            # prediction may still finish, so it stays `submitted` for a resume.
            return self._ended(index, exc)
        finally:
            del self.waiting[index]
        await self.record.mark_completed(index, prediction)
        try:
            files = await self._download(index, prediction)
        except AtlasError as exc:
            # Completed without files: a resumed run downloads again.
            return self._ended(index, exc)
        self._report(in_flight=-1)
        return BatchResult(index, request, prediction, files=files)

    def _ended(self, index: int, error: AtlasError) -> BatchResult:
        self._report(in_flight=-1)
        return BatchResult(index, self.requests[index], error=error)

    async def _download(self, index: int, prediction: Prediction) -> list[Path]:
        directory = self.options.download_to
        if directory is None or not prediction.outputs:
            return []
        async with self.downloads:
            files = await self.client.download(
                prediction, directory, name_prefix=f"{index:05d}-{prediction.id}"
            )
        await self.record.record_files(index, files)
        return files

    async def _replay(self, index: int, entry: JournalEntry) -> BatchResult:
        request = self.requests[index]
        prediction = entry.prediction
        assert prediction is not None  # completed entries carry their snapshot
        files: list[Path] = list(entry.files)
        if not files:
            try:
                files = await self._download(index, prediction)
            except AtlasError as exc:
                return BatchResult(index, request, error=exc, resumed=True)
        return BatchResult(index, request, prediction, files=files, resumed=True)


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
        client: AtlasClient,
        requests: list[GenerationRequest],
        options: _Options,
    ) -> None:
        self._client = client
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
        client = self._client
        client._running_scheduler()  # open, and on this loop
        task_group = client._task_group
        if task_group is None:  # pragma: no cover - set whenever open
            raise ClientStateError("the client is not open")
        workers = self._options.max_in_flight or client._config.max_in_flight
        send, receive = anyio.create_memory_object_stream[BatchResult](
            max(1, min(workers, len(self._requests)))
        )
        shared = _Shared(anyio.CancelScope(), receive, anyio.Event())
        driver = _Driver(client, self._requests, self._options, send)
        weakref.finalize(self, _abandon, shared)
        task_group.start_soon(_drive, driver, shared, name="atlas-batch")
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


async def _drive(driver: _Driver, shared: _Shared) -> None:
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
    client: AtlasClient,
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
) -> BatchIterator:
    """
    Run ``requests`` on ``client`` and yield a `BatchResult` per item, in
    completion order. ``AtlasClient.generate_many`` is the usual way in.

    Args:
        client: an open `AtlasClient`.
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

    Raises:
        ConfigurationError: a request is invalid (before anything is sent), or a
            bad option; from the iterator: ``download_to`` cannot be written.
        JournalError: from the iterator: the journal holds another batch, or
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
    options = _Options(
        journal=journal,
        max_in_flight=max_in_flight,
        on_progress=on_progress,
        download_to=None if download_to is None else Path(download_to),
        timeout=timeout,
        batch_timeout=batch_timeout,
        resubmit_unknown=resubmit_unknown,
        download_concurrency=download_concurrency,
    )
    return BatchIterator(client, items, options)
