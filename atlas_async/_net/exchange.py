"""
The session's one I/O seam: a request's method, URL, headers and body in; the
answer's status, headers and whole body (read up to the cap) out.

Theory of operation:

* **Two backends, one contract.** `AiohttpBackend` (``_net.aiohttp_backend``)
  speaks to aiohttp directly and builds no httpx object on the way: it is the
  hot path under asyncio. `HttpxBackend` sends through an ``httpx.AsyncClient``:
  one the user injected (``http_client=``), one built around an httpx transport
  (``transport=`` an ``httpx.AsyncBaseTransport``, respx and
  ``httpx.MockTransport`` included), and the one that runs under trio. Above this
  seam nothing knows which one answered.
* **What a backend promises.** `Backend.exchange` returns a `RawAnswer` whose
  body was read by `BodyReader` (``Content-Encoding`` undone in bounded steps,
  at most ``max_bytes`` decoded bytes), and raises only: an httpx
  ``TransportError`` subclass naming what the failure proves (only
  ``ConnectError``, ``ConnectTimeout`` and ``PoolTimeout`` mean "never sent"),
  `BodyRefusedError` (with the status), or `ClientClosedError`. The session's
  deadline cancels an exchange from outside; a backend closes what it was
  reading when cancelled.
* **Bodies are bytes here.** The session encodes JSON (`encode_json`) and
  multipart (``_wire.multipart``) itself, so both backends send the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import anyio
import httpx

from .._core.config import Timeouts
from .._core.errors import ClientClosedError
from .._wire.answer import BodyReader, BodyRefusedError

__all__ = [
    "Backend",
    "HttpxBackend",
    "Progress",
    "RawAnswer",
    "build_httpx_client",
    "encode_json",
    "httpx_timeout",
]


class RawAnswer(NamedTuple):
    """A whole answer off the wire: status, headers, the decoded body."""

    status: int
    headers: Mapping[str, str]  # case-insensitive lookups on both backends
    body: bytes


class Progress(Protocol):
    """Told each time a piece of an answer arrives (the read deadline's clock)."""

    def progress(self) -> None:
        """A piece of the answer came."""
        ...


class Backend(Protocol):
    """Sends one request and reads its whole answer (see the module's contract)."""

    @property
    def name(self) -> str:
        """``"aiohttp"``, ``"httpx"``, ``"custom"`` or ``"injected"``."""
        ...

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        max_bytes: int,
        progress: Progress | None = None,
    ) -> RawAnswer:
        """
        Send one request; return its answer, body read up to ``max_bytes``.

        ``progress`` hears of each piece of the answer, when the caller keeps
        the read deadline (the aiohttp backend then sets none of its own).
        """
        ...

    async def aclose(self) -> None:
        """Release what the backend owns (an injected client stays open)."""
        ...


def encode_json(value: Any) -> bytes:
    """
    A JSON request body, as httpx encodes one: compact, UTF-8, no ``NaN``.

    Example::

        assert encode_json({"prompt": "é"}) == '{"prompt":"é"}'.encode()
    """
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


class HttpxBackend:
    """
    Sends through an ``httpx.AsyncClient`` (streamed, so the cap holds).

    Example::

        async with httpx.AsyncClient() as http:
            backend = HttpxBackend(http, name="injected", owned=False)
            answer = await backend.exchange("GET", url, {}, None, max_bytes=1 << 20)

    Args:
        client: the client to send through.
        name: what `ApiSession.transport_name` shows for it.
        owned: close the client in `aclose` (False for an injected one).
        timeout: per-request timeouts, or ``httpx.USE_CLIENT_DEFAULT``.
    """

    __slots__ = ("_timeout", "client", "name", "owned")

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        name: str,
        owned: bool,
        timeout: httpx.Timeout | Any = httpx.USE_CLIENT_DEFAULT,
    ) -> None:
        self.client = client
        self.name = name
        self.owned = owned
        self._timeout = timeout

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        max_bytes: int,
        progress: Progress | None = None,
    ) -> RawAnswer:
        """One request and its whole answer, read up to the cap (httpx keeps the
        read timeout itself: ``progress`` is not needed)."""
        client = self.client
        if client.is_closed:
            raise ClientClosedError("the HTTP client is closed")
        request = client.build_request(
            method,
            url,
            content=body,
            headers=headers,
            timeout=self._timeout,
            extensions=API_REQUEST,
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            response_headers = response.headers
            if response.is_stream_consumed:
                # Built in memory (httpx.MockTransport, respx): already decoded.
                reader = BodyReader(None, max_bytes)
                reader.feed(response.content)
            else:
                reader = BodyReader(response_headers.get("content-encoding"), max_bytes)
                # A length past the cap is refused before a byte is read.
                reader.announce(response_headers.get("content-length"))
                async for chunk in response.aiter_raw():
                    reader.feed(chunk)
            data = reader.finish()
        except BaseException as exc:
            if isinstance(exc, BodyRefusedError):
                exc.status_code = response.status_code
            # Bounded even under the deadline's cancellation: closing a half-read
            # answer drops its connection; a peer that will not let go is cut.
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                await response.aclose()
            raise
        else:
            await response.aclose()
        finally:
            # httpx's response and its stream point at each other: ~40 objects
            # of cyclic garbage per request, which only the garbage collector
            # frees. Unlinking them lets reference counting free them now
            # (docs/performance.md).
            response.stream = _SPENT
        return RawAnswer(response.status_code, response_headers, data)

    async def aclose(self) -> None:
        """Close the client if this backend built it."""
        if self.owned:
            await self.client.aclose()

    def __repr__(self) -> str:
        return f"HttpxBackend({self.name})"


def httpx_timeout(timeouts: Timeouts) -> httpx.Timeout:
    """The same four phases, as httpx takes them."""
    return httpx.Timeout(
        connect=timeouts.connect,
        read=timeouts.read,
        write=timeouts.write,
        pool=timeouts.pool,
    )


def build_httpx_client(
    transport: httpx.AsyncBaseTransport | None, timeouts: Timeouts, limit: int
) -> httpx.AsyncClient:
    """
    The ``httpx.AsyncClient`` the session builds (for `HttpxBackend`, and for
    downloads): a pool of ``limit`` connections, never following redirects.
    """
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx_timeout(timeouts),
        # Keep-alive as large as the pool: a smaller keep-alive cap makes
        # httpx close and reopen connections under load (docs/performance.md,
        # "What the HTTP layer costs").
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        follow_redirects=False,
        event_hooks={"response": [hide_api_location]},
    )


async def hide_api_location(response: httpx.Response) -> None:
    """
    Drop a redirect's ``Location`` from an answer to the session's request.

    httpx parses ``Location`` before returning a redirect, even one it will not
    follow, and raises its own errors for odd ones (``javascript:...``, a bad
    port); the API never redirects, and the session reports any redirect as
    `UnexpectedResponseError` with its status, without looking where it points.
    Installed as a response hook on the httpx clients the session builds.
    """
    if response.is_redirect and response.request.extensions.get(_API_MARK):
        del response.headers["location"]


_SPENT = httpx.ByteStream(b"")
# Marks the session's requests, so the client it builds hides their redirects'
# Location from httpx (downloads through the same client follow theirs).
_API_MARK = "atlas_async.api"
API_REQUEST = {_API_MARK: True}
#: The longest a half-read answer may take to close once its request is over.
CLOSE_TIMEOUT = 5.0
