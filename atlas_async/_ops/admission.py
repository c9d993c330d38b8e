"""
`ModelAdmission`: submits to one model wait, first in first out, for its window.

The pure `ModelWindows` (``_core.windows``) decides how many of a model's
predictions may be unfinished; this module makes submits wait for a place,
on the client's clock, up to their own deadline. A submit refused for
concurrency goes back to the head of its model's queue, so the order of a
batch is kept. Only submits to the same model ever wait here: other models and
every poll go on.

Each admitted submit ends in exactly one of `started` then (`finished` |
`refused` | `abandoned`), or `cancelled` if it never started.

A model whose limit is not known yet has no window, but its submits still go
out at most `FIRST_CONTACT` at a time (sent and not yet answered): when the
first refusal comes, at most that many are refused together, not every submit
of a batch (16 at once, with the default concurrency). Each answer lets the
next one go, so a model without a limit is never held back by more than one
round trip per `FIRST_CONTACT` submits.

With a coordinator's `SharedLimits`, the window that counts is the account's,
shared by every process: a submit admitted here then waits for a lease on one
of the model's shared places (`SharedLimits.take`), and gives it back with its
outcome. The local window then bounds nothing but a known limit (learning is
the shared window's); while the coordinator is unreachable, it decides again.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable

import anyio

from .._core.clock import Clock
from .._core.errors import RateLimitError
from .._core.flow import Limits
from .._core.models import Prediction
from .._core.retry import BackoffPolicy
from .._core.statistics import ModelFigures
from .._core.windows import ModelWindows, hurry_share
from .._net.coordinator import SharedLimits, SlotOutcome

__all__ = ["FIRST_CONTACT", "ModelAdmission"]

#: Submits to a model without a known or learned window that may be out at once.
FIRST_CONTACT = 4

# After a concurrency refusal with nothing of ours in flight on that model:
# 1 s, 2 s, 4 s, ... up to 30 s between tries.
_LONELY = BackoffPolicy(initial=1.0, factor=2.0, cap=30.0, jitter=0.2)


class ModelAdmission:
    """
    A FIFO queue per model in front of its window.

    Args:
        limits: known limits (a model's known in-flight limit is its starting
            window and ceiling).
        clock: where waits end at a deadline.
        rng: jitter of the backoff after a refusal with nothing in flight.
        shared: the model windows shared with other processes (a
            coordinator's), or None.
    """

    __slots__ = (
        "_admitting",
        "_clock",
        "_limits",
        "_queues",
        "_rng",
        "_sending",
        "_shared",
        "_windows",
        "submits_refused",
        "waited",
    )

    def __init__(
        self,
        limits: Limits | None,
        clock: Clock,
        rng: random.Random,
        *,
        shared: SharedLimits | None = None,
    ) -> None:
        self._windows = ModelWindows(limits)
        self._limits = limits if limits is not None else Limits()
        self._shared = shared
        self._clock = clock
        self._rng = rng
        self._queues: dict[str, deque[anyio.Event]] = {}
        # Woken (or admitted at once) and not started yet: they hold a place.
        self._admitting: Counter[str] = Counter()
        # Sent and not answered yet: bounded while a model's limit is unknown.
        self._sending: Counter[str] = Counter()
        #: Seconds submits have spent waiting for a place, all models together.
        self.waited = 0.0
        #: Submits the server refused (each tried again, or given up on).
        self.submits_refused = 0

    async def submit(
        self,
        model: str,
        send: Callable[[], Awaitable[Prediction]],
        *,
        give_up: float,
        check: Callable[[], None],
    ) -> Prediction:
        """
        One submit through ``model``'s window: wait for a place, ``send``; on a
        refusal wait again, first in line, until ``give_up`` (an absolute time).

        A refusal of the account's rate frees the place (the gate has slowed
        every request); one of the model's concurrency shrinks its window.
        ``check`` raises if the client closed while the submit waited.

        Raises:
            RateLimitError: still refused at ``give_up``; the message says what
                it waited for.
        """
        head, lonely = False, 0
        while True:
            if not await self.acquire(model, give_up, head=head) or (
                self._shared is not None and not await self._lease(model, give_up)
            ):
                raise RateLimitError(
                    f"model {model}: no place to submit before the prediction's"
                    f" deadline ({self.describe(model)})",
                    status_code=429,
                )
            try:
                check()
            except BaseException:
                self.cancelled(model)
                if self._shared is not None:
                    self._shared.release(model, SlotOutcome.ABANDONED)
                raise
            self.started(model)
            self._sending[model] += 1
            try:
                prediction = await send()
            except RateLimitError as refusal:
                self._answered(model)
                now = self._clock.now()
                self.submits_refused += 1
                if refusal.refused_by == "rate":
                    self.abandoned(model)
                else:
                    self.refused(model, now)
                    lonely += 1
                    if not self._windows.in_flight(model):
                        # Nothing of ours holds a place that could free one (the
                        # account's other clients do): back off, then try again.
                        wait = _LONELY.delay(lonely, rng=self._rng)
                        await self._clock.sleep_until(min(now + wait, give_up))
                        now = self._clock.now()
                if now >= give_up:
                    refusal.message = (
                        f"{refusal.message} (model {model}:"
                        f" {self.describe(model)}; gave up at the deadline)"
                    )
                    refusal.args = (refusal.message,)
                    raise
                head = True
            except BaseException:
                self._answered(model)
                self.abandoned(model)
                raise
            else:
                self._answered(model)
                self._wake(model)
                return prediction

    async def _lease(self, model: str, give_up: float) -> bool:
        """A shared place after the local one; False: the local one is given back."""
        assert self._shared is not None
        try:
            if await self._shared.take(model, give_up):
                return True
        except BaseException:
            self.cancelled(model)
            raise
        self.cancelled(model)
        return False

    def _answered(self, model: str) -> None:
        self._sending[model] -= 1
        if not self._sending[model]:
            del self._sending[model]

    def _free(self, model: str) -> bool:
        shared = self._shared
        if shared is not None and shared.active:
            # The shared window decides (in `take`); a known limit still bounds.
            window = self._limits.limit_for(model)
        else:
            window = self._windows.window(model)
        if window is None:
            return self._sending[model] + self._admitting[model] < FIRST_CONTACT
        return self._windows.in_flight(model) + self._admitting[model] < window

    async def acquire(self, model: str, deadline: float, *, head: bool = False) -> bool:
        """
        Wait for a place in ``model``'s window; False if ``deadline`` came first.

        ``head`` puts the caller first in line (a submit that was refused).
        """
        queue = self._queues.get(model)
        if not queue and self._free(model):
            self._admitting[model] += 1
            return True
        waiter = anyio.Event()
        queue = self._queues.setdefault(model, deque())
        if head:
            queue.appendleft(waiter)
        else:
            queue.append(waiter)
        started = self._clock.now()
        try:
            await self._wait(waiter, deadline)
        except BaseException:
            self._leave(model, waiter)
            raise
        finally:
            self.waited += self._clock.now() - started
        if waiter.is_set():
            return True
        self._leave(model, waiter)
        return False

    async def _wait(self, waiter: anyio.Event, deadline: float) -> None:
        if deadline == math.inf:
            await waiter.wait()
            return
        async with anyio.create_task_group() as group:

            async def alarm() -> None:
                await self._clock.sleep_until(deadline)
                group.cancel_scope.cancel()

            group.start_soon(alarm)
            await waiter.wait()
            group.cancel_scope.cancel()

    def _leave(self, model: str, waiter: anyio.Event) -> None:
        """A waiter gives up: out of the line, or its place goes to the next."""
        if waiter.is_set():
            self._admitting[model] -= 1
            self._wake(model)
            return
        queue = self._queues.get(model)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._queues[model]

    def _wake(self, model: str) -> None:
        queue = self._queues.get(model)
        while queue and self._free(model):
            self._admitting[model] += 1
            queue.popleft().set()
        if queue is not None and not queue:
            del self._queues[model]
        if not self._admitting[model]:
            del self._admitting[model]

    def started(self, model: str) -> None:
        """The admitted submit is going out now."""
        self._admitting[model] -= 1
        if not self._admitting[model]:
            del self._admitting[model]
        self._windows.started(model)

    def cancelled(self, model: str) -> None:
        """An admitted submit will not go out after all (never `started`)."""
        self._admitting[model] -= 1
        self._wake(model)

    def finished(self, model: str, now: float) -> None:
        """A prediction of ``model`` ended: its place goes to the next in line."""
        self._windows.finished(model, now)
        if self._shared is not None:
            self._shared.release(model, SlotOutcome.FINISHED)
        self._wake(model)

    def refused(self, model: str, now: float) -> None:
        """A started submit was refused for concurrency: the window shrinks."""
        self._windows.refused(model, now)
        if self._shared is not None:
            self._shared.release(model, SlotOutcome.REFUSED)
        self._wake(model)

    def abandoned(self, model: str) -> None:
        """A started submit ended without a prediction, for another reason."""
        self._windows.abandoned(model)
        if self._shared is not None:
            self._shared.release(model, SlotOutcome.ABANDONED)
        self._wake(model)

    def hurry(self, model: str | None) -> float:
        """
        The share of its poll interval for ``model`` now: below 1 while submits
        wait for its window (`hurry_share` of the line's length and the window).
        """
        queue = self._queues.get(model) if model is not None else None
        if model is None or not queue:
            return 1.0
        window = self._windows.window(model)
        if window is None:
            # No window: the line waits for answers to submits (first contact),
            # not for predictions to end, so polling sooner frees nothing.
            return 1.0
        return hurry_share(len(queue), window)

    def describe(self, model: str) -> str:
        """``"5 in flight, window 5"``: for the error of a submit that gave up."""
        window = self._windows.window(model)
        shown = "none" if window is None else str(window)
        return f"{self._windows.in_flight(model)} in flight, window {shown}"

    def figures(self) -> dict[str, ModelFigures]:
        """Each tracked model's window, in flight, queued submits and refusals."""
        figures = {
            model: ModelFigures(
                window=stats.window,
                in_flight=stats.in_flight,
                queued=len(self._queues.get(model, ())),
                refusals=stats.refusals,
                probes=stats.probes,
            )
            for model, stats in self._windows.statistics().items()
        }
        for model, queue in self._queues.items():
            if model not in figures:
                figures[model] = ModelFigures(
                    window=self._windows.window(model),
                    in_flight=0,
                    queued=len(queue),
                    refusals=0,
                    probes=0,
                )
        return figures

    def __repr__(self) -> str:
        queued = sum(len(queue) for queue in self._queues.values())
        return (
            f"<ModelAdmission models={len(self._windows.statistics())} queued={queued}>"
        )
