"""The one retry primitive (`BackoffPolicy`, `Retry`) and the one retry loop."""

from __future__ import annotations

import math
import random

import anyio
import pytest

from atlas_async._core.config import HTTP_BACKOFF, http_retry
from atlas_async._core.errors import ConfigurationError, ServerError
from atlas_async._core.retry import BackoffPolicy, Retry, jittered
from atlas_async._net.retrying import RetryableError, retrying
from atlas_async.testing import FakeClock


class TestBackoffPolicy:
    def test_delays_grow_exponentially_up_to_the_cap(self) -> None:
        """Without jitter the n-th retry waits initial * factor**(n-1), capped."""
        policy = BackoffPolicy(initial=0.5, cap=8.0, jitter=0.0)
        rng = random.Random(0)
        delays = [policy.delay(n, rng=rng) for n in range(1, 8)]
        assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]

    def test_jitter_only_shortens_a_delay_within_its_band(self) -> None:
        """The one jitter formula: between (1 - jitter) and 1 times the nominal."""
        rng = random.Random(7)
        for n in range(1, 6):
            nominal = min(8.0, 0.5 * 2 ** (n - 1))
            delay = HTTP_BACKOFF.delay(n, rng=rng)
            assert nominal / 2 <= delay <= nominal

    def test_huge_attempt_numbers_do_not_overflow(self) -> None:
        """A large failure count still returns the cap, not an OverflowError."""
        policy = BackoffPolicy(initial=0.5, cap=8.0, jitter=0.0)
        assert policy.delay(5000, rng=random.Random()) == 8.0

    def test_retry_after_is_a_floor_up_to_its_cap(self) -> None:
        """A server hint lengthens the wait, never shortens it, and is capped."""
        policy = BackoffPolicy(initial=0.5, cap=8.0, jitter=0.0, retry_after_cap=60.0)
        rng = random.Random(0)
        assert policy.delay(1, rng=rng, retry_after=7.0) == 7.0
        assert policy.delay(1, rng=rng, retry_after=3600.0) == 60.0
        # The backoff is longer than the hint: the backoff wins (a server asking
        # for 1 s after four failures does not get hammered).
        assert policy.delay(4, rng=rng, retry_after=1.0) == 4.0
        assert policy.delay(2, rng=rng, retry_after=0.0) == 1.0

    def test_no_jitter_draws_nothing_from_the_generator(self) -> None:
        """Unjittered delays leave the rng untouched, so schedules stay reproducible."""
        rng = random.Random(3)
        state = rng.getstate()
        assert jittered(2.0, 0.0, rng) == 2.0
        assert rng.getstate() == state

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"initial": 0}, id="initial"),
            pytest.param({"factor": 0.5}, id="factor"),
            pytest.param({"initial": 1.0, "cap": 0.1}, id="cap"),
            pytest.param({"jitter": 2}, id="jitter"),
            pytest.param({"retry_after_cap": -1}, id="retry-after-cap"),
        ],
    )
    def test_invalid_backoff_is_refused(self, kwargs: dict[str, float]) -> None:
        """Nonsensical backoff parameters are refused at construction."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            BackoffPolicy(**kwargs)


class TestRetry:
    def test_next_is_none_once_the_attempts_are_spent(self) -> None:
        """attempts counts the first try: 3 attempts allow 2 retries."""
        retry = Retry(attempts=3, backoff=BackoffPolicy(initial=1.0, jitter=0.0))
        rng = random.Random(0)
        assert retry.next(1, 10.0, rng=rng) == 11.0
        assert retry.next(2, 10.0, rng=rng) == 12.0
        assert retry.next(3, 10.0, rng=rng) is None
        assert retry.retries == 2

    def test_no_attempt_starts_after_the_deadline(self) -> None:
        """A retry whose start would pass the deadline is not made."""
        retry = Retry(attempts=10, backoff=BackoffPolicy(initial=2.0, jitter=0.0))
        bounded = retry.until(11.0)
        rng = random.Random(0)
        assert bounded.next(1, 9.0, rng=rng) == 11.0
        assert bounded.next(1, 9.5, rng=rng) is None
        assert retry.next(1, 9.5, rng=rng) == 11.5
        assert retry.until(20.0).until(15.0).deadline == 15.0
        assert retry.deadline == math.inf

    @pytest.mark.parametrize("attempts", [0, -1, True, 1.5])
    def test_attempts_must_be_a_positive_integer(self, attempts: object) -> None:
        """Zero attempts, a bool or a float is a mistake, refused at once."""
        with pytest.raises(ValueError, match="attempts"):
            Retry(attempts=attempts)  # type: ignore[arg-type]

    def test_http_retry_counts_retries_after_the_first_try(self) -> None:
        """max_retries=4 means five attempts with the HTTP backoff."""
        assert http_retry(4) == Retry(attempts=5, backoff=HTTP_BACKOFF)
        with pytest.raises(ConfigurationError, match="max_retries"):
            http_retry(-1)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
class TestRetrying:
    async def test_retries_until_success_waiting_on_the_clock(
        self, anyio_backend: str
    ) -> None:
        """Each retry waits the backoff on the injected clock, then tries again."""
        clock = FakeClock()
        calls: list[float] = []

        async def attempt() -> str:
            calls.append(clock.now())
            if len(calls) < 3:
                raise RetryableError(ServerError("busy", status_code=503))
            return "ok"

        retry = Retry(attempts=4, backoff=BackoffPolicy(initial=1.0, jitter=0.0))
        async with clock.autojump():
            result = await retrying(
                attempt, retry=retry, clock=clock, rng=random.Random(0)
            )
        assert result == "ok"
        assert calls == [0.0, 1.0, 3.0]

    async def test_spent_retries_raise_the_last_error_itself(
        self, anyio_backend: str
    ) -> None:
        """Once the attempts are spent the error is raised, not its wrapper."""
        clock = FakeClock()
        told: list[tuple[int, float]] = []
        cause = OSError("reset")

        async def attempt() -> None:
            error = ServerError("busy", status_code=503)
            error.__cause__ = cause
            raise RetryableError(error, retry_after=5.0)

        retry = Retry(attempts=2, backoff=BackoffPolicy(initial=1.0, jitter=0.0))
        async with clock.autojump():
            with pytest.raises(ServerError) as info:
                await retrying(
                    attempt,
                    retry=retry,
                    clock=clock,
                    rng=random.Random(0),
                    on_retry=lambda error, n, delay: told.append((n, delay)),
                )
        assert info.value.__cause__ is cause
        # Retry-After (5 s) is longer than the backoff (1 s): it is the wait.
        assert told == [(1, 5.0)]
        assert clock.now() == 5.0

    async def test_other_errors_are_not_retried(self, anyio_backend: str) -> None:
        """Only RetryableError asks for another try; anything else ends the loop."""
        clock = FakeClock()
        calls = 0

        async def attempt() -> None:
            nonlocal calls
            calls += 1
            raise KeyError("bug")

        with pytest.raises(KeyError):
            await retrying(
                attempt, retry=Retry(attempts=5), clock=clock, rng=random.Random(0)
            )
        assert calls == 1
        await anyio.lowlevel.checkpoint()
