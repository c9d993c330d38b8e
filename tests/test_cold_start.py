"""
A model new to the client: early probes, the server's timings, and re-plans.

Pure: the scheduler core on a simulated clock, with zero-latency polls.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from atlas_async._core.durations import reported_duration
from atlas_async._core.errors import RateLimitError
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import AdaptivePolicy, BackoffPolicy, FixedPolicy
from atlas_async._core.schedule import Due, PollCore, Rescheduled, Resolved

S = PredictionStatus
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
RUNNING = Prediction(id="x", status=S.PROCESSING)
STEADY = AdaptivePolicy(jitter=0.0)


def done(pid: str = "x", **fields: Any) -> Prediction:
    """A completed snapshot with outputs and the given fields."""
    return Prediction(
        id=pid, status=S.COMPLETED, outputs=("https://cdn/v.mp4",), **fields
    )


def rescheduled_at(decision: object) -> float:
    """The time of a `Rescheduled` decision (failing on any other)."""
    assert isinstance(decision, Rescheduled)
    return decision.at


def make_core() -> PollCore:
    """A core with unjittered retries."""
    return PollCore(random.Random(1), retry=BackoffPolicy(jitter=0.0))


def add(core: PollCore, pid: str, **kwargs: Any) -> float:
    """Register a video of model "m" at time 0 on the unjittered adaptive policy."""
    options: dict[str, Any] = {"kind": Kind.VIDEO, "model": "m", "policy": STEADY}
    options.update(kwargs)
    return core.add(pid, 0.0, **options)


@attrs.frozen
class Run:
    """What a simulated batch cost: polls per prediction and detection lags."""

    polls: float
    mean_lag: float
    max_lag: float


def simulate(
    durations: list[float],
    *,
    kind: Kind = Kind.VIDEO,
    policy: AdaptivePolicy | None = None,
    reported: Mapping[str, Any] | None = None,
    seed: int = 1,
) -> Run:
    """
    Submit every duration at once on a fresh core; poll when due.

    ``reported`` is merged into each completed snapshot's fields; the value
    ``"true"`` under ``metrics`` stands for the real duration.
    """
    core = PollCore(random.Random(seed))
    policy = policy or AdaptivePolicy()
    for index in range(len(durations)):
        core.add(f"p{index}", 0.0, kind=kind, model="new/model", policy=policy)
    polls = 0
    lags: list[float] = []
    while len(core):
        now = core.next_wakeup()
        for item in core.due(now, slack=0.0):
            polls += 1
            duration = durations[int(item.prediction_id[1:])]
            answer = RUNNING
            if now >= duration:
                fields = dict(reported or {})
                if fields.get("metrics") == "true":
                    fields["metrics"] = {"predict_time": duration}
                answer = done(item.prediction_id, **fields)
            if isinstance(core.record(item.prediction_id, answer, now), Resolved):
                lags.append(now - duration)
    return Run(polls / len(durations), sum(lags) / len(lags), max(lags))


def uniform(low: float, high: float, n: int = 40, seed: int = 5) -> list[float]:
    """``n`` durations drawn uniformly from [low, high]."""
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(n)]


SHORT_VIDEOS = uniform(2.0, 4.0)
SLOW_VIDEOS = uniform(200.0, 300.0)
# Garbage in every timing field the core reads: none is credible.
GARBAGE: dict[str, Any] = {
    "metrics": {"predict_time": math.nan},
    "raw": {
        "latency_ms": -5,
        "executionTime": 1e300,
        "timings": {"inference": "soon"},
        "created_at": "yesterday",
        "completed_at": True,
    },
}


class TestColdBatch:
    def test_short_videos_on_a_new_model_are_seen_within_seconds(self) -> None:
        """40 videos of 2-4 s: mean lag 0.8 s, where waiting for the prior's first
        poll (no probes) leaves them 24 s; 1.23 polls each instead of 1."""
        cold = simulate(SHORT_VIDEOS)
        unprobed = simulate(SHORT_VIDEOS, policy=AdaptivePolicy(probes=0))
        assert (round(cold.mean_lag, 2), round(cold.max_lag, 2)) == (0.82, 1.75)
        assert round(cold.polls, 3) == 1.225
        assert (round(unprobed.mean_lag, 2), unprobed.polls) == (24.06, 1.0)

    def test_server_timings_find_the_short_videos_as_fast(self) -> None:
        """With the server's predict_time the batch is detected as promptly."""
        run = simulate(SHORT_VIDEOS, reported={"metrics": "true"})
        assert run.mean_lag < 1.0
        assert run.max_lag < 2.0
        assert run.polls < 1.25

    def test_a_model_slower_than_its_prior_pays_only_the_probes(self) -> None:
        """Videos of 200-300 s: three probe requests in all, nothing else moves
        (48.2 polls per prediction against 48.125)."""
        cold = simulate(SLOW_VIDEOS)
        unprobed = simulate(SLOW_VIDEOS, policy=AdaptivePolicy(probes=0))
        assert round(cold.polls * 40) == round(unprobed.polls * 40) + 3
        assert (cold.mean_lag, cold.max_lag) == (unprobed.mean_lag, unprobed.max_lag)
        assert round(unprobed.polls, 3) == 48.125

    @pytest.mark.parametrize(
        "durations", [SHORT_VIDEOS, SLOW_VIDEOS], ids=["short", "slow"]
    )
    def test_garbage_timings_change_nothing(self, durations: list[float]) -> None:
        """Snapshots whose timing fields are all garbage poll exactly as bare ones."""
        assert simulate(durations, reported=GARBAGE) == simulate(durations)


class TestProbes:
    def test_unseen_model_gets_three_doubling_probes(self) -> None:
        """The first three predictions are probed at L/8, L/4, L/2; then none."""
        core = make_core()
        firsts = [add(core, f"p{i}") for i in range(4)]
        assert firsts == pytest.approx([3.75, 7.5, 15.0, 30.0])
        assert core.durations.get(Kind.VIDEO, "m").probes == 3

    def test_probe_floor_holds_for_fast_priors(self) -> None:
        """An image prior (L = 2 s) is probed at the 1 s floor."""
        core = make_core()
        assert add(core, "a", kind=Kind.IMAGE) == 1.0

    def test_running_probe_hands_over_to_the_plans_first_poll(self) -> None:
        """A probe seen running does not count: the plan's first poll at L follows,
        then its usual interval."""
        core = make_core()
        add(core, "p")
        assert [Due("p")] == core.due(3.75)
        assert rescheduled_at(core.record("p", RUNNING, 3.75)) == pytest.approx(30.0)
        assert [Due("p")] == core.due(30.0)
        decision = core.record("p", RUNNING, 30.0)
        assert rescheduled_at(decision) == pytest.approx(34.149, abs=1e-3)

    def test_probe_answered_after_the_first_poll_stands_in_for_it(self) -> None:
        """A probe answered late counts as the first poll: no second poll at once."""
        core = make_core()
        add(core, "p")
        core.due(3.75)
        decision = core.record("p", RUNNING, 31.0)
        assert rescheduled_at(decision) == pytest.approx(35.149, abs=1e-3)

    @pytest.mark.parametrize(
        ("policy", "first"),
        [(AdaptivePolicy(jitter=0.0, probes=0), 30.0), (FixedPolicy(5.0), 5.0)],
        ids=["probes-off", "fixed"],
    )
    def test_no_probe_without_the_policys_consent(
        self, policy: object, first: float
    ) -> None:
        """Probing is the adaptive policy's, and can be turned off."""
        core = make_core()
        assert add(core, "p", policy=policy) == pytest.approx(first)
        assert core.durations.get(Kind.VIDEO, "m").probes == 0

    def test_a_model_seen_completing_is_not_probed(self) -> None:
        """After one completion the model is known: its plan alone decides."""
        core = make_core()
        add(core, "a", first_poll=40.0)
        core.due(40.0)
        core.record("a", done(metrics={"predict_time": 39.0}), 40.0)
        assert add(core, "b") > 3.75

    def test_attached_predictions_are_not_probed(self) -> None:
        """An explicit first poll (attach) is kept as it is."""
        core = make_core()
        assert add(core, "p", first_poll=0.0, learn=False) == 0.0
        assert core.durations.get(Kind.VIDEO, "m").probes == 0


class TestReplan:
    """After a 3 s completion on the video prior: T = 3 s, L = 1.22 s, H = 4.70 s."""

    def test_unpolled_siblings_are_polled_now_instead_of_at_30s(self) -> None:
        """A fast first completion brings every unpolled sibling's poll to now."""
        core = make_core()
        for pid in "abcde":
            add(core, pid)
        assert [Due("a")] == core.due(3.75)
        core.record("a", done(metrics={"predict_time": 3.0}), 3.75)
        assert core.next_wakeup() == 3.75
        assert {d.prediction_id for d in core.due(3.75)} == set("bcde")

    def test_replanned_sibling_follows_the_new_estimate(self) -> None:
        """Still running, it is polled again 0.84 s later (new L and H), not 4 s."""
        core = make_core()
        add(core, "a")
        add(core, "b", first_poll=3.75)
        assert len(core.due(3.75)) == 2
        core.record("a", done(metrics={"predict_time": 3.0}), 3.75)
        # b was in flight during the re-plan: reviewed when its answer comes.
        decision = core.record("b", RUNNING, 3.75)
        assert rescheduled_at(decision) == pytest.approx(4.588, abs=1e-3)

    def test_replanned_sibling_that_outlives_the_estimate_goes_back(self) -> None:
        """Past 1.5 x exp(mu + 2 sigma) = 11.02 s a re-planned sibling is not like
        the 3 s completion: its frozen plan takes over, from its first poll at 30 s."""
        core = make_core()
        add(core, "a")
        add(core, "b")
        core.due(3.75)
        core.record("a", done(metrics={"predict_time": 3.0}), 3.75)
        times = []
        for _ in range(12):
            now = core.next_wakeup()
            assert [Due("b")] == core.due(now)
            times.append(now)
            core.record("b", RUNNING, now)
        revised = [3.75, 4.588, 5.427, 6.349, 7.368, 8.483, 9.695, 11.005, 12.412]
        assert times == pytest.approx([*revised, 30.0, 34.149, 38.298], abs=1e-3)

    def test_polled_sibling_whose_next_poll_is_near_keeps_its_plan(self) -> None:
        """Next poll at 4.65 s, within twice the new typical (6 s): frozen."""
        core = make_core()
        add(core, "a")
        add(core, "b", first_poll=0.5)
        core.due(0.5)
        frozen = core.record("b", RUNNING, 0.5)
        assert rescheduled_at(frozen) == pytest.approx(4.649, abs=1e-3)
        core.due(3.75)
        core.record("a", done(metrics={"predict_time": 3.0}), 3.75)
        assert core.next_wakeup() == pytest.approx(4.649, abs=1e-3)

    def test_polled_sibling_whose_next_poll_is_far_moves_to_now(self) -> None:
        """Next poll at 6.15 s, beyond 6 s: moved to now, never into the past."""
        core = make_core()
        add(core, "a")
        add(core, "b", first_poll=2.0)
        core.due(2.0)
        core.record("b", RUNNING, 2.0)
        core.due(3.75)
        core.record("a", done(metrics={"predict_time": 3.0}), 3.75)
        assert core.next_wakeup() == 3.75
        assert [Due("b")] == core.due(3.75)

    def test_backing_off_sibling_keeps_its_retry_after(self) -> None:
        """A re-plan never cuts a server's Retry-After short."""
        core = make_core()
        add(core, "a")
        add(core, "b", first_poll=2.0)
        core.due(2.0)
        limited = RateLimitError("slow down", status_code=429, retry_after=20.0)
        assert Rescheduled(22.0) == core.record("b", limited, 2.0)
        core.due(3.75)
        core.record("a", done(metrics={"predict_time": 3.0}), 3.75)
        assert core.next_wakeup() == 22.0

    @pytest.mark.parametrize(
        ("took", "typical"), [(39.0, 59.5), (290.0, 116.1)], ids=["39s", "290s"]
    )
    def test_small_or_slower_moves_keep_every_plan_frozen(
        self, took: float, typical: float
    ) -> None:
        """Completions that do not halve the typical 73 s move no sibling."""
        core = make_core()
        add(core, "a", first_poll=took + 1.0)
        unprobed = AdaptivePolicy(jitter=0.0, probes=0)
        for pid in "bcd":  # submitted later: planned, not polled yet
            core.add(pid, took, kind=Kind.VIDEO, model="m", policy=unprobed)
        core.due(took + 1.0)
        core.record("a", done(metrics={"predict_time": took}), took + 1.0)
        model = core.durations.get(Kind.VIDEO, "m")
        assert model.typical == pytest.approx(typical, abs=0.1)
        assert core.next_wakeup() == pytest.approx(took + 30.0)

    def test_other_models_are_left_alone(self) -> None:
        """A re-plan touches only the siblings of the model that completed."""
        core = make_core()
        add(core, "a")
        add(core, "other", model="n", policy=AdaptivePolicy(jitter=0.0, probes=0))
        core.due(3.75)
        core.record("a", done(metrics={"predict_time": 3.0}), 3.75)
        assert core.next_wakeup() == pytest.approx(30.0)


class TestReportedDuration:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            pytest.param({"metrics": {"predict_time": 3.5}}, 3.5, id="predict_time"),
            pytest.param({"metrics": {"predict_time": "3.5"}}, 3.5, id="as-text"),
            pytest.param({"raw": {"latency_ms": 3500}}, 3.5, id="latency_ms"),
            pytest.param({"raw": {"executionTime": 3500}}, 3.5, id="executionTime"),
            pytest.param(
                {"raw": {"timings": {"inference": 3500}}}, 3.5, id="timings.inference"
            ),
            pytest.param(
                {
                    "created_at": T0,
                    "raw": {"completed_at": "2025-01-01T00:00:03.2Z"},
                    "metrics": {"predict_time": 3.5},
                },
                3.2,
                id="completed-minus-created-first",
            ),
            pytest.param(
                {
                    "raw": {
                        "created_at": T0.timestamp() * 1000,
                        "completed_at": T0.timestamp() + 3.25,
                    }
                },
                3.25,
                id="epoch-ms-and-s",
            ),
            pytest.param(
                {"created_at": T0, "raw": {"completed_at": "2025-01-01T00:00:03"}},
                3.0,
                id="naive-time-is-utc",
            ),
            pytest.param({"metrics": {"predict_time": 4.6}}, 4.0, id="clamped-late"),
            pytest.param({"metrics": {"predict_time": 1.5}}, 2.0, id="clamped-early"),
        ],
    )
    def test_credible_readings_are_used(
        self, fields: dict[str, Any], expected: float
    ) -> None:
        """The first credible reading wins, clamped to what the polls proved."""
        seen = reported_duration(done(**fields), 2.0, 4.0)
        assert seen == pytest.approx(expected)

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param({}, id="nothing"),
            pytest.param({"metrics": {"predict_time": math.nan}}, id="nan"),
            pytest.param({"metrics": {"predict_time": math.inf}}, id="inf"),
            pytest.param({"metrics": {"predict_time": -3.0}}, id="negative"),
            pytest.param({"metrics": {"predict_time": 1e300}}, id="huge"),
            pytest.param({"metrics": {"predict_time": True}}, id="bool"),
            pytest.param({"metrics": {"predict_time": [3]}}, id="list"),
            pytest.param({"raw": {"latency_ms": 3.5}}, id="seconds-read-as-ms"),
            pytest.param({"metrics": {"predict_time": 0.5}}, id="before-last-poll"),
            pytest.param(
                {"created_at": T0, "raw": {"completed_at": "soon"}}, id="bad-date"
            ),
            pytest.param(
                {
                    "created_at": T0,
                    "raw": {"completed_at": (T0 + timedelta(hours=1)).isoformat()},
                },
                id="other-clock",
            ),
        ],
    )
    def test_garbage_reads_as_none(self, fields: dict[str, Any]) -> None:
        """Nothing credible: None, and the caller keeps its own estimate."""
        assert reported_duration(done(**fields), 2.0, 4.0) is None

    def test_server_reading_teaches_the_model(self) -> None:
        """Done between polls at 2 s and 4 s, the server says 3.5 s: learn 3.5."""
        core = PollCore(random.Random(1))
        core.add("p", 0.0, kind=Kind.IMAGE, model="m", policy=FixedPolicy(2.0))
        core.due(2.0)
        core.record("p", RUNNING, 2.0)
        core.due(4.0)
        core.record("p", done(metrics={"predict_time": 3.5}), 4.0)
        assert core.durations.get(Kind.IMAGE, "m").minimum == 3.5
