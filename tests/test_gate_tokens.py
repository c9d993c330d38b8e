"""The gate's concurrency tokens: a full gate queues attempts first come, first
served, and a waiter that is cancelled never loses or keeps a token."""

from __future__ import annotations

import anyio
import pytest

from atlas_async._core.windows import RequestKind
from atlas_async._net.gate import RequestGate
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.anyio


async def hold(
    gate: RequestGate, name: str, order: list[str], release: anyio.Event
) -> None:
    async with gate.slot(RequestKind.POLL):
        order.append(name)
        await release.wait()


async def test_a_full_gate_admits_waiters_in_arrival_order() -> None:
    gate = RequestGate(1, None, FakeClock())
    order: list[str] = []
    releases = {name: anyio.Event() for name in "abc"}
    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(hold, gate, name, order, releases[name])
            await anyio.wait_all_tasks_blocked()
        assert order == ["a"]
        assert gate.figures().concurrent_requests == 1
        releases["a"].set()
        await anyio.wait_all_tasks_blocked()
        assert order == ["a", "b"]
        releases["b"].set()
        await anyio.wait_all_tasks_blocked()
        assert order == ["a", "b", "c"]
        releases["c"].set()
    assert gate.figures().concurrent_requests == 0


async def test_a_cancelled_waiter_leaves_the_queue_without_a_token() -> None:
    gate = RequestGate(1, None, FakeClock())
    order: list[str] = []
    releases = {name: anyio.Event() for name in "abc"}
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, gate, "a", order, releases["a"])
        await anyio.wait_all_tasks_blocked()
        async with anyio.create_task_group() as gives_up:
            gives_up.start_soon(hold, gate, "b", order, releases["b"])
            await anyio.wait_all_tasks_blocked()
            gives_up.cancel_scope.cancel()  # "b" gives up while waiting
        tg.start_soon(hold, gate, "c", order, releases["c"])
        await anyio.wait_all_tasks_blocked()
        releases["a"].set()
        await anyio.wait_all_tasks_blocked()
        assert order == ["a", "c"]
        assert gate.figures().concurrent_requests == 1
        releases["c"].set()
    assert gate.figures().concurrent_requests == 0


async def test_a_waiter_cancelled_as_its_token_arrives_never_strands_it() -> None:
    """Whether the cancel lands before or after the hand-over, the next waiter
    gets the token and none is left borrowed."""
    gate = RequestGate(1, None, FakeClock())
    order: list[str] = []
    releases = {name: anyio.Event() for name in "abc"}
    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as doomed:

            async def hand_over_then_cancel_b() -> None:
                async with gate.slot(RequestKind.POLL):
                    order.append("a")
                    await releases["a"].wait()
                # The token has just gone to "b", which has not run yet.
                doomed.cancel_scope.cancel()

            tg.start_soon(hand_over_then_cancel_b)
            await anyio.wait_all_tasks_blocked()
            doomed.start_soon(hold, gate, "b", order, releases["b"])
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(hold, gate, "c", order, releases["c"])
            await anyio.wait_all_tasks_blocked()
            releases["a"].set()
        await anyio.wait_all_tasks_blocked()
        assert order in (["a", "c"], ["a", "b", "c"])
        assert gate.figures().concurrent_requests == 1
        releases["c"].set()
    assert gate.figures().concurrent_requests == 0


async def test_a_poll_is_admitted_at_once_only_while_a_token_is_free() -> None:
    gate = RequestGate(2, None, FakeClock())
    assert gate.admit_now(RequestKind.POLL, 0.0)
    assert gate.admit_now(RequestKind.POLL, 0.0)
    # Full: nothing is taken, and the caller waits in slot() instead.
    assert not gate.admit_now(RequestKind.POLL, 0.0)
    assert gate.figures().concurrent_requests == 2
    gate.leave()
    assert gate.figures().concurrent_requests == 1
    assert gate.admit_now(RequestKind.POLL, 0.0)
    gate.leave()
    gate.leave()
    assert gate.figures().concurrent_requests == 0


async def test_no_poll_is_admitted_at_once_ahead_of_a_waiter() -> None:
    gate = RequestGate(1, None, FakeClock())
    order: list[str] = []
    release = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, gate, "a", order, release)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(hold, gate, "b", order, release)
        await anyio.wait_all_tasks_blocked()
        assert not gate.admit_now(RequestKind.POLL, 0.0)
        release.set()
    assert order == ["a", "b"]
    assert gate.figures().concurrent_requests == 0


async def test_a_poll_the_rate_would_hold_back_is_not_admitted_at_once() -> None:
    # 1 request/s and no burst beyond it: the second in the same instant waits.
    gate = RequestGate(4, 1.0, FakeClock())
    assert gate.admit_now(RequestKind.POLL, 10.0)
    assert not gate.admit_now(RequestKind.POLL, 10.0)
    # Nothing was taken by the refusal: one token is held, one request counted.
    assert gate.figures().concurrent_requests == 1
    assert gate.admit_now(RequestKind.POLL, 11.0)


async def test_a_retry_after_holds_back_every_poll_until_it_ends() -> None:
    clock = FakeClock()
    gate = RequestGate(4, None, clock)
    gate.record(503, 5.0, RequestKind.POLL, now=0.0)
    assert not gate.admit_now(RequestKind.POLL, 4.9)
    assert gate.admit_now(RequestKind.POLL, 5.0)
