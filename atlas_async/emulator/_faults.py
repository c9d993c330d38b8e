"""
Fault decisions, pure: each takes ``now`` and draws from an injected
``random.Random``, and none does I/O. The request handler asks, then acts.

Two things live here:

* `FaultInjector.draw` decides the HTTP-level faults of one request (5xx,
  dropped connection, slow answer, malformed body) from its own random stream,
  so turning a fault on never changes prediction ids, latencies or outcomes.
  A rate that is zero draws nothing, so an emulator without faults consumes no
  randomness here at all.
* `RateLimiter` is a per-key token bucket: ``rps`` tokens a second, holding at
  most ``burst``; a request spends one token or is refused.
"""

from __future__ import annotations

import random

import attrs

from ._config import Faults, FaultTarget

__all__ = ["NO_FAULTS", "FaultInjector", "HttpFaults", "RateLimiter"]


@attrs.frozen
class HttpFaults:
    """
    The faults drawn for one request.

    Attributes:
        server_error: a 5xx status to answer with instead of the real answer.
        drop: close the connection without answering.
        delay: clock seconds to wait before answering (0: none).
        malformed: answer 200 with a body that is not JSON.
    """

    server_error: int | None = None
    drop: bool = False
    delay: float = 0.0
    malformed: bool = False


NO_FAULTS = HttpFaults()
"""The answer of `FaultInjector.draw` when nothing goes wrong (compare with ``is``)."""


class FaultInjector:
    """Draws the HTTP-level faults of each request from `Faults` rates."""

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self._faults = faults
        self._rng = rng
        self.active = bool(
            faults.server_error_rate
            or faults.drop_rate
            or faults.slow_rate
            or faults.malformed_rate
        )

    def draw(self, target: FaultTarget) -> HttpFaults:
        """Return the faults for one request to ``target`` (none when inactive)."""
        faults = self._faults
        if not self.active or target not in faults.targets:
            return NO_FAULTS
        rng = self._rng
        server_error = None
        if faults.server_error_rate and rng.random() < faults.server_error_rate:
            server_error = rng.choice(faults.server_error_codes)
        drop = bool(faults.drop_rate) and rng.random() < faults.drop_rate
        slow = bool(faults.slow_rate) and rng.random() < faults.slow_rate
        malformed = bool(faults.malformed_rate) and rng.random() < faults.malformed_rate
        if server_error is None and not (drop or slow or malformed):
            return NO_FAULTS
        return HttpFaults(
            server_error=server_error,
            drop=drop,
            delay=faults.slow_seconds if slow else 0.0,
            malformed=malformed,
        )


class RateLimiter:
    """
    A token bucket per key: ``rps`` tokens a second, at most ``burst`` stored.

    A new key starts with a full bucket. ``now`` is clock seconds.
    """

    def __init__(self, rps: float, burst: float | None = None) -> None:
        self.rps = rps
        self.burst = burst if burst is not None else max(1.0, rps)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float) -> bool:
        """Spend one token of ``key``'s bucket; False when it is empty."""
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rps)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return True
        self._buckets[key] = (tokens, now)
        return False

    def reset(self) -> None:
        """Refill every bucket (forget every key)."""
        self._buckets.clear()
