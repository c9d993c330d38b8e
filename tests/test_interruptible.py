"""`Interruptible` and `Deadline`: blocks of I/O ended early, quietly.

Under asyncio 3.11+ they cancel the block's task and take that one
cancellation back on leaving; these tests pin that nothing else is swallowed
and nothing is left armed. Zero deadlines fall due on the loop's next turn, so
no test waits for time to pass.
"""

from __future__ import annotations

import asyncio
import math
import sys

import anyio
import anyio.lowlevel
import pytest

from atlas_async._net.deadline import Deadline, Interruptible


async def _forever() -> None:
    await anyio.sleep(3600)


@pytest.mark.anyio
async def test_an_interrupt_from_another_task_ends_the_block_quietly() -> None:
    after = []
    entered = anyio.Event()
    block = Interruptible()

    async def polled() -> None:
        with block:
            entered.set()
            await _forever()
        after.append("went on")

    async with anyio.create_task_group() as tg:
        tg.start_soon(polled)
        await entered.wait()
        block.interrupt()
    assert block.interrupted
    assert after == ["went on"]


@pytest.mark.anyio
async def test_a_block_nobody_interrupts_ends_as_its_code_does() -> None:
    with Interruptible() as block:
        await anyio.lowlevel.checkpoint()
    assert not block.interrupted
    with pytest.raises(KeyError), Interruptible():
        raise KeyError("mine")


@pytest.mark.asyncio
@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel")
async def test_a_cancellation_from_outside_is_never_swallowed() -> None:
    # The block is interrupted and its task cancelled by its owner too: the
    # owner's cancellation goes on.
    block = Interruptible()
    entered = asyncio.Event()

    async def polled() -> None:
        with block:
            entered.set()
            await _forever()

    task = asyncio.ensure_future(polled())
    await entered.wait()
    block.interrupt()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


@pytest.mark.asyncio
@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel")
async def test_an_interrupt_from_inside_leaves_no_cancellation_behind() -> None:
    # Interrupted by its own task, then left before any await: what the task
    # awaits next must not be cancelled by it.
    with Interruptible() as block:
        block.interrupt()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    # And one that does await after interrupting itself ends there, quietly.
    with Interruptible() as again:
        again.interrupt()
        await _forever()
    assert again.interrupted


@pytest.mark.anyio
async def test_an_interrupt_after_the_block_ended_is_a_no_op() -> None:
    with Interruptible() as block:
        await anyio.lowlevel.checkpoint()
    block.interrupt()
    await anyio.lowlevel.checkpoint()  # not cancelled
    assert block.interrupted is False


@pytest.mark.anyio
async def test_a_deadline_past_ends_the_block_quietly_saying_so() -> None:
    with Deadline(0.0) as deadline:
        await _forever()
    assert deadline.expired


@pytest.mark.anyio
async def test_a_deadline_not_reached_leaves_the_block_alone() -> None:
    with Deadline(3600.0) as deadline:
        await anyio.lowlevel.checkpoint()
    assert not deadline.expired
    with Deadline(math.inf) as unbounded:
        await anyio.lowlevel.checkpoint()
    assert not unbounded.expired


@pytest.mark.asyncio
@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel")
async def test_a_block_entered_again_is_not_hit_by_its_last_entrys_interrupt() -> None:
    # Interrupted from inside and left before the interruption landed: the
    # next entry of the same block (a worker's next poll) runs untouched.
    block = Interruptible()
    with block:
        block.interrupt()
    with block:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert not block.interrupted
    # And it can still be interrupted, from another task, like a fresh one.
    entered = asyncio.Event()

    async def polled() -> str:
        with block:
            entered.set()
            await _forever()
        return "went on"

    task = asyncio.ensure_future(polled())
    await entered.wait()
    block.interrupt()
    assert await task == "went on"
