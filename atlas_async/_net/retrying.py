"""
THE retry loop: call, and on a retryable failure wait as `Retry` says, on the
injected clock, then call again.

The HTTP session (one request's retries), downloads (one output's retries) and
the JWKS refresh all run through `retrying`; the decision of how long to wait
is `Retry.next` (``_core.retry``), the same pure function the poll core uses.

An attempt asks for another try by raising `RetryableError` around the error it
stands for (with the server's ``Retry-After``, when it gave one). Any other
exception ends the loop at once. When the attempts or the deadline are spent,
the last error itself is raised (not the wrapper), with its own cause.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._core.clock import Clock
from .._core.retry import Retry

__all__ = ["RetryableError", "retrying"]

T = TypeVar("T")


class RetryableError(Exception):
    """
    Raised by an attempt that failed in a way worth another try.

    Args:
        error: what the failure is, raised as is once the retries are spent.
        retry_after: seconds the server asked to wait, if it did.
    """

    def __init__(self, error: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


#: ``on_retry(error, retry_number, delay)``: told before each wait.
RetryHook = Callable[[Exception, int, float], object]


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry: Retry,
    clock: Clock,
    rng: random.Random,
    on_retry: RetryHook | None = None,
) -> T:
    """
    Run ``attempt`` until it returns, retrying `RetryableError` failures per ``retry``.

    Example::

        async def once() -> bytes:
            response = await send()
            if response.status_code == 503:
                raise RetryableError(ServerError("busy"), retry_after=2.0)
            return response.content

        body = await retrying(once, retry=Retry(attempts=3), clock=clock, rng=rng)

    Raises:
        The last `RetryableError`'s ``error`` once the attempts or the deadline are
        spent; any other exception from ``attempt`` at once.
    """
    failures = 0
    while True:
        try:
            return await attempt()
        except RetryableError as failure:
            failures += 1
            now = clock.now()
            at = retry.next(failures, now, rng=rng, retry_after=failure.retry_after)
            if at is None:
                error = failure.error
                raise error from error.__cause__
            if on_retry is not None:
                on_retry(failure.error, failures, at - now)
        await clock.sleep_until(at)
