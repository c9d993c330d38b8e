"""
Error answers: which responses are errors, which exception each becomes, and how
long the server asked us to wait. Part of `_wire`; `parse` re-exports the public
names; kept apart so each module stays readable.

Theory of operation
-------------------
`api_error` looks at every answer before anything reads it as a success:

- a non-2xx status is always an error;
- a 2xx is an error when its body says so: a numeric ``code`` outside 2xx (the
  gateway sends ``{"code": 401, "msg": "unauthorized"}`` inside HTTP 200), or an
  OpenAI-style ``{"error": {...}}`` object with no result beside it (F16).

The status that classifies is the envelope's ``code`` when it is an HTTP error
status (400-599), since a proxy's status says less than the API's own, else the
HTTP status. Classes follow docs/wire.md, "Error answers"; a message speaking
of an insufficient balance wins over the status, as the vendor's own client
decides.

The message is the server's text (``msg``, ``message``, ``error``, also inside
``data``), or a non-JSON page's title or text, flattened to one line; when the
server said nothing it is ``"HTTP 502 Bad Gateway"``. Nothing here ever reads a
request header, so no message can carry the API key.
"""

from __future__ import annotations

import http
import json
import math
import re
from collections.abc import Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime

import attrs

from .._core.errors import (
    APIError,
    AuthenticationError,
    InsufficientBalanceError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from .._core.outcome import one_line

__all__ = [
    "Decoded",
    "api_error",
    "decode_body",
    "envelope_code",
    "error_from_response",
    "header",
    "one_line",
    "parse_retry_after",
]

_ERROR_CLASSES: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
    451: PermissionDeniedError,
}

# Clients read the error text as `msg || message || error` (docs/wire.md,
# "Error answers").
_TEXT_KEYS = ("msg", "message", "error")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


@attrs.frozen
class Decoded:
    """A body read once: the JSON value when ``is_json``, else the text."""

    value: object
    is_json: bool


def decode_body(body: bytes) -> Decoded:
    """Decode ``body`` as JSON, or keep it as text (invalid UTF-8 replaced)."""
    try:
        return Decoded(json.loads(body), is_json=True)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both
        return Decoded(body.decode("utf-8", errors="replace"), is_json=False)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Look ``name`` up in ``headers`` case-insensitively (any mapping will do)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def envelope_code(payload: object) -> int | None:
    """The envelope's ``code`` as a number (it may come as ``"200"``), or None."""
    if not isinstance(payload, Mapping):
        return None
    code = payload.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit():
        return int(code)
    return None


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    prediction_id: str | None = None,
) -> APIError | None:
    """
    Return the `APIError` this answer amounts to, or None for a success.

    Args:
        status_code: the HTTP status.
        headers: the response headers, any case.
        body: the raw body.
        now: wall time (epoch seconds), for an HTTP-date ``Retry-After``.
        prediction_id: the prediction asked about, attached to the error.

    Returns:
        The most specific subclass for the status and text (docs/wire.md,
        "Error answers"), carrying ``status_code``, ``message``, ``request_id``,
        ``retry_after`` and ``body`` (decoded JSON, or the text); None when the
        answer is no error.
    """
    return api_error(
        status_code, headers, decode_body(body), now=now, prediction_id=prediction_id
    )


def api_error(
    status_code: int,
    headers: Mapping[str, str],
    decoded: Decoded,
    *,
    now: float,
    prediction_id: str | None = None,
) -> APIError | None:
    """`error_from_response` for a body already decoded with `decode_body`."""
    payload = decoded.value
    code = envelope_code(payload)
    if 200 <= status_code <= 299:
        if code is not None and not 200 <= code <= 299:
            status = code
        elif _is_error_object(payload):
            status = status_code
        else:
            return None
    else:
        status = code if code is not None and 400 <= code <= 599 else status_code
    text = _server_text(payload) if decoded.is_json else _page_text(str(payload))
    error_class = _error_class(status, text or "")
    return error_class(
        one_line(text) if text else _fallback_message(status),
        status_code=status,
        request_id=_request_id(payload, headers),
        retry_after=parse_retry_after(headers, payload, now=now),
        body=payload,
        prediction_id=prediction_id,
    )


def parse_retry_after(
    headers: Mapping[str, str], payload: object, *, now: float
) -> float | None:
    """
    Seconds the server asked us to wait, or None when it did not say.

    Read from the ``Retry-After`` header (seconds, or an HTTP-date measured from
    ``now``), else from a ``retry_after`` field of the JSON body or of its
    ``error`` object. A negative or past value is 0. Large values are returned as
    they are: capping is the caller's policy.
    """
    value = header(headers, "retry-after")
    if value is not None:
        seconds = _seconds(value)
        if seconds is None:
            seconds = _seconds_until(value, now)
        if seconds is not None:
            return seconds
    if isinstance(payload, Mapping):
        for source in (payload, payload.get("error")):
            if isinstance(source, Mapping) and "retry_after" in source:
                seconds = _seconds(source["retry_after"])
                if seconds is not None:
                    return seconds
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):  # 3.10 raises TypeError, later ValueError
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about the zone
        when = when.replace(tzinfo=timezone.utc)
    return max(when.timestamp() - now, 0.0)


def _is_error_object(payload: object) -> bool:
    # F16's shape: an error object and nothing a result would carry.
    return (
        isinstance(payload, Mapping)
        and isinstance(payload.get("error"), Mapping)
        and not any(key in payload for key in ("data", "status", "id"))
    )


def _error_class(status: int, text: str) -> type[APIError]:
    lowered = text.lower()
    if "insufficient" in lowered and "balance" in lowered:
        return InsufficientBalanceError
    if status in _ERROR_CLASSES:
        return _ERROR_CLASSES[status]
    return ServerError if 500 <= status <= 599 else APIError


def _server_text(payload: object) -> str | None:
    if isinstance(payload, str):
        return payload if payload.strip() else None
    if not isinstance(payload, Mapping):
        return None
    for source in (payload, payload.get("data")):
        if isinstance(source, Mapping):
            for key in _TEXT_KEYS:
                value = source.get(key)
                if isinstance(value, Mapping):  # {"error": {"message": ...}}
                    value = value.get("message") or value.get("msg")
                if isinstance(value, str) and value.strip():
                    return value
    return None


def _page_text(text: str) -> str | None:
    # A proxy's HTML error page: its title says it best, else its text.
    title = _TITLE.search(text)
    readable = title.group(1) if title else _TAG.sub(" ", text)
    return readable if readable.strip() else None


def _request_id(payload: object, headers: Mapping[str, str]) -> str | None:
    if isinstance(payload, Mapping):
        for source in (payload, payload.get("error")):
            value = source.get("request_id") if isinstance(source, Mapping) else None
            if (
                isinstance(value, (str, int))
                and not isinstance(value, bool)
                and str(value)
            ):
                return str(value)
    return header(headers, "x-request-id") or None


def _fallback_message(status: int) -> str:
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}" if 100 <= status <= 599 else f"error code {status}"
