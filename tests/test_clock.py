"""The real clock reads the event loop's time, under asyncio and trio alike."""

from __future__ import annotations

import anyio
import pytest

from atlas_async._net.clock import AnyioClock


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_now_is_the_event_loops_time(anyio_backend: str) -> None:
    """AnyioClock.now() reads the same clock anyio sleeps on, on both backends."""
    clock = AnyioClock()
    before = anyio.current_time()
    now = clock.now()
    assert before <= now <= anyio.current_time()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_sleep_until_returns_once_the_deadline_passed(anyio_backend: str) -> None:
    """sleep_until(deadline) returns no earlier than the deadline on now()."""
    clock = AnyioClock()
    deadline = clock.now() + 0.01
    await clock.sleep_until(deadline)
    assert clock.now() >= deadline
