"""
Flow control under two limits: the account's rate and each model's window.

Pure objects, explicit time. The last two classes drive them against simulated
servers: one that refuses past R requests in any sliding second, one that
refuses a submit while a model already runs its limit of predictions.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque

import attrs
import pytest

from atlas_async._core.errors import ConfigurationError
from atlas_async._core.flow import AccountRate, Limits
from atlas_async._core.windows import (
    Cause,
    ModelWindows,
    ModelWindowStatistics,
    RefusalMemory,
    RequestKind,
    attribute,
)

VIDEO = "kwaivgi/kling-v3.0-std/image-to-video"
IMAGE = "google/nano-banana-2/text-to-image"


def waits(rate: AccountRate, now: float, n: int) -> list[float]:
    """Reserve ``n`` slots at ``now``; return each wait, rounded."""
    return [round(rate.reserve(now), 6) for _ in range(n)]


def send_at(rate: AccountRate, times: list[float]) -> None:
    """Reserve one request at each time (an unlimited rate sends at once)."""
    for now in times:
        assert rate.reserve(now) == 0.0


def cut_at_100(**options: float) -> AccountRate:
    """An unlimited rate that sent 100 requests in (0.5, 1.0] and was refused at 1.0."""
    rate = AccountRate(**options)
    send_at(rate, [0.5 + i / 200 for i in range(100)])
    rate.on_refusal(1.0)
    return rate


class TestLimits:
    def test_limit_for_prefers_the_model_then_the_default(self) -> None:
        """A model's own limit wins; other models get the default."""
        limits = Limits(in_flight={VIDEO: 5}, default_in_flight=10)
        assert (limits.limit_for(VIDEO), limits.limit_for(IMAGE)) == (5, 10)

    def test_nothing_known_by_default(self) -> None:
        """With no figures, every limit is to be learned."""
        limits = Limits()
        assert limits.requests_per_second is None
        assert limits.limit_for(VIDEO) is None
        assert dict(limits.in_flight) == {}

    def test_in_flight_is_a_read_only_copy(self) -> None:
        """Changing the mapping passed in, or the attribute, changes nothing."""
        given = {VIDEO: 5}
        limits = Limits(in_flight=given)
        given[VIDEO] = 50
        with pytest.raises(TypeError):
            limits.in_flight[VIDEO] = 1  # type: ignore[index]
        assert limits.limit_for(VIDEO) == 5

    def test_limits_are_frozen_and_hashable(self) -> None:
        """Equal limits hash alike; an attribute cannot be set."""
        one = Limits(requests_per_second=20, in_flight={VIDEO: 5})
        two = Limits(requests_per_second=20.0, in_flight={VIDEO: 5})
        assert one == two
        assert hash(one) == hash(two)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            one.requests_per_second = 1.0  # type: ignore[misc]

    @pytest.mark.parametrize(
        "value",
        [0, -1.0, math.nan, math.inf, True, "10"],
        ids=["zero", "negative", "nan", "inf", "bool", "str"],
    )
    def test_a_rate_that_is_not_positive_and_finite_is_refused(
        self, value: object
    ) -> None:
        """requests_per_second must be a positive finite number."""
        with pytest.raises(ConfigurationError, match="requests_per_second"):
            Limits(requests_per_second=value)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "in_flight",
        [{VIDEO: 0}, {VIDEO: 5.0}, {VIDEO: True}, {VIDEO: "5"}, {"": 5}, {1: 5}],
        ids=["zero", "float", "bool", "str", "empty-model", "int-model"],
    )
    def test_a_per_model_limit_that_is_not_a_positive_int_is_refused(
        self, in_flight: dict[object, object]
    ) -> None:
        """in_flight maps non-empty model ids to ints >= 1."""
        with pytest.raises(ConfigurationError, match="in_flight"):
            Limits(in_flight=in_flight)  # type: ignore[arg-type]

    def test_in_flight_that_is_not_a_mapping_is_refused(self) -> None:
        """A list of pairs is not a mapping."""
        with pytest.raises(ConfigurationError, match="in_flight must be a mapping"):
            Limits(in_flight=[(VIDEO, 5)])  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [0, True, 2.5], ids=["zero", "bool", "float"])
    def test_a_default_that_is_not_a_positive_int_is_refused(
        self, value: object
    ) -> None:
        """default_in_flight must be an int >= 1."""
        with pytest.raises(ConfigurationError, match="default_in_flight"):
            Limits(default_in_flight=value)  # type: ignore[arg-type]


class TestAccountRateBucket:
    def test_unlimited_until_refused(self) -> None:
        """With no known limit and no rate refusal, nothing ever waits."""
        rate = AccountRate()
        assert waits(rate, 0.0, 50) == [0.0] * 50
        assert rate.rate is None

    def test_a_known_rate_spaces_requests(self) -> None:
        """At a known 10/s with no burst, requests leave 0.1 s apart."""
        rate = AccountRate(10, burst=0.0)
        assert waits(rate, 0.0, 4) == [0.0, 0.1, 0.2, 0.3]
        assert rate.rate == 10.0

    def test_burst_lets_that_many_seconds_go_back_to_back(self) -> None:
        """A 0.3 s burst at 10/s: three go at once, then one every 0.1 s."""
        rate = AccountRate(10, burst=0.3)
        assert waits(rate, 0.0, 5) == [0.0, 0.0, 0.0, 0.1, 0.2]

    def test_a_429_reported_as_an_answer_does_not_cut(self) -> None:
        """on_response only counts a 429: it may be a model's window."""
        rate = AccountRate(10)
        rate.on_response(429, None, 1.0)
        assert rate.rate == 10.0
        stats = rate.statistics()
        assert (stats.rate_limited, stats.cuts, stats.rate_refusals) == (1, 0, 0)

    def test_retry_after_blocks_every_request_until_it_passes(self) -> None:
        """A 429's Retry-After of 5 s at t=10: a reservation at 11 waits 4 s."""
        rate = AccountRate()
        rate.on_response(429, 5.0, 10.0)
        assert rate.blocked_until == 15.0
        assert rate.blocked_for(11.0) == 4.0
        assert rate.reserve(11.0) == 4.0
        assert rate.blocked_for(16.0) == 0.0

    def test_retry_after_is_capped(self) -> None:
        """A 503 asking for 1000 s is honoured up to retry_after_cap."""
        rate = AccountRate(retry_after_cap=120.0)
        rate.on_response(503, 1000.0, 0.0)
        assert rate.blocked_until == 120.0

    @pytest.mark.parametrize(
        ("status", "retry_after"),
        [(200, 5.0), (500, 5.0), (429, 0.0), (429, math.nan), (429, -3.0)],
        ids=["ok", "500", "zero", "nan", "negative"],
    )
    def test_retry_after_counts_only_when_meaningful(
        self, status: int, retry_after: float
    ) -> None:
        """Only a positive Retry-After on a 429 or 503 blocks."""
        rate = AccountRate()
        rate.on_response(status, retry_after, 0.0)
        assert rate.blocked_until == -math.inf

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"requests_per_second": 0.0}, id="rate"),
            pytest.param({"requests_per_second": True}, id="rate-bool"),
            pytest.param({"beta": 1.0}, id="beta"),
            pytest.param({"cubic_scale": 0.0}, id="scale"),
            pytest.param({"min_rate": 0.0}, id="min-rate"),
            pytest.param({"cut_interval": -1.0}, id="cut-interval"),
            pytest.param({"burst": math.nan}, id="burst"),
        ],
    )
    def test_invalid_configuration_is_refused(self, kwargs: dict[str, float]) -> None:
        """Nonsensical controllers fail at construction."""
        with pytest.raises(ConfigurationError, match="must be"):
            AccountRate(**kwargs)


class TestSentRate:
    def test_counts_the_requests_of_the_last_second(self) -> None:
        """5 sent at 0.25, 5 at 0.55, 5 at 1.25: 10 in each of two seconds."""
        rate = AccountRate()
        send_at(rate, [0.25] * 5 + [0.55] * 5 + [1.25] * 5)
        assert rate.sent_rate(1.0) == pytest.approx(10.0)
        assert rate.sent_rate(1.5) == pytest.approx(10.0)
        assert rate.sent_rate(3.0) == 0.0

    def test_the_bucket_leaving_the_window_counts_by_its_part_inside(self) -> None:
        """4 sent in [0, 0.1): at 1.05 half that bucket is still inside."""
        rate = AccountRate()
        send_at(rate, [0.0] * 4)
        assert rate.sent_rate(1.05) == pytest.approx(2.0)

    def test_a_request_counts_when_it_is_scheduled_to_leave(self) -> None:
        """At 10/s, 20 reserved at once leave over two seconds: 10 per second."""
        rate = AccountRate(10, burst=0.0)
        waits(rate, 0.05, 20)  # leaving at 0.05, 0.15, ..., 1.95
        assert rate.sent_rate(0.5) == pytest.approx(5.0)
        assert rate.sent_rate(1.0) == pytest.approx(10.0)
        assert rate.sent_rate(2.0) == pytest.approx(10.0)
        assert rate.sent_rate(3.0) == pytest.approx(0.0)

    def test_statistics_report_the_sent_rate(self) -> None:
        """statistics(now) measures at now; without it, at the latest time told."""
        rate = AccountRate()
        send_at(rate, [0.25] * 5)
        assert rate.statistics(5.0).sent_rate == 0.0
        rate.on_response(200, None, 1.0)
        assert rate.statistics().sent_rate == pytest.approx(5.0)


class TestCut:
    def test_a_rate_refusal_cuts_to_beta_times_what_was_sent(self) -> None:
        """100 sent in the last second, unlimited budget: w_max 100, rate 75."""
        rate = cut_at_100()
        stats = rate.statistics(1.0)
        assert stats.w_max == pytest.approx(100.0)
        assert stats.rate == pytest.approx(75.0)
        assert (stats.cuts, stats.rate_refusals, stats.decreases) == (1, 1, 1)

    def test_the_cut_ignores_a_budget_figure_far_above_the_sent_rate(self) -> None:
        """A known 500/s that sent 100/s is cut from 100, not from 500."""
        rate = AccountRate(500)
        send_at(rate, [0.5 + i / 200 for i in range(100)])
        rate.on_refusal(1.0)
        assert rate.rate == pytest.approx(75.0)
        assert rate.statistics().limit == 500.0

    def test_the_cut_takes_the_budget_when_it_is_lower(self) -> None:
        """Refused again at once (no cut interval): from 75, not from the 100 sent."""
        rate = cut_at_100(cut_interval=0.0)
        rate.on_refusal(1.0)
        assert rate.statistics(1.0).w_max == pytest.approx(75.0)
        assert rate.rate == pytest.approx(56.25)

    def test_a_burst_of_refusals_cuts_once_per_interval(self) -> None:
        """Refusals within cut_interval of the cut are counted, not cut again."""
        rate = cut_at_100(cut_interval=1.0)
        for now in (1.0, 1.5, 1.99):
            rate.on_refusal(now)
        stats = rate.statistics(1.99)
        assert (stats.cuts, stats.rate_refusals) == (1, 4)
        rate.on_refusal(2.0)
        assert rate.statistics(2.0).cuts == 2

    def test_the_rate_never_drops_below_min_rate(self) -> None:
        """Refused with nothing sent: the floor holds."""
        rate = AccountRate(min_rate=0.5)
        rate.on_refusal(0.0)
        assert rate.rate == 0.5


class TestRecovery:
    def test_recovery_follows_the_cubic(self) -> None:
        """rate(t) = C (t - t0 - K)**3 + w_max, K = cbrt(w_max (1 - beta) / C)."""
        rate = cut_at_100(beta=0.75, cubic_scale=2.0)
        k = math.cbrt(100 * 0.25 / 2.0)
        assert k == pytest.approx(2.3208, abs=1e-4)
        for elapsed in (0.0, 0.5, 1.0, 2.0):
            expected = 2.0 * (elapsed - k) ** 3 + 100.0
            assert rate.rate_at(1.0 + elapsed) == pytest.approx(expected)
        assert rate.rate_at(1.0 + k) == pytest.approx(100.0)

    def test_a_200_per_second_limit_is_regained_within_three_seconds(self) -> None:
        """With the defaults, K is 2.92 s at 200/s and 1.84 s at 50/s."""
        rate = AccountRate()
        send_at(rate, [0.5 + i / 400 for i in range(200)])
        rate.on_refusal(1.0)
        assert rate.rate == pytest.approx(150.0)
        rate_after = [rate.rate_at(1.0 + elapsed) for elapsed in (1.0, 2.0, 2.924)]
        assert rate_after == pytest.approx([185.76, 198.42, 200.0], abs=0.01)

    def test_past_w_max_the_rate_is_held_to_twice_what_was_sent(self) -> None:
        """Idle long after the cut: the rate stays at w_max, not the huge cubic."""
        rate = cut_at_100()
        assert rate.rate_at(30.0) == pytest.approx(100.0)

    def test_a_client_sending_again_probes_by_doubling_at_most(self) -> None:
        """Saturated from t=30: one second later the rate is twice the sent rate."""
        rate = cut_at_100()
        now = 30.0
        while now < 31.0:
            now += max(rate.reserve(now), 1e-4)
        sent = rate.sent_rate(31.0)
        assert sent > 100.0
        assert rate.rate_at(31.0) == pytest.approx(2.0 * sent)

    def test_a_known_limit_is_the_ceiling_of_recovery(self) -> None:
        """Learned rates never pass Limits.requests_per_second."""
        rate = AccountRate(120)
        send_at(rate, [i / 100 for i in range(100)])
        rate.on_refusal(1.0)
        assert rate.rate is not None
        assert rate.rate < 90.0
        now = 30.0
        while now < 32.0:
            now += max(rate.reserve(now), 1e-4)
        assert rate.rate_at(32.0) == 120.0

    def test_statistics_after_a_cut(self) -> None:
        """Every figure of the snapshot, exactly."""
        rate = cut_at_100()
        rate.on_response(429, None, 1.0)
        stats = rate.statistics(1.0)
        assert attrs.asdict(stats) == {
            "rate": pytest.approx(75.0),
            "limit": None,
            "sent_rate": pytest.approx(100.0),
            "w_max": pytest.approx(100.0),
            "cuts": 1,
            "rate_refusals": 1,
            "rate_limited": 1,
            "blocked_until": -math.inf,
            "reserved": 100,
        }


class TestModelWindows:
    def test_an_unknown_model_is_unlimited_until_refused(self) -> None:
        """No limit known, no refusal: every submit may start."""
        windows = ModelWindows()
        for _ in range(100):
            assert windows.may_start(VIDEO)
            windows.started(VIDEO)
        assert (windows.window(VIDEO), windows.in_flight(VIDEO)) == (None, 100)

    def test_a_known_limit_is_the_starting_window(self) -> None:
        """Limits.in_flight: five may start, the sixth waits."""
        windows = ModelWindows(Limits(in_flight={VIDEO: 5}))
        for _ in range(5):
            assert windows.may_start(VIDEO)
            windows.started(VIDEO)
        assert not windows.may_start(VIDEO)
        assert windows.window(VIDEO) == 5
        assert windows.window(IMAGE) is None

    def test_a_refusal_sets_the_window_to_what_is_running(self) -> None:
        """Six sent, the sixth refused: window 5; the refused one is not in flight."""
        windows = ModelWindows()
        for _ in range(6):
            windows.started(VIDEO)
        windows.refused(VIDEO, 1.0)
        assert (windows.window(VIDEO), windows.in_flight(VIDEO)) == (5, 5)
        assert not windows.may_start(VIDEO)

    def test_a_refusal_with_nothing_running_leaves_a_window_of_one(self) -> None:
        """Other processes hold every slot: one at a time, never zero."""
        windows = ModelWindows()
        windows.started(VIDEO)
        windows.refused(VIDEO, 1.0)
        assert (windows.window(VIDEO), windows.in_flight(VIDEO)) == (1, 0)
        assert windows.may_start(VIDEO)

    def test_refusals_never_touch_another_model(self) -> None:
        """A video model's limit is its own."""
        windows = ModelWindows()
        windows.started(VIDEO)
        windows.started(IMAGE)
        windows.refused(VIDEO, 1.0)
        assert windows.window(IMAGE) is None

    def test_the_window_grows_by_one_every_probe_every_full_completions(self) -> None:
        """Window 5, full: the third completion opens a sixth place (a probe)."""
        windows = ModelWindows(probe_every=3)
        for _ in range(6):
            windows.started(VIDEO)
        windows.refused(VIDEO, 0.0)
        for n in range(1, 4):
            windows.finished(VIDEO, float(n))
            assert windows.window(VIDEO) == (6 if n == 3 else 5)
            windows.started(VIDEO)
        assert windows.statistics()[VIDEO] == ModelWindowStatistics(
            window=6, in_flight=5, refusals=1, probes=1
        )
        assert windows.may_start(VIDEO)

    def test_completions_below_a_full_window_do_not_probe(self) -> None:
        """A model that never fills its window learns nothing about a larger one."""
        windows = ModelWindows(Limits(in_flight={VIDEO: 5}), probe_every=1)
        for _ in range(3):
            windows.started(VIDEO)
        for n in range(3):
            windows.finished(VIDEO, float(n))
        assert windows.window(VIDEO) == 5
        assert windows.probes == 0

    def test_probes_never_pass_the_known_limit(self) -> None:
        """Refused at 3 under a known 4: it grows back to 4 and stops."""
        windows = ModelWindows(Limits(default_in_flight=4), probe_every=1)
        for _ in range(4):
            windows.started(VIDEO)
        windows.refused(VIDEO, 0.0)
        for n in range(10):
            windows.finished(VIDEO, float(n))
            windows.started(VIDEO)
            if windows.may_start(VIDEO):
                windows.started(VIDEO)
        assert windows.window(VIDEO) == 4
        assert windows.statistics()[VIDEO].probes == 1

    def test_an_abandoned_submit_frees_its_place_without_a_probe(self) -> None:
        """A submit that failed otherwise (400, 402, ...) is no evidence of room."""
        windows = ModelWindows(Limits(in_flight={VIDEO: 2}), probe_every=1)
        windows.started(VIDEO)
        windows.started(VIDEO)
        windows.abandoned(VIDEO)
        assert (windows.in_flight(VIDEO), windows.window(VIDEO)) == (1, 2)

    def test_a_finish_for_an_untracked_model_is_ignored(self) -> None:
        """Nothing goes below zero, nothing is created."""
        windows = ModelWindows()
        windows.finished(VIDEO, 0.0)
        windows.abandoned(VIDEO)
        assert windows.statistics() == {}

    def test_the_number_of_models_kept_is_bounded(self) -> None:
        """Past max_models the least recently used idle model is forgotten."""
        windows = ModelWindows(max_models=2)
        for model in ("a", "b", "c"):
            windows.started(model)
            windows.refused(model, 0.0)
        assert sorted(windows.statistics()) == ["b", "c"]
        assert windows.window("a") is None
        assert windows.refusals == 3

    def test_a_model_in_flight_is_never_forgotten(self) -> None:
        """The cap is soft: models with predictions running are all kept."""
        windows = ModelWindows(max_models=1)
        windows.started("a")
        windows.started("b")
        windows.started("b")
        windows.refused("b", 0.0)
        assert sorted(windows.statistics()) == ["a", "b"]

    def test_an_idle_model_is_forgotten_after_forget_after(self) -> None:
        """Its window starts over: limits may have been raised meanwhile."""
        windows = ModelWindows(forget_after=60.0)
        windows.started(VIDEO)
        windows.refused(VIDEO, 0.0)
        windows.started(IMAGE)
        windows.finished(IMAGE, 59.0)
        assert windows.window(VIDEO) == 1
        windows.started(IMAGE)
        windows.finished(IMAGE, 61.0)
        assert windows.window(VIDEO) is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"probe_every": 0}, id="probe-every"),
            pytest.param({"max_models": 0}, id="max-models"),
            pytest.param({"forget_after": 0.0}, id="forget-after"),
        ],
    )
    def test_invalid_configuration_is_refused(self, kwargs: dict[str, float]) -> None:
        """Nonsensical windows fail at construction."""
        with pytest.raises(ConfigurationError, match="must be"):
            ModelWindows(**kwargs)  # type: ignore[arg-type]


class TestAttribution:
    @pytest.mark.parametrize("kind", ["poll", "upload", RequestKind.OTHER])
    def test_a_refused_poll_or_upload_is_the_rate(self, kind: str) -> None:
        """Only a submit can exceed a model's window, whatever the message."""
        cause = attribute(kind, 429, "too many concurrent tasks", 0.0, RefusalMemory())
        assert cause is Cause.RATE

    def test_a_refused_submit_is_the_window(self) -> None:
        """No other evidence: a submit's 429 is its model's window."""
        assert attribute("submit", 429, None, 0.0, RefusalMemory()) is Cause.WINDOW

    def test_a_submit_refused_while_polls_are_refused_is_the_rate(self) -> None:
        """A poll refused within the last second makes a submit's 429 the rate."""
        recent = RefusalMemory()
        recent.note("poll", 10.0)
        assert attribute("submit", 429, "", 10.5, recent) is Cause.RATE
        assert attribute("submit", 429, "", 11.0, recent) is Cause.RATE
        assert attribute("submit", 429, "", 11.5, recent) is Cause.WINDOW

    def test_a_refused_submit_does_not_count_as_a_refused_poll(self) -> None:
        """Submit refusals alone never turn the next ones into rate refusals."""
        recent = RefusalMemory()
        recent.note("submit", 10.0)
        assert not recent.polls_refused_within(10.0, 1.0)
        assert attribute("submit", 429, "", 10.0, recent) is Cause.WINDOW

    @pytest.mark.parametrize(
        ("message", "cause"),
        [
            ("rate limit exceeded", Cause.RATE),
            ("Too Many Requests", Cause.RATE),
            ("RPM limit reached", Cause.RATE),
            ("qps exceeded", Cause.RATE),
            ("Rate-limited, slow down", Cause.RATE),
            ("too many concurrent tasks for this model", Cause.WINDOW),
            ("max in-flight predictions reached", Cause.WINDOW),
            ("Too many running tasks", Cause.WINDOW),
            ("rate limit: too many concurrent tasks", Cause.WINDOW),
            ("failed to generate, moderate your prompt", Cause.WINDOW),
        ],
    )
    def test_a_submits_message_names_its_limit(
        self, message: str, cause: Cause
    ) -> None:
        """Concurrency words win, then rate words (whole words: 'generate' is not)."""
        assert attribute("submit", 429, message, 0.0, RefusalMemory()) is cause

    def test_a_concurrency_message_wins_over_recent_poll_refusals(self) -> None:
        """The server's own words are better evidence than timing."""
        recent = RefusalMemory()
        recent.note("poll", 0.0)
        message = "too many concurrent tasks for this model"
        assert attribute("submit", 429, message, 0.0, recent) is Cause.WINDOW

    def test_only_a_429_is_a_refusal(self) -> None:
        """Attributing a 503 is a caller's mistake, said loudly."""
        with pytest.raises(ValueError, match="only a 429"):
            attribute("submit", 503, None, 0.0, RefusalMemory())

    def test_record_notes_attributes_and_counts_by_cause(self) -> None:
        """Two window refusals, then a refused poll makes the next submit the rate."""
        recent = RefusalMemory()
        assert recent.record("submit", 429, None, 1.0) is Cause.WINDOW
        assert recent.record("submit", 429, None, 2.0) is Cause.WINDOW
        assert recent.record("poll", 429, None, 3.0) is Cause.RATE
        assert recent.record("submit", 429, None, 3.2) is Cause.RATE
        stats = recent.statistics()
        assert (stats.rate, stats.window, stats.last_poll_refusal) == (2, 2, 3.0)

    def test_causes_are_strings(self) -> None:
        """Cause compares and prints as its value."""
        assert Cause("rate") is Cause.RATE
        assert Cause.WINDOW.value == "window"
        assert str(Cause.WINDOW) == "window"
        assert "rate" in {Cause.RATE}
        assert f"{RequestKind.SUBMIT}" == "submit"


# -- simulations ------------------------------------------------------------------


@attrs.frozen
class RateRun:
    accepted_per_second: float
    refused_share: float
    cuts: int


def run_against_a_rate_limit(
    limit: int,
    *,
    known: float | None = None,
    warm_up: float = 3.0,
    measured: float = 30.0,
    slots: int = 16,
    round_trip: float = 0.03,
    jitter: float = 0.05,
    seed: int = 1,
) -> RateRun:
    """
    ``slots`` callers (the gate's concurrent requests) each reserve, wait, send,
    and report the answer after a round trip; the server accepts a request while
    fewer than ``limit`` were accepted in the second before it. Counted after
    ``warm_up``, over ``measured`` seconds. ``known``: the limit given to the
    client, if any.
    """
    rate = AccountRate(known)
    draw = random.Random(seed)
    accepted: deque[float] = deque()
    # (time, order, event, outcome): "reserve", "send", or "answer" (ok or not)
    events: list[tuple[float, int, str, bool]] = [
        (0.0, i, "reserve", True) for i in range(slots)
    ]
    order = slots
    ok_count = refused_count = 0
    end = warm_up + measured
    while events:
        now, _, event, ok = heapq.heappop(events)
        if now >= end:
            break
        order += 1
        if event == "reserve":
            heapq.heappush(events, (now + rate.reserve(now), order, "send", True))
        elif event == "send":
            while accepted and accepted[0] <= now - 1.0:
                accepted.popleft()
            ok = len(accepted) < limit
            if ok:
                accepted.append(now)
            if now >= warm_up:
                ok_count += ok
                refused_count += not ok
            answer_at = now + round_trip + draw.random() * jitter
            heapq.heappush(events, (answer_at, order, "answer", ok))
        else:
            rate.on_response(200 if ok else 429, None, now)
            if not ok:
                rate.on_refusal(now)
            heapq.heappush(events, (now, order, "reserve", True))
    return RateRun(
        accepted_per_second=ok_count / measured,
        refused_share=refused_count / (ok_count + refused_count),
        cuts=rate.statistics().cuts,
    )


@attrs.frozen
class WindowRun:
    makespan: float
    finished: int
    refusals: int
    probes: int
    peak_running: int


def run_against_a_model_limit(
    jobs: int,
    limit: int,
    duration: float,
    *,
    submit_latency: float = 0.0,
    probe_every: int = 3,
) -> WindowRun:
    """
    ``jobs`` submits queued at once, first in first out, to a model the server
    runs at most ``limit`` of; each prediction takes ``duration``. A submit's
    answer comes ``submit_latency`` after it is sent; a refused one goes back to
    the head of the queue.
    """
    windows = ModelWindows(probe_every=probe_every)
    queue = deque(range(jobs))
    running = peak = finished = 0
    # (time, order, event, job): "arrive" (a submit reaches the server),
    # "refused" (its 429 reaches us), "finish"
    events: list[tuple[float, int, str, int]] = []
    order = 0
    now = 0.0

    def push(at: float, event: str, job: int) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, event, job))

    def arrive(job: int) -> bool:
        nonlocal running, peak
        if running >= limit:
            return False
        running += 1
        peak = max(peak, running)
        push(now + duration, "finish", job)
        return True

    def pump() -> None:
        while queue and windows.may_start(VIDEO):
            job = queue.popleft()
            windows.started(VIDEO)
            if submit_latency:
                push(now + submit_latency, "arrive", job)
            elif not arrive(job):  # answered before the next submit goes
                windows.refused(VIDEO, now)
                queue.appendleft(job)

    pump()
    while events:
        now, _, event, job = heapq.heappop(events)
        if event == "arrive":
            if not arrive(job):
                push(now + submit_latency, "refused", job)
            continue
        if event == "refused":
            windows.refused(VIDEO, now)
            queue.appendleft(job)
        else:
            running -= 1
            finished += 1
            windows.finished(VIDEO, now)
        pump()
    return WindowRun(
        makespan=now,
        finished=finished,
        refusals=windows.refusals,
        probes=windows.probes,
        peak_running=peak,
    )


class TestSimulatedAccountLimit:
    @pytest.mark.parametrize("limit", [50, 200])
    @pytest.mark.parametrize("seed", [1, 2])
    def test_a_steady_limit_is_used_at_90_percent_with_2_percent_refused(
        self, limit: int, seed: int
    ) -> None:
        """Learned blind: >= 0.9 R accepted per second, <= 2% of requests refused."""
        run = run_against_a_rate_limit(limit, seed=seed)
        assert run.accepted_per_second >= 0.9 * limit
        assert run.refused_share <= 0.02
        assert run.cuts > 0  # it did have to learn

    def test_a_known_limit_holds_from_the_start(self) -> None:
        """A known rate below the server's: used in full, never refused."""
        run = run_against_a_rate_limit(50, known=48.0, warm_up=0.0)
        assert run.accepted_per_second == pytest.approx(48.0, abs=0.1)
        assert (run.refused_share, run.cuts) == (0.0, 0)


class TestSimulatedModelLimit:
    def test_forty_jobs_on_a_limit_of_five_finish_near_the_ideal(self) -> None:
        """All 40 finish in 8 durations, 5 always running; one refusal per probe,
        and probes that keep failing at the same window come ever more rarely."""
        run = run_against_a_model_limit(40, 5, 10.0)
        assert run.finished == 40
        assert run.peak_running == 5
        ideal = 40 / 5 * 10.0
        assert ideal / run.makespan >= 0.9
        assert run.makespan == ideal
        # The first refusal finds the limit; each probe after it costs one, but
        # the last, which finds the queue empty.
        assert run.refusals <= 1 + run.probes
        assert (run.refusals, run.probes) == (4, 3)  # was (12, 12) at a fixed pace

    def test_a_burst_of_unknown_submits_costs_one_storm_then_one_per_probe(
        self,
    ) -> None:
        """All 40 sent before any answer: 35 refused once, then one per probe
        (probes spaced out as they keep failing)."""
        run = run_against_a_model_limit(40, 5, 10.0, submit_latency=0.1)
        assert run.finished == 40
        assert run.peak_running == 5
        assert run.refusals <= 35 + run.probes
        assert (run.refusals, run.probes) == (38, 3)
        assert 40 / 5 * 10.0 / run.makespan >= 0.9


class TestProbePatience:
    def test_probes_refused_back_to_the_same_window_come_ever_more_rarely(
        self,
    ) -> None:
        """Each failed probe (the first refusal after it) doubles the
        completions the next one waits for: 3, 6, 12, ... capped at 48."""
        windows = ModelWindows(probe_every=3)
        now = 0.0
        windows.started(VIDEO)
        windows.started(VIDEO)
        windows.refused(VIDEO, now)  # the first refusal: the window is 1
        gaps = []
        for _ in range(6):
            completions = 0
            while windows.window(VIDEO) == 1:
                windows.finished(VIDEO, now)  # the one running ends ...
                windows.started(VIDEO)  # ... and the next takes its place
                completions += 1
            gaps.append(completions)
            # The probe: a second submit goes out and is refused.
            windows.started(VIDEO)
            windows.refused(VIDEO, now)
            assert windows.window(VIDEO) == 1
        assert gaps == [3, 6, 12, 24, 48, 48]

    def test_a_refusal_without_a_probe_resets_the_patience(self) -> None:
        """A refusal that no probe caused (the limit fell: another client took
        places) starts the probes over at their first pace."""
        windows = ModelWindows(probe_every=3)
        windows.started(VIDEO)
        windows.started(VIDEO)
        windows.refused(VIDEO, 0.0)  # window 1, one running

        def completions_to_next_probe() -> int:
            count = 0
            while windows.window(VIDEO) == 1:
                windows.finished(VIDEO, 0.0)
                windows.started(VIDEO)
                count += 1
            return count

        assert completions_to_next_probe() == 3
        windows.started(VIDEO)
        windows.refused(VIDEO, 0.0)  # the probe failed: patience 2
        windows.started(VIDEO)
        windows.refused(VIDEO, 0.0)  # refused again with no probe: reset
        assert completions_to_next_probe() == 3

    def test_a_probe_refused_below_where_it_started_still_counts_as_failed(
        self,
    ) -> None:
        """Completions between a probe and its refusal may leave the window
        below where the probe started: the probe still failed, and the next
        one waits twice as long."""
        windows = ModelWindows(probe_every=3)
        for _ in range(3):
            windows.started(VIDEO)
        windows.refused(VIDEO, 0.0)  # window 2, two running
        for _ in range(3):
            windows.finished(VIDEO, 0.0)
            windows.started(VIDEO)
        assert windows.window(VIDEO) == 3  # the probe, from 2
        windows.finished(VIDEO, 0.0)
        windows.finished(VIDEO, 0.0)  # both ended meanwhile: none running
        windows.started(VIDEO)  # one running
        windows.started(VIDEO)  # the probe's submit ...
        windows.refused(VIDEO, 0.0)  # ... refused: window 1, below the probe's 2
        assert windows.window(VIDEO) == 1
        completions = 0
        while windows.window(VIDEO) == 1:
            windows.finished(VIDEO, 0.0)
            windows.started(VIDEO)
            completions += 1
        assert completions == 6


@pytest.mark.parametrize("limit", [None, 5.0, 50.0])
def test_reserve_now_says_yes_exactly_when_reserve_would_not_wait(
    limit: float | None,
) -> None:
    # Two rates fed the same times and refusals: one asked reserve_now first
    # (and reserve when refused), the other reserve alone. Same waits, same
    # state, whatever the rate, a cut or a Retry-After.
    quick, plain = AccountRate(limit), AccountRate(limit)
    for step in range(400):
        now = step * 0.01
        if step == 100:
            for rate in (quick, plain):
                rate.on_refusal(now)
        if step == 250:
            for rate in (quick, plain):
                rate.on_response(503, 0.5, now)
        expected = plain.reserve(now)
        if quick.reserve_now(now):
            assert expected == 0.0
        else:
            assert expected > 0.0
            assert quick.reserve(now) == pytest.approx(expected)
    assert quick.statistics(4.0) == plain.statistics(4.0)
