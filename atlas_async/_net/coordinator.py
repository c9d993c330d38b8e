"""
`Coordinator`: what several processes of one account share, and the seam where
the flow control consults it.

Without a coordinator (the default) every process keeps its own limits: the
`RequestGate`'s `AccountRate` and the `ModelAdmission`'s `ModelWindows`, as
they always have; nothing here runs and nothing extra is imported.

With one (``AtlasClient(coordinator="redis://host:6379/0")``), the client
connects it when it opens and hands the resulting `SharedLimits` to its gate
and its admission, which ask it first:

* the gate: ``await shared.reserve()`` for the seconds to wait before a request
  (the account's shared bucket), and ``shared.refused(...)`` on a refusal of
  the account's rate (a cut that every process follows);
* the admission: ``await shared.take(model, deadline)`` for a lease on one of
  the model's shared in-flight places, ``shared.release(model, outcome)`` when
  the submit ends (a finish may grow the shared window, a refusal shrinks it);
* the client: ``shared.publish(prediction)`` for a verified webhook this
  process does not wait for; the process that waits gets it back through
  ``on_delivery``.

A `SharedLimits` that lost its server says so with ``active`` False: the gate
and the admission then use their own per-process limits until it reconnects.
Nothing is ever submitted, lost or resolved by the coordinator itself, so its
failures cost pace, never a prediction.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from .._core.clock import Clock
from .._core.flow import Limits
from .._core.models import Prediction
from .._wire.webhook import build_body, read_delivery

__all__ = [
    "COORDINATOR_ENV",
    "REDIS_SCHEMES",
    "Coordinator",
    "SharedLimits",
    "SlotOutcome",
    "account_namespace",
    "decode_delivery",
    "encode_delivery",
]

#: The environment variable naming a coordinator URL when ``coordinator=`` is None.
COORDINATOR_ENV = "ATLAS_ASYNC_COORDINATOR"

#: The URL schemes of a Redis coordinator.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class SlotOutcome(str, enum.Enum):
    """How a submit holding a shared place ended."""

    FINISHED = "finished"  # became a prediction, which has now ended
    REFUSED = "refused"  # refused for the model's concurrency: the window shrinks
    ABANDONED = "abandoned"  # ended without a prediction for another reason

    def __str__(self) -> str:
        return self.value


class SharedLimits(Protocol):
    """An account's limits as several processes share them (one per client)."""

    @property
    def active(self) -> bool:
        """True while the shared state is reachable; False: use local limits."""
        ...

    async def reserve(self) -> float | None:
        """Seconds to wait before one request; None: not shared now (go local)."""
        ...

    def refused(self, *, cut: bool, retry_after: float | None) -> None:
        """A refusal for the account: ``cut`` the shared rate; honour a Retry-After."""
        ...

    def rate(self) -> float | None:
        """The shared rate now (requests/s), None while unlimited or not shared."""
        ...

    async def take(self, model: str, deadline: float) -> bool:
        """
        Wait for a place in ``model``'s shared window (a lease); False if
        ``deadline`` (the client clock's time) came first. Takes a local place
        at once while not `active`.
        """
        ...

    def release(self, model: str, outcome: SlotOutcome) -> None:
        """Give back a place `take` gave (without waiting)."""
        ...

    def publish(self, prediction: Prediction) -> None:
        """Hand a verified terminal snapshot to every process (without waiting)."""
        ...


@runtime_checkable
class Coordinator(Protocol):
    """
    Shares an account's limits and webhook deliveries between processes.

    Pass one as ``AtlasClient(coordinator=...)``, or a URL
    (``"redis://host:6379/0"``, which builds a ``RedisCoordinator``).
    ``connect`` is called once per client, when it opens.
    """

    def connect(
        self,
        *,
        account: str,
        limits: Limits,
        clock: Clock,
        on_delivery: Callable[[Prediction], object],
    ) -> AbstractAsyncContextManager[SharedLimits]:
        """
        Join the account's shared state for one client; leave it on exit.

        Args:
            account: the API key: only a hash of it is ever used (`account_namespace`).
            limits: the client's known limits (ceilings for the shared ones).
            clock: the client's clock (waits end on it).
            on_delivery: called with each snapshot another process published.
        """
        ...


def account_namespace(api_key: str) -> str:
    """
    The prefix of one account's keys: a hash of the key, never the key.

    Example::

        >>> account_namespace("k")[:9]
        'atlas:8a4'
    """
    digest = hashlib.sha256(b"atlas-async coordinator\0" + api_key.encode()).hexdigest()
    return f"atlas:{digest[:16]}:"


def encode_delivery(prediction: Prediction) -> bytes:
    """
    A terminal snapshot as a webhook body (the one shape both sides read).

    Only the receiving process's own verified deliveries are encoded, and only
    that process's account reads the channel: nothing here is signed again.
    """
    ok = prediction.status.is_success
    return build_body(
        session_id=prediction.id,
        event_type="coordinator.relay",
        payload=json.loads(json.dumps(prediction.raw, default=dict)),
        status="OK" if ok else "ERROR",
        error=None if ok else prediction.error,
    )


def decode_delivery(body: bytes) -> Prediction:
    """Read back what `encode_delivery` wrote (raises `UnexpectedResponseError`)."""
    return read_delivery(body).prediction
