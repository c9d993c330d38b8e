"""The deadline wheel: every attempt's deadlines on one loop timer.

Deadlines of zero fall due on the loop's next turn, so these tests never wait
for time to pass.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from atlas_async._net.wheel import DeadlineWheel, wheel_available

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout"),
]


async def test_an_attempt_past_its_total_deadline_ends_quietly_saying_so() -> None:
    wheel = DeadlineWheel()
    with wheel.watch(0.0, read=3600.0) as watch:
        await asyncio.sleep(3600)
    assert watch.expired == "total"


async def test_an_attempt_quiet_past_its_read_deadline_ends_saying_read() -> None:
    wheel = DeadlineWheel()
    with wheel.watch(3600.0, read=0.0) as watch:
        await asyncio.sleep(3600)
    assert watch.expired == "read"


async def test_an_attempt_that_ends_in_time_is_not_interrupted() -> None:
    wheel = DeadlineWheel()
    with wheel.watch(3600.0, read=3600.0) as watch:
        await asyncio.sleep(0)
    assert watch.expired is None
    assert wheel.live == 0


async def test_progress_moves_the_read_deadline_on() -> None:
    wheel = DeadlineWheel()
    with wheel.watch(3600.0, read=600.0) as watch:
        before = watch.quiet_until
        await asyncio.sleep(0.001)
        watch.progress()
        assert watch.quiet_until > before
        assert watch.due == watch.quiet_until


async def test_a_cancellation_from_outside_is_not_taken_for_a_deadline() -> None:
    wheel = DeadlineWheel()

    async def attempt() -> None:
        with wheel.watch(3600.0):
            await asyncio.sleep(3600)

    task = asyncio.ensure_future(attempt())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_ended_attempts_do_not_pile_up_in_the_wheel() -> None:
    """Thousands of attempts with long deadlines leave a bounded heap."""
    wheel = DeadlineWheel()
    for _ in range(5_000):
        with wheel.watch(300.0, read=60.0):
            pass
    assert wheel.live == 0
    assert wheel.pending <= 2 * 1 + 64 + 1


async def test_one_expiry_among_many_ends_only_its_own_attempt() -> None:
    wheel = DeadlineWheel()
    ended: list[str] = []

    async def attempt(name: str, total: float) -> None:
        with wheel.watch(total) as watch:
            await asyncio.sleep(0 if total > 0 else 3600)
            await asyncio.sleep(0)
        ended.append(f"{name}:{watch.expired}")

    await asyncio.gather(attempt("a", 3600.0), attempt("b", 0.0), attempt("c", 3600.0))
    assert sorted(ended) == ["a:None", "b:total", "c:None"]


async def test_the_wheel_is_there_under_asyncio() -> None:
    assert wheel_available()
