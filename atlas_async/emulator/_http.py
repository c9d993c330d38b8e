"""
The emulator's HTTP vocabulary, independent of any server: a `Request` in, a
`Response` out, plus the wire's envelopes.

Keeping the handler on these two plain classes (instead of ASGI messages or
httpx objects) is what lets one handler serve both adapters, the ASGI app that
uvicorn runs and the in-process httpx transport, at full speed.

Envelopes follow docs/wire.md: success is
``{"code": 200, "message": "", "data": ...}``; an error is
``{"code": <status>, "msg": <text>, "request_id": <id>, "data": null}`` (note
``msg``, not ``message``), and every answer carries ``X-Request-ID``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._multipart import FormPart

__all__ = [
    "ConnectionDroppedError",
    "Request",
    "Response",
    "error_response",
    "json_response",
    "success",
]

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_JSON = (b"content-type", b"application/json")

REASONS = {
    400: "Invalid request parameters",
    401: "unauthorized",
    402: "insufficient balance",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request entity too large",
    429: "rate limit exceeded",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


class ConnectionDroppedError(Exception):
    """
    Raised by the ASGI app when it must drop a connection and the server gives
    it no way to (the emulator's own uvicorn server aborts the socket instead).
    """


class Request:
    """
    One request, as the handler sees it.

    ``headers`` must answer ``get`` for lower-case names (a dict with lower-case
    keys, or ``httpx.Headers``). ``origin`` is ``scheme://host[:port]``, used to
    build absolute URLs. An upload's body arrives already parsed, its files on
    disk, as ``form`` (see `_multipart`); ``body`` is then empty.
    """

    __slots__ = (
        "body",
        "client_host",
        "form",
        "headers",
        "method",
        "origin",
        "path",
        "query",
    )

    def __init__(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        origin: str,
        body: bytes = b"",
        query: str = "",
        client_host: str | None = None,
        form: dict[str, FormPart] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.origin = origin
        self.body = body
        self.query = query
        self.client_host = client_host
        self.form = form


class Response:
    """
    One answer: status, headers (byte pairs), body; or a dropped connection.

    ``delay`` is clock seconds to wait before answering (the slow fault);
    ``drop`` means close the connection without answering; ``file``, when set,
    is sent as the body instead of ``body``, read from disk a piece at a time.
    """

    __slots__ = ("body", "delay", "drop", "file", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        delay: float = 0.0,
        drop: bool = False,
        file: Path | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
        self.drop = drop
        self.file = file


def json_response(
    status: int,
    payload: Any,
    request_id: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    """Return ``payload`` as a JSON answer with ``X-Request-ID`` set."""
    body = _encode(payload).encode()
    headers = [
        _JSON,
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if extra:
        headers.extend(extra)
    return Response(status, headers, body)


def success(data: Any, request_id: str) -> Response:
    """Return the ``{code: 200, message: "", data}`` envelope."""
    return json_response(200, {"code": 200, "message": "", "data": data}, request_id)


def error_response(
    status: int,
    request_id: str,
    message: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    """Return the ``{code, msg, request_id, data: null}`` error envelope."""
    payload = {
        "code": status,
        "msg": message if message is not None else REASONS.get(status, "error"),
        "request_id": request_id,
        "data": None,
    }
    return json_response(status, payload, request_id, extra)
