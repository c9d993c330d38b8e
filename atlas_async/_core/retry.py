"""
THE retry primitive: how long to wait before trying again, and when to stop.

Pure: time comes in as ``now``, jitter from an injected `random.Random`. Every
retry in the SDK decides here: the HTTP session's retries of one request, a
download's retries, the JWKS refresh (all through ``_net.retrying``), and the
poll core's retry of a failed poll.

Theory of operation
-------------------
`BackoffPolicy` is the spacing: the n-th consecutive failure waits
``min(cap, initial * factor**(n - 1))``, jittered by the one formula of the
SDK, ``* (1 - jitter * u)`` with ``u`` uniform in [0, 1) (the wait never grows
past its nominal value, so ``cap`` is a real cap). A server's ``Retry-After``
follows the one rule: wait the *longer* of the backoff and ``Retry-After``,
the latter capped at ``retry_after_cap``. So a server asking for 0 s never makes
a client hammer it, and one asking for an hour cannot park a request for more
than the cap.

`Retry` adds the two limits, like urllib3's ``Retry`` and stamina's
``retry``: at most ``attempts`` attempts in all, and an absolute ``deadline``
(on the client's monotonic clock) past which no attempt starts. It is
immutable: `Retry.next` answers "when is the next attempt?" for a given number
of failures, and `Retry.until` gives the same retry with a deadline.
"""

from __future__ import annotations

import math
import random

import attrs

from .validate import check_count, check_real

__all__ = ["BackoffPolicy", "Retry", "grow", "jittered"]


def jittered(value: float, jitter: float, rng: random.Random) -> float:
    """
    The one jitter formula of the SDK's retries: ``value * (1 - jitter * u)``.

    No draw from ``rng`` when ``jitter`` is 0, so unjittered schedules are
    reproducible whatever else uses the generator.
    """
    if jitter <= 0.0:
        return value
    return value * (1.0 - jitter * rng.random())


def grow(first: float, factor: float, cap: float, n: int) -> float:
    """Return ``min(cap, first * factor**n)`` without overflowing for large n."""
    if factor <= 1.0 or n <= 0:
        return min(cap, first)
    # Compare in log space: factor**n overflows a float long before n is absurd.
    if n * math.log(factor) >= math.log(cap / first):
        return cap
    return min(cap, first * factor**n)


# Finite numbers only (InvalidArgumentError / ArgumentTypeError, both
# ValueError): NaN slips past any comparison, and an infinite wait is a hang.
def _check_jitter(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_real(value, attribute.name, minimum=0.0, maximum=1.0)


def _check_positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    check_real(value, attribute.name, above=0.0)


def _check_non_negative(
    _: object, attribute: attrs.Attribute[float], value: float
) -> None:
    check_real(value, attribute.name, minimum=0.0)


@attrs.frozen(slots=True)
class BackoffPolicy:
    """
    How long to wait after the n-th consecutive failure.

    ``delay(n) = min(cap, initial * factor**(n - 1)) * (1 - jitter * u)``, and
    never less than the server's ``Retry-After`` (capped at ``retry_after_cap``).

    Example::

        backoff = BackoffPolicy(initial=0.5, cap=8.0)
        backoff.delay(3, rng=random.Random(7))               # about 1.5-2.0 s
        backoff.delay(1, rng=random.Random(7), retry_after=5)  # 5.0: the server's

    Args:
        initial: the first delay (> 0).
        factor: growth per consecutive failure (>= 1).
        cap: the longest computed delay (>= initial).
        jitter: the share of a delay that may be taken off at random, in [0, 1].
        retry_after_cap: the longest server-requested delay honoured (>= 0).
    """

    initial: float = attrs.field(default=1.0, validator=_check_positive)
    factor: float = attrs.field(default=2.0)
    cap: float = attrs.field(default=30.0)
    jitter: float = attrs.field(default=0.2, validator=_check_jitter)
    retry_after_cap: float = attrs.field(default=120.0, validator=_check_non_negative)

    @factor.validator
    def _check_factor(self, attribute: attrs.Attribute[float], value: float) -> None:
        check_real(value, "factor", minimum=1.0)

    @cap.validator
    def _check_cap(self, attribute: attrs.Attribute[float], value: float) -> None:
        check_real(value, "cap", minimum=self.initial, bound="initial")

    def delay(
        self, attempt: int, *, rng: random.Random, retry_after: float | None = None
    ) -> float:
        """
        Seconds to wait after the ``attempt``-th consecutive failure (1-based).

        Args:
            attempt: consecutive failures so far (>= 1).
            rng: the source of jitter.
            retry_after: seconds the server asked for, if it did.
        """
        base = grow(self.initial, self.factor, self.cap, max(attempt, 1) - 1)
        wait = jittered(base, self.jitter, rng)
        if retry_after is not None and retry_after > 0.0:
            wait = max(wait, min(retry_after, self.retry_after_cap))
        return wait


@attrs.frozen(slots=True)
class Retry:
    """
    A backoff with its limits: at most ``attempts`` attempts, none after ``deadline``.

    Example::

        retry = Retry(attempts=4, backoff=BackoffPolicy(initial=0.5, cap=8.0))
        at = retry.next(failures=1, now=clock.now(), rng=rng)
        if at is None:
            raise error                     # spent: attempts or deadline
        await clock.sleep_until(at)

    Args:
        attempts: attempts in all, the first included (>= 1); 1 never retries.
        backoff: the spacing between attempts.
        deadline: absolute time (the client clock's ``now``) after which no
            attempt starts; ``inf`` for none.
    """

    attempts: int = attrs.field(default=4)
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    deadline: float = attrs.field(default=math.inf)

    @attempts.validator
    def _check_attempts(self, attribute: attrs.Attribute[int], value: int) -> None:
        check_count(value, "attempts")

    @property
    def retries(self) -> int:
        """Retries after the first attempt (``attempts - 1``)."""
        return self.attempts - 1

    def until(self, deadline: float) -> Retry:
        """The same retry, stopping at ``deadline`` (or its own, if earlier)."""
        return attrs.evolve(self, deadline=min(deadline, self.deadline))

    def next(
        self,
        failures: int,
        now: float,
        *,
        rng: random.Random,
        retry_after: float | None = None,
    ) -> float | None:
        """
        When to make the next attempt after ``failures`` failed ones, or None.

        None when the attempts are spent, or when the next attempt would start
        after the deadline.

        Args:
            failures: failed attempts so far, in a row (>= 1).
            now: the time of the last failure, on the client's clock.
            rng: the source of jitter.
            retry_after: seconds the server asked for, if it did.
        """
        if failures >= self.attempts:
            return None
        at = now + self.backoff.delay(failures, rng=rng, retry_after=retry_after)
        return None if at > self.deadline else at
