"""The adaptive policy on a learned duration distribution (pure, no clock)."""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest

from atlas_async._core.durations import Distribution, DurationModel
from atlas_async._core.errors import InvalidArgumentError
from atlas_async._core.policies import AdaptivePolicy


def _learned(durations: list[float]) -> DurationModel:
    model = DurationModel.from_range(2.0, 10.0)
    for seconds in durations:
        model.observe(seconds)
    return model


def _times(policy: AdaptivePolicy, model: DurationModel, until: float) -> list[float]:
    plan = policy.plan(model)
    rng = random.Random(3)
    t = plan.delay(0.0, 0, rng)
    times = [t]
    while t < until:
        t += plan.delay(t, len(times), rng)
        times.append(t)
    return times


def test_survival_is_one_before_the_shortest_and_small_past_the_longest() -> None:
    shape = Distribution((2.0, 4.0, 6.0, 8.0))
    assert shape.survival(1.0) == 1.0
    assert shape.survival(2.0) == 1.0
    assert shape.survival(3.0) == pytest.approx(1.0 - 0.5 / 4)
    assert shape.survival(8.0) == pytest.approx(0.25)
    assert shape.survival(20.0) < 0.01


def test_chance_is_conditional_on_running_at_the_start() -> None:
    shape = Distribution((2.0, 4.0, 6.0, 8.0))
    assert shape.chance(0.0, 2.0) == 0.0
    assert shape.chance(4.0, 6.0) == pytest.approx(0.25 / 0.75)


def test_interval_times_its_chance_is_the_resolution() -> None:
    shape = Distribution(tuple(float(x) for x in range(2, 11)))
    d = shape.interval(5.0, 0.2, 0.01, 60.0)
    assert d * shape.chance(5.0, 5.0 + d) == pytest.approx(0.2, rel=0.02)


def test_interval_is_clamped_to_floor_and_cap() -> None:
    shape = Distribution((2.0, 2.001, 2.002))
    assert shape.interval(2.0, 0.2, 0.5, 60.0) == 0.5
    sparse = Distribution((1.0, 1000.0))
    assert sparse.interval(1.0, 50.0, 0.5, 3.0) == 3.0


def test_no_poll_before_the_shortest_duration_ever_seen() -> None:
    model = _learned([4.0 + 0.1 * i for i in range(40)])
    times = _times(AdaptivePolicy(), model, 8.0)
    assert times[0] >= 4.0


def test_polls_are_evenly_spaced_where_the_density_is_flat() -> None:
    # Flat density: the intervals change only as the survivors thin out
    # (sqrt of the share still running, 0.95 to 0.55 here: about 1.3x).
    model = _learned([10.0 + i * 40.0 / 64 for i in range(64)])
    times = _times(AdaptivePolicy(jitter=0.0), model, 30.0)
    gaps = [b - a for a, b in pairwise(times) if 12.0 < a < 28.0]
    assert len(gaps) >= 3
    assert max(gaps) / min(gaps) < 1.5


def test_polls_crowd_where_the_density_peaks() -> None:
    # Half the mass in 20-21 s, the rest spread over 10-50 s.
    peak = [20.0 + i / 32 for i in range(32)]
    spread = [10.0 + i * 40.0 / 32 for i in range(32)]
    model = _learned(peak + spread)
    times = _times(AdaptivePolicy(jitter=0.0), model, 30.0)
    in_peak = [b - a for a, b in pairwise(times) if 19.5 <= a <= 21.0]
    before = [b - a for a, b in pairwise(times) if 11.0 <= a <= 18.0]
    assert in_peak
    assert before
    assert max(in_peak) < min(before) / 2


def test_too_few_completions_keep_the_log_normal_plan() -> None:
    model = _learned([5.0, 6.0, 7.0])
    assert model.distribution(16) is None
    plan = AdaptivePolicy().plan(model)
    assert plan.delay(0.0, 0, random.Random(1)) <= model.low


def test_learned_zero_turns_the_distribution_off() -> None:
    model = _learned([5.0] * 40)
    plan = AdaptivePolicy(learned=0, jitter=0.0).plan(model)
    assert plan.delay(0.0, 0, random.Random(1)) == pytest.approx(model.low)


def test_the_model_chance_follows_recent_durations() -> None:
    model = _learned([6.0 + 0.01 * i for i in range(30)])
    assert model.chance(1.0, 5.0) == 0.0
    assert model.chance(5.0, 7.0) > 0.9
    fresh = DurationModel.from_range(2.0, 10.0)
    assert 0.0 < fresh.chance(2.0, 5.0) < 1.0
    assert math.isclose(fresh.chance(0.0, 1e9), 1.0)


def test_bad_resolution_and_learned_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        AdaptivePolicy(resolution=0.0)
    with pytest.raises(InvalidArgumentError):
        AdaptivePolicy(learned=-1)


@pytest.mark.parametrize("t", [2.0, 3.3, 5.05, 7.9, 9.5])
def test_interval_holds_with_durations_seen_twice(t: float) -> None:
    shape = Distribution((2.0, 3.0, 3.0, 3.0, 5.0, 5.1, 5.1, 8.0, 9.0, 10.0))
    d = shape.interval(t, 0.3, 0.01, 60.0)
    assert d * shape.chance(t, t + d) == pytest.approx(0.3, rel=0.02)


def test_a_cap_inside_a_wide_segment_is_kept() -> None:
    shape = Distribution((1.0, 100.0, 101.0))
    assert shape.interval(1.0, 5.0, 0.5, 3.0) == 3.0
