"""The shared request budget: token bucket, AIMD, Retry-After; explicit time."""

from __future__ import annotations

import pytest

from atlas_async._core.ratelimit import RateBudget


def waits(budget: RateBudget, now: float, n: int) -> list[float]:
    """Reserve ``n`` slots at ``now``; return each wait, rounded."""
    return [round(budget.reserve(now), 6) for _ in range(n)]


class TestTokenBucket:
    def test_unlimited_budget_never_waits(self) -> None:
        """With no limit and no 429, every request may go at once."""
        budget = RateBudget()
        assert waits(budget, 0.0, 50) == [0.0] * 50
        assert budget.rate is None

    def test_limited_budget_spaces_requests_after_a_burst(self) -> None:
        """At 2/s with a 1 s burst: two go now, then one every 0.5 s."""
        budget = RateBudget(2.0)
        assert waits(budget, 0.0, 5) == [0.0, 0.0, 0.5, 1.0, 1.5]

    def test_budget_refills_with_time(self) -> None:
        """After an idle second the burst is available again."""
        budget = RateBudget(2.0)
        waits(budget, 0.0, 2)
        assert waits(budget, 10.0, 3) == [0.0, 0.0, 0.5]

    def test_zero_burst_spaces_every_request(self) -> None:
        """burst=0 sends strictly one request per interval."""
        budget = RateBudget(4.0, burst=0.0)
        assert waits(budget, 0.0, 3) == [0.0, 0.25, 0.5]

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"requests_per_second": 0.0}, id="rate"),
            pytest.param({"decrease": 1.0}, id="decrease"),
            pytest.param({"min_rate": 0.0}, id="min-rate"),
        ],
    )
    def test_invalid_configuration_is_refused(self, kwargs: dict[str, float]) -> None:
        """Nonsensical budgets fail at construction."""
        with pytest.raises(ValueError, match="must be"):
            RateBudget(**kwargs)


class TestAIMD:
    def test_429_halves_the_rate(self) -> None:
        """A 429 multiplies the rate by ``decrease``."""
        budget = RateBudget(10.0)
        budget.on_response(429, None, 0.0)
        assert budget.rate == 5.0
        stats = budget.statistics()
        assert (stats.rate_limited, stats.decreases) == (1, 1)

    def test_burst_of_429s_cuts_once_per_interval(self) -> None:
        """429s arriving together (already in flight) count as one cut."""
        budget = RateBudget(16.0)
        for _ in range(10):
            budget.on_response(429, None, 1.0)
        assert budget.rate == 8.0
        budget.on_response(429, None, 2.0)
        assert budget.rate == 4.0
        assert budget.statistics().rate_limited == 11

    def test_rate_never_drops_below_min_rate(self) -> None:
        """Repeated 429s stop at ``min_rate``."""
        budget = RateBudget(1.0, min_rate=0.25)
        for second in range(10):
            budget.on_response(429, None, float(second))
        assert budget.rate == 0.25

    def test_successes_recover_additively_up_to_the_limit(self) -> None:
        """Each success adds increase/rate; the rate returns to the limit, no more."""
        budget = RateBudget(10.0, increase=1.0)
        budget.on_response(429, None, 0.0)
        budget.on_response(200, None, 0.1)
        assert pytest.approx(5.2) == budget.rate
        for _ in range(500):
            budget.on_response(200, None, 1.0)
        assert budget.rate == 10.0

    @pytest.mark.parametrize("status", [None, 500, 503])
    def test_failures_other_than_429_leave_the_rate(self, status: int | None) -> None:
        """Transport errors and 5xx neither grow nor cut the rate."""
        budget = RateBudget(10.0)
        budget.on_response(429, None, 0.0)
        budget.on_response(status, None, 0.5)
        assert budget.rate == 5.0

    def test_unlimited_budget_is_bounded_by_the_first_429(self) -> None:
        """Unlimited until a 429, then half the rate measured just before."""
        budget = RateBudget()
        for i in range(40):
            budget.reserve(i * 0.05)  # 20 requests per second for 2 s
        budget.on_response(429, None, 2.0)
        assert pytest.approx(10.0, rel=0.1) == budget.rate
        for _ in range(1000):
            budget.on_response(200, None, 3.0)
        assert budget.rate is not None
        assert budget.rate > 20.0

    def test_first_429_right_away_uses_partial_window(self) -> None:
        """A 429 in the first second still bounds the rate sensibly."""
        budget = RateBudget()
        waits(budget, 0.0, 30)
        budget.on_response(429, None, 0.5)
        assert budget.rate == 15.0

    def test_429_before_any_request_uses_min_rate(self) -> None:
        """With nothing measured, the first cut starts from the minimum."""
        budget = RateBudget(min_rate=0.5)
        budget.on_response(429, None, 0.0)
        assert budget.rate == 0.5


class TestRetryAfter:
    def test_retry_after_blocks_every_request(self) -> None:
        """After a 429 with Retry-After 5, nothing goes before +5 s."""
        budget = RateBudget()
        budget.on_response(429, 5.0, 10.0)
        assert budget.blocked_until == 15.0
        assert budget.blocked_for(10.0) == 5.0
        assert budget.blocked_for(20.0) == 0.0
        assert budget.reserve(11.0) >= 4.0

    def test_requests_after_a_block_are_spaced_by_the_rate(self) -> None:
        """Once the block ends, requests resume at the (cut) rate."""
        budget = RateBudget(4.0, burst=0.0)
        budget.on_response(429, 2.0, 0.0)
        assert waits(budget, 0.0, 3) == [2.0, 2.5, 3.0]

    def test_retry_after_is_capped(self) -> None:
        """An absurd Retry-After is honoured only up to the cap."""
        budget = RateBudget(retry_after_cap=60.0)
        budget.on_response(503, 86_400.0, 0.0)
        assert budget.blocked_until == 60.0

    @pytest.mark.parametrize(("status", "retry_after"), [(200, 5.0), (429, 0.0)])
    def test_retry_after_ignored_when_meaningless(
        self, status: int, retry_after: float
    ) -> None:
        """Retry-After on a success, or of zero, blocks nothing."""
        budget = RateBudget()
        budget.on_response(status, retry_after, 0.0)
        assert budget.blocked_for(0.0) == 0.0

    def test_repr_and_statistics(self) -> None:
        """The repr shows the rate; statistics count reservations."""
        budget = RateBudget(3.0)
        budget.reserve(0.0)
        assert "3/s" in repr(budget)
        assert "unlimited" in repr(RateBudget())
        assert budget.statistics().reserved == 1
        assert budget.statistics().limit == 3.0
