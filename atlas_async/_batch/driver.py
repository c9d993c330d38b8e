"""
The batch driver: the worker pool behind `generate_many` and each item's walk
through the journal's state machine (the theory is in ``_batch``).

A `Driver` is one run of one batch. `Driver.run` opens the journal, then runs
``max_in_flight`` workers over a queue of indices; `Driver._item` takes one
item to its outcome and never raises an `AtlasError` (it becomes the item's
`BatchResult`), so one item's failure never reaches its siblings.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from .._core import errors as errors
from .._core.errors import (
    AtlasError,
    AuthenticationError,
    BatchTimeoutError,
    ClientStateError,
    ConfigurationError,
    DownloadError,
    InsufficientBalanceError,
    NotFoundError,
    OutputsGoneError,
    PredictionCancelledError,
    PredictionFailedError,
    SubmissionUnknownError,
)
from .._core.history import Absent, Attach, SentSubmit
from .._core.models import Prediction
from .._core.sending import on_send
from .._ops.download import prepare_directory
from .._ops.futures import PredictionFuture
from .._wire.parse import build_submit_body
from .budget import CostGate
from .host import BatchHost
from .journal import ItemState, Journal, JournalEntry
from .record import Record, open_journal, rebuild_error
from .settle import Settler
from .types import BatchProgress, BatchResult, GenerationRequest

if TYPE_CHECKING:
    import os


__all__ = ["Driver", "Options", "ProgressCallback"]

ProgressCallback = Callable[[BatchProgress], object]

# Refusals about the account, not the item: no later submit can succeed either.
_STOPS = (InsufficientBalanceError, AuthenticationError)
# A download's answers that say the output is not there any more.
_GONE = frozenset({403, 404, 410})


def _never_left(error: AtlasError) -> bool:
    """True when a failed submit provably created nothing on the server."""
    if isinstance(error, SubmissionUnknownError):
        return False
    if isinstance(error, (errors.TransportError, ConfigurationError, *_STOPS)):
        return True  # a connect error (the session retries nothing else), no key
    # A 429 or 503 refusal, after the session's own retries.
    return isinstance(error, errors.APIError) and error.status_code in (429, 503)


def _may_bill(error: AtlasError | None) -> bool:
    """True when a submit that ended in ``error`` may have created a prediction."""
    return isinstance(error, SubmissionUnknownError) or (
        error is not None and error.prediction_id is not None
    )


@attrs.define
class Options:
    """The options of one `generate_many` call, checked."""

    journal: Journal | str | os.PathLike[str] | None
    max_in_flight: int | None
    on_progress: ProgressCallback | None
    download_to: Path | None
    timeout: float | None
    batch_timeout: float | None
    resubmit_unknown: bool
    download_concurrency: int
    gate: CostGate | None = None  # budget and balance check (budget.py)


class Driver:
    """One run of one batch: the workers, the counters, the stop conditions."""

    def __init__(
        self,
        host: BatchHost,
        requests: list[GenerationRequest],
        options: Options,
        send: MemoryObjectSendStream[BatchResult],
    ) -> None:
        self.host = host
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
        self.settler = Settler(host.settle_unknown)
        # Each item's send window in this run: (went out, last moment to arrive).
        self.windows: dict[int, tuple[float, float]] = {}
        # Items sent again in this run because history proved them absent.
        self.resent: set[int] = set()

    async def run(self) -> None:
        options = self.options
        if options.download_to is not None:
            # Before anything is paid for: outputs must have somewhere to go.
            options.download_to = await anyio.to_thread.run_sync(
                prepare_directory, options.download_to
            )
        journal_at = open_journal(
            options.journal, clock=self.host.clock, secret=self.host.secret
        )
        async with journal_at as journal:
            self.record = Record(journal)
            if journal is not None:
                self.entries = await journal.begin(self.requests)
                for entry in self.entries:
                    if entry.prediction_id is not None:
                        self.settler.claim(entry.prediction_id)
            if options.gate is not None:  # before any submit: may stop the batch
                await options.gate.start(self.requests, self.entries)
            self.queue = deque(self._order())
            self._report()
            limit = options.max_in_flight or self.host.max_in_flight
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
        clock = self.host.clock
        await clock.sleep_until(clock.now() + seconds)
        self.expired = True
        for future in list(self.waiting.values()):
            future.cancel()  # its worker reports BatchTimeoutError

    async def _worker(self) -> None:
        while self.queue:
            result = self._priced(await self._item(self.queue.popleft()))
            self._report(
                done=1,
                ok=int(result.ok),
                failed=int(not result.ok and not result.not_submitted),
                resumed=int(result.resumed),
                not_submitted=int(result.not_submitted),
            )
            await self.send.send(result)

    def _priced(self, result: BatchResult) -> BatchResult:
        # The quote stands in for a price the server did not send.
        gate = self.options.gate
        if gate is not None:
            result = attrs.evolve(result, quoted=gate.quoted(result.index))
        if result.cost is not None:
            self.progress = attrs.evolve(
                self.progress, spent=self.progress.spent + result.cost
            )
        return result

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
        if entry is not None and state in (ItemState.COMPLETED, ItemState.SAVED):
            return await self._replay(index, entry)
        if entry is not None and state is ItemState.FAILED:
            return BatchResult(index, request, error=rebuild_error(entry), resumed=True)
        if entry is not None and state in (ItemState.UNKNOWN, ItemState.SUBMITTING):
            # `submitting` here: an open journal reused after a cancelled run.
            if self.options.resubmit_unknown:
                await self.record.reset_to_pending(index)
            else:
                window = (entry.sent_after, entry.sent_before)
                settled = await self._settle(
                    index, window, stopped=entry.updated_at, resumed=True
                )
                if not isinstance(settled, PredictionFuture | None):
                    return settled
                if settled is not None:
                    self._report(in_flight=1)
                    return await self._wait(index, settled)
            state = ItemState.PENDING
        if self.expired:
            attached = entry is not None and state is ItemState.SUBMITTED
            pid = entry.prediction_id if entry is not None and attached else None
            return BatchResult(index, request, error=self._timed_out(pid))
        if entry is not None and state is ItemState.SUBMITTED:
            assert entry.prediction_id is not None  # the journal's invariant
            future = self.host.attach(
                entry.prediction_id,
                kind=entry.kind,
                model=entry.model,
                timeout=self.options.timeout,
            )
            self._report(in_flight=1)
            return await self._wait(index, future)
        if self.stop_error is not None:
            return BatchResult(index, request, error=self.stop_error)
        gate = self.options.gate
        refused = None if gate is None else gate.admit(index)
        if refused is not None:  # not submitted: budget; stays pending
            return BatchResult(index, request, error=refused)
        submitted = await self._submit(index, request)
        if isinstance(submitted, BatchResult):
            error = submitted.error
            if gate is not None and not _may_bill(error):
                gate.release(index)
            return submitted
        self._report(in_flight=1, submitted=1)
        return await self._wait(index, submitted)

    async def _submit(
        self, index: int, request: GenerationRequest
    ) -> PredictionFuture | BatchResult:
        sent = False

        async def sending(after: float, before: float) -> None:
            # Committed just before the request leaves, with its slot and its
            # token: an item still waiting for those stays pending, exactly.
            nonlocal sent
            first = self.windows.get(index)
            self.windows[index] = (first[0] if first else after, before)
            if sent:
                await self.record.extend_send_window(index, before)
            else:
                await self.record.mark_submitting(
                    index, sent_after=after, sent_before=before
                )
                sent = True

        try:
            with on_send(sending):
                future = await self.host.submit(
                    request.kind,
                    request.model,
                    timeout=self.options.timeout,
                    params=request.params,
                )
        except SubmissionUnknownError as exc:
            if not sent:  # a host that does not say when it sends
                await self.record.mark_submitting(index)
            await self.record.mark_unknown(index, exc)
            if index in self.resent:
                # Sent again after history showed no trace of it, and lost again:
                # a second absence may be a clock, not the truth. Not again.
                return BatchResult(index, request, error=exc)
            settled = await self._settle(
                index,
                self.windows.get(index),
                stopped=self.host.clock.wall(),
                error=exc,
            )
            if settled is None:
                self.resent.add(index)
                return await self._submit(index, request)
            return settled
        except ClientStateError as exc:
            # The client is closing: no more submits. One that got its id just
            # before keeps it for a resume; any other was never sent.
            self.stop_error = self.stop_error or exc
            if exc.prediction_id is not None:
                if not sent:
                    await self.record.mark_submitting(index)
                await self.record.mark_submitted(index, exc.prediction_id)
            elif sent:
                await self.record.reset_to_pending(index)
            return BatchResult(index, request, error=exc)
        except AtlasError as exc:
            if isinstance(exc, _STOPS) and self.stop_error is None:
                self.stop_error = exc
            if _never_left(exc):
                if sent:
                    await self.record.reset_to_pending(index)
            else:
                await self.record.mark_failed(index, exc)
            return BatchResult(index, request, error=exc)
        if not sent:
            await self.record.mark_submitting(index)
        self.settler.claim(future.id)
        await self.record.mark_submitted(index, future.id)
        return future

    async def _settle(
        self,
        index: int,
        window: tuple[float | None, float | None] | None,
        *,
        stopped: float,
        resumed: bool = False,
        error: SubmissionUnknownError | None = None,
    ) -> PredictionFuture | BatchResult | None:
        """
        Settle an unknown item from the account's history: the future of the
        prediction it created, None when it never arrived (it is ``pending``
        again: send it), or its result when history cannot tell.

        ``stopped`` is when its sender stopped sending (wall time): it gave up
        on the request, or died (the journal's lock proves the earlier run
        gone, and the item turned unknown when it was taken). Nothing of it
        can leave after that, so its send window closes there, not at the
        request's deadline.
        """
        request = self.requests[index]
        after, before = window if window is not None else (None, None)
        if before is not None:
            before = min(before, stopped)
        if after is None or before is None:
            unknown = error or SubmissionUnknownError(
                f"item {index} was sent by an earlier run and no answer came, and"
                " the journal does not say when (written by an older atlas_async):"
                " it may exist and bill; resubmit it knowingly with"
                " resubmit_unknown=True (CLI: --resubmit-unknown)"
            )
            return BatchResult(index, request, error=unknown, resumed=resumed)
        body = build_submit_body(request.model, request.params)
        sent = SentSubmit(index, request.model, body, after, before)
        clock = self.host.clock
        while True:
            try:
                verdict = await self.settler.settle(sent)
            except AtlasError as exc:
                unknown = SubmissionUnknownError(
                    f"item {index} was sent and no answer came, and the account's"
                    f" history could not be read to settle it ({exc}): it may"
                    " exist and bill; run the batch again to settle it"
                )
                unknown.__cause__ = exc
                return BatchResult(index, request, error=unknown, resumed=resumed)
            if isinstance(verdict, Attach):
                await self.record.mark_submitted(index, verdict.prediction_id)
                return self.host.attach(
                    verdict.prediction_id,
                    kind=request.kind,
                    model=request.model,
                    timeout=self.options.timeout,
                )
            if isinstance(verdict, Absent):
                await self.record.reset_to_pending(index)
                self.windows.pop(index, None)
                return None
            if verdict.retry_at is None or self.expired:
                named = (
                    f" (candidates: {', '.join(verdict.candidates)})"
                    if verdict.candidates
                    else ""
                )
                unknown = SubmissionUnknownError(
                    f"item {index} was sent and no answer came; the account's"
                    f" history cannot settle it: {verdict.reason}{named}"
                )
                unknown.candidates = verdict.candidates
                return BatchResult(index, request, error=unknown, resumed=resumed)
            # History may still show it: look again once it must.
            wait = max(verdict.retry_at - clock.wall(), 0.0) + 0.05
            await clock.sleep_until(clock.now() + wait)

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
            if self.options.gate is not None:
                self.options.gate.release(index)  # not billed
            return self._ended(index, exc)
        except AtlasError as exc:
            # Our deadline, a poll that kept failing, the client closing: the
            # prediction may still finish, so it stays `submitted` for a resume.
            return self._ended(index, exc)
        finally:
            del self.waiting[index]
        await self.record.mark_completed(index, prediction)
        if self.options.gate is not None:
            self.options.gate.settle(index, prediction)
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
            files = await self.host.download(
                prediction, directory, name_prefix=f"{index:05d}-{prediction.id}"
            )
        await self.record.record_files(index, files)
        return files

    async def _replay(self, index: int, entry: JournalEntry) -> BatchResult:
        request = self.requests[index]
        prediction = entry.prediction
        assert prediction is not None  # completed entries carry their snapshot
        saved = entry.files
        if self.options.download_to is None or not prediction.outputs:
            return BatchResult(index, request, prediction, files=saved, resumed=True)
        present = bool(saved) and await anyio.to_thread.run_sync(_all_exist, saved)
        if present:
            return BatchResult(index, request, prediction, files=saved, resumed=True)
        # Not saved (or its files deleted): the recorded output URLs may have
        # expired, or died with the emulator that served them. Ask for the
        # prediction again (fresh URLs), then download.
        assert entry.prediction_id is not None  # the journal's invariant
        try:
            fresh = await self.host.attach(
                entry.prediction_id,
                kind=entry.kind,
                model=entry.model,
                timeout=self.options.timeout,
            )
        except NotFoundError as exc:
            return await self._gone(index, entry.prediction_id, exc)
        except AtlasError as exc:
            return BatchResult(index, request, error=exc, resumed=True)
        await self.record.mark_completed(index, fresh)
        try:
            files = await self._download(index, fresh)
        except DownloadError as exc:
            if exc.status_code in _GONE:
                return await self._gone(index, fresh.id, exc)
            return BatchResult(index, request, error=exc, resumed=True)
        except AtlasError as exc:
            return BatchResult(index, request, error=exc, resumed=True)
        return BatchResult(index, request, fresh, files=files, resumed=True)

    async def _gone(
        self, index: int, prediction_id: str, cause: AtlasError
    ) -> BatchResult:
        """A completed item whose outputs the server no longer has: failed, so a
        resume stops trying, and a retry (`reset_to_pending`) makes it again."""
        error = OutputsGoneError(
            f"the outputs of prediction {prediction_id} are gone for good (expired"
            f" or deleted: {cause}); send the item again to make new ones"
            " (CLI: batch --retry-failed)",
            prediction_id=prediction_id,
        )
        error.__cause__ = cause
        await self.record.mark_failed(index, error)
        return BatchResult(index, self.requests[index], error=error, resumed=True)


def _all_exist(files: tuple[Path, ...]) -> bool:
    return all(path.is_file() for path in files)
