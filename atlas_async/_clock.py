"""
Time, injected. The scheduler and every retry loop read time and sleep only
through a `Clock`, so tests drive them with `atlas_async.testing.FakeClock` and
never sleep for real.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["AnyioClock", "Clock"]


@runtime_checkable
class Clock(Protocol):
    """
    Where the SDK reads the time and waits for it (in the style of trio's ``Clock``).

    ``now()`` returns seconds on a monotonic scale; ``sleep_until(deadline)``
    returns once ``now() >= deadline`` and is a cancellation point.
    """

    def now(self) -> float:
        """Return the current time in seconds (monotonic, arbitrary origin)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Wait until ``now() >= deadline``; return at once if it already is."""
        ...


class AnyioClock:
    """The real clock: the event loop's own monotonic time."""

    def now(self) -> float:
        """Return ``anyio.current_time()``."""
        # The scheduler and the HTTP layer read the time several times per
        # poll; anyio finds the backend through sniffio on every call. Under
        # asyncio anyio's answer is the running loop's time(): read it directly.
        loop = asyncio._get_running_loop()
        if loop is not None:
            return loop.time()
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep with ``anyio.sleep_until``."""
        await anyio.sleep_until(deadline)

    def __repr__(self) -> str:
        return "AnyioClock()"
