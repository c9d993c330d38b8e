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

Freezing the plan at registration is the rule. In a batch the short jobs finish
first, so the statistics a client holds *during* a batch describe only the short
jobs; applying them to the long-running siblings would make the client poll those
far too often. Each prediction is planned from what was known when it started.
The one exception is a cold start: when completions move a model's typical
duration to less than half of what a pending prediction was planned with, the
core re-plans that prediction if its plan has not polled yet or its next poll
lies beyond twice the new typical duration, only ever moves the next poll
earlier, and hands the prediction back to its frozen plan once it outlives the
new estimate (`RevisedPlan`, ``_core.schedule``). And a model with no
completion yet may be probed early (`PollPolicy.probe`), so a model far faster
than its kind's prior is found out within seconds.

`DurationModel` (per model, the learned log-durations) and `DurationBook` live
in ``_core.durations`` and are re-exported here. The delay after a failed poll
is not a poll policy: it is the SDK's one retry primitive, `BackoffPolicy` in
``_core.retry`` (re-exported here).
"""

from __future__ import annotations

import abc
import math
import random
from collections.abc import Mapping
from typing import Protocol

import attrs

from .durations import KIND_PRIORS, Distribution, DurationBook, DurationModel
from .errors import ArgumentTypeError, InvalidArgumentError
from .models import Kind
from .retry import BackoffPolicy, grow
from .validate import check_count, check_kind, check_real, describe

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
    "RevisedPlan",
    "WebhookPolicy",
    "check_poll_option",
    "check_poll_policy",
    "policies_by_kind",
    "webhook_first",
]


def _jitter(value: float, jitter: float, rng: random.Random) -> float:
    # No rng draw when jitter is off, so unjittered plans never consume randomness.
    if jitter <= 0.0:
        return value
    return value * rng.uniform(1.0 - jitter, 1.0 + jitter)


# Every number of a policy is finite: an infinite interval never polls again,
# and NaN compares false with everything, so it would slip past any bound.
def _check_jitter(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_real(value, attribute.name, minimum=0.0, below=1.0)


def _check_positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_real(value, attribute.name, above=0.0)


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


@attrs.frozen(slots=True)
class RevisedPlan:
    """
    A plan revised by a cold-start re-plan (``_core.schedule``): ``revised``
    while the prediction is younger than ``until`` seconds, then its
    ``original`` plan again, never before ``resume`` (where the original plan
    had put its next poll, 0 if that was not its first).

    A prediction that outlives the estimate it was re-planned with is not like
    the completions that moved it (a long job in a batch of short ones): it goes
    back to its frozen plan.
    """

    revised: PollPlan
    original: PollPlan
    until: float
    resume: float = 0.0

    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        """See `PollPlan.delay`."""
        if elapsed < self.until:
            return self.revised.delay(elapsed, polls, rng)
        interval = self.original.delay(elapsed, max(polls, 1), rng)
        return max(self.resume - elapsed, interval)


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

    def probe(self, durations: DurationModel) -> float | None:
        """
        Seconds after submission for an extra early poll, or None (the default).

        The scheduler core asks this once per prediction, before its plan's
        first poll, and uses the answer only when it comes earlier than that
        poll; it counts each probe it makes in ``durations.probes``. The
        probe's answer, if still running, does not count as one of the plan's
        polls.
        """
        return None


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
        if value is not None:
            check_real(value, "first", minimum=0.0)

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
        check_real(value, "factor", minimum=1.0)

    @cap.validator
    def _check_cap(self, attribute: attrs.Attribute[float], value: float) -> None:
        check_real(value, "cap", minimum=self.first, bound="first")

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

    Cold start: the first ``probes`` predictions of a model with no completion
    yet get one extra early poll each, the k-th (k = 0, 1, ...) at
    ``max(probe_floor, probe_share * L * 2**k)``: 3.75, 7.5 and 15 s on the video
    prior, 1, 1.25 and 2.5 s on the audio one, 1 s on the image one. A model far
    faster than its kind's prior is found out within seconds, for at most
    ``probes`` requests per model.

    Args:
        spacing: the interval scale, in seconds**0.5 (> 0).
        floor: the shortest interval between polls, seconds.
        cap: the longest interval between polls, seconds.
        jitter: relative jitter in [0, 1); the first poll is only ever moved
            earlier, never later than ``L``.
        probes: predictions of an unseen model that get an early probe (>= 0;
            0 turns probing off).
        probe_share: the probe's time as a share of ``L``, in (0, 1].
        probe_floor: the earliest probe, seconds after submission (>= 0).
        resolution: with a learned distribution, the seconds of detection lag
            one poll must buy: each interval ``d`` solves ``d * P(end within d
            | running) = resolution`` (> 0), never shorter than ``resolution``
            nor than ``floor``, whichever is less.
        learned: completions of a model before its plans use their
            distribution instead of ``L`` and ``H`` (>= 0; 0 never does).

    Learned distribution: once a model has ``learned`` completions, a plan
    freezes its last 64 durations (`Distribution`): the first poll comes at
    the shortest duration seen, never before, and each interval is set by the
    chance of finishing within it, so polls are evenly spaced where the
    density is flat and crowd where it peaks; past the longest duration seen
    the square-root rule above takes over (docs/scheduling.md, "Once it has
    seen enough").
    """

    spacing: float = attrs.field(default=0.45, validator=_check_positive)
    floor: float = attrs.field(default=0.5, validator=_check_positive)
    cap: float = attrs.field(default=60.0)
    jitter: float = attrs.field(default=0.1, validator=_check_jitter)
    probes: int = attrs.field(default=3)
    probe_share: float = attrs.field(default=0.125)
    probe_floor: float = attrs.field(default=1.0)
    resolution: float = attrs.field(default=0.15, validator=_check_positive)
    learned: int = attrs.field(default=16)

    @cap.validator
    def _check_cap(self, attribute: attrs.Attribute[float], value: float) -> None:
        check_real(value, "cap", minimum=self.floor, bound="floor")

    @probes.validator
    def _check_probes(self, attribute: attrs.Attribute[int], value: int) -> None:
        check_count(value, "probes", minimum=0)

    @learned.validator
    def _check_learned(self, attribute: attrs.Attribute[int], value: int) -> None:
        check_count(value, "learned", minimum=0)

    @probe_share.validator
    def _check_share(self, attribute: attrs.Attribute[float], value: float) -> None:
        check_real(value, "probe_share", above=0.0, maximum=1.0)

    @probe_floor.validator
    def _check_probe_floor(
        self, attribute: attrs.Attribute[float], value: float
    ) -> None:
        check_real(value, "probe_floor", minimum=0.0)

    def plan(self, durations: DurationModel) -> AdaptivePlan:
        """
        Freeze what ``durations`` knows into one prediction's plan: the recent
        durations once ``learned`` were seen, else ``L`` and ``H``.
        """
        shape = durations.distribution(self.learned) if self.learned else None
        if shape is not None:
            return AdaptivePlan(self, shape.shortest, shape.longest, shape)
        return AdaptivePlan(self, durations.low, max(durations.high, durations.low))

    def probe(self, durations: DurationModel) -> float | None:
        """The early probe of an unseen model (see the class docstring), or None."""
        if durations.count or durations.probes >= self.probes:
            return None
        # Doubling: a model between two probes is caught by the later one.
        share = self.probe_share * 2.0**durations.probes
        return max(self.probe_floor, share * durations.low)


@attrs.frozen(slots=True)
class AdaptivePlan:
    """
    One prediction's `AdaptivePolicy` schedule: the policy plus frozen L and H,
    and the model's learned `Distribution` once it has one (then L and H are
    its shortest and longest durations).
    """

    policy: AdaptivePolicy
    low: float
    high: float
    shape: Distribution | None = None

    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        """See `PollPlan.delay` and the formula on `AdaptivePolicy`."""
        policy = self.policy
        shape = self.shape
        if shape is not None and elapsed < self.high:
            at = max(elapsed, self.low)
            # No floor needed beyond the resolution: d * chance = resolution
            # and a chance is at most 1, so d >= resolution.
            floor = min(policy.floor, policy.resolution)
            interval = shape.interval(at, policy.resolution, floor, policy.cap)
            if polls == 0:
                # Never before the shortest duration seen; jitter only later.
                first = self.low + policy.jitter * rng.random() * interval
                return max(0.0, first - elapsed)
            return _jitter(interval, policy.jitter, rng)
        if polls == 0:
            first = self.low
            if policy.jitter > 0.0:
                first *= 1.0 - policy.jitter * rng.random()
            return max(0.0, first - elapsed)
        width = max(elapsed, self.high) - self.low
        interval = policy.spacing * math.sqrt(max(width, 0.0))
        interval = min(max(interval, policy.floor), policy.cap)
        return _jitter(interval, policy.jitter, rng)


@attrs.frozen(slots=True)
class WebhookPolicy(PollPolicy):
    """
    Webhooks first: poll a prediction submitted with ``webhook_url`` only when
    its delivery is overdue, then by ``inner``.

    Once a delivery of the model was seen (its delay learned,
    `DurationModel.delivery_delay`), the first poll comes at::

        t_1 = T + D
        T = the longest recent duration (exp(mu + 2 sigma) before 16 are seen)
        D = the longest of the last 16 delivery delays, plus max(D/4, 0.5 s)

    when nearly every prediction has ended and its webhook had time to come;
    a poll then finds a prediction whose delivery was lost, or one running
    longer than any seen (then ``inner``'s schedule goes on from there). Until a
    delivery of the model was seen, it is ``inner`` itself: a client whose
    webhooks reach someone else polls as it always did.

    Args:
        inner: the policy for the fallback schedule.
    """

    inner: PollPolicy

    def plan(self, durations: DurationModel) -> PollPlan:
        """The fallback plan, or ``inner``'s while no delivery was seen."""
        delay = durations.delivery_delay
        plan = self.inner.plan(durations)
        if delay is None:
            return plan
        shape = durations.distribution(16)
        longest = (
            shape.longest
            if shape is not None
            else math.exp(durations.log_mean + 2.0 * durations.sigma)
        )
        return WebhookPlan(plan, longest + delay)

    def probe(self, durations: DurationModel) -> float | None:
        """``inner``'s probe while no delivery was seen; none after."""
        if durations.delivery_delay is not None:
            return None
        return self.inner.probe(durations)


@attrs.frozen(slots=True)
class WebhookPlan:
    """One prediction's `WebhookPolicy` schedule: one poll at ``overdue``, then
    ``fallback``'s."""

    fallback: PollPlan
    overdue: float

    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        """See `PollPlan.delay`."""
        if polls == 0:
            return max(0.0, self.overdue - elapsed)
        return self.fallback.delay(elapsed, polls, rng)


def webhook_first(policy: PollPolicy, params: Mapping[str, object]) -> PollPolicy:
    """``policy`` as a `WebhookPolicy` when ``params`` ask for a webhook."""
    if params.get("webhook_url") and not isinstance(policy, WebhookPolicy):
        return WebhookPolicy(policy)
    return policy


def check_poll_policy(value: object, argument: str = "poll") -> PollPolicy | None:
    """
    Return ``value`` if it is a `PollPolicy` instance (None stays None).

    Raises:
        ArgumentTypeError: anything else, a policy class (not an instance)
            included, with what to write instead.
    """
    if value is None or isinstance(value, PollPolicy):
        return value
    hint = (
        f" (the class {value.__name__} itself: call it, e.g. FixedPolicy(2.0))"
        if isinstance(value, type)
        else f", not {type(value).__name__} ({describe(value)})"
    )
    raise ArgumentTypeError(
        f"{argument} must be a PollPolicy such as AdaptivePolicy(),"
        f" FixedPolicy(2.0) or ExponentialPolicy(){hint}",
        argument=argument,
    )


def check_poll_option(
    value: object, argument: str = "poll"
) -> PollPolicy | dict[Kind, PollPolicy] | None:
    """
    Return the client's ``poll`` option: None, one `PollPolicy`, or one per kind.

    A mapping's keys are kinds (`Kind` or its name), its values policies; the
    result maps each `Kind` given to its policy.

    Raises:
        ArgumentTypeError: not a policy nor a mapping; a key or value of the
            wrong type.
        InvalidArgumentError: an unknown kind, or one named twice.
    """
    if value is None or isinstance(value, PollPolicy):
        return value
    if not isinstance(value, Mapping):
        check_poll_policy(value, argument)  # raises, with the hint for a class
        raise AssertionError("unreachable")
    policies: dict[Kind, PollPolicy] = {}
    for key, policy in value.items():
        kind = check_kind(key, f"{argument} key {describe(key)}")
        if kind in policies:
            raise InvalidArgumentError(
                f"{argument} names the kind {kind.value!r} twice", argument=argument
            )
        checked = check_poll_policy(policy, f"{argument}[{describe(key)}]")
        if checked is None:
            raise ArgumentTypeError(
                f"{argument}[{describe(key)}] must be a PollPolicy, not None",
                argument=argument,
            )
        policies[kind] = checked
    return policies


def policies_by_kind(
    poll: PollPolicy | Mapping[Kind | str, PollPolicy] | None,
) -> dict[Kind, PollPolicy]:
    """
    One policy per kind from a ``poll=`` option: one policy for all, a mapping
    by kind (the rest default), or None (`AdaptivePolicy` for every kind).
    """
    default = AdaptivePolicy()
    if poll is None or isinstance(poll, PollPolicy):
        return dict.fromkeys(Kind, poll or default)
    given = {Kind.coerce(kind): policy for kind, policy in poll.items()}
    return {kind: given.get(kind, default) for kind in Kind}
