"""
What a finished prediction means: success, or the error its future raises.

One rule for every source of a terminal snapshot (a poll, a submit answered at
once, a webhook delivery): FAILED, TIMEOUT and CANCELED on the server give a
`PredictionFailedError` with the server's ``error`` and ``error_code``, and so
does a COMPLETED prediction with no outputs.
"""

from __future__ import annotations

from .errors import (
    PredictionFailedError,
    PredictionTimeoutError,
    UnexpectedResponseError,
)
from .models import Prediction, PredictionStatus

__all__ = [
    "MESSAGE_LIMIT",
    "handling_error",
    "one_line",
    "prediction_failure",
    "timeout_error",
]

#: The longest server text carried into an exception message.
MESSAGE_LIMIT = 300

_FAILURE_WORDS = {
    PredictionStatus.FAILED: "failed",
    PredictionStatus.TIMEOUT: "timed out on the server",
    PredictionStatus.CANCELED: "was canceled on the server",
}


def one_line(text: str) -> str:
    """Flatten ``text`` to one line and cap its length, for exception messages."""
    flat = " ".join(text.split())
    if len(flat) > MESSAGE_LIMIT:
        return flat[: MESSAGE_LIMIT - 1] + "…"
    return flat


def prediction_failure(prediction: Prediction) -> PredictionFailedError | None:
    """
    The error to raise for a prediction that ended without a result, or None.

    FAILED, TIMEOUT and CANCELED (on the server) give a `PredictionFailedError`
    carrying the server's ``error`` text and numeric ``error_code``; so does a
    COMPLETED prediction with no outputs. Any other status gives None: the
    prediction succeeded or is still running.
    """
    status = prediction.status
    if status in _FAILURE_WORDS:
        message = f"prediction {prediction.id} {_FAILURE_WORDS[status]}"
        if prediction.error:
            message += f": {one_line(prediction.error)}"
    elif status is PredictionStatus.COMPLETED and not prediction.outputs:
        message = f"prediction {prediction.id} completed without outputs"
    else:
        return None
    if prediction.error_code is not None:
        message += f" (error code {prediction.error_code})"
    return PredictionFailedError(
        message,
        prediction_id=prediction.id,
        prediction=prediction,
        error=prediction.error,
        error_code=prediction.error_code,
        status=status,
    )


def timeout_error(
    prediction_id: str,
    latest: Prediction | None,
    last_status: PredictionStatus | None,
    timeout: float | None,
) -> PredictionTimeoutError:
    """
    The error of a prediction that passed the client's own deadline.

    Example::

        error = timeout_error("p1", None, PredictionStatus.PROCESSING, 60.0)
        assert "within 60s" in str(error)
    """
    shown = "none seen" if last_status is None else last_status.value
    limit = "its deadline" if timeout is None else f"{timeout:g}s"
    return PredictionTimeoutError(
        f"prediction {prediction_id} did not finish within {limit} "
        f"(last status: {shown})",
        prediction_id=prediction_id,
        prediction=latest,
        last_status=last_status,
        timeout=timeout,
    )


def handling_error(prediction_id: str, exc: Exception) -> UnexpectedResponseError:
    """
    The error of a prediction whose handling raised what nothing should (a bug,
    or an answer no parser foresaw), chained from ``exc``: that prediction
    fails with it, and the client and every other prediction go on.

    Example::

        error = handling_error("p1", KeyError("status"))
        assert error.prediction_id == "p1" and error.__cause__ is not None
    """
    error = UnexpectedResponseError(
        f"atlas_async failed while handling prediction {prediction_id}"
        f" ({type(exc).__name__}: {exc}); this is a bug in atlas_async,"
        " please report it. The prediction may still run on the server:"
        " attach() resumes it",
        prediction_id=prediction_id,
    )
    error.__cause__ = exc
    return error
