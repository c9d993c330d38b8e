"""
`RequestGate`: the admission every HTTP attempt of a client passes.

Built first, at the root of the client, and handed to the session: one
concurrency limit (``max_concurrent_requests`` slots, so requests wait here and
never in the HTTP library's pool) and one shared `RateBudget`. The session takes
a slot around each attempt and reports each answer back with `record`, so a 429
on any request slows the whole client. `NullGate` admits everything (a session
used on its own, in tests).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import anyio
import attrs

from .._core.clock import Clock
from .._core.ratelimit import RateBudget

__all__ = ["Admission", "GateFigures", "NullGate", "RequestGate"]

logger = logging.getLogger("atlas_async")


class Admission(Protocol):
    """
    What the session needs of a gate: a slot per attempt, and the outcome after.

    Example::

        async with gate.slot():
            response = await send()
        gate.record(response.status_code, retry_after=None)
    """

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Wait for a concurrency slot and budget; hold it for one attempt."""
        ...

    def record(self, status_code: int | None, retry_after: float | None) -> None:
        """Report one attempt's outcome (``None``: no answer came)."""
        ...


@attrs.frozen(kw_only=True)
class GateFigures:
    """What a gate has admitted: the gate's part of `ClientStatistics`."""

    requests_sent: int
    rate_limited: int
    requests_per_second: float | None
    concurrent_requests: int


class NullGate:
    """A gate that admits everything at once and ignores outcomes."""

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        yield

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Admit at once."""
        return self._slot()

    def record(self, status_code: int | None, retry_after: float | None) -> None:
        """Ignore the outcome."""

    def __repr__(self) -> str:
        return "NullGate()"


class RequestGate:
    """
    A concurrency slot, then the rate budget (which may make it wait), then
    ``record`` with the answer.

    Build it inside the event loop that will use it.

    Args:
        max_concurrent_requests: attempts in flight at once (>= 1).
        requests_per_second: the budget's ceiling; None starts unlimited and
            only slows down on 429.
        clock: where the budget's waits happen.
    """

    __slots__ = ("_budget", "_clock", "_limiter", "_slot", "requests_sent")

    def __init__(
        self,
        max_concurrent_requests: int,
        requests_per_second: float | None,
        clock: Clock,
    ) -> None:
        self._limiter = anyio.CapacityLimiter(max_concurrent_requests)
        self._budget = RateBudget(requests_per_second)
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

    def figures(self) -> GateFigures:
        """What the gate has admitted so far, and its state now."""
        return GateFigures(
            requests_sent=self.requests_sent,
            rate_limited=self._budget.statistics().rate_limited,
            requests_per_second=self._budget.rate,
            concurrent_requests=int(self._limiter.borrowed_tokens),
        )

    def __repr__(self) -> str:
        return (
            f"<RequestGate {int(self._limiter.borrowed_tokens)}"
            f"/{int(self._limiter.total_tokens)} busy, rate={self._budget.rate}>"
        )


class _Slot:
    """
    `RequestGate.slot`: a concurrency token, then the rate budget.

    Every HTTP attempt passes here, so it avoids anyio's generic paths: a free
    token is taken without ``CapacityLimiter.acquire``'s two scheduling
    checkpoints (a loop round trip per request, about a fifth of the SDK's own
    CPU per poll; docs/performance.md). Only a full limiter waits.
    """

    __slots__ = ("_gate",)

    def __init__(self, gate: RequestGate) -> None:
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
