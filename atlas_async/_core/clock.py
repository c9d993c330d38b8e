"""
Time, as the SDK sees it: one `Clock` protocol, injected at the client's root.

Every part that reads time or waits takes a `Clock`: the scheduler, the retry
loop, the rate budget's caller, the journal, the webhook verifier, the JWKS
cache and the CLI. The real one (``atlas_async._net.clock.AnyioClock``) is the
only code that reads the operating system's clocks; tests pass
``atlas_async.testing.FakeClock`` and never sleep for real.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Clock"]


@runtime_checkable
class Clock(Protocol):
    """
    Where the SDK reads the time and waits for it (in the style of trio's ``Clock``).

    ``now()`` is monotonic seconds with an arbitrary origin: what deadlines,
    backoff and rates are measured on. ``wall()`` is seconds since the Unix
    epoch: what timestamps on the wire and in the journal are compared with
    (an HTTP-date ``Retry-After``, a webhook's signed time, a journal row).
    ``sleep_until(deadline)`` returns once ``now() >= deadline`` and is a
    cancellation point.
    """

    def now(self) -> float:
        """Return the current time in seconds (monotonic, arbitrary origin)."""
        ...

    def wall(self) -> float:
        """Return the current time in seconds since the Unix epoch."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Wait until ``now() >= deadline``; return at once if it already is."""
        ...
