"""
The wire contract: paths, submit bodies, envelopes, statuses and error answers.

Pure: it turns ``(status_code, headers, body)`` into models or exceptions, and
does no I/O (no httpx, no clock; ``now`` comes in as an argument). `_net` sends
and receives, `_client` calls the functions here.

Theory of operation
-------------------
Every ``parse_*`` function reads an answer in the same four steps:

1. The body is decoded once, by the session (`Answer.read`).
2. Error answers first: `error_from_response` returns the `APIError` subclass
   for any non-2xx status and for errors the API puts inside HTTP 200
   (``{"code": 401, "msg": "unauthorized", "data": null}``); it is raised.
3. A 2xx body must be JSON (else `UnexpectedResponseError`, text attached).
   The envelope is unwrapped: ``{"code", "message", "data"}`` and ``{"data"}``
   give ``data``; anything else is a *bare* body that is its own ``data`` (the
   model pages' F6, the Replicate-style F19, the Predictions guide's bare
   failed body; docs/wire.md, "Envelopes" and "Sample answers").
   A webhook delivery (``{"session_id", "event_type", "payload"}``, F18) is
   read by the one delivery reader (`webhook.read_delivery`, which
   ``WebhookVerifier`` uses too), so a receiver can read it like a poll.
4. `convert` structures ``data`` into the model; a wrong shape is an
   `UnexpectedResponseError` naming the JSON path, with the body attached.

A prediction that *failed on the server* is not an error answer: it parses to a
`Prediction` whose status is FAILED (TIMEOUT, CANCELED), and
`prediction_failure` turns it into the `PredictionFailedError` the caller raises.

``code`` is compared as a number (it may come as ``"200"``). Status synonyms are
folded case-insensitively by `parse_status` (table in its docstring).

Helpers live in sibling modules: `errors` (error answers and
``Retry-After``; `error_from_response` and `parse_retry_after` are re-exported
here), `values` (single values: `parse_status`, outputs, dates) and `webhook`
(the one reader of webhook deliveries).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs

from .._core.errors import (
    ConfigurationError,
    UnexpectedResponseError,
)
from .._core.models import Kind, ModelInfo, Prediction, PredictionStatus, UploadedMedia
from .._core.outcome import prediction_failure
from . import convert as _convert
from .answer import Answer
from .errors import (
    api_error,
    error_from_response,
    failure_reason,
    one_line,
    parse_retry_after,
)
from .values import parse_status, type_name
from .webhook import is_delivery, read_delivery

__all__ = [
    "MODELS_PATH",
    "Answer",
    "UPLOAD_PATH",
    "build_submit_body",
    "error_from_response",
    "parse_models",
    "parse_prediction",
    "parse_retry_after",
    "parse_status",
    "parse_submit",
    "parse_upload",
    "prediction_failure",
    "prediction_path",
    "read_json_object",
    "read_models",
    "read_prediction",
    "read_submit",
    "read_upload",
    "submit_path",
]

UPLOAD_PATH = "/model/uploadMedia"
MODELS_PATH = "/models"

_SUBMIT_PATHS = {
    Kind.IMAGE: "/model/generateImage",
    Kind.VIDEO: "/model/generateVideo",
    Kind.AUDIO: "/model/generateAudio",
}


def submit_path(kind: Kind | str) -> str:
    """
    The submit path for ``kind``, relative to the base URL.

    Raises:
        ConfigurationError: ``kind`` is not a `Kind` or one of its values.
    """
    return _SUBMIT_PATHS[Kind.coerce(kind)]


def prediction_path(prediction_id: str) -> str:
    """
    The poll path for ``prediction_id``, relative to the base URL.

    The id is percent-encoded whole (``/``, ``?``, ``#`` included), so no id can
    reach another path or carry a query.

    Raises:
        ConfigurationError: the id is empty, ``.`` or ``..``, or not a string.
    """
    if not isinstance(prediction_id, str) or prediction_id in ("", ".", ".."):
        raise ConfigurationError(f"invalid prediction id {prediction_id!r}")
    if prediction_id.isascii() and prediction_id.isalnum():
        # The ids the API hands out (hex): nothing to encode, on every poll.
        return f"/model/prediction/{prediction_id}"
    return f"/model/prediction/{quote(prediction_id, safe='')}"


def build_submit_body(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """
    The JSON body of a submit: ``model`` plus ``params``, flat.

    The API reads parameters at the top level, next to ``model`` (docs/wire.md,
    "Submitting"), never under ``input``. ``params`` is copied, not changed.

    Raises:
        ConfigurationError: ``model`` is not a non-empty string, ``params`` has a
            ``model`` key (ambiguous: which one wins?) or a non-string key.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"model must be a non-empty string, got {model!r}")
    if "model" in params:
        raise ConfigurationError(
            "'model' given as a parameter: pass it only as the model argument"
        )
    bad_keys = [key for key in params if not isinstance(key, str)]
    if bad_keys:
        raise ConfigurationError(f"parameter names must be strings, got {bad_keys!r}")
    return {"model": model, **params}


def parse_submit(
    status_code: int, headers: Mapping[str, str], body: bytes, *, now: float
) -> Prediction:
    """`read_submit` for an answer given as its parts."""
    return read_submit(Answer.read(status_code, headers, body), now=now)


def read_submit(answer: Answer, *, now: float) -> Prediction:
    """
    Read a submit answer: the new prediction, as the server described it.

    The id is ``data.id``, else ``data.prediction_id``, ``data.predictionId``
    or ``data.request_id``, else the top-level ``id``. A missing status reads as
    CREATED: the server just accepted the prediction (F4).

    Raises:
        APIError: the subclass for an error answer (also inside HTTP 200).
        UnexpectedResponseError: not JSON, no id, or a wrong shape.
    """
    payload = _json_object(answer, now=now, prediction_id=None)
    data, path, outer_id = _unwrap(payload)
    prediction = _convert.structure_prediction(
        data,
        fallback_id=outer_id,
        body=payload,
        status_code=answer.status_code,
        path=path,
    )
    if not prediction.status_raw:
        prediction = attrs.evolve(prediction, status=PredictionStatus.CREATED)
    return prediction


def parse_prediction(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    prediction_id: str | None = None,
) -> Prediction:
    """`read_prediction` for an answer given as its parts."""
    return read_prediction(
        Answer.read(status_code, headers, body), now=now, prediction_id=prediction_id
    )


def read_prediction(
    answer: Answer, *, now: float, prediction_id: str | None = None
) -> Prediction:
    """
    Read a poll answer (or a webhook delivery): one snapshot of a prediction.

    ``prediction_id`` is the id that was polled; it is used when the body names
    none (the guide's bare ``{"status": "failed", "error": ...}``, docs/wire.md,
    "Envelopes") and it is attached to every error raised. A failed prediction
    is *returned*; see `prediction_failure`.

    Raises:
        APIError: the subclass for an error answer (also inside HTTP 200).
        UnexpectedResponseError: not JSON, ``data`` null or not an object, no id,
            or a wrong shape.
    """
    payload = _json_object(answer, now=now, prediction_id=prediction_id)
    if is_delivery(payload):
        # The one delivery reader, so this and WebhookVerifier agree.
        return read_delivery(
            payload, status_code=answer.status_code, prediction_id=prediction_id
        ).prediction
    data, path, outer_id = _unwrap(payload)
    prediction = _convert.structure_prediction(
        data,
        fallback_id=outer_id or prediction_id,
        body=payload,
        status_code=answer.status_code,
        prediction_id=prediction_id,
        path=path,
    )
    if not prediction.error and not 200 <= answer.status_code <= 299:
        # A verdict in an error status (W1-W2): the outer message is the reason.
        prediction = attrs.evolve(prediction, error=failure_reason(payload))
    return prediction


def parse_upload(
    status_code: int, headers: Mapping[str, str], body: bytes, *, now: float
) -> UploadedMedia:
    """`read_upload` for an answer given as its parts."""
    return read_upload(Answer.read(status_code, headers, body), now=now)


def read_upload(answer: Answer, *, now: float) -> UploadedMedia:
    """
    Read an upload answer: the temporary URL to pass as a model input.

    The URL is ``data.download_url`` (the vendor's code), else ``data.url``, else
    a top-level ``url`` (the docs' examples).

    Raises:
        APIError: the subclass for an error answer (also inside HTTP 200).
        UnexpectedResponseError: not JSON, or no URL.
    """
    payload = _json_object(answer, now=now, prediction_id=None)
    data, path = (
        (payload.get("data"), "$.data") if "data" in payload else (payload, "$")
    )
    has_url = isinstance(data, Mapping) and (
        data.get("download_url") or data.get("url")
    )
    if not has_url and isinstance(payload.get("url"), str):
        data, path = payload, "$"
    return _convert.structure(
        data, UploadedMedia, body=payload, status_code=answer.status_code, path=path
    )


def parse_models(
    status_code: int, headers: Mapping[str, str], body: bytes, *, now: float
) -> list[ModelInfo]:
    """`read_models` for an answer given as its parts."""
    return read_models(Answer.read(status_code, headers, body), now=now)


def read_models(answer: Answer, *, now: float) -> list[ModelInfo]:
    """
    Read the model catalog: ``{"code", "data": [...]}``, or a bare list.

    Raises:
        APIError: the subclass for an error answer (also inside HTTP 200).
        UnexpectedResponseError: not JSON, no list, or an entry without a model id.
    """
    status_code = answer.status_code
    payload = _json(answer, now=now, prediction_id=None)
    entries, path = (
        (payload.get("data"), "$.data")
        if isinstance(payload, Mapping)
        else (payload, "$")
    )
    if not isinstance(entries, list):
        raise UnexpectedResponseError(
            f"expected a list of models at {path}, got {type_name(entries)}",
            status_code=status_code,
            body=payload,
        )
    return _convert.structure(
        entries, list[ModelInfo], body=payload, status_code=status_code, path=path
    )


# --- helpers ------------------------------------------------------------------


def _json(answer: Answer, *, now: float, prediction_id: str | None) -> object:
    # Steps 2-3 of the theory on the answer decoded once: raise error answers
    # (unless the session already did), require JSON.
    decoded = answer.decoded
    if not answer.error_checked:  # the session checked the answers it returns
        error = api_error(
            answer.status_code,
            answer.headers,
            decoded,
            now=now,
            prediction_id=prediction_id,
        )
        if error is not None:
            raise error
    if not decoded.is_json:
        got = decoded.problem or f"got {one_line(str(decoded.value))[:80]!r}"
        raise UnexpectedResponseError(
            f"expected a JSON answer, {got}",
            status_code=answer.status_code,
            body=decoded.value,
            prediction_id=prediction_id,
        )
    return decoded.value


def read_json_object(answer: Answer, *, now: float) -> Mapping[str, Any]:
    """
    An answer's JSON object, after the error check: for readers of other
    endpoints (history, billing) built on the same envelope rules.

    Raises:
        APIError: the subclass for an error answer (also inside HTTP 200).
        UnexpectedResponseError: not JSON, or not an object.
    """
    return _json_object(answer, now=now, prediction_id=None)


def _json_object(
    answer: Answer, *, now: float, prediction_id: str | None
) -> Mapping[str, Any]:
    payload = _json(answer, now=now, prediction_id=prediction_id)
    if not isinstance(payload, Mapping):
        raise UnexpectedResponseError(
            f"expected a JSON object, got {type_name(payload)}",
            status_code=answer.status_code,
            body=payload,
            prediction_id=prediction_id,
        )
    return payload


def _unwrap(payload: Mapping[str, Any]) -> tuple[object, str, str | None]:
    """``(data, its JSON path, an id found outside data)`` for a prediction."""
    if "data" in payload:
        return payload["data"], "$.data", _id_text(payload.get("id"))
    return payload, "$", None


def _id_text(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None
