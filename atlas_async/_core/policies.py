"""
When to poll a prediction next, and how long to wait after a failed poll.

Pure: no I/O, no clock, no global random state. Time comes in as arguments
(seconds since submission) and jitter comes from an injected `random.Random`.

Theory of operation
-------------------
A `PollPolicy` is frozen configuration. When the scheduler core registers a
prediction it calls `PollPolicy.plan` once, with the `DurationModel` of the
prediction's model, and keeps the returned `PollPlan` for that prediction's whole
life. The plan answers one question, `PollPlan.delay(elapsed, polls, rng)`: given
that ``polls`` polls were made and ``elapsed`` seconds have passed since
submission, how many seconds until the next poll.

Freezing the plan at registration is deliberate. In a batch the short jobs finish
first, so the statistics a client holds *during* a batch describe only the short
jobs; applying them to the long-running siblings would make the client poll those
far too often. Each prediction is planned from what was known when it started.

`DurationModel` is the learning: per model, the running mean and variance of the
logarithm of how long completed predictions took, seeded with a prior per kind
(image 2-10 s and video 30-180 s as the vendor's Predictions guide gives them,
audio 5-30 s our own estimate; docs/wire.md, "Typical durations"), in O(1)
memory.
`DurationBook` holds one per (kind, model), bounded. The delay after a failed
poll is not a poll policy: it is the SDK's one retry primitive, `BackoffPolicy`
in ``_core.retry`` (re-exported here).
"""

from __future__ import annotations

import abc
import math
import random
from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

import attrs

from .models import Kind
from .retry import BackoffPolicy, grow

__all__ = [
    "KIND_PRIORS",
    "AdaptivePolicy",
    "BackoffPolicy",
    "DurationBook",
    "DurationModel",
    "ExponentialPolicy",
    "FixedPolicy",
    "PollPlan",
    "PollPolicy",
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
_MIN_DURATION = 0.01


def _jitter(value: float, jitter: float, rng: random.Random) -> float:
    # No rng draw when jitter is off, so unjittered plans never consume randomness.
    if jitter <= 0.0:
        return value
    return value * rng.uniform(1.0 - jitter, 1.0 + jitter)


def _check_jitter(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


def _check_positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0.0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


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
    """

    log_mean: float
    log_var: float
    weight: float = _PRIOR_WEIGHT
    count: int = 0
    minimum: float = math.inf

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

    def observe(self, seconds: float) -> None:
        """Fold one completed prediction's duration (seconds) into the estimate."""
        seconds = max(seconds, _MIN_DURATION)
        self.count += 1
        self.minimum = min(self.minimum, seconds)
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


class PollPlan(Protocol):
    """One prediction's poll schedule (what `PollPolicy.plan` returns)."""

    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        """
        Seconds from now until the next poll.

        Args:
            elapsed: seconds since the prediction was registered.
            polls: polls already made (0 before the first).
            rng: the source of jitter.
        """
        ...


class PollPolicy(abc.ABC):
    """
    When to poll a prediction: the base of `FixedPolicy`, `ExponentialPolicy`
    and `AdaptivePolicy`.

    A policy is frozen configuration; `plan` turns it into one prediction's
    schedule. Subclass it to write your own: implement `plan`, returning an
    object with ``delay(elapsed, polls, rng) -> float`` (a stateless policy can
    return itself).
    """

    __slots__ = ()

    @abc.abstractmethod
    def plan(self, durations: DurationModel) -> PollPlan:
        """Return the schedule for one prediction of a model with ``durations``."""


@attrs.frozen(slots=True)
class FixedPolicy(PollPolicy):
    """
    Poll every ``interval`` seconds; the first poll after ``first`` (default:
    ``interval``) seconds.

    ``delay_0 = first``, ``delay_n = interval``, each times ``1 ± jitter``.
    The vendor's Predictions guide polls images every 2 s and video every 5 s
    (``FixedPolicy(2.0)``, ``FixedPolicy(5.0)``; docs/wire.md, "Typical
    durations").

    Args:
        interval: seconds between polls (> 0).
        first: seconds before the first poll (>= 0), default ``interval``.
        jitter: relative jitter in [0, 1), drawn uniformly.
    """

    interval: float = attrs.field(validator=_check_positive)
    first: float | None = attrs.field(default=None)
    jitter: float = attrs.field(default=0.0, validator=_check_jitter)

    @first.validator
    def _check_first(
        self, attribute: attrs.Attribute[float | None], value: float | None
    ) -> None:
        if value is not None and value < 0.0:
            raise ValueError(f"first must be >= 0, got {value!r}")

    def plan(self, durations: DurationModel) -> FixedPolicy:
        """Return this policy: a fixed schedule learns nothing."""
        return self

    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        """See `PollPlan.delay`."""
        if polls == 0:
            first = self.interval if self.first is None else self.first
            return max(0.0, _jitter(first, self.jitter, rng) - elapsed)
        return _jitter(self.interval, self.jitter, rng)


@attrs.frozen(slots=True)
class ExponentialPolicy(PollPolicy):
    """
    Poll after ``first`` seconds, then at intervals growing by ``factor`` up to
    ``cap``.

    ``delay_n = min(cap, first * factor**n) * (1 ± jitter)`` for the n-th poll
    (n = 0 is the first), clamped to ``cap`` when ``factor**n`` would overflow.

    Args:
        first: seconds before the first poll (> 0).
        factor: growth per poll (>= 1).
        cap: the longest interval (>= first).
        jitter: relative jitter in [0, 1).
    """

    first: float = attrs.field(default=1.0, validator=_check_positive)
    factor: float = attrs.field(default=1.5)
    cap: float = attrs.field(default=30.0)
    jitter: float = attrs.field(default=0.1, validator=_check_jitter)

    @factor.validator
    def _check_factor(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= 1.0:
            raise ValueError(f"factor must be >= 1, got {value!r}")

    @cap.validator
    def _check_cap(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= self.first:
            raise ValueError(f"cap must be >= first ({self.first!r}), got {value!r}")

    def plan(self, durations: DurationModel) -> ExponentialPolicy:
        """Return this policy: an exponential schedule learns nothing."""
        return self

    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        """See `PollPlan.delay`."""
        base = _jitter(grow(self.first, self.factor, self.cap, polls), self.jitter, rng)
        return max(0.0, base - elapsed) if polls == 0 else base


@attrs.frozen(slots=True)
class AdaptivePolicy(PollPolicy):
    """
    The default: poll around when this model's predictions usually finish.

    From the model's `DurationModel` (mean ``mu`` and deviation ``sigma`` of
    log-durations, learned from completions this client saw, seeded per kind)::

        L = exp(mu - 2 sigma)        # about the 2nd percentile: start here
        H = exp(mu + sigma)          # about the 84th percentile: the tail begins
        first poll   t_1 = L * (1 - jitter * u)              (u uniform in [0, 1))
        next poll    t_(n+1) = t_n + clamp(spacing * sqrt(max(t_n, H) - L),
                                          floor, cap) * (1 ± jitter)

    No request is spent before the fastest predictions could be done. Inside the
    usual window ``[L, H]`` polls are evenly spaced, in proportion to the square
    root of the window's width; past ``H`` the interval grows with the square root
    of elapsed time, so a job stuck for ten minutes is polled every ~11 s, not 5.
    The square root is the optimal-inspection law (interval proportional to
    ``1/sqrt(hazard)``, with hazard about ``1/width``): at one cost per second of
    detection lag it minimises requests. ``L`` and ``H`` are frozen per
    prediction when it is registered (see the module docstring).

    Defaults give, with the video prior (30-180 s, so L = 30 s, H = 115 s), a poll
    at 30 s then every ~4.1 s; for a model learned to take 80-100 s, a poll at
    ~77 s then every ~2 s: 8 polls for a 90 s video instead of 18 at a fixed 5 s,
    with a lower detection lag. See ``docs/scheduling.md``.

    Args:
        spacing: the interval scale, in seconds**0.5 (> 0).
        floor: the shortest interval between polls, seconds.
        cap: the longest interval between polls, seconds.
        jitter: relative jitter in [0, 1); the first poll is only ever moved
            earlier, never later than ``L``.
    """

    spacing: float = attrs.field(default=0.45, validator=_check_positive)
    floor: float = attrs.field(default=0.5, validator=_check_positive)
    cap: float = attrs.field(default=60.0)
    jitter: float = attrs.field(default=0.1, validator=_check_jitter)

    @cap.validator
    def _check_cap(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= self.floor:
            raise ValueError(f"cap must be >= floor ({self.floor!r}), got {value!r}")

    def plan(self, durations: DurationModel) -> AdaptivePlan:
        """Freeze ``L`` and ``H`` from ``durations`` into one prediction's plan."""
        return AdaptivePlan(self, durations.low, max(durations.high, durations.low))


@attrs.frozen(slots=True)
class AdaptivePlan:
    """One prediction's `AdaptivePolicy` schedule: the policy plus frozen L and H."""

    policy: AdaptivePolicy
    low: float
    high: float

    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        """See `PollPlan.delay` and the formula on `AdaptivePolicy`."""
        policy = self.policy
        if polls == 0:
            first = self.low
            if policy.jitter > 0.0:
                first *= 1.0 - policy.jitter * rng.random()
            return max(0.0, first - elapsed)
        width = max(elapsed, self.high) - self.low
        interval = policy.spacing * math.sqrt(max(width, 0.0))
        interval = min(max(interval, policy.floor), policy.cap)
        return _jitter(interval, policy.jitter, rng)
