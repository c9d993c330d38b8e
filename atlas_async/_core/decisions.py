"""
What one poll's answer means: the decisions of the scheduler core.

Pure values (``_core.schedule`` makes them, the runner applies them to a
prediction's future), and `settle`, the verdict on a terminal snapshot.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .errors import (
    AtlasError,
    RateLimitError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from .models import Prediction, PredictionStatus
from .outcome import prediction_failure

__all__ = [
    "TRANSIENT",
    "Decision",
    "Due",
    "Expired",
    "Failed",
    "Rescheduled",
    "Resolved",
    "default_failure",
    "settle",
]


@attrs.frozen(slots=True)
class Resolved:
    """The prediction completed with outputs."""

    prediction: Prediction


@attrs.frozen(slots=True)
class Failed:
    """The prediction ended without a result; ``error`` is what its future raises."""

    error: AtlasError


@attrs.frozen(slots=True)
class Rescheduled:
    """Poll again at ``at`` (absolute time)."""

    at: float


@attrs.frozen(slots=True)
class Expired:
    """The deadline passed: ``last_status`` was the last status seen."""

    last_status: PredictionStatus | None
    timeout: float | None


Decision = Resolved | Failed | Rescheduled | Expired


@attrs.frozen(slots=True)
class Due:
    """One item from `PollCore.due`: poll it now, or (``expired``) it timed out."""

    prediction_id: str
    expired: Expired | None = None


#: Poll errors worth polling again after: the server or the path to it may
#: recover (the retry policy bounds how often).
TRANSIENT = (RateLimitError, ServerError, TransportError, UnexpectedResponseError)

#: The error a terminal prediction stands for, or None when it succeeded: failed,
#: timed-out and canceled statuses, and a completed prediction with no outputs.
#: The wire module owns that rule; the scheduler takes any such mapping.
default_failure = prediction_failure


def settle(
    prediction: Prediction,
    failure: Callable[[Prediction], AtlasError | None] = default_failure,
) -> Resolved | Failed | None:
    """Return the final decision for a terminal ``prediction``, None if it runs on."""
    if not prediction.status.is_terminal:
        return None
    error = failure(prediction)
    return Resolved(prediction) if error is None else Failed(error)
