"""
The shared request budget: one per client, passed through by every submit, poll
and retry.

Pure: time is the ``now`` argument; nothing here sleeps. The runner asks
`RateBudget.reserve` how long a request must wait, sleeps that long on its clock,
sends, and reports the answer with `RateBudget.on_response`.

Theory of operation
-------------------
The budget is a token bucket written as a virtual schedule (GCRA): requests are
spaced ``1/rate`` seconds apart, with up to ``burst`` seconds' worth allowed at
once. Reservations are commitments: a caller told to wait 0.3 s goes at +0.3 s,
and the next one is scheduled after it.

The rate follows AIMD, as TCP does. A 429 multiplies it by ``decrease`` (at most
once per ``decrease_interval``, so a burst of 429s from requests already in flight
counts once); each other answer adds ``increase / rate``, which at full speed is
about ``increase`` requests per second per second, back up to the configured
limit. With ``requests_per_second=None`` the budget starts unlimited; the first
429 bounds it at ``decrease`` times the rate measured just before, and from then
on it probes upward without a ceiling. A ``Retry-After`` (on a 429 or 503) blocks
every request until it has passed, up to ``retry_after_cap`` seconds.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["RateBudget", "RateBudgetStatistics"]


@attrs.frozen(kw_only=True)
class RateBudgetStatistics:
    """
    A snapshot of a `RateBudget`.

    Attributes:
        rate: the current requests per second, or None while unlimited.
        limit: the configured ceiling, or None.
        blocked_until: the time before which nothing may be sent (a Retry-After).
        rate_limited: 429 answers seen.
        decreases: how often the rate was cut.
        reserved: reservations made.
    """

    rate: float | None
    limit: float | None
    blocked_until: float
    rate_limited: int
    decreases: int
    reserved: int


class RateBudget:
    """
    A request budget shared by every request of one client (token bucket, AIMD).

    Args:
        requests_per_second: the ceiling; None for unlimited until a 429.
        burst: seconds' worth of requests that may go back to back.
        decrease: the factor applied to the rate on a 429 (0 < decrease < 1).
        increase: requests/second regained per second of successful traffic.
        min_rate: the rate never drops below this.
        decrease_interval: at most one cut per this many seconds.
        retry_after_cap: the longest ``Retry-After`` honoured, seconds.
    """

    __slots__ = (
        "_blocked_until",
        "_burst",
        "_decrease",
        "_decrease_interval",
        "_decreases",
        "_increase",
        "_last_decrease",
        "_limit",
        "_min_rate",
        "_rate",
        "_rate_limited",
        "_reserved",
        "_retry_after_cap",
        "_tat",
        "_window_count",
        "_window_rate",
        "_window_start",
    )

    def __init__(
        self,
        requests_per_second: float | None = None,
        *,
        burst: float = 1.0,
        decrease: float = 0.5,
        increase: float = 1.0,
        min_rate: float = 0.1,
        decrease_interval: float = 1.0,
        retry_after_cap: float = 120.0,
    ) -> None:
        if requests_per_second is not None and not requests_per_second > 0:
            raise ValueError(
                f"requests_per_second must be > 0, got {requests_per_second!r}"
            )
        if not 0.0 < decrease < 1.0:
            raise ValueError(f"decrease must be in (0, 1), got {decrease!r}")
        if not min_rate > 0.0:
            raise ValueError(f"min_rate must be > 0, got {min_rate!r}")
        self._limit = requests_per_second
        self._rate = requests_per_second
        self._burst = max(burst, 0.0)
        self._decrease = decrease
        self._increase = max(increase, 0.0)
        self._min_rate = min_rate
        self._decrease_interval = decrease_interval
        self._retry_after_cap = retry_after_cap
        self._tat = -math.inf
        self._blocked_until = -math.inf
        self._last_decrease = -math.inf
        self._rate_limited = 0
        self._decreases = 0
        self._reserved = 0
        # Send-rate measurement, used only to pick a rate at the first 429.
        self._window_start = math.nan
        self._window_count = 0
        self._window_rate = 0.0

    @property
    def rate(self) -> float | None:
        """The current requests per second, or None while unlimited."""
        return self._rate

    @property
    def blocked_until(self) -> float:
        """Nothing may be sent before this time (``-inf`` when not blocked)."""
        return self._blocked_until

    def blocked_for(self, now: float) -> float:
        """Seconds until a ``Retry-After`` block ends (0 if none)."""
        return max(0.0, self._blocked_until - now)

    def reserve(self, now: float) -> float:
        """
        Reserve a slot for one request; return the seconds to wait before sending.

        0 means send now. The reservation is kept even if the caller gives up.
        """
        self._reserved += 1
        self._measure(now)
        start = max(now, self._blocked_until)
        rate = self._rate
        if rate is None:
            return start - now
        interval = 1.0 / rate
        tolerance = max(0.0, self._burst - interval)
        allowed = max(start, self._tat - tolerance)
        self._tat = max(self._tat, start) + interval
        return allowed - now

    def on_response(
        self, status_code: int | None, retry_after: float | None, now: float
    ) -> None:
        """
        Adjust the budget to one answer.

        Args:
            status_code: the HTTP status, or None when no answer came.
            retry_after: seconds the server asked to wait, if it did.
            now: the current time.
        """
        if retry_after is not None and status_code in (429, 503) and retry_after > 0:
            until = now + min(retry_after, self._retry_after_cap)
            self._blocked_until = max(self._blocked_until, until)
        if status_code == 429:
            self._rate_limited += 1
            if now >= self._last_decrease + self._decrease_interval:
                self._last_decrease = now
                self._decreases += 1
                current = self._rate if self._rate is not None else self._measured(now)
                self._rate = max(self._min_rate, current * self._decrease)
            return
        if status_code is None or status_code >= 500 or self._rate is None:
            return
        grown = self._rate + self._increase / self._rate
        self._rate = grown if self._limit is None else min(self._limit, grown)

    def statistics(self) -> RateBudgetStatistics:
        """Return a snapshot of the budget."""
        return RateBudgetStatistics(
            rate=self._rate,
            limit=self._limit,
            blocked_until=self._blocked_until,
            rate_limited=self._rate_limited,
            decreases=self._decreases,
            reserved=self._reserved,
        )

    def _measure(self, now: float) -> None:
        # One-second windows: cheap, and the first 429 needs only a rough rate.
        if math.isnan(self._window_start):
            self._window_start = now
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self._window_rate = self._window_count / elapsed
            self._window_start = now
            self._window_count = 0
        self._window_count += 1

    def _measured(self, now: float) -> float:
        elapsed = 0.0 if math.isnan(self._window_start) else now - self._window_start
        partial = self._window_count / max(elapsed, 1.0)
        return max(self._window_rate, partial, self._min_rate)

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:g}/s"
        return f"RateBudget(rate={rate}, limit={self._limit!r})"
