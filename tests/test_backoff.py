"""Poll policies, learned durations and the retry delay: pure, explicit time."""

from __future__ import annotations

import math
import random

import attrs
import pytest

from atlas_async._core.models import Kind
from atlas_async._core.policies import (
    KIND_PRIORS,
    AdaptivePolicy,
    BackoffPolicy,
    DurationBook,
    DurationModel,
    ExponentialPolicy,
    FixedPolicy,
    PollPolicy,
    RevisedPlan,
)
from atlas_async._core.retry import grow

VIDEO = DurationModel.from_range(30.0, 180.0)
IMAGE = DurationModel.from_range(2.0, 10.0)


def poll_times(
    policy: PollPolicy, durations: DurationModel, n: int, seed: int = 7
) -> list[float]:
    """The first ``n`` poll times (seconds after submission) of one prediction."""
    plan = policy.plan(durations)
    rng = random.Random(seed)
    t = plan.delay(0.0, 0, rng)
    times = [t]
    for polls in range(1, n):
        t += plan.delay(t, polls, rng)
        times.append(t)
    return [round(x, 4) for x in times]


class TestPollTimes:
    @pytest.mark.parametrize(
        ("policy", "durations", "expected"),
        [
            pytest.param(
                FixedPolicy(2.0), IMAGE, [2.0, 4.0, 6.0, 8.0, 10.0], id="fixed-2s"
            ),
            pytest.param(
                FixedPolicy(5.0, first=1.0, jitter=0.1),
                IMAGE,
                [0.9648, 5.6156, 10.7666, 15.339, 20.3749],
                id="fixed-5s-jittered",
            ),
            pytest.param(
                ExponentialPolicy(first=1.0, factor=2.0, cap=8.0, jitter=0.0),
                IMAGE,
                [1.0, 3.0, 7.0, 15.0, 23.0],
                id="exponential-capped",
            ),
            pytest.param(
                AdaptivePolicy(),
                VIDEO,
                [29.0285, 32.8878, 37.1621, 40.9563, 45.1351],
                id="adaptive-video-prior",
            ),
            pytest.param(
                AdaptivePolicy(jitter=0.0),
                VIDEO,
                [30.0, 34.149, 38.2981, 42.4471, 46.5961],
                id="adaptive-video-no-jitter",
            ),
            pytest.param(
                AdaptivePolicy(jitter=0.0),
                IMAGE,
                [2.0, 2.9743, 3.9485, 4.9228, 5.8971],
                id="adaptive-image-no-jitter",
            ),
        ],
    )
    def test_poll_times_are_pinned_for_a_seed(
        self, policy: PollPolicy, durations: DurationModel, expected: list[float]
    ) -> None:
        """A policy and a seed give exactly these poll times."""
        assert expected == poll_times(policy, durations, 5)

    def test_first_poll_accounts_for_elapsed_time(self) -> None:
        """A first poll asked for late waits only what is left, never negative."""
        plan = FixedPolicy(2.0).plan(IMAGE)
        assert plan.delay(1.5, 0, random.Random(0)) == 0.5
        assert plan.delay(9.0, 0, random.Random(0)) == 0.0
        exp = ExponentialPolicy(first=2.0, jitter=0.0)
        assert exp.plan(IMAGE).delay(3.0, 0, random.Random(0)) == 0.0
        adaptive = AdaptivePolicy(jitter=0.0).plan(VIDEO)
        assert pytest.approx(adaptive.delay(20.0, 0, random.Random(0))) == 10.0

    def test_fixed_policy_with_zero_first_polls_at_once(self) -> None:
        """``first=0`` polls immediately, then at the interval."""
        assert poll_times(FixedPolicy(0.5, first=0.0), IMAGE, 3) == [0.0, 0.5, 1.0]


class TestAdaptivePolicy:
    def test_learned_model_polls_a_handful_of_times(self) -> None:
        """A model learned to take 80-100 s is polled ~9 times for a 90 s job."""
        model = DurationModel.from_range(30.0, 180.0)
        rng = random.Random(3)
        for _ in range(200):
            model.observe(rng.uniform(80.0, 100.0))
        times = poll_times(AdaptivePolicy(), model, 40)
        polls_until_90 = sum(1 for t in times if t < 90.0) + 1
        assert times[0] > 70.0
        assert polls_until_90 <= 10
        fixed_5s = math.ceil(90.0 / 5.0)
        assert polls_until_90 < fixed_5s / 1.5

    def test_interval_grows_with_sqrt_of_elapsed_in_the_tail(self) -> None:
        """Past the window the interval is spacing * sqrt(elapsed - L), capped."""
        plan = AdaptivePolicy(jitter=0.0).plan(VIDEO)
        rng = random.Random(0)
        assert pytest.approx(0.45 * math.sqrt(600.0 - 30.0)) == plan.delay(600, 9, rng)
        assert plan.delay(1e9, 99, rng) == 60.0

    def test_interval_never_below_floor(self) -> None:
        """A narrow, fast model still waits at least ``floor`` between polls."""
        model = DurationModel.from_range(1.0, 1.01)
        plan = AdaptivePolicy(jitter=0.0, floor=0.5).plan(model)
        assert plan.delay(1.0, 1, random.Random(0)) == 0.5

    def test_first_poll_jitter_only_moves_earlier(self) -> None:
        """Jitter never delays the first poll past L."""
        plan = AdaptivePolicy(jitter=0.5).plan(VIDEO)
        rng = random.Random(1)
        firsts = [plan.delay(0.0, 0, rng) for _ in range(200)]
        assert max(firsts) <= VIDEO.low
        assert min(firsts) >= VIDEO.low * 0.5


class TestProbe:
    @pytest.mark.parametrize(
        ("prior", "probes"),
        [
            pytest.param(VIDEO, [3.75, 7.5, 15.0], id="video"),
            pytest.param(
                DurationModel.from_range(5.0, 30.0), [1.0, 1.25, 2.5], id="audio"
            ),
            pytest.param(IMAGE, [1.0, 1.0, 1.0], id="image"),
        ],
    )
    def test_unseen_model_is_probed_at_doubling_shares_of_l(
        self, prior: DurationModel, probes: list[float]
    ) -> None:
        """Probe k is at max(1 s, L / 8 * 2**k), three of them, then None."""
        model = attrs.evolve(prior)
        policy = AdaptivePolicy()
        seen = []
        for _ in range(3):
            seen.append(policy.probe(model))
            model.probes += 1
        assert seen == pytest.approx(probes)
        assert policy.probe(model) is None

    def test_a_model_with_a_completion_is_not_probed(self) -> None:
        """One completion and the model is no longer unseen."""
        model = attrs.evolve(VIDEO)
        model.observe(40.0)
        assert AdaptivePolicy().probe(model) is None

    @pytest.mark.parametrize(
        "policy",
        [FixedPolicy(2.0), ExponentialPolicy(), AdaptivePolicy(probes=0)],
        ids=["fixed", "exponential", "adaptive-off"],
    )
    def test_other_policies_do_not_probe(self, policy: PollPolicy) -> None:
        """The base policy never probes; the adaptive one can be told not to."""
        assert policy.probe(attrs.evolve(VIDEO)) is None


class TestRevisedPlan:
    def test_revised_until_then_original_from_its_first_poll(self) -> None:
        """Young: the revised plan. Past ``until``: the original, not before
        ``resume``, then its own interval."""
        plan = RevisedPlan(FixedPolicy(1.0), FixedPolicy(5.0), until=10.0, resume=30.0)
        rng = random.Random(0)
        assert plan.delay(3.0, 1, rng) == 1.0
        assert plan.delay(12.0, 4, rng) == 18.0
        assert plan.delay(40.0, 9, rng) == 5.0
        assert plan.delay(3.0, 0, rng) == 0.0  # the revised plan's first poll


class TestDurationModel:
    @pytest.mark.parametrize(("kind", "bounds"), list(KIND_PRIORS.items()))
    def test_prior_low_is_the_range_minimum(
        self, kind: Kind, bounds: tuple[float, float]
    ) -> None:
        """A prior's ``low`` is its range's low end; its typical is the middle."""
        model = DurationModel.from_range(*bounds)
        assert pytest.approx(bounds[0]) == model.low
        assert pytest.approx(math.sqrt(bounds[0] * bounds[1])) == model.typical
        assert model.low < model.typical < model.high

    def test_observations_converge_to_the_sample(self) -> None:
        """Many observations of ~60 s pull a video prior to 60 s, min tracked."""
        model = DurationModel.from_range(30.0, 180.0)
        for value in (58.0, 60.0, 62.0) * 100:
            model.observe(value)
        assert model.count == 300
        assert model.minimum == 58.0
        assert pytest.approx(60.0, rel=0.01) == model.typical
        assert model.sigma < 0.05

    def test_weight_is_bounded_so_it_keeps_adapting(self) -> None:
        """After many samples the weight stops growing (slow forgetting)."""
        model = DurationModel.from_range(2.0, 10.0)
        for _ in range(1500):
            model.observe(5.0)
        assert model.weight == 1000.0

    def test_tiny_durations_are_clamped(self) -> None:
        """A zero duration does not take log(0)."""
        model = DurationModel.from_range(2.0, 10.0)
        model.observe(0.0)
        assert model.minimum == 0.01

    @pytest.mark.parametrize(
        ("seconds", "minimum"),
        [(math.inf, 7 * 86400.0), (1e300, 7 * 86400.0), (-5.0, 0.01)],
        ids=["inf", "huge", "negative"],
    )
    def test_absurd_durations_are_clamped(self, seconds: float, minimum: float) -> None:
        """Durations are held to [10 ms, 1 week]: the mean stays finite."""
        model = DurationModel.from_range(2.0, 10.0)
        model.observe(seconds)
        assert model.minimum == minimum
        assert math.isfinite(model.log_mean)
        assert math.isfinite(model.log_var)

    def test_nan_is_ignored(self) -> None:
        """NaN teaches nothing."""
        model = DurationModel.from_range(2.0, 10.0)
        model.observe(math.nan)
        assert (model.count, model.log_mean) == (0, IMAGE.log_mean)

    def test_first_completion_faster_than_the_prior_replaces_its_centre(
        self,
    ) -> None:
        """A 3 s first video is not weighed against the 73 s prior: T = 3 s, and
        the prior's spread stays; the next completion is weighed as usual."""
        model = DurationModel.from_range(30.0, 180.0)
        model.observe(3.0)
        assert model.typical == pytest.approx(3.0)
        assert model.sigma == pytest.approx(VIDEO.sigma)
        assert (model.count, model.weight) == (1, 1.0)
        model.observe(4.0)
        assert model.typical == pytest.approx(math.sqrt(12.0))

    def test_first_completion_within_the_prior_is_weighed(self) -> None:
        """A first video of 40 s counts a third against the prior (worth two)."""
        model = DurationModel.from_range(30.0, 180.0)
        model.observe(40.0)
        expected = math.exp((2.0 * VIDEO.log_mean + math.log(40.0)) / 3.0)
        assert model.typical == pytest.approx(expected)

    @pytest.mark.parametrize(
        ("low", "high"), [(0.0, 1.0), (5.0, 1.0), (-1.0, 2.0)], ids=str
    )
    def test_invalid_range_is_refused(self, low: float, high: float) -> None:
        """A prior needs 0 < low <= high."""
        with pytest.raises(ValueError, match="low"):
            DurationModel.from_range(low, high)


class TestDurationBook:
    def test_models_are_created_from_the_kind_prior(self) -> None:
        """An unseen model starts from its kind's prior, once."""
        book = DurationBook()
        video = book.get(Kind.VIDEO, "kling")
        assert pytest.approx(30.0) == video.low
        assert video is book.get(Kind.VIDEO, "kling")
        book.observe(Kind.VIDEO, "kling", 40.0)
        assert video.count == 1
        assert len(book) == 1

    def test_least_recently_used_model_is_forgotten(self) -> None:
        """Past max_models the least recently used entry goes."""
        book = DurationBook(max_models=2)
        a = book.get(Kind.IMAGE, "a")
        book.get(Kind.IMAGE, "b")
        book.get(Kind.IMAGE, "a")
        book.get(Kind.IMAGE, "c")
        assert len(book) == 2
        assert a is book.get(Kind.IMAGE, "a")

    def test_unknown_kind_falls_back_to_image_prior(self) -> None:
        """A book without a kind's prior uses the image prior."""
        book = DurationBook({})
        assert pytest.approx(2.0) == book.get(Kind.AUDIO, None).low

    def test_max_models_must_be_positive(self) -> None:
        """A book must hold at least one model."""
        with pytest.raises(ValueError, match="max_models"):
            DurationBook(max_models=0)


class TestBackoffPolicy:
    @pytest.mark.parametrize(
        ("attempt", "expected"),
        [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (10_000, 30.0)],
    )
    def test_delay_grows_and_caps(self, attempt: int, expected: float) -> None:
        """delay = min(cap, initial * factor**(attempt-1)), no overflow."""
        policy = BackoffPolicy(jitter=0.0)
        assert expected == policy.delay(attempt, rng=random.Random(0))

    @pytest.mark.parametrize(
        ("retry_after", "expected"), [(7.0, 7.0), (0.0, 1.0), (1e6, 120.0)]
    )
    def test_a_polls_retry_after_is_floored_by_its_backoff(
        self, retry_after: float, expected: float
    ) -> None:
        """A server's Retry-After lengthens the backoff, never shortens it; capped."""
        policy = BackoffPolicy(jitter=0.0)
        assert expected == policy.delay(
            1, rng=random.Random(0), retry_after=retry_after
        )

    def test_jitter_only_shortens_within_bounds(self) -> None:
        """Jittered delays lie between (1 - jitter) and 1 times the base."""
        policy = BackoffPolicy(initial=10.0, cap=10.0, jitter=0.2)
        rng = random.Random(5)
        delays = [policy.delay(1, rng=rng) for _ in range(500)]
        assert 8.0 <= min(delays) < max(delays) <= 10.0

    def test_grow_clamps_huge_exponents(self) -> None:
        """The overflow clamp returns the cap for exponents floats cannot hold."""
        assert grow(1.0, 10.0, 5.0, 10**6) == 5.0
        assert grow(2.0, 1.0, 5.0, 50) == 2.0


class TestValidation:
    @pytest.mark.parametrize(
        "build",
        [
            pytest.param(lambda: FixedPolicy(0.0), id="fixed-interval"),
            pytest.param(lambda: FixedPolicy(1.0, first=-1.0), id="fixed-first"),
            pytest.param(lambda: FixedPolicy(1.0, jitter=1.0), id="fixed-jitter"),
            pytest.param(lambda: ExponentialPolicy(factor=0.5), id="exp-factor"),
            pytest.param(lambda: ExponentialPolicy(first=5, cap=1), id="exp-cap"),
            pytest.param(lambda: AdaptivePolicy(spacing=0), id="adaptive-spacing"),
            pytest.param(lambda: AdaptivePolicy(floor=5, cap=1), id="adaptive-cap"),
            pytest.param(lambda: AdaptivePolicy(probes=-1), id="adaptive-probes"),
            pytest.param(lambda: AdaptivePolicy(probe_share=0), id="probe-share-0"),
            pytest.param(lambda: AdaptivePolicy(probe_share=2), id="probe-share-2"),
            pytest.param(lambda: AdaptivePolicy(probe_floor=-1), id="probe-floor"),
            pytest.param(lambda: BackoffPolicy(factor=0.9), id="backoff-factor"),
            pytest.param(lambda: BackoffPolicy(initial=5, cap=1), id="backoff-cap"),
            pytest.param(lambda: BackoffPolicy(jitter=-0.1), id="backoff-jitter"),
        ],
    )
    def test_invalid_configuration_is_refused(self, build: object) -> None:
        """Policies validate their arguments at construction."""
        assert callable(build)
        with pytest.raises(ValueError, match="must be"):
            build()

    def test_policies_are_frozen_and_hashable(self) -> None:
        """Policies are immutable values that compare by content."""
        assert FixedPolicy(2.0) == FixedPolicy(2.0)
        assert hash(AdaptivePolicy()) == hash(AdaptivePolicy())
        with pytest.raises(AttributeError):
            FixedPolicy(2.0).interval = 3.0  # type: ignore[misc]
