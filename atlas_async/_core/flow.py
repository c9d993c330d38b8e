"""
Flow control under an account's two limits, learned without a rate-limit header.

Pure: time is the ``now`` argument, nothing sleeps, nothing draws random numbers.
The runner asks, sleeps on its own clock, sends, and reports what came back.

Theory of operation
-------------------
Atlas answers 429 for two different reasons, and no header says which:

1. the account's request **rate**, shared by every submit, poll and upload;
2. a model's number of **unfinished predictions** (for video this binds first: a
   submit over it is refused until one of the account's predictions on that model
   ends).

So there are two controllers, and `attribute` decides which one a 429 feeds:

* `AccountRate`, one per account: a token bucket (GCRA) whose rate is learned.
  A rate refusal cuts the rate to ``beta`` times what was *actually sent* over the
  last second; it then grows back along a cubic (CUBIC, RFC 8312) to the level of
  the refusal and probes past it.
* `ModelWindows` (in ``_core.windows``), one window per model, like TCP's
  congestion window: a submit starts only while ``in_flight < window``; a
  refusal sets the window to what is running; every ``probe_every`` completions
  with the window full it grows by one.
* `attribute` with a `RefusalMemory` (in ``_core.windows``): a 429 on a poll or
  upload is the rate; on a submit it is the model's window, unless polls or
  uploads were refused within the last second or the message speaks of a rate.

`Limits` carries what the user knows; known limits are where the controllers
start and a ceiling that nothing learned ever passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from .errors import ConfigurationError
from .models import FrozenDict

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_BURST",
    "DEFAULT_CUBIC_SCALE",
    "DEFAULT_CUT_INTERVAL",
    "DEFAULT_PROBE_EVERY",
    "AccountRate",
    "AccountRateStatistics",
    "Limits",
    "known_count",
    "recovery_rate",
    "resolve_limits",
]

#: The rate kept after a rate refusal, as a fraction of the rate sent (CUBIC's beta).
DEFAULT_BETA = 0.75
#: CUBIC's C, in requests/s per s**3. With beta 0.75 a refusal at 200 requests/s is
#: regained after K = cbrt(200 * 0.25 / 2) = 2.92 s, one at 50/s after 1.84 s.
DEFAULT_CUBIC_SCALE = 2.0
#: At most one cut per this many seconds: the 429s of requests already on their
#: way when the first one arrived describe the same excess.
DEFAULT_CUT_INTERVAL = 1.0
#: Seconds' worth of requests that may leave back to back. Zero by default: a
#: server counting over a sliding second sees a burst *on top of* the steady
#: rate (a 0.1 s burst under a known 48/s limit is 53 requests in the first
#: second), and spacing costs a poll at most ``1 / rate`` of latency.
DEFAULT_BURST = 0.0
#: Completions with the window full before the window grows by one (a probe).
DEFAULT_PROBE_EVERY = 3

# The send meter: 100 ms buckets; a window of ten (one second) plus the bucket
# sliding out of it; sends scheduled up to _AHEAD seconds ahead are kept too.
_BUCKET = 0.1
_WINDOW = 10
_AHEAD = 5.0
_RING = _WINDOW + 1 + int(_AHEAD / _BUCKET) + 1


def _known_rate(value: object, what: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{what} must be a positive finite number of requests per second "
            f"or None, got {value!r}"
        )
    return float(value)


def known_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{what} must be an int >= 1, got {value!r}")
    return value


def _frozen_in_flight(value: Mapping[str, int]) -> FrozenDict[str, int]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"in_flight must be a mapping of model id to int, got {value!r}"
        )
    frozen: dict[str, int] = {}
    for model, limit in value.items():
        if not isinstance(model, str) or not model:
            raise ConfigurationError(
                f"in_flight keys must be model ids (non-empty str), got {model!r}"
            )
        frozen[model] = known_count(limit, f"in_flight[{model!r}]")
    return FrozenDict(frozen)


def _check_rate(instance: object, attribute: object, value: float | None) -> None:
    _known_rate(value, "requests_per_second")


def _check_default(instance: object, attribute: object, value: int | None) -> None:
    if value is not None:
        known_count(value, "default_in_flight")


@attrs.frozen(kw_only=True)
class Limits:
    """
    An account's limits, as far as they are known. Unknown ones are learned.

    Known limits are where the flow control starts and a ceiling: nothing it
    learns ever goes above them. Each is optional.

    Attributes:
        requests_per_second: the account's request rate (submits, polls,
            uploads together), or None to learn it from refusals.
        in_flight: per model id, how many of its predictions may be unfinished
            at once (read-only).
        default_in_flight: the same for every model not in ``in_flight``, or
            None to learn each model's limit.

    Example::

        >>> limits = Limits(
        ...     requests_per_second=20,
        ...     in_flight={"kwaivgi/kling-v3.0-std/image-to-video": 5},
        ...     default_in_flight=10,
        ... )
        >>> limits.limit_for("kwaivgi/kling-v3.0-std/image-to-video")
        5
        >>> limits.limit_for("google/nano-banana-2/text-to-image")
        10

    Raises:
        ConfigurationError: a rate that is not a positive finite number, or a
            count that is not an int >= 1 (bools are refused for both).
    """

    requests_per_second: float | None = attrs.field(default=None, validator=_check_rate)
    in_flight: Mapping[str, int] = attrs.field(
        factory=FrozenDict, converter=_frozen_in_flight
    )
    default_in_flight: int | None = attrs.field(default=None, validator=_check_default)

    def limit_for(self, model: str) -> int | None:
        """The known in-flight limit of ``model``, or None if it is to be learned."""
        return self.in_flight.get(model, self.default_in_flight)


def resolve_limits(limits: Limits | None, requests_per_second: float | None) -> Limits:
    """
    The client's limits from ``limits=`` and ``requests_per_second=`` together.

    Raises:
        ConfigurationError: ``limits`` is not a `Limits`, or both give a rate
            and the two disagree.
    """
    if limits is None:
        return Limits(requests_per_second=requests_per_second)
    if not isinstance(limits, Limits):
        raise ConfigurationError(f"limits must be a Limits, got {limits!r}")
    if requests_per_second is None:
        return limits
    if limits.requests_per_second not in (None, requests_per_second):
        raise ConfigurationError(
            "requests_per_second and limits.requests_per_second disagree:"
            " give the rate once"
        )
    return attrs.evolve(limits, requests_per_second=requests_per_second)


# -- the account's rate ----------------------------------------------------------


def recovery_rate(
    w_max: float,
    elapsed: float,
    sent: float,
    *,
    limit: float | None,
    beta: float = DEFAULT_BETA,
    cubic_scale: float = DEFAULT_CUBIC_SCALE,
    min_rate: float = 0.1,
) -> float:
    """
    The rate ``elapsed`` seconds after a cut at ``w_max`` (`AccountRate`'s curve).

    ``sent`` is what went out over the last second: past ``w_max`` the rate
    never exceeds twice it. Shared by `AccountRate` and by a coordinator that
    keeps ``w_max`` and the cut's time for several processes.

    Example::

        >>> round(recovery_rate(100.0, 0.0, 100.0, limit=None), 6)  # beta x w_max
        75.0
    """
    k = math.cbrt(w_max * (1.0 - beta) / cubic_scale)
    rate = cubic_scale * (max(0.0, elapsed) - k) ** 3 + w_max
    if rate > w_max:
        rate = min(rate, max(w_max, 2.0 * sent))
    rate = max(rate, min_rate)
    return rate if limit is None else min(rate, limit)


class _SendMeter:
    """
    Requests per second actually sent: counts in 100 ms buckets, kept on a ring.

    Each request is counted at the time it is scheduled to leave (now, or after
    its wait), so the count over a second is what the server saw in it. The ring
    holds the last second and what is scheduled up to `_AHEAD` seconds later; a
    send scheduled further out is counted at that horizon (too early: a count
    too high is harmless, the cut takes the lower of it and the budget).
    """

    __slots__ = ("_head", "_ring")

    def __init__(self) -> None:
        self._ring = [0] * _RING
        self._head = -(1 << 62)  # the newest bucket counted into

    def add(self, at: float) -> None:
        """Count one request sent at ``at``."""
        index = math.floor(at / _BUCKET)
        ring = self._ring
        if index > self._head:
            for step in range(1, min(index - self._head, _RING) + 1):
                ring[(self._head + step) % _RING] = 0
            self._head = index
        elif self._head - index >= _RING:
            return  # older than anything kept
        ring[index % _RING] += 1

    def count(self, now: float) -> float:
        """Requests sent in ``(now - 1, now]``."""
        position = now / _BUCKET
        index = math.floor(position)
        # Sends are taken as spread evenly over their bucket: of the current one,
        # the part before now counts; of the oldest, the part after now - 1.
        elapsed = position - index
        head, ring = self._head, self._ring
        total = 0.0
        for bucket in range(
            max(index - _WINDOW, head - _RING + 1), min(index, head) + 1
        ):
            count = ring[bucket % _RING]
            if bucket == index:
                total += count * elapsed
            elif bucket == index - _WINDOW:
                total += count * (1.0 - elapsed)
            else:
                total += count
        return total


@attrs.frozen(kw_only=True)
class AccountRateStatistics:
    """
    A snapshot of an `AccountRate`.

    Attributes:
        rate: the requests per second allowed now, or None while unlimited.
        limit: the known ceiling, or None.
        sent_rate: requests sent over the last second.
        w_max: the rate at the last cut (where recovery aims), or None.
        cuts: how often the rate was cut.
        rate_refusals: refusals attributed to the rate (`AccountRate.on_refusal`).
        rate_limited: 429 answers seen (`AccountRate.on_response`), any cause.
        blocked_until: nothing may be sent before this (a Retry-After).
        reserved: reservations made.
    """

    rate: float | None
    limit: float | None
    sent_rate: float
    w_max: float | None
    cuts: int
    rate_refusals: int
    rate_limited: int
    blocked_until: float
    reserved: int

    @property
    def decreases(self) -> int:
        """``cuts``, under its older name."""
        return self.cuts


class AccountRate:
    """
    The account's request rate: a token bucket whose rate is learned (CUBIC).

    ``reserve``, ``blocked_for``, ``on_response``, ``rate``, ``statistics``; a
    429 reported to ``on_response`` is only counted: the caller attributes it
    (`attribute`) and calls `on_refusal` when it is the rate's, so a model's
    concurrency refusals never slow the account.

    Spacing: a virtual schedule (GCRA). Requests leave ``1 / rate`` seconds
    apart, with up to ``burst`` seconds' worth back to back; a reservation is a
    commitment, and the next one is scheduled after it.

    Measuring: each reservation counts as one request sent at the time it is
    scheduled to leave, in 100 ms buckets. `sent_rate` is the count over the
    last second, so it is what the server saw in that second, not the budget
    figure, and it lags behind nothing (counting answers would lag a round trip,
    and the first 429 of a burst would arrive before most of its answers).

    Cutting, on a rate refusal at time ``t0`` (at most once per ``cut_interval``)::

        w_max = min(sent_rate(t0), rate(t0))          # sent_rate alone if unlimited
        rate(t0) = beta * w_max

    The measured rate, not the budget figure: a budget of 500/s that sent 120/s
    was refused at 120/s.

    Recovering, for ``t >= t0`` (RFC 8312's window curve, in requests/s)::

        K = cbrt(w_max * (1 - beta) / C)
        cubic(t) = C * (t - t0 - K)**3 + w_max
        rate(t) = min(limit, max(min_rate, min(cubic(t), max(w_max, 2 * sent_rate(t)))))

    Concave up to ``w_max`` (reached after ``K`` seconds: 2.92 s for a 200/s
    limit with the defaults, 1.84 s for 50/s), flat around it, then convex:
    probing past the old level ever faster. Past ``w_max`` the rate never
    exceeds twice what was really sent over the last second, so a client that
    idled for a minute does not come back at a rate it never tried. With no
    refusal yet, the rate is the known ``requests_per_second``, or None
    (unlimited).

    Retry-After (on a 429 or 503, when some endpoint sends one) is a floor:
    nothing is sent before ``now + min(retry_after, retry_after_cap)``.

    Args:
        requests_per_second: the known limit: the starting rate and a ceiling
            (``Limits.requests_per_second``); None to learn it.
        beta: the fraction of the sent rate kept on a cut (0 < beta < 1).
        cubic_scale: CUBIC's ``C``, requests/s per s**3 (> 0).
        cut_interval: at most one cut per this many seconds (>= 0).
        burst: seconds' worth of requests that may leave back to back (>= 0).
        min_rate: the rate never drops below this (> 0).
        retry_after_cap: the longest Retry-After honoured, seconds (>= 0).

    Example::

        >>> rate = AccountRate()  # nothing known: unlimited until refused
        >>> max(rate.reserve(0.5 + i / 200) for i in range(100))
        0.0
        >>> rate.on_response(429, None, 1.0)
        >>> rate.on_refusal(1.0)  # 100 sent in the last second
        >>> rate.statistics(1.0).w_max, round(rate.rate, 6)
        (100.0, 75.0)
        >>> [round(rate.reserve(1.0), 4) for _ in range(4)]  # 1/75 s apart
        [0.0, 0.0133, 0.0267, 0.04]
    """

    __slots__ = (
        "_beta",
        "_blocked_until",
        "_burst",
        "_cut_at",
        "_cut_interval",
        "_cuts",
        "_limit",
        "_meter",
        "_min_rate",
        "_rate",
        "_rate_limited",
        "_rate_refusals",
        "_reserved",
        "_retry_after_cap",
        "_scale",
        "_seen",
        "_tat",
        "_w_max",
    )

    def __init__(
        self,
        requests_per_second: float | None = None,
        *,
        beta: float = DEFAULT_BETA,
        cubic_scale: float = DEFAULT_CUBIC_SCALE,
        cut_interval: float = DEFAULT_CUT_INTERVAL,
        burst: float = DEFAULT_BURST,
        min_rate: float = 0.1,
        retry_after_cap: float = 120.0,
    ) -> None:
        self._limit = _known_rate(requests_per_second, "requests_per_second")
        if not 0.0 < beta < 1.0:
            raise ConfigurationError(f"beta must be in (0, 1), got {beta!r}")
        for name, value, lowest in (
            ("cubic_scale", cubic_scale, None),
            ("min_rate", min_rate, None),
            ("cut_interval", cut_interval, 0.0),
            ("burst", burst, 0.0),
            ("retry_after_cap", retry_after_cap, 0.0),
        ):
            ok = value >= lowest if lowest is not None else value > 0.0
            if not (ok and math.isfinite(value)):
                bound = ">= 0" if lowest is not None else "> 0"
                raise ConfigurationError(f"{name} must be {bound}, got {value!r}")
        self._beta = float(beta)
        self._scale = float(cubic_scale)
        self._cut_interval = float(cut_interval)
        self._burst = float(burst)
        self._min_rate = float(min_rate)
        self._retry_after_cap = float(retry_after_cap)
        self._rate: float | None = self._limit
        self._w_max: float | None = None
        self._cut_at = -math.inf
        self._tat = -math.inf
        self._blocked_until = -math.inf
        self._seen = -math.inf
        self._cuts = 0
        self._rate_refusals = 0
        self._rate_limited = 0
        self._reserved = 0
        self._meter = _SendMeter()

    # -- the token bucket --------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """The rate as of the last call, requests/s; None while unlimited."""
        return self._rate

    @property
    def limit(self) -> float | None:
        """The known ceiling, or None."""
        return self._limit

    @property
    def blocked_until(self) -> float:
        """Nothing may be sent before this time (``-inf`` when not blocked)."""
        return self._blocked_until

    def blocked_for(self, now: float) -> float:
        """Seconds until a Retry-After block ends (0 if none)."""
        return max(0.0, self._blocked_until - now)

    def reserve(self, now: float) -> float:
        """
        Reserve a slot for one request; return the seconds to wait before sending.

        0 means send now. The reservation is kept even if the caller gives up.
        """
        rate = self._rate = self.rate_at(now)
        return self._commit(now, rate)

    def reserve_now(self, now: float) -> bool:
        """
        Reserve a slot for one request sent now, if it may go without waiting.

        False (nothing reserved) when `reserve` would have said to wait: the
        caller then reserves the usual way and waits. Every poll asks this
        first; most of the time the answer is yes.
        """
        # Never cut: the known limit, or none (`rate_at` without the call).
        rate = self._limit if self._w_max is None else self.rate_at(now)
        if self._allowed(now, rate) > now:
            return False
        self._rate = rate
        self._commit(now, rate)
        return True

    def _commit(self, now: float, rate: float | None) -> float:
        """Count one reservation at ``rate``; the seconds it waits."""
        self._reserved += 1
        if now > self._seen:
            self._seen = now
        allowed = self._allowed(now, rate)
        if rate is not None:
            self._tat = max(self._tat, now, self._blocked_until) + 1.0 / rate
        self._meter.add(min(allowed, now + _AHEAD))
        return allowed - now

    def _allowed(self, now: float, rate: float | None) -> float:
        """When one more request may go at ``rate`` (GCRA: its burst tolerated)."""
        start = max(now, self._blocked_until)
        if rate is None:
            return start
        return max(start, self._tat - max(0.0, self._burst - 1.0 / rate))

    def on_response(
        self, status_code: int | None, retry_after: float | None, now: float
    ) -> None:
        """
        Honour an answer's Retry-After, and count it if it is a 429.

        Call it for every attempt that went out, answered or not. A 429 is only
        counted here; call `on_refusal` too when `attribute` says it is the
        rate's.

        Args:
            status_code: the HTTP status, or None when no answer came.
            retry_after: seconds the server asked to wait, if it did.
            now: the current time.
        """
        self._seen = max(self._seen, now)
        if (
            retry_after is not None
            and status_code in (429, 503)
            and retry_after > 0  # also False for NaN
        ):
            until = now + min(retry_after, self._retry_after_cap)
            self._blocked_until = max(self._blocked_until, until)
        if status_code == 429:
            self._rate_limited += 1
        if self._w_max is not None:
            self._rate = self.rate_at(now)

    def statistics(self, now: float | None = None) -> AccountRateStatistics:
        """A snapshot at ``now`` (default: the latest time this rate was told)."""
        at = self._seen if now is None else now
        measurable = math.isfinite(at)
        return AccountRateStatistics(
            rate=self.rate_at(at) if measurable else self._rate,
            limit=self._limit,
            sent_rate=self.sent_rate(at) if measurable else 0.0,
            w_max=self._w_max,
            cuts=self._cuts,
            rate_refusals=self._rate_refusals,
            rate_limited=self._rate_limited,
            blocked_until=self._blocked_until,
            reserved=self._reserved,
        )

    # -- learning ----------------------------------------------------------------

    def on_refusal(self, now: float) -> None:
        """
        A request was refused for the account's rate: cut, at most once per
        ``cut_interval``, to ``beta`` times the rate sent over the last second.
        """
        self._seen = max(self._seen, now)
        self._rate_refusals += 1
        if now < self._cut_at + self._cut_interval:
            return
        sent = self.sent_rate(now)
        budget = self.rate_at(now)
        level = sent if budget is None else min(sent, budget)
        level = max(level, self._min_rate)
        self._w_max = level
        self._cut_at = now
        self._cuts += 1
        self._rate = self.rate_at(now)

    def rate_at(self, now: float) -> float | None:
        """The rate the bucket runs at, at ``now`` (the recovery curve); no change."""
        w_max = self._w_max
        if w_max is None:
            return self._limit
        return recovery_rate(
            w_max,
            now - self._cut_at,
            self.sent_rate(now),
            limit=self._limit,
            beta=self._beta,
            cubic_scale=self._scale,
            min_rate=self._min_rate,
        )

    def sent_rate(self, now: float) -> float:
        """Requests sent (or scheduled to be) in the second before ``now``."""
        return self._meter.count(now)

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:g}/s"
        return f"AccountRate(rate={rate}, limit={self._limit!r}, cuts={self._cuts})"
