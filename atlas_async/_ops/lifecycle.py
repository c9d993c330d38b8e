"""
`Lifecycle`: UNOPENED, then OPENED inside ``async with``, then CLOSED, for good.

The structured lifecycle of a client (httpx's ``ClientState``, trio's nurseries):
entering opens the resources (an exit stack) and one anyio task group where
background work runs; leaving stops the background work, waits for the task
group, then closes the resources. The loop that entered owns everything: a call
from another event loop is refused with a clear error. No ``__del__``: nothing
is ever closed on a loop that does not own it.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from .._core.errors import ClientClosedError, ClientStateError

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Lifecycle", "State"]


class State(enum.Enum):
    """Where a client is in its life."""

    UNOPENED = "unopened"  # built; ``async with`` not entered yet
    OPENED = "opened"  # inside ``async with``: the only state that sends requests
    CLOSED = "closed"  # ``async with`` has ended; a client is never reopened


class Lifecycle:
    """
    The state machine and the task group of one client.

    Args:
        name: how errors name the owner (``"AtlasClient"``).
    """

    __slots__ = ("_closing", "_loop", "_name", "_stack", "_task_group", "state")

    def __init__(self, name: str) -> None:
        self._name = name
        self.state = State.UNOPENED
        self._closing = False
        self._loop: anyio.lowlevel.EventLoopToken | None = None
        self._stack: AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    async def open(
        self,
        enter: Callable[[AsyncExitStack], Awaitable[None]],
        start: Callable[[anyio.abc.TaskGroup], Awaitable[None]],
    ) -> None:
        """
        ``enter(stack)`` opens the resources; ``start(task_group)`` starts the
        background work. On any failure everything started is stopped and
        closed, and the owner is CLOSED (half-open is never a state).
        """
        name = self._name
        if self.state is State.OPENED:
            raise ClientStateError(
                f"this {name} is already open: enter `async with` once per client"
            )
        if self.state is State.CLOSED:
            raise ClientClosedError(
                f"this {name} is closed and cannot be reopened: create a new {name}"
            )
        loop = anyio.lowlevel.current_token()
        stack = AsyncExitStack()
        try:
            await enter(stack)
            task_group = await stack.enter_async_context(anyio.create_task_group())
            self._loop, self._task_group = loop, task_group
            self.state = State.OPENED
            await start(task_group)
        except BaseException:
            # Resources such as httpx clients never reopen: stop whatever
            # background work did start, then close the rest.
            self.state = State.CLOSED
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()
            self._task_group = None
            await stack.aclose()
            raise
        self._stack = stack

    async def close(
        self,
        stop: Callable[[], Awaitable[None]],
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """
        ``stop()`` drains the background work (public calls already raise
        `ClientClosedError`); then the task group is cancelled and awaited, and
        the resources closed.
        """
        stack = self._stack
        if self.state is not State.OPENED or stack is None:
            raise ClientStateError(f"this {self._name} is not open")
        self._closing = True
        try:
            try:
                await stop()
                if self._task_group is not None:
                    self._task_group.cancel_scope.cancel()
            finally:
                # Task group first (background work may still send), then the rest.
                suppress = await stack.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # anyio wraps the block's own exception in a group: give the caller
            # back exactly what their code raised.
            if exc is not None and list(group.exceptions) == [exc]:
                return False
            raise
        finally:
            self.state = State.CLOSED
            self._stack = self._task_group = None
        return suppress

    def require_open(self) -> None:
        """Raise unless open, and called from the event loop that opened it."""
        name = self._name
        if self.state is State.UNOPENED:
            raise ClientStateError(
                f"this {name} is not open yet: use"
                f" `async with {name}() as client:` and call it inside the block"
            )
        if self.state is State.CLOSED or self._closing:
            raise ClientClosedError(
                f"this {name} is closed: its `async with` block has ended;"
                f" create a new {name}"
            )
        if anyio.lowlevel.current_token() != self._loop:
            raise ClientStateError(
                f"this {name} belongs to another event loop: a client can only"
                " be used from the loop (and thread) that entered `async with`;"
                " create one client per event loop"
            )

    def start_soon(
        self, function: Callable[[], Coroutine[Any, Any, object]], name: str
    ) -> None:
        """Run ``function`` in the task group (open, on this loop, or raise)."""
        self.require_open()
        if self._task_group is None:  # pragma: no cover - set whenever open
            raise AssertionError("unreachable")
        self._task_group.start_soon(function, name=name)
