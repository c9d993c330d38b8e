"""
The shared gate every HTTP attempt of a client passes, and the client's statistics.

`SchedulerGate` is the `RequestGate` the HTTP session calls around each attempt
(submits, polls, uploads, and their retries): it holds one concurrency slot of
``max_concurrent_requests``, waits for the shared AIMD `RateBudget`, and reports
each answer back to that budget. So one limit and one budget bound the whole
client, and requests wait here, never in the HTTP library's pool.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager

import anyio
import attrs

from .._core.ratelimit import RateBudget
from .clock import Clock

__all__ = ["ClientStatistics", "SchedulerGate"]

logger = logging.getLogger("atlas_async")


@attrs.frozen(kw_only=True)
class ClientStatistics:
    """
    A snapshot of a client's scheduler (``client.statistics()``).

    Attributes:
        in_flight: predictions submitted or attached and not finished.
        submitted: predictions created by ``submit``.
        attached: predictions followed with ``attach``.
        completed: predictions that completed with outputs.
        failed: predictions that failed (on the server, or a poll error).
        timed_out: predictions whose deadline passed.
        cancelled: futures cancelled locally.
        requests_sent: HTTP attempts that passed the gate (submits, polls, retries).
        polls: polls made.
        retries: polls made after a failed poll.
        rate_limited: 429 answers.
        requests_per_second: the rate budget now (None: unlimited).
        concurrent_requests: requests holding a slot now.
        queued_polls: due polls waiting for a free worker.
        delivered: predictions ended by `Scheduler.deliver` (a webhook) before
            a poll saw them end; also counted in ``completed`` or ``failed``.
    """

    in_flight: int
    submitted: int
    attached: int
    completed: int
    failed: int
    timed_out: int
    cancelled: int
    requests_sent: int
    polls: int
    retries: int
    rate_limited: int
    requests_per_second: float | None
    concurrent_requests: int
    queued_polls: int
    delivered: int = 0


class SchedulerGate:
    """
    The `RequestGate` every HTTP attempt passes: a concurrency slot, then the
    rate budget (which may make it wait), then ``record`` with the answer.
    """

    __slots__ = ("_budget", "_clock", "_limiter", "_slot", "requests_sent")

    def __init__(
        self, limiter: anyio.CapacityLimiter, budget: RateBudget, clock: Clock
    ) -> None:
        self._limiter = limiter
        self._budget = budget
        self._clock = clock
        self._slot = _Slot(self)
        self.requests_sent = 0

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Hold a concurrency slot, and wait until the budget lets a request go."""
        # One shared context object: the limiter tracks its borrowers by task.
        return self._slot

    def record(self, status_code: int | None, retry_after: float | None) -> None:
        """Report one attempt's answer (None: no answer) to the budget."""
        self.requests_sent += 1
        if status_code == 429:
            logger.warning("rate limited (429); slowing every request of this client")
        self._budget.on_response(status_code, retry_after, self._clock.now())


class _Slot:
    """
    `SchedulerGate.slot`: a concurrency token, then the rate budget.

    Every HTTP attempt passes here, so it avoids anyio's generic paths: a free
    token is taken without ``CapacityLimiter.acquire``'s two scheduling
    checkpoints (a loop round trip per request, about a fifth of the SDK's own
    CPU per poll; docs/performance.md). Only a full limiter waits.
    """

    __slots__ = ("_gate",)

    def __init__(self, gate: SchedulerGate) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        gate = self._gate
        limiter = gate._limiter
        try:
            limiter.acquire_nowait()
        except anyio.WouldBlock:
            await limiter.acquire()
        try:
            clock, budget = gate._clock, gate._budget
            now = clock.now()
            wait = budget.reserve(now)
            while wait > 0.0:
                await clock.sleep_until(now + wait)
                # A Retry-After may have arrived while we slept: honour it too.
                now = clock.now()
                wait = budget.blocked_for(now)
        except BaseException:
            limiter.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._gate._limiter.release()
