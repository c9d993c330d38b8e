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

A 5xx whose body carries a terminal verdict (``data.status`` is ``failed``,
``canceled``, ``cancelled``, ``error`` or ``timeout``) is a decision the server
made, not an outage: with ``verdicts=True`` (the session asks for polls and
submits) it is no error, and the body is read as the prediction it describes.

`error_text` is the one reader of an ``error`` value, a string or an object
(``message``, ``msg``, ``error``, ``detail``, ``reason``, else its compact JSON
text): error answers, polls and webhook deliveries all read ``error`` with it.

Decoding is bounded: `decode_body` keeps as text (with the reason) any body
nested deeper than `MAX_JSON_DEPTH`, or using the non-standard ``NaN`` and
``Infinity``, so no answer can raise `RecursionError` here or deeper down.
"""

from __future__ import annotations

import http
import json
import math
import re
from collections.abc import Iterable, Mapping
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
    "MAX_JSON_DEPTH",
    "Decoded",
    "api_error",
    "decode_body",
    "envelope_code",
    "error_from_response",
    "error_text",
    "failure_reason",
    "header",
    "is_terminal_verdict",
    "one_line",
    "parse_retry_after",
]

#: The deepest JSON an answer may be, in nested arrays and objects. Atlas's
#: answers are 4-6 deep; the limit leaves room for deep model inputs echoed
#: back, and keeps every recursive reader (conversion, redaction, repr, the
#: journal's JSON) far from Python's recursion limit.
MAX_JSON_DEPTH = 64

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
    """
    A body read once: the JSON value when ``is_json``, else the text.

    ``problem`` says why a body that looked like JSON was kept as text (nested
    too deep, a non-standard constant); None otherwise.
    """

    value: object
    is_json: bool
    problem: str | None = None


def _no_constants(name: str) -> object:
    raise ValueError(f"non-standard JSON constant {name}")


# Built once: json.loads with any option builds a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)
_TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def decode_body(body: bytes) -> Decoded:
    """
    Decode ``body`` as JSON, or keep it as text (invalid UTF-8 replaced).

    Bounded: JSON nested deeper than `MAX_JSON_DEPTH` (however deep: the parser's
    own `RecursionError` is caught), or using ``NaN``/``Infinity``, is kept as
    text with the reason in ``problem``. A body of fewer brackets than the limit
    cannot be too deep, so an ordinary answer costs two byte counts more.
    """
    problem = None
    try:
        value = _DECODER.decode(
            body.decode(json.detect_encoding(body), "surrogatepass")
        )
    except RecursionError:
        problem = _TOO_DEEP
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, constants
        if "constant" in str(exc):
            problem = str(exc)
    else:
        if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH or not _too_deep(
            value
        ):
            return Decoded(value, is_json=True)
        problem = _TOO_DEEP
    return Decoded(
        body.decode("utf-8", errors="replace"), is_json=False, problem=problem
    )


def _too_deep(value: object) -> bool:
    # Iterative, so a deep value cannot exhaust the stack it is measured on.
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


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
    verdicts: bool = False,
) -> APIError | None:
    """
    `error_from_response` for a body already decoded with `decode_body`.

    With ``verdicts=True`` a 5xx (status or envelope code) whose body says the
    prediction ended (`is_terminal_verdict`) is no error: it is read as that
    prediction (W1-W3 of the wire notes). Only the session's polls and submits
    ask for it; any other answer with a 5xx is a `ServerError`.
    """
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
    if verdicts and 500 <= status <= 599 and is_terminal_verdict(payload):
        return None
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
                if isinstance(value, str):
                    if value.strip():
                        return value
                elif isinstance(value, Mapping):  # {"error": {"detail": ...}}
                    text = error_text(value)
                    if text:
                        return text
    return None


# -- the error text and the terminal verdict -----------------------------------------

# Where an error object keeps its reason, in the order the vendor's newest
# client reads them (W4).
_ERROR_KEYS = ("message", "msg", "error", "detail", "reason")
# Nested error objects read before falling back to the object's JSON text.
_ERROR_NESTING = 4
_VERDICTS = frozenset({"failed", "canceled", "cancelled", "error", "timeout"})


def error_text(value: object) -> str | None:
    """
    The failure text of an ``error`` value; None when it says nothing.

    The one reader of ``error`` (polls, webhook deliveries, error answers): a
    string is itself (None when blank); a number is its digits; an object gives
    its first non-empty ``message``, ``msg``, ``error``, ``detail`` or ``reason``
    (read the same way, so ``{"error": {"detail": ...}}`` works), else its
    compact JSON text; a list is its JSON text. Empty objects, lists, None and
    booleans say nothing.

    Example::

        error_text({"code": 7, "detail": "prompt too long"})  # "prompt too long"
        error_text({"code": 7})                                # '{"code":7}'
    """
    return _error_text(value, 0)


def _error_text(value: object, depth: int) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Mapping):
        if not value:
            return None
        if depth < _ERROR_NESTING:
            for key in _ERROR_KEYS:
                text = _error_text(value.get(key), depth + 1)
                if text:
                    return text
        return _compact(value)
    if isinstance(value, (list, tuple)):
        return _compact(value) if value else None
    return None


def _compact(value: object) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # not from JSON: keep something readable
        return repr(value)


def _verdict_data(payload: object) -> Mapping[str, object] | None:
    if not isinstance(payload, Mapping):
        return None
    data = payload.get("data") if "data" in payload else payload
    return data if isinstance(data, Mapping) else None


def is_terminal_verdict(payload: object) -> bool:
    """
    True when a body says its prediction ended without a result.

    ``data.status`` (or a bare body's ``status``) is one of ``failed``,
    ``canceled``, ``cancelled``, ``error``, ``timeout``, in any case: the
    vendor's own client treats such a 5xx answer as the final result (W1-W3).
    """
    data = _verdict_data(payload)
    status = data.get("status") if data is not None else None
    return isinstance(status, str) and status.strip().lower() in _VERDICTS


def failure_reason(payload: object) -> str | None:
    """
    Why a verdict answer says the prediction failed: ``data.error`` (read with
    `error_text`), else the outer ``message`` or ``msg``, which in a 5xx verdict
    is often the clearer reason (W2).
    """
    data = _verdict_data(payload)
    if data is not None:
        text = error_text(data.get("error"))
        if text:
            return text
    if isinstance(payload, Mapping):
        for key in ("message", "msg"):
            text = error_text(payload.get(key))
            if text:
                return text
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
