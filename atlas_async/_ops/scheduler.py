"""
`Scheduler`: the one task that drives every prediction of a client.

Theory of operation
-------------------
The scheduler owns the pure `PollCore` and runs as one task (`Scheduler.run`,
started with ``task_group.start``) plus ``max_concurrent_requests`` poll workers.
The driver loop is the whole of it::

    now = clock.now()
    for item in core.due(now):           # polls due within 4 ms, deadlines passed
        expired -> fail the future with PredictionTimeoutError
        due     -> hand the id to a worker
    sleep until core.next_wakeup()       # cancelled early by new, earlier work

A worker calls ``source.fetch(prediction_id, resolver)``, gives the answer to
``core.record`` and applies the decision through the prediction's
`PredictionResolver` (also the fetch's memo: an answer byte for byte the last
one is not decoded again). A worker done with one poll takes the next poll due
straight from the core, so polls that keep falling due are served back to back
with no hand-off. The driver is for idle workers: while every worker is busy
it naps (`BUSY_NAP`) instead of waking for each poll, and a worker going idle
wakes it. Polls wait in the heap, never in the HTTP pool: at most
``max_concurrent_requests`` are started.

The scheduler sees its `PredictionSource` (``create``, ``fetch``) and nothing
else of the client. Admission (the concurrency limit and the rate) is the
`RequestGate` the HTTP session passes every attempt through; the scheduler
reads only its figures and its coordinator's shared limits.

`Scheduler.deliver` is the hybrid wait's other source: a terminal snapshot from
outside polling (a verified webhook) ends the pending future at once, through
the same decision a poll answer gets; whichever source ends a prediction first
wins, and polling alone ends every prediction without deliveries.

One poll's failure (an `AtlasError` from ``fetch``) becomes that prediction's
outcome. Any other exception while handling one prediction (a bug, or an
answer nothing foresaw) fails that prediction at once, with an
`UnexpectedResponseError` chained from it and an ERROR log line; it never
reaches `run`, so it never closes the client or fails the others. On close, every
pending future fails with `ClientClosedError` (the server jobs go on; ``attach``
resumes them) and no task is left behind.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._core.clock import Clock
from .._core.errors import (
    AtlasError,
    ClientClosedError,
    ClientStateError,
    ConfigurationError,
)
from .._core.flow import Limits
from .._core.models import Kind, Prediction
from .._core.outcome import handling_error, timeout_error
from .._core.policies import DurationBook, PollPolicy, policies_by_kind, webhook_first
from .._core.retry import BackoffPolicy, Retry
from .._core.schedule import (
    TIMER_SLACK,
    Decision,
    Failed,
    PollCore,
    Rescheduled,
    Resolved,
    default_failure,
    settle,
)
from .._core.statistics import NO_GATE, ClientStatistics, assemble_statistics
from .._core.validate import check_duration
from .._net.clock import AnyioClock
from .._net.deadline import Interruptible
from .._net.gate import RequestGate
from .admission import ModelAdmission
from .futures import PredictionFuture, PredictionResolver
from .operations import PredictionSource
from .spending import PollSpender

__all__ = ["Scheduler"]

logger = logging.getLogger("atlas_async")

Duration = float | timedelta

_NEW, _RUNNING, _CLOSED = "new", "running", "closed"

#: While every worker is busy, the driver looks at the heap this often, seconds
#: (an expiration is then at most this late; polls are not: workers take them).
BUSY_NAP = 0.01


def _log(level: int, message: str, pid: str, *args: object) -> None:
    logger.log(level, message, pid, *args, extra={"prediction_id": pid})


class Scheduler:
    """
    Submits predictions and polls them all from one task.

    Args:
        source: where predictions are created and polled (``create``, ``fetch``).
        gate: the client's `RequestGate`, for its figures in `statistics`.
        clock: where time is read and slept (`AnyioClock` by default).
        max_in_flight: submitted predictions not yet finished; ``submit`` waits
            beyond it (None: no cap; the admission's windows and rate bound
            submits).
        max_concurrent_requests: polls started at once (the gate bounds every
            request; this many workers keep it busy).
        poll: the `PollPolicy`, or one per kind (default `AdaptivePolicy`).
        retry: the delay after a failed poll (`BackoffPolicy`), or a `Retry`
            whose attempts bound the failed polls in a row.
        limits: known account limits (a model's in-flight limit starts and
            caps its window); unknown ones are learned from refusals.
        not_found_grace: seconds a fresh prediction may answer 404.
        failure: maps a terminal prediction to its error (None: success).
        rng: the source of jitter.

    Construct it inside the event loop, then ``await task_group.start(s.run)``.
    """

    def __init__(
        self,
        source: PredictionSource,
        *,
        gate: RequestGate | None = None,
        clock: Clock | None = None,
        max_in_flight: int | None = None,
        max_concurrent_requests: int = 16,
        poll: PollPolicy | Mapping[Kind | str, PollPolicy] | None = None,
        retry: BackoffPolicy | Retry | None = None,
        limits: Limits | None = None,
        not_found_grace: float = 30.0,
        failure: Callable[[Prediction], AtlasError | None] = default_failure,
        rng: random.Random | None = None,
    ) -> None:
        if (max_in_flight is not None and max_in_flight < 1) or (
            max_concurrent_requests < 1
        ):
            raise ConfigurationError(
                "max_in_flight and max_concurrent_requests must be >= 1"
            )
        self._source = source
        self._gate = gate
        self._clock: Clock = clock if clock is not None else AnyioClock()
        # A real sleep is rounded up to the millisecond (epoll, libuv): aim that
        # far ahead (`due` takes it in). A fake clock wakes exactly on time.
        self._lead = TIMER_SLACK if isinstance(self._clock, AnyioClock) else 0.0
        self._failure = failure
        self._policies = policies_by_kind(poll)
        rng = rng if rng is not None else random.Random()
        shared = gate.shared if gate is not None else None  # a coordinator's
        self._admission = ModelAdmission(limits, self._clock, rng, shared=shared)
        self._core = PollCore(
            rng,
            durations=DurationBook(),
            retry=retry,
            not_found_grace=not_found_grace,
            failure=failure,
            hurry=self._admission.hurry,
        )
        self._spender = PollSpender(self._core, gate)  # the poll budget
        self._workers = max_concurrent_requests
        # None: no cap of the client's own (the flow control bounds submits).
        self._submit_slots = (
            None if max_in_flight is None else anyio.Semaphore(max_in_flight)
        )
        self._futures: dict[str, PredictionResolver] = {}
        self._polling: dict[str, Interruptible] = {}
        self._send: MemoryObjectSendStream[str] | None = None
        self._queued = 0
        self._polls = 0  # kept apart from _counts: every poll counts it
        self._idle = 0  # workers waiting for the driver to hand them a poll
        self._state = _NEW
        self._run_scope: anyio.CancelScope | None = None
        self._sleep_scope: anyio.CancelScope | None = None
        self._sleeping_until = math.inf
        self._stopped = anyio.Event()
        # submitted, attached, completed, failed, timed_out, cancelled, polls...
        self._counts: Counter[str] = Counter()
        # One bound method shared by every future (64 bytes each otherwise).
        self._canceller = self._cancelled

    @property
    def durations(self) -> DurationBook:
        """What the adaptive policy has learned, per model."""
        return self._core.durations

    # -- lifecycle -----------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Drive every prediction until `aclose` (start with ``task_group.start``)."""
        if self._state != _NEW:
            raise ClientStateError("a Scheduler runs only once")
        send, receive = anyio.create_memory_object_stream[str](math.inf)
        self._send = send
        try:
            with anyio.CancelScope() as self._run_scope:
                async with anyio.create_task_group() as tg, send, receive:
                    for _ in range(self._workers):
                        tg.start_soon(self._worker, receive.clone())
                    self._state = _RUNNING
                    task_status.started()
                    await self._drive()
        finally:
            self._state = _CLOSED
            self._close_pending()
            self._stopped.set()

    async def aclose(self) -> None:
        """
        Stop polling; pending futures fail with `ClientClosedError`.

        Returns once the driver and its workers have exited. Idempotent.
        """
        was_running = self._state == _RUNNING
        self._state = _CLOSED
        self._close_pending()
        if self._run_scope is not None:
            self._run_scope.cancel()
        if was_running:
            await self._stopped.wait()

    def _check_running(self) -> None:
        if self._state == _CLOSED:
            raise ClientClosedError("the client is closed")
        if self._state != _RUNNING:
            raise ClientStateError(
                "the client is not running: use it inside `async with`"
            )

    def _close_pending(self) -> None:
        for prediction_id, resolver in list(self._futures.items()):
            self._core.remove(prediction_id)
            self._finish(prediction_id)
            resolver.fail(
                ClientClosedError(
                    f"the client closed before prediction {prediction_id} finished",
                    prediction_id=prediction_id,
                )
            )

    # -- public operations ---------------------------------------------------

    async def submit(
        self,
        kind: Kind | str,
        model: str,
        params: Mapping[str, Any],
        *,
        # The prediction's deadline (the API's name), not this call's: submit
        # returns as soon as the server has answered.
        timeout: Duration | None,
        policy: PollPolicy | None = None,
    ) -> PredictionFuture:
        """
        Create a prediction and start polling it; return its future.

        Waits while ``max_in_flight`` submitted predictions are pending. The
        deadline (``timeout`` seconds, None for none) is fixed once, when the
        server has answered. An error from ``create`` propagates and nothing is
        registered.

        Raises:
            ClientClosedError: if the client is closed (or closed while the submit
                was in flight; ``prediction_id`` then names the new prediction).
        """
        self._check_running()
        kind = Kind.coerce(kind)
        seconds = check_duration(timeout)
        # A refused submit waits for its model's window (or the account's rate)
        # and tries again until the prediction's own deadline.
        give_up = math.inf if seconds is None else self._clock.now() + seconds
        if self._submit_slots is not None:
            await self._submit_slots.acquire()
        try:
            self._check_running()
            prediction = await self._admission.submit(
                model,
                lambda: self._source.create(kind, model, params),
                give_up=give_up,
                check=self._check_running,
            )
        except BaseException:
            self._release_slot()
            raise
        pid = prediction.id
        self._counts["submitted"] += 1
        if self._state != _RUNNING or pid in self._futures:
            self._release_slot()
            self._admission.finished(model, self._clock.now())
            if self._state == _RUNNING:
                # The server handed out an id we already follow: share its future.
                return self._futures[pid].future
            raise ClientClosedError(
                f"the client closed while prediction {pid} was being submitted",
                prediction_id=pid,
            )
        future, resolver = PredictionFuture.pair(
            pid, kind=kind, model=model, latest=prediction, canceller=self._canceller
        )
        _log(logging.DEBUG, "prediction %s submitted (%s)", pid, model)
        final = settle(prediction, self._failure)
        if final is not None:  # answered synchronously (e.g. enable_sync_mode)
            self._release_slot()
            self._admission.finished(model, self._clock.now())
            self._apply(resolver, final)
            return future
        self._futures[pid] = resolver
        resolver.holds_slot = True
        now = self._clock.now()
        deadline = math.inf if seconds is None else now + seconds
        at = self._core.add(
            pid,
            now,
            kind=kind,
            model=model,
            policy=webhook_first(policy or self._policies[kind], params),
            deadline=deadline,
            timeout=seconds,
        )
        self._poke(at)
        return future

    def attach(
        self,
        prediction_id: str,
        *,
        kind: Kind | str = Kind.IMAGE,
        model: str | None = None,
        timeout: Duration | None = None,
        policy: PollPolicy | None = None,
    ) -> PredictionFuture:
        """
        Follow an existing prediction by id; poll it at once, then by its policy.

        Attaching an id that is already followed returns the same future. Attached
        predictions do not count toward ``max_in_flight``, and teach the adaptive
        policy nothing (their start time is unknown).
        """
        self._check_running()
        existing = self._futures.get(prediction_id)
        if existing is not None:
            return existing.future
        kind = Kind.coerce(kind)
        seconds = check_duration(timeout)
        future, resolver = PredictionFuture.pair(
            prediction_id, kind=kind, model=model, canceller=self._canceller
        )
        self._futures[prediction_id] = resolver
        self._counts["attached"] += 1
        now = self._clock.now()
        at = self._core.add(
            prediction_id,
            now,
            kind=kind,
            model=model,
            policy=policy or self._policies[kind],
            deadline=math.inf if seconds is None else now + seconds,
            timeout=seconds,
            learn=False,
            first_poll=now,
        )
        _log(logging.DEBUG, "prediction %s attached", prediction_id)
        self._poke(at)
        return future

    def deliver(self, prediction: Prediction) -> bool:
        """
        Apply a snapshot that came from outside polling (a webhook); the hybrid wait.

        If ``prediction.id`` is pending here and the snapshot is terminal, its
        future ends at once with the decision a poll answer would have made
        (success, or the ``failure`` mapping's error) and its polling stops: a
        poll in flight is abandoned, and the prediction leaves the heap. A
        non-terminal snapshot only updates ``future.latest``; polling goes on.
        Synchronous and idempotent: call it from the client's event loop.

        Returns:
            True when this call ended the prediction; False for an id not
            pending here (unknown, already ended, or a redelivery), for a
            non-terminal snapshot, and when the scheduler is not running.
        """
        pid = prediction.id
        resolver = self._futures.get(pid)
        if resolver is None or self._state != _RUNNING:
            return False
        final = settle(prediction, self._failure)
        resolver.seen = 0  # `latest` is no longer what the fingerprint names
        resolver.update(prediction)
        if final is None:
            return False
        # The same end as a poll answer; the core learns when it ended (the
        # server's timestamps) and how late the delivery came.
        self._core.delivered(prediction, self._clock.now())
        self._counts["delivered"] += 1
        _log(logging.DEBUG, "prediction %s ended by a delivery", pid)
        self._apply(resolver, final)
        return True

    def statistics(self) -> ClientStatistics:
        """Return a snapshot of the counters."""
        counts = self._counts.copy()
        counts["polls"], counts["retries"] = self._polls, self._core.retries
        return assemble_statistics(
            counts,
            NO_GATE if self._gate is None else self._gate.figures(),
            in_flight=len(self._futures),
            queued_polls=self._queued,
            submits_refused=self._admission.submits_refused,
            waited_for_slots=self._admission.waited,
            models=self._admission.figures(),
        )

    # -- the driver and its workers ------------------------------------------

    async def _drive(self) -> None:
        assert self._send is not None
        core, send, clock = self._spender, self._send, self._clock
        while True:
            for item in core.due(clock.now()):
                if item.expired is not None:
                    # Every prediction the core holds has a pending future.
                    self._apply(self._futures[item.prediction_id], item.expired)
                else:
                    self._queued += 1
                    send.send_nowait(item.prediction_id)
            now = clock.now()
            wake = core.next_wakeup(now)
            if not self._idle:
                # Busy workers pull what falls due as they finish (`_take_due`);
                # the driver looks now and then for what finds no worker free
                # (an expiration while all wait on a slow server). A worker
                # going idle pokes it.
                wake = max(wake, now + BUSY_NAP)
            with anyio.CancelScope() as scope:
                self._sleep_scope, self._sleeping_until = scope, wake
                if wake == math.inf:
                    await anyio.sleep_forever()
                else:
                    await clock.sleep_until(wake - self._lead)
            self._sleep_scope, self._sleeping_until = None, math.inf

    def _poke(self, at: float) -> None:
        # Wake the driver only if the new work is due before it planned to
        # wake, and some worker idles to take it (busy ones pull it).
        if self._idle and self._sleep_scope is not None and at < self._sleeping_until:
            self._sleep_scope.cancel()
            self._sleeping_until = -math.inf

    async def _worker(self, receive: MemoryObjectReceiveStream[str]) -> None:
        # The block each poll of this worker runs in, entered anew each time.
        block = Interruptible()
        async with receive:
            while True:
                # What the driver handed out first (it fell due earlier), then
                # the next poll due now, taken straight from the core: while
                # polls keep falling due, a worker goes from one to the next
                # like a plain request loop, with no hand-off through the
                # driver. Only an idle worker waits on the stream.
                prediction_id: str | None = None
                if self._queued:
                    try:
                        prediction_id = receive.receive_nowait()
                    except anyio.WouldBlock:
                        pass  # another worker took it
                    except anyio.EndOfStream:
                        return
                    else:
                        self._queued -= 1
                if prediction_id is None:
                    prediction_id = self._take_due()
                if prediction_id is None:
                    self._idle += 1
                    try:
                        self._poke(self._spender.next_wakeup(self._clock.now()))
                        prediction_id = await receive.receive()
                    except anyio.EndOfStream:
                        return
                    finally:
                        self._idle -= 1
                    self._queued -= 1
                resolver = self._futures.get(prediction_id)
                if resolver is None:
                    continue  # cancelled or expired while queued
                try:
                    await self._poll_once(prediction_id, resolver, block)
                except Exception as exc:  # noqa: BLE001  # a bug: it fails this one
                    self._fail_by_bug(prediction_id, resolver, exc)

    def _take_due(self) -> str | None:
        """The next poll due now, popped from the core (expirations applied)."""
        core, now = self._spender, self._clock.now()
        while True:
            items = core.due(now, most=1)
            if not items:
                return None
            item = items[0]
            if item.expired is None:
                return item.prediction_id
            self._apply(self._futures[item.prediction_id], item.expired)

    def _fail_by_bug(
        self, pid: str, resolver: PredictionResolver, exc: Exception
    ) -> None:
        """End one prediction whose handling raised (see the module docstring)."""
        error = handling_error(pid, exc)
        logger.error(
            "prediction %s: %s", pid, error.message, extra={"prediction_id": pid}
        )
        if self._futures.get(pid) is not resolver:
            return  # already ended (the bug came after its end)
        self._core.remove(pid)
        self._finish(pid)
        self._counts["failed"] += 1
        resolver.fail(error)

    async def _poll_once(
        self, pid: str, resolver: PredictionResolver, block: Interruptible
    ) -> None:
        self._polls += 1
        outcome: Prediction | AtlasError | None = None
        with block:
            self._polling[pid] = block
            try:
                outcome = await self._source.fetch(pid, resolver)
            except AtlasError as exc:
                outcome = exc
            finally:
                self._polling.pop(pid, None)
        if outcome is None:
            return  # the poll was cancelled: the future is already settled
        decision = self._core.record(pid, outcome, self._clock.now())
        # A completion may have brought its siblings' polls forward (only a
        # sleeping driver with idle workers needs to hear of it).
        if self._idle and self._sleep_scope is not None:
            self._poke(self._core.next_wakeup())
        if decision is None:
            return
        if isinstance(outcome, Prediction):
            latest = resolver.future.latest
            # An unchanged answer is the latest snapshot itself. An answer
            # equal to the last one keeps the old snapshot: the new one then
            # dies young instead of outliving a garbage-collector generation
            # per poll (at 10,000 in flight, full collections came every few
            # seconds and paused polling for ~100 ms).
            if outcome is not latest and (
                latest is None or outcome != latest or outcome.raw != latest.raw
            ):
                resolver.update(outcome)
        elif isinstance(decision, Rescheduled):
            _log(
                logging.INFO, "prediction %s: poll failed (%s), retrying", pid, outcome
            )
        self._apply(resolver, decision)

    def _apply(self, resolver: PredictionResolver, decision: Decision) -> None:
        future = resolver.future
        pid = future.id
        if isinstance(decision, Rescheduled):
            self._poke(decision.at)
            return
        self._finish(pid)
        if isinstance(decision, Resolved):
            self._counts["completed"] += 1
            _log(logging.DEBUG, "prediction %s completed", pid)
            resolver.resolve(decision.prediction)
        elif isinstance(decision, Failed):
            self._counts["failed"] += 1
            _log(logging.INFO, "prediction %s failed: %s", pid, decision.error)
            resolver.fail(decision.error)
        else:
            self._counts["timed_out"] += 1
            error = timeout_error(
                pid, future.latest, decision.last_status, decision.timeout
            )
            _log(logging.WARNING, "prediction %s timed out: %s", pid, error.message)
            resolver.fail(error)

    def _finish(self, pid: str) -> None:
        """Forget a settled prediction: free its in-flight slot, stop its poll."""
        resolver = self._futures.pop(pid, None)
        if resolver is not None and resolver.holds_slot:
            resolver.holds_slot = False
            self._release_slot()
            if resolver.future.model is not None:
                self._admission.finished(resolver.future.model, self._clock.now())
        block = self._polling.pop(pid, None)
        if block is not None:
            block.interrupt()

    def _release_slot(self) -> None:  # max_in_flight's, if it has one
        if self._submit_slots is not None:
            self._submit_slots.release()

    def _cancelled(self, future: PredictionFuture) -> None:
        pid = future.id
        resolver = self._futures.get(pid)
        if resolver is None or resolver.future is not future:
            return
        self._core.remove(pid)
        self._finish(pid)
        self._counts["cancelled"] += 1
        _log(logging.DEBUG, "prediction %s cancelled locally", pid)

    def __repr__(self) -> str:
        return f"<Scheduler {self._state} in_flight={len(self._futures)}>"
