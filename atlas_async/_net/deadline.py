"""
`Deadline`: cancel a block of I/O after so many seconds, quietly.

The overall deadline of an HTTP attempt (``_net.session``) and of one output's
download (``_ops.download``): connect, send and the whole body together, so a
server that trickles one byte a second cannot hold a request open past it. It
runs on the event loop's clock, like the socket timeouts it stands beside.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from types import TracebackType
from typing import Any

import anyio

__all__ = ["Deadline", "Interruptible", "asyncio_timeouts"]


class Deadline:
    """
    ``async with Deadline(seconds)``: cancel the block after ``seconds``;
    ``expired`` says whether that is how it ended (the block then ends quietly).

    Every attempt enters one, so it is cheap where it can be: under asyncio on
    Python 3.11+ it is ``asyncio.timeout`` (half the cost of a cancel scope
    with a deadline), elsewhere anyio's ``move_on_after``; no limit, nothing.
    """

    __slots__ = ("_inner", "_seconds", "expired")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._inner: Any = None
        self.expired = False

    async def __aenter__(self) -> None:
        if self._seconds == math.inf:
            return
        if asyncio_timeouts():
            self._inner = _ASYNCIO_TIMEOUT(self._seconds)
            await self._inner.__aenter__()
        else:
            self._inner = anyio.move_on_after(self._seconds)
            self._inner.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._inner is None:
            return False
        self.expired = await _leave(self._inner, exc_type, exc, tb)
        return self.expired


def asyncio_timeouts() -> bool:
    """True under a running asyncio loop that has ``asyncio.timeout`` (3.11+)."""
    # The clock's own shortcut: anyio's backend lookup costs more per call.
    return _ASYNCIO_TIMEOUT is not None and asyncio._get_running_loop() is not None


async def _leave(
    inner: Any,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool:
    """
    Leave an ``asyncio.timeout`` or an anyio cancel scope; True when it is
    what ended the block (which then ends quietly), else the exception goes on.
    """
    if isinstance(inner, anyio.CancelScope):
        return bool(inner.__exit__(exc_type, exc, tb))
    try:
        await inner.__aexit__(exc_type, exc, tb)
    except TimeoutError:
        if not inner.expired():
            raise
        return True
    return False


_ASYNCIO_TIMEOUT: Any = getattr(asyncio, "timeout", None)  # Python 3.11+


class Interruptible:
    """
    ``async with Interruptible() as block``: ``block.interrupt()`` (from another
    task, or a callback) ends the block quietly, cancelling what it awaits.

    The scheduler wraps each poll in one, so ending a prediction abandons its
    poll in flight. Under asyncio on Python 3.11+ it is an ``asyncio.timeout``
    with no deadline, moved to now on `interrupt` (a third of an anyio cancel
    scope's cost, paid on every poll); elsewhere anyio's ``CancelScope``.
    """

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner: Any = None

    async def __aenter__(self) -> Interruptible:
        if asyncio_timeouts():
            self._inner = _ASYNCIO_TIMEOUT(None)
            await self._inner.__aenter__()
        else:
            self._inner = anyio.CancelScope()
            self._inner.__enter__()
        return self

    def interrupt(self) -> None:
        """End the block at its next await (no-op once it has ended)."""
        inner = self._inner
        if isinstance(inner, anyio.CancelScope):
            inner.cancel()
        elif inner is not None and not inner.expired():
            with contextlib.suppress(RuntimeError):  # already left
                inner.reschedule(-math.inf)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return await _leave(self._inner, exc_type, exc, tb)
