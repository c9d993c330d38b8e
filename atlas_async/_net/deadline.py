"""
`Interruptible` and `Deadline`: end a block of I/O early, quietly.

Both are plain (synchronous) context managers around code that awaits:
``with Interruptible() as block: await ...``. They are entered on every poll
(the scheduler abandons a poll through one; each HTTP attempt runs under a
deadline), so under asyncio they do the least that works: an interruption is
``task.cancel()`` on the block's task, and leaving the block takes that one
cancellation back (``task.uncancel()``), exactly what ``asyncio.timeout`` does,
without its coroutines, state machine and timer handle (``asyncio.timeout``
costs ~2.5 µs to enter and leave; this, ~0.5 µs: docs/performance.md). A
cancellation from outside (the task's own, or a task group's) is never
swallowed: the block ends quietly only when nothing but its own interruption
cancelled the task. Elsewhere (trio; asyncio before 3.11, which has no
``uncancel``) they are anyio cancel scopes.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

import anyio

__all__ = ["Deadline", "Interruptible", "asyncio_timeouts"]


def asyncio_timeouts() -> bool:
    """True under a running asyncio loop whose tasks can ``uncancel`` (3.11+)."""
    return _UNCANCEL and asyncio._get_running_loop() is not None


_UNCANCEL = hasattr(asyncio.Task, "uncancel")  # Python 3.11+

# The states of an asyncio block (small ints: compared on every poll).
_OPEN, _INTERRUPTED, _LEFT = 1, 2, 3


class Interruptible:
    """
    ``with Interruptible() as block``: ``block.interrupt()`` (from another task,
    a loop callback, or the block's own task) ends the block quietly at its
    next await, cancelling what it awaits.

    The scheduler wraps each poll in one, so ending a prediction abandons its
    poll in flight (each worker enters its own again for every poll: a block
    that has ended may be entered anew); the deadline wheel's `Watch` is one,
    which the wheel interrupts when its attempt runs past its time.

    Example::

        with Interruptible() as block:
            others_can_call = block.interrupt
            await something()
        if block.interrupted:
            ...   # something() was cancelled, and the block ended quietly
    """

    __slots__ = ("_cancelling", "_entries", "_scope", "_state", "_task", "interrupted")

    def __init__(self) -> None:
        self._task: asyncio.Task[object] | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancelling = 0
        self._state = 0
        self._entries = 0  # times entered: a block may be entered again
        #: True once the block was interrupted (whether or not that ended it).
        self.interrupted = False

    def __enter__(self) -> Interruptible:
        if asyncio_timeouts():
            self._open()
        else:
            self._scope = anyio.CancelScope().__enter__()
            self._state = _OPEN
            self.interrupted = False
        return self

    def _open(self) -> None:
        """Enter under asyncio (3.11+): the block is its task's."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Interruptible must be entered inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._state = _OPEN
        self._entries += 1
        self.interrupted = False

    def interrupt(self) -> None:
        """End the block at its next await (no-op once it has ended)."""
        if self._state is not _OPEN or self.interrupted:
            return
        self.interrupted = True
        if self._scope is not None:
            self._scope.cancel()
            return
        task = self._task
        assert task is not None
        loop = task.get_loop()
        if task is asyncio.current_task():
            # From inside the block: the task cannot be cancelled now, as the
            # block may end before its next await and leave the cancellation
            # armed for whatever the task awaits next. Cancel it once the
            # task has yielded, if the block is still open then.
            loop.call_soon(self._cancel_if_open, self._entries)
            return
        self._state = _INTERRUPTED
        task.cancel()

    def _cancel_if_open(self, entries: int) -> None:
        # Only the block that asked: not a later entry of the same one.
        if self._state is _OPEN and entries == self._entries and self._task:
            self._state = _INTERRUPTED
            self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        state, self._state = self._state, _LEFT
        scope = self._scope
        if scope is not None:
            return bool(scope.__exit__(exc_type, exc, tb))
        if state is not _INTERRUPTED:
            return False
        assert self._task is not None
        # Quiet only if no other cancellation came meanwhile: the task's own
        # (it is being cancelled) must go on.
        return self._task.uncancel() <= self._cancelling and (
            exc_type is not None and issubclass(exc_type, asyncio.CancelledError)
        )


class Deadline:
    """
    ``with Deadline(seconds) as deadline``: cancel the block after ``seconds``;
    ``expired`` says whether that is how it ended (the block then ends quietly).

    The overall deadline of an HTTP attempt where the session has no deadline
    wheel (trio, Python 3.10) and of one output's download: connect, send and
    the whole body together, so a server that trickles one byte a second
    cannot hold a request open past it. It runs on the event loop's clock, like
    the socket timeouts it stands beside. An infinite deadline is no block.
    """

    __slots__ = ("_block", "_scope", "_seconds", "_timer", "expired")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._block: Interruptible | None = None
        self._scope: anyio.CancelScope | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.expired = False

    def __enter__(self) -> Deadline:
        if self._seconds == math.inf:
            return self
        if asyncio_timeouts():
            self._block = Interruptible().__enter__()
            self._timer = asyncio.get_running_loop().call_later(
                self._seconds, self._block.interrupt
            )
        else:
            self._scope = anyio.move_on_after(self._seconds).__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._timer is not None:
            self._timer.cancel()
        if self._block is not None:
            self.expired = self._block.__exit__(exc_type, exc, tb)
        elif self._scope is not None:
            quiet = bool(self._scope.__exit__(exc_type, exc, tb))
            # trio's scope may say "suppress" for a block that raised nothing.
            self.expired = self._scope.cancelled_caught
            return quiet
        return self.expired
