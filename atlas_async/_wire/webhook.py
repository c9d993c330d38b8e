"""
The one reader of Atlas's webhook deliveries (F18), and their writer.

Pure: a delivery body (bytes, or JSON already decoded) in, a `Delivery` out; no
signatures, headers or clocks here. Both ``WebhookVerifier`` (after the
signature holds) and ``parse_prediction`` (a receiver that reads a delivery
like a poll) read a delivery through `read_delivery`, so they cannot disagree.

Theory of operation
-------------------
A delivery is ``{"session_id", "event_type", "status": "OK"|"ERROR",
"created_at" (epoch ms), "payload", "error"}``. Atlas documents that the payload
"carries the same result shape you would have polled for", so the payload is
read by the poll parser (``convert.structure_prediction``): synonyms, outputs
and dates are read exactly as in a poll. The envelope then adds two rules.

**The id is the ``session_id``**, whatever ids the payload also carries: the
session id is the task id returned at submit (what a waiting future is keyed
by), it is the one the verifier checks against the ``X-AtlasCloud-Webhook-Id``
header, and it is inside the signed bytes. A payload ``id`` or ``request_id``
is kept in ``raw`` only.

**``"ERROR"`` is never a success.** The envelope's status is Atlas's own
verdict on the task; the payload is a snapshot of it. A top-level ``"OK"`` can
still carry ``payload.status`` of ``failed``, ``timeout`` or ``cancelled``
(documented), so ``"OK"`` defers to the payload. The converse, an ``"ERROR"``
whose payload says ``completed`` (or a non-terminal status), is contradictory;
reading it as a success would hand out outputs Atlas itself reports as errored,
while reading it as a failure is safe: a poll of the id can always reconcile.
So under ``"ERROR"`` a successful or non-terminal payload status becomes FAILED,
and a specific failure (TIMEOUT, CANCELED) is kept. Webhooks are sent only for
predictions that have ended, so without a payload status ``"OK"`` means
COMPLETED and ``"ERROR"`` FAILED. The envelope's ``error`` fills in a payload
without one.

A body of the wrong shape raises `UnexpectedResponseError` naming the problem
(with the session id once it is known); the verifier reports it as
``malformed_body``. So does a body nested too deeply to read (JSON that would
make the parser recurse past Python's limit): never a ``RecursionError``.

Headers: Atlas signs with Ed25519 and sends the signature in
``X-AtlasCloud-Webhook-Signature-Ed25519``; during a migration a legacy hex
HMAC travels in the bare ``X-AtlasCloud-Webhook-Signature``, and once the HMAC
is retired the Ed25519 signature moves to that bare header (shared by the
vendor's newer receivers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Literal, TypeAlias

import attrs

from .._core.errors import UnexpectedResponseError
from .._core.models import Kind, Prediction, PredictionStatus
from . import convert as _convert
from .errors import decode_body, error_text

__all__ = [
    "HEADER_BARE_SIGNATURE",
    "HEADER_EVENT",
    "HEADER_ID",
    "HEADER_KEY_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "Delivery",
    "WebhookStatus",
    "build_body",
    "event_type_for",
    "is_delivery",
    "read_delivery",
]

HEADER_ID: Final = "X-AtlasCloud-Webhook-Id"
HEADER_EVENT: Final = "X-AtlasCloud-Webhook-Event"
HEADER_TIMESTAMP: Final = "X-AtlasCloud-Webhook-Timestamp"
HEADER_KEY_ID: Final = "X-AtlasCloud-Webhook-Key-Id"
HEADER_SIGNATURE: Final = "X-AtlasCloud-Webhook-Signature-Ed25519"
HEADER_BARE_SIGNATURE: Final = "X-AtlasCloud-Webhook-Signature"

WebhookStatus: TypeAlias = Literal["OK", "ERROR"]


@attrs.frozen(kw_only=True)
class Delivery:
    """
    What a delivery body says, read by the rules of the module docstring.

    Attributes:
        session_id: the prediction id.
        event_type: e.g. ``"image.task.terminal"``.
        status: the envelope's ``"OK"`` or ``"ERROR"``.
        created_at: when Atlas created the event, when it said.
        error: the envelope's error text, or None.
        prediction: the payload as a `Prediction`, with ``id = session_id``.
        raw: the whole body as decoded JSON.
    """

    session_id: str
    event_type: str
    status: WebhookStatus
    created_at: datetime | None
    error: str | None
    prediction: Prediction
    raw: Mapping[str, Any] = attrs.field(repr=False, eq=False)


def is_delivery(document: object) -> bool:
    """True when ``document`` is shaped as a webhook delivery, not a poll answer."""
    return (
        isinstance(document, Mapping)
        and "data" not in document
        and "session_id" in document
        and "event_type" in document
    )


def read_delivery(
    body: bytes | Mapping[str, Any],
    *,
    status_code: int | None = None,
    prediction_id: str | None = None,
) -> Delivery:
    """
    Read a delivery body: the event's fields and its `Prediction`.

    Args:
        body: the raw body, or the body already decoded from JSON.
        status_code: attached to errors (a receiver's parse of an HTTP answer).
        prediction_id: attached to errors raised before the body names its
            session id.

    Raises:
        UnexpectedResponseError: not a JSON object of the documented shape, or a
            payload the poll parser rejects.
    """

    document: object = None

    def malformed(
        message: str, session_id: str | None = None
    ) -> UnexpectedResponseError:
        return UnexpectedResponseError(
            f"malformed webhook body: {message}",
            status_code=status_code,
            body=document,
            prediction_id=session_id or prediction_id,
        )

    if isinstance(body, Mapping):
        document = body
    else:
        raw: object = body
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        elif isinstance(raw, (bytearray, memoryview)):
            raw = bytes(raw)
        if not isinstance(raw, bytes):
            raise malformed("not JSON")
        decoded = decode_body(raw)  # the one decode: bounded depth
        if not decoded.is_json:
            raise malformed(decoded.problem or "not JSON")
        document = decoded.value
    if not isinstance(document, Mapping):
        raise malformed("not a JSON object")
    session_id = document.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise malformed("no session_id")
    try:
        return _read(document, session_id, status_code, malformed)
    except RecursionError:
        # Parsed, but too deep for the payload's reader: refused the same way.
        raise malformed("nested too deeply to read", session_id) from None


def _read(
    document: Mapping[str, Any],
    session_id: str,
    status_code: int | None,
    malformed: Callable[..., UnexpectedResponseError],
) -> Delivery:
    event_type = document.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise malformed("no event_type", session_id)
    status = document.get("status")
    if status != "OK" and status != "ERROR":
        raise malformed(f'status is {status!r}, not "OK" or "ERROR"', session_id)
    payload = document.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        raise malformed("payload is not an object", session_id)
    try:
        created_at = _epoch_ms(document.get("created_at"))
    except ValueError as exc:
        raise malformed(str(exc), session_id) from None
    error = _text(document.get("error"))
    try:
        snapshot = _convert.structure_prediction(
            payload,
            fallback_id=session_id,
            body=document,
            status_code=status_code,
            prediction_id=session_id,
            path="$.payload",
        )
    except UnexpectedResponseError as exc:
        raise malformed(exc.message, session_id) from exc
    return Delivery(
        session_id=session_id,
        event_type=event_type,
        status="OK" if status == "OK" else "ERROR",
        created_at=created_at,
        error=error,
        prediction=_settle(snapshot, session_id, status == "OK", payload, error),
        raw=document,
    )


def _settle(
    snapshot: Prediction,
    session_id: str,
    ok: bool,
    payload: Mapping[str, Any],
    error: str | None,
) -> Prediction:
    # The envelope's two rules of the module docstring: the id, and ERROR.
    status = snapshot.status
    if payload.get("status") is None:
        status = PredictionStatus.COMPLETED if ok else PredictionStatus.FAILED
    if not ok and (status.is_success or not status.is_terminal):
        status = PredictionStatus.FAILED
    return attrs.evolve(
        snapshot, id=session_id, status=status, error=snapshot.error or error
    )


def _epoch_ms(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("created_at is not epoch milliseconds")
    try:
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError("created_at is out of range") from None


def _text(value: object) -> str | None:
    # The one reader of `error`: a string, or an object's reason, else its JSON.
    return error_text(value)


def event_type_for(kind: Kind | str) -> str:
    """
    Return the terminal event type Atlas sends for ``kind``.

    Example::

        assert event_type_for("video") == "video.task.terminal"
    """
    return f"{Kind.coerce(kind).value}.task.terminal"


def build_body(
    *,
    session_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    status: WebhookStatus = "OK",
    error: str | None = None,
    created_at: float | None = None,
) -> bytes:
    """
    Encode a webhook body in Atlas's shape (F18), ready for ``WebhookSigner.sign``.

    ``created_at`` is unix seconds; the body carries it as epoch milliseconds.

    Example::

        body = build_body(session_id="p1", event_type=event_type_for("image"),
                          payload={"status": "completed", "outputs": [url]})
    """
    document: dict[str, Any] = {
        "session_id": session_id,
        "event_type": event_type,
        "status": status,
    }
    if created_at is not None:
        document["created_at"] = round(created_at * 1000)
    document["payload"] = dict(payload)
    document["error"] = error
    return json.dumps(document, separators=(",", ":")).encode()
