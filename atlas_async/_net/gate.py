"""
`RequestGate`: the admission every HTTP attempt of a client passes.

Built first, at the root of the client, and handed to the session: one
concurrency limit (``max_concurrent_requests`` slots, so requests wait here and
never in the HTTP library's pool) and the account's learned rate
(`AccountRate`). The session takes a slot around each attempt and reports each
answer back with `record`. A 429 is attributed (`RefusalMemory`): only one that
speaks of the account's rate cuts the rate; one that speaks of a model's window
is the scheduler's to handle, and slows nothing else. When tokens are scarce,
polls go before submits: finishing work frees a model's slots. `NullGate`
admits everything (a session used on its own, in tests).

With a coordinator (``_net.coordinator``) the gate asks its `SharedLimits`
first: the wait comes from the account's shared bucket and a rate refusal cuts
the shared rate, for every process; while the coordinator is unreachable the
local `AccountRate` decides, as without one.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import anyio

from .._core.clock import Clock
from .._core.flow import AccountRate
from .._core.statistics import GateFigures
from .._core.windows import Cause, RefusalMemory, RequestKind
from .coordinator import SharedLimits

__all__ = [
    "DEFAULT_RETRY_AFTER_CAP",
    "Admission",
    "GateFigures",
    "NullGate",
    "RequestGate",
]

#: The longest one answer's Retry-After holds every request of a client, when
#: the client's config names none: the HTTP retries' own cap.
DEFAULT_RETRY_AFTER_CAP = 60.0

logger = logging.getLogger("atlas_async")


class Admission(Protocol):
    """
    What the session needs of a gate: a slot per attempt, and the outcome after.

    Example::

        async with gate.slot():
            response = await send()
        gate.record(response.status_code, retry_after=None)
    """

    def slot(
        self, kind: RequestKind = RequestKind.OTHER
    ) -> AbstractAsyncContextManager[None]:
        """Wait for a concurrency slot and budget; hold it for one attempt."""
        ...

    def admit_now(self, kind: RequestKind, now: float) -> bool:
        """
        Take a slot for one attempt without waiting, if it may go now; False:
        nothing was taken (wait in `slot` instead). Pair a True with `leave`.
        """
        ...

    def leave(self) -> None:
        """Give back the slot `admit_now` took."""
        ...

    def record(
        self,
        status_code: int | None,
        retry_after: float | None,
        kind: RequestKind = RequestKind.OTHER,
        message: str | None = None,
        now: float | None = None,
    ) -> Cause | None:
        """
        Report one attempt's outcome (``None``: no answer came); a 429's cause.

        ``now``: when the answer came, if the caller has just read the clock.
        """
        ...


class NullGate:
    """A gate that admits everything at once and ignores outcomes."""

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        yield

    def slot(
        self, kind: RequestKind = RequestKind.OTHER
    ) -> AbstractAsyncContextManager[None]:
        """Admit at once."""
        return self._slot()

    def admit_now(self, kind: RequestKind, now: float) -> bool:
        """Admit at once."""
        return True

    def leave(self) -> None:
        """Nothing to give back."""

    def record(
        self,
        status_code: int | None,
        retry_after: float | None,
        kind: RequestKind = RequestKind.OTHER,
        message: str | None = None,
        now: float | None = None,
    ) -> Cause | None:
        """Ignore the outcome (a 429 is attributed to nothing)."""
        return None

    def __repr__(self) -> str:
        return "NullGate()"


class RequestGate:
    """
    A concurrency slot, then the account's rate (which may make it wait), then
    ``record`` with the answer.

    Build it inside the event loop that will use it.

    Args:
        max_concurrent_requests: attempts in flight at once (>= 1).
        requests_per_second: a known account rate: where the rate starts and a
            ceiling; None starts unlimited and learns from refusals.
        clock: where the rate's waits happen.
        retry_after_cap: the longest a server's Retry-After may hold every
            request of the client (the config's own cap, 60 s by default).
        shared: the account's limits shared with other processes (a
            coordinator's), or None: this process's alone.

    A Retry-After holds every request only when the answer speaks for the
    whole account: a 503, or a 429 attributed to the rate. One on a submit
    refused for its model's window is the scheduler's to wait for (that
    model's submits wait for a slot anyway): it holds nothing else here.
    """

    __slots__ = (
        "_clock",
        "_limiter",
        "_polls_done",
        "_polls_waiting",
        "_rate",
        "_refusals",
        "_slots",
        "_submits_waiting",
        "requests_sent",
        "shared",
    )

    def __init__(
        self,
        max_concurrent_requests: int,
        requests_per_second: float | None,
        clock: Clock,
        *,
        retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
        shared: SharedLimits | None = None,
    ) -> None:
        #: The coordinator's shared limits, or None (the admission asks it too).
        self.shared = shared
        self._limiter = _Tokens(max_concurrent_requests)
        self._rate = AccountRate(requests_per_second, retry_after_cap=retry_after_cap)
        self._refusals = RefusalMemory()
        self._clock = clock
        # One shared context object per kind: the limiter tracks its borrowers
        # by task, and a slot has no per-call state.
        self._slots = {kind: _Slot(self, kind) for kind in RequestKind}
        self._polls_waiting = 0
        self._submits_waiting = 0
        self._polls_done: anyio.Event | None = None
        self.requests_sent = 0

    def slot(
        self, kind: RequestKind = RequestKind.OTHER
    ) -> AbstractAsyncContextManager[None]:
        """Hold a concurrency slot, and wait until the rate lets a request go."""
        return self._slots[kind]

    def admit_now(self, kind: RequestKind, now: float) -> bool:
        """
        Take a slot for one attempt at once, if it may go now: a free token,
        the rate allowing a request at ``now``, no coordinator to ask, and (for
        a submit) no poll waiting for the rate. False: nothing was taken; wait
        in `slot` instead. Pair a True with `leave`.

        The poll's way in: no await, no context manager (docs/performance.md).
        """
        if self.shared is not None or (
            kind is RequestKind.SUBMIT and self._polls_waiting
        ):
            return False
        limiter = self._limiter
        if not limiter.take():
            return False
        if not self._rate.reserve_now(now):
            limiter.release()
            return False
        return True

    def leave(self) -> None:
        """Give back the slot `admit_now` took."""
        self._limiter.release()

    def record(
        self,
        status_code: int | None,
        retry_after: float | None,
        kind: RequestKind = RequestKind.OTHER,
        message: str | None = None,
        now: float | None = None,
    ) -> Cause | None:
        """
        Report one attempt's answer (None: no answer); return a 429's cause.

        A refusal attributed to the rate cuts it; one attributed to a model's
        window is returned for the scheduler, and slows nothing here. ``now``:
        when the answer came, if the caller has just read the clock.
        """
        self.requests_sent += 1
        if now is None:
            now = self._clock.now()
        if status_code != 429:
            self._rate.on_response(status_code, retry_after, now)
            if status_code == 503 and retry_after and self.shared is not None:
                self.shared.refused(cut=False, retry_after=retry_after)
            return None
        cause = self._refusals.record(kind, 429, message, now)
        # A window refusal's Retry-After is no reason to hold polls or other
        # models: only a refusal of the account's rate blocks the account.
        self._rate.on_response(429, retry_after if cause is Cause.RATE else None, now)
        if cause is Cause.RATE:
            logger.warning("rate limited (429); slowing every request of this client")
            shared = self.shared
            if shared is not None and shared.active:
                # The shared rate is cut for every process; this one's own rate
                # (which counted no sends meanwhile) is for a Redis outage.
                shared.refused(cut=True, retry_after=retry_after)
            else:
                self._rate.on_refusal(now)
        return cause

    def waiting(self) -> int:
        """Requests waiting for the account's rate (or a Retry-After) now."""
        return self._polls_waiting + self._submits_waiting

    def figures(self) -> GateFigures:
        """What the gate has admitted so far, and its state now."""
        rate = self._rate.statistics(self._clock.now())
        refusals = self._refusals.statistics()
        shared = self.shared
        return GateFigures(
            requests_sent=self.requests_sent,
            rate_limited=rate.rate_limited,
            requests_per_second=(
                shared.rate() if shared is not None and shared.active else rate.rate
            ),
            concurrent_requests=self._limiter.borrowed,
            rate_refusals=refusals.rate,
            window_refusals=refusals.window,
            sent_per_second=rate.sent_rate,
        )

    def __repr__(self) -> str:
        return (
            f"<RequestGate {self._limiter.borrowed}"
            f"/{self._limiter.total} busy, rate={self._rate.rate}>"
        )


class _Waiter:
    __slots__ = ("event", "handed")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.handed = False  # a token was passed to it


class _Tokens:
    """
    The gate's concurrency tokens: a counter, and waiters in arrival order.

    Every attempt takes and returns one, so this is cheaper than anyio's
    ``CapacityLimiter`` (which tracks borrowers by task, a set operation and a
    task lookup each way): a free token is a decrement, a return an increment
    plus, when someone waits, one event set. Waiters are served first come,
    first served; a waiter cancelled after being handed a token passes it on.
    """

    __slots__ = ("_waiters", "borrowed", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.borrowed = 0
        self._waiters: deque[_Waiter] = deque()

    def take(self) -> bool:
        """Take a free token at once; False when none is free (or others wait)."""
        if self.borrowed < self.total and not self._waiters:
            self.borrowed += 1
            return True
        return False

    async def wait_and_take(self) -> None:
        """Wait for a token, first come, first served."""
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.handed:
                self.release()  # handed one while being cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Return a token: to the first waiter, if any."""
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.handed = True
            waiter.event.set()  # the token goes straight to it: borrowed unchanged
        else:
            self.borrowed -= 1


class _Slot:
    """
    `RequestGate.slot`: a concurrency token, then the account's rate.

    Every HTTP attempt passes here, so it avoids anyio's generic paths: a free
    token is taken at once (`_Tokens`, no scheduling checkpoint, no borrower
    bookkeeping; docs/performance.md). Only a full gate waits.

    Polls go first when the rate is scarce: a submit waits while any poll is
    waiting for the rate (finishing work frees slots on the server; new work
    takes them).
    """

    __slots__ = ("_gate", "_kind")

    def __init__(self, gate: RequestGate, kind: RequestKind) -> None:
        self._gate = gate
        self._kind = kind

    async def __aenter__(self) -> None:
        gate = self._gate
        limiter = gate._limiter
        if self._kind is RequestKind.SUBMIT and gate._polls_waiting:
            gate._submits_waiting += 1
            try:
                while gate._polls_waiting:
                    if gate._polls_done is None:
                        gate._polls_done = anyio.Event()
                    await gate._polls_done.wait()
            finally:
                gate._submits_waiting -= 1
        if not limiter.take():
            await limiter.wait_and_take()
        try:
            clock, rate = gate._clock, gate._rate
            shared = gate.shared
            wait = None if shared is None else await shared.reserve()
            now = clock.now()
            if wait is None:
                wait = rate.reserve(now)
            if wait > 0.0:
                await self._wait(now, wait)
        except BaseException:
            limiter.release()
            raise

    async def _wait(self, now: float, wait: float) -> None:
        gate = self._gate
        clock, rate = gate._clock, gate._rate
        poll = self._kind is RequestKind.POLL
        if poll:
            gate._polls_waiting += 1
        else:
            gate._submits_waiting += 1
        try:
            while wait > 0.0:
                await clock.sleep_until(now + wait)
                # A Retry-After may have arrived while we slept: honour it too.
                now = clock.now()
                wait = rate.blocked_for(now)
        finally:
            if not poll:
                gate._submits_waiting -= 1
            if poll:
                gate._polls_waiting -= 1
                if not gate._polls_waiting and gate._polls_done is not None:
                    gate._polls_done.set()
                    gate._polls_done = None

    async def __aexit__(self, *exc_info: object) -> None:
        self._gate._limiter.release()
