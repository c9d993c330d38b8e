"""
How long a model's predictions take: learned statistics, and the server's word.

Pure: no I/O, no clock. Part of the poll scheduling (`policies` plans from these
statistics, `schedule` feeds them).

Theory of operation
-------------------
`DurationModel` is the learning: per model, the running mean and variance of the
logarithm of how long completed predictions took, seeded with a prior per kind
(image 2-10 s and video 30-180 s as the vendor's Predictions guide gives them,
audio 5-30 s our own estimate; docs/wire.md, "Typical durations"), in O(1)
memory. `DurationBook` holds one per (kind, model), bounded.

What a completion teaches is best told by the server: `reported_duration` reads
the timings a completed snapshot may carry (``completed_at - created_at``, then
``metrics.predict_time``, ``latency_ms``, ``executionTime``,
``timings.inference``). The poll that saw a prediction done, and the one before
that saw it running, bound when it really ended; a reading outside those bounds
(by more than network noise) is not this prediction's duration and is skipped,
so garbage (NaN, negative, wrong units, a wrong clock) falls back to the
scheduler's own estimate, the midpoint of the two polls.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from .models import Kind, Prediction

__all__ = [
    "KIND_PRIORS",
    "DurationBook",
    "Distribution",
    "DurationModel",
    "reported_duration",
]

#: Typical durations per kind, in seconds (low, high): docs/wire.md, "Typical
#: durations" (image and video from the vendor's guide, audio our estimate).
#: Image tools (upscale, 5-15 s) are image predictions; their model learns it.
KIND_PRIORS: Mapping[Kind, tuple[float, float]] = {
    Kind.IMAGE: (2.0, 10.0),
    Kind.VIDEO: (30.0, 180.0),
    Kind.AUDIO: (5.0, 30.0),
}

# The prior counts as this many observations: one real completion moves the
# estimate a third of the way, and a few dozen make the prior irrelevant.
_PRIOR_WEIGHT = 2.0
# Past this many observations the mean forgets slowly (weight 1/1000 per sample)
# instead of never: it follows drift without letting one batch's order bias it.
_MAX_WEIGHT = 1000.0
# Observations are clamped to [10 ms, 1 week]: a log of 0 or of infinity would
# poison the mean for good.
_MIN_DURATION = 0.01
_MAX_DURATION = 7 * 86400.0

# A server reading may stray this far outside what the polls proved: the submit
# and poll round trips, and the server's clock ticking apart from ours.
_SLACK = 1.0
_SLACK_SHARE = 0.1
# No generation ends within 50 ms: a smaller reading is a seconds value read as
# milliseconds, or a placeholder.
_MIN_REPORTED = 0.05
# Epoch numbers above this are milliseconds (1e11 s is the year 5138).
_EPOCH_MS = 1e11
_FRACTION = re.compile(r"\.([0-9]+)")
# The empirical distribution keeps this many recent durations per model: enough
# for a density a poll interval can follow, little enough to forget a drift.
_RECENT = 64
# Webhook delivery delays kept per model, and the least margin over the
# longest of them before a delivery counts as overdue.
_DELAYS = 16
_DELIVERY_SLACK = 0.5


@attrs.frozen(slots=True)
class Distribution:
    """
    The durations a model's recent completions took, as a distribution (frozen).

    ``points`` are the sorted durations ``x_0 <= ... <= x_(m-1)``. The CDF is
    piecewise linear through ``F(x_i) = i / m``: nothing ends before the
    shortest duration seen, the density is high where durations crowd, and the
    last ``1/m`` of mass lies beyond the longest one, in an exponential tail of
    scale ``(x_(m-1) - x_0) / 4`` (a job may always be slower than any seen).
    """

    points: tuple[float, ...]

    @property
    def shortest(self) -> float:
        """The shortest duration seen."""
        return self.points[0]

    @property
    def longest(self) -> float:
        """The longest duration seen."""
        return self.points[-1]

    def survival(self, t: float) -> float:
        """``1 - F(t)``: the share of predictions still running ``t`` s in."""
        points = self.points
        m = len(points)
        if t <= points[0]:
            return 1.0
        last = points[-1]
        if t >= last:
            scale = max(last - points[0], 1e-3) / 4.0
            return math.exp(-(t - last) / scale) / m
        i = bisect_right(points, t)  # points[i - 1] <= t < points[i]
        lo, hi = points[i - 1], points[i]
        return 1.0 - (i - 1 + (t - lo) / (hi - lo)) / m

    def chance(self, since: float, until: float) -> float:
        """P(a prediction ends in ``(since, until]`` | it ran at ``since``)."""
        alive = self.survival(since)
        if alive <= 0.0:
            return 1.0
        return max(0.0, 1.0 - self.survival(until) / alive)

    def interval(self, t: float, resolution: float, floor: float, cap: float) -> float:
        """
        The interval ``d`` in ``[floor, cap]`` with ``d * chance(t, t + d) =
        resolution``: short where many end, long where few do.

        ``d * chance(t, t + d)`` is ``d * (F(t + d) - F(t)) / S(t)``, and F is
        linear between two durations seen: walking those segments from ``t``
        finds the one where it reaches ``resolution``, and a quadratic the
        point. Past the longest duration (the tail) a bisection in log space
        finds it (to about 1%; the plan's jitter is coarser).
        """
        points = self.points
        m = len(points)
        i = bisect_right(points, t)
        if i == 0 or i >= m:
            return self._interval(t, resolution, floor, cap)
        target = resolution * self.survival(t)
        mass = 0.0  # F(a) - F(t)
        a = t
        for j in range(i, m):
            b = points[j]
            width = b - points[j - 1]
            reach = b - t
            if width <= 0.0:  # a duration seen twice: a step of 1/m
                mass += 1.0 / m
                if reach * mass >= target:
                    return min(max(reach, floor), cap)
                continue
            slope = 1.0 / (m * width)
            if reach >= cap or reach * (mass + slope * (b - a)) >= target:
                # slope * d**2 + (mass - slope * (a - t)) * d = target
                linear = mass - slope * (a - t)
                d = (-linear + math.sqrt(linear * linear + 4.0 * slope * target)) / (
                    2.0 * slope
                )
                return min(max(d, floor), cap)
            mass += slope * (b - a)
            a = b
        return self._interval(t, resolution, floor, cap)

    def _interval(self, t: float, resolution: float, floor: float, cap: float) -> float:
        if floor * self.chance(t, t + floor) >= resolution:
            return floor
        if cap * self.chance(t, t + cap) <= resolution:
            return cap
        lo, hi = math.log(floor), math.log(cap)
        for _ in range(10):
            mid = (lo + hi) / 2.0
            d = math.exp(mid)
            if d * self.chance(t, t + d) < resolution:
                lo = mid
            else:
                hi = mid
        return math.exp((lo + hi) / 2.0)


@attrs.define(slots=True, eq=False)
class DurationModel:
    """
    What one model's predictions took, learned from completions (pure, O(1)).

    Keeps the weighted running mean ``mu`` and variance ``var`` of
    ``log(duration)``, seeded by a prior range, plus the count and the shortest
    duration seen. Log space because durations are positive and skewed: a 3-minute
    outlier should not move a 90-second model as much as it would in seconds.

    Attributes:
        log_mean: mean of log-durations (``mu``).
        log_var: variance of log-durations (``sigma**2``).
        weight: how many observations the estimate is worth (prior included).
        count: completions observed.
        minimum: shortest duration observed (``inf`` before the first).
        probes: early probes spent on this model while it had no completion
            (see `AdaptivePolicy`).
        recent: the last 64 durations observed (a ring, oldest overwritten).
        delays: the last 16 webhook delivery delays observed (a ring).
    """

    log_mean: float
    log_var: float
    weight: float = _PRIOR_WEIGHT
    count: int = 0
    minimum: float = math.inf
    probes: int = 0
    recent: list[float] = attrs.field(factory=list)
    delays: list[float] = attrs.field(factory=list)
    deliveries: int = 0
    _shape: Distribution | None = attrs.field(default=None, init=False, repr=False)
    _shape_count: int = attrs.field(default=-1, init=False, repr=False)

    @classmethod
    def from_range(cls, low: float, high: float) -> DurationModel:
        """
        Build a prior whose `low` is ``low`` and which spans ``[low, high]``.

        The log-mean sits halfway between ``log(low)`` and ``log(high)``, and the
        deviation is a quarter of that distance, so ``mu - 2 sigma`` is ``low``.
        """
        if not 0.0 < low <= high:
            raise ValueError(f"need 0 < low <= high, got {low!r}, {high!r}")
        lo, hi = math.log(low), math.log(high)
        return cls(log_mean=(lo + hi) / 2.0, log_var=((hi - lo) / 4.0) ** 2)

    @property
    def sigma(self) -> float:
        """The deviation of log-durations."""
        return math.sqrt(self.log_var)

    @property
    def low(self) -> float:
        """``exp(mu - 2 sigma)``: about the 2nd percentile; where polling starts."""
        return math.exp(self.log_mean - 2.0 * self.sigma)

    @property
    def typical(self) -> float:
        """``exp(mu)``: the geometric-mean duration."""
        return math.exp(self.log_mean)

    @property
    def high(self) -> float:
        """``exp(mu + sigma)``: about the 84th percentile; where the tail begins."""
        return math.exp(self.log_mean + self.sigma)

    def distribution(self, least: int) -> Distribution | None:
        """
        The recent durations as a `Distribution`, once at least ``least`` (>= 2)
        were seen; None before. Shared by every plan made until the next
        completion.
        """
        if len(self.recent) < max(least, 2):
            return None
        if self._shape is None or self._shape_count != self.count:
            self._shape = Distribution(tuple(sorted(self.recent)))
            self._shape_count = self.count
        return self._shape

    def chance(self, since: float, until: float) -> float:
        """
        P(a prediction of this model ends in ``(since, until]`` | it ran at
        ``since``): from the recent durations once 8 were seen, else from the
        log-normal estimate.
        """
        shape = self.distribution(8)
        if shape is not None:
            return shape.chance(since, until)
        alive = _lognormal_survival(since, self.log_mean, self.sigma)
        if alive <= 0.0:
            return 1.0
        return max(
            0.0, 1.0 - _lognormal_survival(until, self.log_mean, self.sigma) / alive
        )

    @property
    def delivery_delay(self) -> float | None:
        """
        How late a webhook may come after its prediction ended: the longest of
        the last 16 delays observed plus a quarter (at least 0.5 s) for the
        ones not seen yet; None before the first delivery.
        """
        if not self.delays:
            return None
        longest = max(self.delays)
        return longest + max(0.25 * longest, _DELIVERY_SLACK)

    def observe_delivery(self, seconds: float) -> None:
        """Record that a webhook came ``seconds`` after its prediction ended."""
        if not math.isfinite(seconds):
            return
        seconds = min(max(seconds, 0.0), _MAX_DURATION)
        if len(self.delays) < _DELAYS:
            self.delays.append(seconds)
        else:
            self.delays[self.deliveries % _DELAYS] = seconds
        self.deliveries += 1

    def observe(self, seconds: float) -> None:
        """
        Fold one completed prediction's duration (seconds) into the estimate.

        Clamped to [10 ms, 1 week]; NaN is ignored. A first completion below
        `low` replaces the prior's centre instead of being weighed against it.
        """
        if math.isnan(seconds):
            return
        seconds = min(max(seconds, _MIN_DURATION), _MAX_DURATION)
        first = not self.count and seconds < self.low
        if len(self.recent) < _RECENT:
            self.recent.append(seconds)
        else:
            self.recent[self.count % _RECENT] = seconds
        self.count += 1
        self.minimum = min(self.minimum, seconds)
        if first:
            # The prior is a guess for a whole kind. A first completion faster
            # than about 98% of it says this model is not like its kind: keep
            # the prior's spread, not its centre (weighed, it would take several
            # completions to pull a 73 s video prior under a 3 s model's 6 s).
            self.log_mean, self.weight = math.log(seconds), 1.0
            return
        self.weight = min(self.weight + 1.0, _MAX_WEIGHT)
        # Weighted (West) update of mean and variance: exact running statistics
        # until _MAX_WEIGHT, an exponentially weighted average after it.
        alpha = 1.0 / self.weight
        delta = math.log(seconds) - self.log_mean
        self.log_mean += alpha * delta
        self.log_var = (1.0 - alpha) * (self.log_var + alpha * delta * delta)


class DurationBook:
    """
    One `DurationModel` per (kind, model), created from `KIND_PRIORS` on first use.

    Bounded: past ``max_models`` entries the least recently used is forgotten.

    Args:
        priors: the (low, high) prior per kind.
        max_models: how many models to remember.
    """

    __slots__ = ("_max", "_models", "_priors")

    def __init__(
        self,
        priors: Mapping[Kind, tuple[float, float]] = KIND_PRIORS,
        *,
        max_models: int = 1024,
    ) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be >= 1, got {max_models!r}")
        self._priors = dict(priors)
        self._max = max_models
        self._models: OrderedDict[tuple[Kind, str], DurationModel] = OrderedDict()

    def get(self, kind: Kind, model: str | None) -> DurationModel:
        """Return the model's statistics, creating them from the kind's prior."""
        key = (kind, model or "")
        found = self._models.get(key)
        if found is not None:
            self._models.move_to_end(key)
            return found
        low, high = self._priors.get(kind, KIND_PRIORS[Kind.IMAGE])
        created = DurationModel.from_range(low, high)
        self._models[key] = created
        if len(self._models) > self._max:
            self._models.popitem(last=False)
        return created

    def observe(self, kind: Kind, model: str | None, seconds: float) -> None:
        """Record that a prediction of ``model`` took ``seconds``."""
        self.get(kind, model).observe(seconds)

    def __len__(self) -> int:
        return len(self._models)


def _lognormal_survival(t: float, mu: float, sigma: float) -> float:
    if t <= 0.0:
        return 1.0
    if sigma <= 0.0:
        return 1.0 if math.log(t) < mu else 0.0
    return 0.5 * math.erfc((math.log(t) - mu) / (sigma * math.sqrt(2.0)))


def reported_duration(
    prediction: Prediction, earliest: float, latest: float
) -> float | None:
    """
    The duration the server reported for a completed ``prediction``, if credible.

    Readings, first choice first: ``completed_at - created_at`` (the whole
    life, queueing included; ISO-8601 text or epoch seconds or milliseconds),
    ``metrics.predict_time`` (seconds), ``latency_ms``, ``executionTime`` and
    ``timings.inference`` (milliseconds). The first reading within
    ``[earliest, latest]`` (give or take 1 s and a tenth of ``latest``) is
    returned, clamped to that window; None when there is none.

    Args:
        prediction: the completed snapshot.
        earliest: seconds after submission when it was last seen running (0 if
            never): it cannot have ended before.
        latest: seconds after submission when it was seen done.
    """
    slack = _SLACK + _SLACK_SHARE * max(latest, 0.0)
    for seconds in _readings(prediction):
        if seconds >= _MIN_REPORTED and earliest - slack <= seconds <= latest + slack:
            return min(max(seconds, earliest), latest)
    return None


def _readings(prediction: Prediction) -> Iterator[float]:
    raw: Any = prediction.raw
    raw = raw if isinstance(raw, Mapping) else {}
    created = _instant(prediction.created_at)
    if created is None:
        created = _instant(raw.get("created_at"))
    completed = _instant(raw.get("completed_at"))
    if created is not None and completed is not None:
        yield completed - created
    metrics: Any = prediction.metrics
    if isinstance(metrics, Mapping):
        yield from _scaled(metrics.get("predict_time"), 1.0)
    yield from _scaled(raw.get("latency_ms"), 1e-3)
    yield from _scaled(raw.get("executionTime"), 1e-3)
    timings = raw.get("timings")
    if isinstance(timings, Mapping):
        yield from _scaled(timings.get("inference"), 1e-3)


def _scaled(value: object, unit: float) -> Iterator[float]:
    number = _number(value)
    if number is not None:
        yield number * unit


def _number(value: object) -> float | None:
    """A finite number from a JSON number or numeric text; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _instant(value: object) -> float | None:
    """Unix seconds from a datetime, ISO-8601 text or an epoch number; else None."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and _number(value) is None:
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        # Python 3.10 reads only 3 or 6 fraction digits.
        text = _FRACTION.sub(
            lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1
        )
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        number = _number(value)
        if number is None or number <= 0.0:
            return None
        return number / 1000.0 if number > _EPOCH_MS else number
    # The API speaks UTC: a time without an offset is read as UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
