"""The scheduler under a model's in-flight limit and the account's rate, on a
FakeClock: windows, refusals that wait instead of failing, attribution."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from atlas_async import Limits, RateLimitError
from atlas_async._core.models import Kind, PredictionStatus
from atlas_async._core.policies import FixedPolicy
from atlas_async._net.gate import RequestGate
from atlas_async._ops.futures import PredictionFuture
from atlas_async._ops.scheduler import Scheduler
from atlas_async.testing import FakeClock, FakeSource

pytestmark = pytest.mark.asyncio

S = PredictionStatus
VIDEO, IMAGE = "video/model", "image/model"


@asynccontextmanager
async def running(
    source: FakeSource, *, limits: Limits | None = None, **options: Any
) -> AsyncIterator[Scheduler]:
    """A scheduler and its gate on ``source``, on autojump, closed on exit."""
    gate = RequestGate(
        16, None if limits is None else limits.requests_per_second, source.clock
    )
    source.gate = gate
    options.setdefault("poll", FixedPolicy(1.0))
    scheduler = Scheduler(
        source,
        gate=gate,
        clock=source.clock,
        rng=random.Random(3),
        limits=limits,
        **options,
    )
    async with source.clock.autojump(), anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        try:
            yield scheduler
        finally:
            await scheduler.aclose()


async def submit_all(
    scheduler: Scheduler, model: str, count: int, *, timeout: float = 3600.0
) -> list[PredictionFuture]:
    """Submit ``count`` predictions at once, each from its own task."""
    futures: list[PredictionFuture] = []

    async def one() -> None:
        futures.append(await scheduler.submit(Kind.VIDEO, model, {}, timeout=timeout))

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return futures


class TestModelWindow:
    async def test_a_limited_model_is_never_overrun_and_nothing_fails(self) -> None:
        """24 submits to a model limited to 4: all complete, at most 4 run at once,
        and the refusals are a handful (the first, then about one per probe)."""
        source = FakeSource(FakeClock())
        source.in_flight_limit[VIDEO] = 4
        source.default = (S.PROCESSING, S.PROCESSING, S.COMPLETED)
        async with running(source) as scheduler:
            futures = await submit_all(scheduler, VIDEO, 24)
            results = [await future for future in futures]
            stats = scheduler.statistics()
        assert [r.status for r in results] == [S.COMPLETED] * 24
        assert source.peak_running[VIDEO] == 4
        # The first refusal shows the limit; each probe above it costs one more.
        assert 1 <= source.refused <= 1 + stats.models[VIDEO].probes + 1
        assert stats.window_refusals == source.refused
        assert stats.rate_refusals == 0
        assert stats.models[VIDEO].window in (4, 5)  # a last probe finds no work
        assert stats.models[VIDEO].in_flight == 0

    async def test_a_known_limit_is_never_probed_past(self) -> None:
        """With the model's limit given, no submit is ever refused."""
        source = FakeSource(FakeClock())
        source.in_flight_limit[VIDEO] = 3
        async with running(source, limits=Limits(in_flight={VIDEO: 3})) as scheduler:
            futures = await submit_all(scheduler, VIDEO, 12)
            for future in futures:
                await future
            stats = scheduler.statistics()
        assert source.refused == 0
        assert source.peak_running[VIDEO] == 3
        assert stats.models[VIDEO].window == 3
        assert stats.waited_for_slots > 0

    async def test_another_model_is_not_slowed_by_a_full_window(self) -> None:
        """Images on a free model finish on their own schedule while a video
        model sits at its limit; no poll waits for the video model."""
        clock = FakeClock()
        source = FakeSource(clock)
        source.in_flight_limit[VIDEO] = 2
        source.default = (S.PROCESSING,) * 30 + (S.COMPLETED,)  # 31 s videos
        async with running(source) as scheduler:
            videos = await submit_all(scheduler, VIDEO, 2)
            waiting: list[PredictionFuture] = []

            async def third_video() -> None:
                waiting.append(
                    await scheduler.submit(Kind.VIDEO, VIDEO, {}, timeout=3600)
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(third_video)
                await clock.sleep(0.5)
                source.scripts["img"] = [S.COMPLETED]
                started = clock.now()
                image = await scheduler.submit(
                    Kind.IMAGE, IMAGE, {"id": "img"}, timeout=60
                )
                assert (await image).status is S.COMPLETED
                assert clock.now() - started == pytest.approx(1.0)
            for future in [*videos, *waiting]:
                await future
        assert source.peak_running[VIDEO] == 2

    async def test_a_refused_submit_gives_up_only_at_its_deadline(self) -> None:
        """A submit that can never get a place raises RateLimitError at its own
        deadline, saying what it waited for; nothing is created."""
        clock = FakeClock()
        source = FakeSource(clock)
        source.in_flight_limit[VIDEO] = 1
        source.default = (S.PROCESSING,)  # never finishes
        async with running(source) as scheduler:
            first = await scheduler.submit(Kind.VIDEO, VIDEO, {}, timeout=None)
            with pytest.raises(RateLimitError, match="window 1") as info:
                await scheduler.submit(Kind.VIDEO, VIDEO, {}, timeout=30)
            assert clock.now() == pytest.approx(30.0, abs=1.0)
            first.cancel()
        assert info.value.status_code == 429
        assert len(source.created) == 1


class TestAttribution:
    async def test_a_poll_refusal_cuts_the_rate_not_a_window(self) -> None:
        """A 429 on a poll is the account's rate: the rate drops, no window does."""
        source = FakeSource(FakeClock())
        source.script(
            "a", RateLimitError("rate limit exceeded", status_code=429), S.COMPLETED
        )
        async with running(source, limits=Limits(requests_per_second=10.0)) as sched:
            future = await sched.submit(Kind.IMAGE, IMAGE, {"id": "a"}, timeout=60)
            assert (await future).status is S.COMPLETED
            stats = sched.statistics()
        assert (stats.rate_refusals, stats.window_refusals) == (1, 0)
        assert stats.requests_per_second is not None
        assert stats.requests_per_second < 10.0
        assert stats.models[IMAGE].window is None


async def test_the_cli_progress_names_models_waiting_for_a_slot() -> None:
    """The batch progress line says which model's window holds submits back."""
    from atlas_async import ModelFigures
    from atlas_async._cli.live import waiting_for_slots

    models = {
        VIDEO: ModelFigures(window=5, in_flight=5, queued=3, refusals=1, probes=0),
        IMAGE: ModelFigures(window=None, in_flight=9, queued=0, refusals=0, probes=0),
    }
    assert waiting_for_slots(models) == f"  waiting for a slot on {VIDEO} (5/5)"
    assert waiting_for_slots({}) == ""


async def test_predictions_are_polled_more_densely_while_submits_wait_behind_them() -> (
    None
):
    """One place, three submits: the first video's polls come closer together
    while two submits wait for its place; the last one, with nothing behind it,
    keeps the plan's own spacing."""
    source = FakeSource(FakeClock())
    source.default = (S.PROCESSING,) * 3 + (S.COMPLETED,)
    limits = Limits(in_flight={VIDEO: 1})
    async with running(source, limits=limits, poll=FixedPolicy(4.0, jitter=0.0)) as s:
        futures = await submit_all(s, VIDEO, 3)
        for future in futures:
            await future
    first, last = source.fetch_times(futures[0].id), source.fetch_times(futures[-1].id)
    gaps = [b - a for a, b in itertools.pairwise(first)]
    calm = [b - a for a, b in itertools.pairwise(last)]
    assert gaps == pytest.approx([4.0 / 3**0.5] * 3, abs=0.01)  # 2 queued, window 1
    assert calm == pytest.approx([4.0] * 3, abs=0.01)


async def test_a_model_without_a_window_keeps_its_spacing_while_submits_queue() -> None:
    """Submits to a model with no known or learned limit queue only for first
    contact (4 sent at a time): that line waits for answers, not for places,
    so its predictions are polled at the plan's own spacing."""
    source = FakeSource(FakeClock())
    source.latency = 1.0  # submits stay unanswered long enough to queue
    source.default = (S.PROCESSING,) * 3 + (S.COMPLETED,)
    async with running(source, poll=FixedPolicy(4.0, jitter=0.0)) as s:
        futures = await submit_all(s, IMAGE, 40)
        for future in futures:
            await future
    gaps = [b - a for a, b in itertools.pairwise(source.fetch_times(futures[0].id))]
    assert gaps == pytest.approx([5.0] * 3, abs=0.01)  # 4 s apart + 1 s to answer
