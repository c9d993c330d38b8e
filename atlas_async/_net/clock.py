"""
The real clock: the event loop's monotonic time, and the system's wall time.

This is the one module of the SDK that reads the operating system's clocks;
everything else takes the injected `Clock` (``atlas_async._core.clock``).
"""

from __future__ import annotations

import asyncio
import time

import anyio

from .._core.clock import Clock

__all__ = ["AnyioClock", "Clock", "wall_time"]


def wall_time() -> float:
    """Seconds since the Unix epoch: the default ``wall`` of code given no clock."""
    return time.time()


class AnyioClock:
    """The real clock: the event loop's own monotonic time, and the system's wall."""

    def now(self) -> float:
        """Return the event loop's time (``anyio.current_time()``)."""
        # The scheduler and the HTTP layer read the time several times per
        # poll; anyio finds the backend through sniffio on every call. Under
        # asyncio anyio's answer is the running loop's time(): read it directly.
        loop = asyncio._get_running_loop()
        if loop is not None:
            return loop.time()
        try:
            return anyio.current_time()
        except RuntimeError:  # no event loop: any monotonic origin will do
            return time.monotonic()

    def wall(self) -> float:
        """Return ``time.time()``."""
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep with ``anyio.sleep_until``."""
        await anyio.sleep_until(deadline)

    def __repr__(self) -> str:
        return "AnyioClock()"
