"""The Scheduler's core behaviours under trio (anyio backend), on a FakeClock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from atlas_async import as_completed
from atlas_async._core.errors import (
    ClientClosedError,
    NotFoundError,
    PredictionCancelledError,
    PredictionTimeoutError,
    RateLimitError,
)
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import FixedPolicy
from atlas_async._net.gate import RequestGate
from atlas_async._ops.futures import PredictionFuture
from atlas_async._ops.scheduler import Scheduler
from atlas_async.testing import FakeClock, FakeSource

S = PredictionStatus


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


class TrioApi(FakeSource):
    """The scripted source, with the trio tests' own defaults and helpers."""

    def __init__(self) -> None:
        super().__init__(FakeClock())

    def times(self, pid: str) -> list[float]:
        return [t for t, p in self.fetches if p == pid]


@asynccontextmanager
async def running(api: TrioApi, **options: Any) -> AsyncIterator[Scheduler]:
    options.setdefault("poll", FixedPolicy(2.0))
    api.gate = gate = RequestGate(
        options.get("max_concurrent_requests", 16),
        options.pop("requests_per_second", None),
        api.clock,
    )
    sched = Scheduler(api, gate=gate, clock=api.clock, rng=random.Random(7), **options)
    async with api.clock.autojump(), anyio.create_task_group() as tg:
        await tg.start(sched.run)
        try:
            yield sched
        finally:
            await sched.aclose()


async def submit(
    sched: Scheduler,
    pid: str,
    timeout: float | None = None,
) -> PredictionFuture:
    return await sched.submit(Kind.IMAGE, "m", {"id": pid}, timeout=timeout)


@pytest.mark.anyio
class TestUnderTrio:
    async def test_poll_times_follow_the_policy(self) -> None:
        """Polls come every 2 s until the prediction completes."""
        api = TrioApi()
        api.scripts["a"] = [S.PROCESSING, S.PROCESSING, S.COMPLETED]
        async with running(api) as sched:
            prediction = await (await submit(sched, "a"))
        assert prediction.status is S.COMPLETED
        assert api.times("a") == [2.0, 4.0, 6.0]

    async def test_deadline_raises_timeout_with_last_status(self) -> None:
        """Past its deadline the future raises PredictionTimeoutError."""
        api = TrioApi()
        api.scripts["a"] = [S.PROCESSING]
        async with running(api) as sched:
            with pytest.raises(PredictionTimeoutError) as caught:
                await (await submit(sched, "a", timeout=5))
        assert (caught.value.prediction_id, caught.value.last_status) == (
            "a",
            S.PROCESSING,
        )

    async def test_cancel_stops_polling(self) -> None:
        """cancel() ends polling; awaiters get PredictionCancelledError."""
        api = TrioApi()
        api.scripts["a"] = [S.PROCESSING]
        async with running(api) as sched:
            future = await submit(sched, "a")
            await api.clock.sleep(3.0)
            future.cancel()
            with pytest.raises(PredictionCancelledError):
                await future
            await api.clock.sleep(10.0)
        assert api.times("a") == [2.0]

    async def test_retry_after_and_rate_budget(self) -> None:
        """A poll's 429 cuts the account's rate below the known one; the
        prediction still completes."""
        api = TrioApi()
        api.scripts["a"] = [RateLimitError("slow", status_code=429), S.COMPLETED]
        async with running(api, requests_per_second=4.0) as sched:
            future = await submit(sched, "a")
            await api.clock.sleep(2.5)
            rate = sched.statistics().requests_per_second
            assert rate is not None
            assert rate < 4.0
            assert (await future).status is S.COMPLETED
        assert sched.statistics().rate_refusals == 1

    async def test_404_grace_then_success(self) -> None:
        """A 404 inside the grace window is retried."""
        api = TrioApi()
        api.scripts["a"] = [NotFoundError("nf", status_code=404), S.COMPLETED]
        async with running(api) as sched:
            assert (await (await submit(sched, "a"))).status is S.COMPLETED

    async def test_many_awaiters_and_concurrency_bound(self) -> None:
        """Several awaiters share a result; requests never exceed the limit."""
        api = TrioApi()
        api.latency = 0.5
        results: list[Prediction] = []
        async with running(api, max_concurrent_requests=2) as sched:
            futures: list[PredictionFuture] = []

            async def go(pid: str) -> None:
                futures.append(await submit(sched, pid))

            async with anyio.create_task_group() as tg:
                for i in range(6):
                    tg.start_soon(go, f"p{i}")

            async def waiter() -> None:
                results.append(await futures[0])

            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(waiter)
            async for _ in as_completed(futures):
                pass
        assert len(results) == 4
        assert all(r is results[0] for r in results)
        assert api.max_concurrent == 2

    async def test_max_in_flight_makes_submit_wait(self) -> None:
        """With one slot, the second submit waits for the first to finish."""
        api = TrioApi()
        async with running(api, max_in_flight=1) as sched:
            await submit(sched, "a")
            await submit(sched, "b")
            assert api.clock.now() == 4.0

    async def test_shutdown_fails_pending_and_leaves_no_task(self) -> None:
        """Closing fails pending futures with ClientClosedError."""
        api = TrioApi()
        api.scripts["a"] = [S.PROCESSING]
        async with running(api) as sched:
            future = await submit(sched, "a")
            await api.clock.sleep(3.0)
        with pytest.raises(ClientClosedError):
            await future
        assert sched.statistics().in_flight == 0

    async def test_thousand_predictions_resolve(self) -> None:
        """A thousand predictions all complete, each once."""
        api = TrioApi()
        async with running(api, max_concurrent_requests=32) as sched:
            futures = [await submit(sched, f"p{i}") for i in range(1000)]
            ids = [f.id async for f in as_completed(futures)]
        assert sorted(ids) == sorted(f"p{i}" for i in range(1000))
        assert sched.statistics().completed == 1000
