"""
`DeadlineWheel`: every in-flight attempt's deadlines on one timer.

Each HTTP attempt has an overall deadline (``Timeouts.total``) and, on the
aiohttp backend, a read deadline that moves on with every piece of the answer
(``Timeouts.read``). Armed the usual way, that is two or three event-loop
timers per request, created and cancelled within a millisecond, which pile up
in the loop's timer heap (cancelled timers stay there until their time or a
clean-up) and make every later timer dearer: several microseconds per poll
(docs/performance.md, "CPU per poll").

The wheel keeps its own heap of ``(when, order, watch)`` and one loop timer for
the earliest. A new attempt pushes one entry (its deadlines only move later, so
the armed timer rarely changes); an attempt that ends just marks its watch done.
When the timer fires, the wheel looks at what is due: a watch that is done is
dropped, one whose read deadline moved on is pushed again at its new time, and
the rest are interrupted through the `Interruptible` block each watch holds.
``Watch.expired`` then says which deadline ended the attempt.

Asyncio only (Python 3.11+, for ``asyncio.timeout``); the session keeps
`Deadline` elsewhere.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from types import TracebackType
from typing import Literal

from .deadline import Interruptible, asyncio_timeouts

__all__ = ["DeadlineWheel", "Expired", "Watch", "wheel_available"]

Expired = Literal["total", "read"] | None


def wheel_available() -> bool:
    """True when the running loop is asyncio and has ``asyncio.timeout``."""
    return asyncio_timeouts()


class Watch(Interruptible):
    """
    One attempt's deadlines: ``with wheel.watch(total, read) as watch``.

    An `Interruptible` block the wheel interrupts when a deadline falls.

    Attributes:
        expired: ``"total"`` or ``"read"`` when that deadline ended the block
            (which then ends quietly), else None.
    """

    __slots__ = ("_read", "_wheel", "done", "ends", "expired", "quiet_until")

    def __init__(self, wheel: DeadlineWheel, total: float, read: float | None) -> None:
        Interruptible.__init__(self)
        self._wheel = wheel
        self._read = read
        now = wheel.loop.time()
        self.ends = now + total
        self.quiet_until = math.inf if read is None else now + read
        self.done = False
        self.expired: Expired = None

    def progress(self) -> None:
        """A piece of the answer came: the read deadline starts again."""
        if self._read is not None:
            self.quiet_until = self._wheel.loop.time() + self._read

    @property
    def due(self) -> float:
        """When the earlier of the two deadlines falls."""
        return min(self.ends, self.quiet_until)

    def __enter__(self) -> Watch:
        # A wheel runs only under asyncio 3.11+: no need to ask which loop.
        self._open()
        self._wheel.add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.done = True
        self._wheel.live -= 1
        return Interruptible.__exit__(self, exc_type, exc, tb)

    def expire(self, why: Literal["total", "read"]) -> None:
        """End the block now, for ``why`` (the wheel's call)."""
        if self.done or self.expired is not None:
            return
        self.expired = why
        self.interrupt()


class DeadlineWheel:
    """
    The deadlines of every attempt of one session, on one loop timer.

    Build it inside the running asyncio loop (the session does, when it opens).

    Example::

        wheel = DeadlineWheel()
        with wheel.watch(300.0, read=60.0) as watch:
            ...                 # watch.progress() as pieces arrive
        if watch.expired:       # "total" or "read"
            ...
    """

    __slots__ = ("_armed", "_handle", "_heap", "_order", "live", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = 0
        self._handle: asyncio.TimerHandle | None = None
        self._armed = math.inf
        self.live = 0  # watches entered and not yet left

    def watch(self, total: float, read: float | None = None) -> Watch:
        """Deadlines for one attempt: ``total`` seconds, and ``read`` quiet."""
        return Watch(self, total, read)

    def add(self, watch: Watch) -> None:
        """Start keeping ``watch``'s deadlines (its ``__enter__`` calls this)."""
        self.live += 1
        heap = self._heap
        if len(heap) > 2 * self.live + 64:
            # Ended attempts stay in the heap until their time; drop them
            # once they outnumber the live ones (each is dropped once: O(1)
            # per attempt, however long the deadlines).
            heap[:] = [entry for entry in heap if not entry[2].done]
            heapq.heapify(heap)
        when = min(watch.ends, watch.quiet_until)
        self._order += 1
        heapq.heappush(heap, (when, self._order, watch))
        if when < self._armed:
            self._arm(when)

    @property
    def pending(self) -> int:
        """Entries in the wheel's heap, ended attempts not yet dropped included."""
        return len(self._heap)

    def close(self) -> None:
        """Stop the timer; every watch still open keeps running without limit."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._heap.clear()
        self._armed = math.inf

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed = math.inf
        heap, now = self._heap, self.loop.time()
        while heap and heap[0][0] <= now:
            _, _, watch = heapq.heappop(heap)
            if watch.done:
                continue
            if watch.ends <= now:
                watch.expire("total")
            elif watch.quiet_until <= now:
                watch.expire("read")
            else:  # its read deadline moved on: keep it at its new time
                self._order += 1
                heapq.heappush(heap, (watch.due, self._order, watch))
        # Drop ended attempts from the top, so the timer is armed for a live one.
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])
