"""
The moment a submit really goes out, told to whoever asked.

A batch must record an item as "sending" *before* its request can reach the
server (or a crash would lose a prediction that bills), but not while the
submit still waits for its model's window or the account's rate (or a crash
would leave items "unknown" that never left). Only the session knows the
moment: it has the slot and the token, and the next thing it does is send.

The batch sets a hook for the submit it makes with `on_send`; the session calls
`send_hook` just before each attempt of a submit leaves, with its send window.
A context variable carries it: the submit runs in the task that set it,
through the scheduler and the model's queue, so no layer in between has to
pass it along, and a hook never leaks to another task's submit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["SendHook", "on_send", "send_hook"]

SendHook = Callable[[float, float], Awaitable[None]]
"""``hook(sent_after, sent_before)``: wall times (Unix seconds) between which
the server may receive the request; awaited before it leaves."""

_HOOK: ContextVar[SendHook | None] = ContextVar("atlas_async_send_hook", default=None)


@contextmanager
def on_send(hook: SendHook) -> Iterator[None]:
    """
    Call ``hook`` before each attempt of a submit made inside this block.

    Example::

        async def sending(after: float, before: float) -> None:
            await journal.mark_submitting(index, sent_after=after, sent_before=before)

        with on_send(sending):
            future = await client.submit(kind, model, params)
    """
    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)


def send_hook() -> SendHook | None:
    """The hook of the submit being made now, if any."""
    return _HOOK.get()
