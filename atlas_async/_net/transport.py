"""
Which httpx transport carries the client's requests.

httpx stays the interface everywhere above this module (``httpx.AsyncClient``,
``httpx.Request``, ``httpx.Response``, httpx's exceptions); only the transport
under the client is pluggable.

Theory of operation:

* **The choice.** ``AtlasClient(transport=...)`` takes ``"auto"`` (the default),
  ``"httpx"``, ``"aiohttp"`` or any ``httpx.AsyncBaseTransport``. ``"auto"``
  picks the aiohttp-backed transport when the ``aiohttp`` extra is installed
  and the client is entered under asyncio, else httpx's own. The choice is made
  in `build_transport`, when the client is entered, because only then is the
  event loop known; a bad name or a missing extra fails earlier, in
  `check_transport`, when the client is built.
* **Why aiohttp.** On this SDK's workload (small JSON polls over keep-alive
  connections) the aiohttp transport costs 0.6x httpx's default transport in
  client CPU per request alone and 0.2-0.3x at 16-64 in flight, where httpcore's
  pool degrades (``docs/performance.md``, ``benchmarks/bench_transport.py``).
  It runs only on asyncio; under trio httpx's default transport is the one.
* **Errors mean the same thing on both.** ``ApiSession`` decides whether a
  failed submit may be re-sent from the httpx exception type: only
  ``ConnectError``, ``ConnectTimeout`` and ``PoolTimeout`` prove a request never
  left. httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` (including a
  server that hung up after reading the request) to ``ConnectTimeout``, and some
  versions to a ``PoolTimeout`` subclass: a dropped submit would be re-sent and
  billed twice. `AiohttpTransport` therefore re-maps aiohttp's exceptions
  itself, by what they prove: no connection (``ConnectError`` /
  ``ConnectTimeout``), a timeout while waiting for the answer (``ReadTimeout``),
  a hang-up (``RemoteProtocolError``, httpx's own type for it), anything else
  on the wire (``ReadError``), a request aiohttp refuses to make with a bare
  ``ValueError`` (``LocalProtocolError``). The response body stream is
  re-mapped too.
* **The pool.** Both transports get a pool as large as
  ``max_concurrent_requests``. The scheduler's limiter admits at most that many
  requests at once, so neither pool ever queues (no ``PoolTimeout``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import sniffio

from .._core.errors import ConfigurationError
from .._core.extras import installed, missing_extra, require
from .aiohttp_errors import aiohttp_failures, map_aiohttp_error, origin_of_error

__all__ = [
    "TRANSPORT_NAMES",
    "AiohttpTransport",
    "TransportName",
    "TransportOption",
    "aiohttp_installed",
    "build_transport",
    "check_transport",
    "choose_transport",
]

TransportName = Literal["auto", "httpx", "aiohttp"]
TransportOption = TransportName | httpx.AsyncBaseTransport | None
"""What ``AtlasClient(transport=...)`` accepts; None means ``"auto"``."""

TRANSPORT_NAMES: tuple[str, ...] = ("auto", "httpx", "aiohttp")


def aiohttp_installed() -> bool:
    """True when the ``aiohttp`` extra (aiohttp and httpx-aiohttp) is importable."""
    return installed("aiohttp", "httpx_aiohttp")


def check_transport(option: object) -> None:
    """
    Validate a ``transport=`` option when the client is built.

    Raises:
        ConfigurationError: for an unknown name, a value that is neither a name
            nor an ``httpx.AsyncBaseTransport``, or ``"aiohttp"`` without the
            extra installed.
    """
    if option is None or isinstance(option, httpx.AsyncBaseTransport):
        return
    if not isinstance(option, str) or option not in TRANSPORT_NAMES:
        raise ConfigurationError(
            "transport must be 'auto', 'httpx', 'aiohttp' or an"
            f" httpx.AsyncBaseTransport, not {option!r}"
        )
    if option == "aiohttp" and not aiohttp_installed():
        raise missing_extra("aiohttp", "aiohttp", feature="transport='aiohttp'")


def choose_transport(option: str | None, library: str) -> Literal["httpx", "aiohttp"]:
    """
    Resolve a transport name for the async library the client runs under.

    Args:
        option: ``"auto"`` (or None), ``"httpx"`` or ``"aiohttp"``.
        library: ``sniffio.current_async_library()``: ``"asyncio"`` or ``"trio"``.

    Raises:
        ConfigurationError: ``"aiohttp"`` asked for outside asyncio.
    """
    if option == "httpx":
        return "httpx"
    if option == "aiohttp":
        if library != "asyncio":
            raise ConfigurationError(
                f"transport='aiohttp' runs only under asyncio, not {library}; use"
                " transport='auto' or 'httpx'"
            )
        return "aiohttp"
    return "aiohttp" if library == "asyncio" and aiohttp_installed() else "httpx"


def build_transport(
    option: TransportOption, *, max_connections: int
) -> tuple[httpx.AsyncBaseTransport | None, str]:
    """
    Build the transport for a client entered now, in the running event loop.

    Returns ``(transport, name)``: the transport to give ``httpx.AsyncClient``
    (None: httpx builds its default one from the client's ``limits``) and the
    name shown in ``ApiSession.transport_name`` (``"httpx"``, ``"aiohttp"`` or
    ``"custom"`` for one passed in).

    Args:
        option: the ``transport=`` option, validated by `check_transport`.
        max_connections: the pool size, at least ``max_concurrent_requests``.
    """
    if isinstance(option, httpx.AsyncBaseTransport):
        return option, "custom"
    name = choose_transport(option, sniffio.current_async_library())
    if name == "httpx":
        return None, "httpx"
    return AiohttpTransport(max_connections=max_connections), "aiohttp"


class AiohttpTransport(httpx.AsyncBaseTransport):
    """
    httpx-aiohttp's transport, with aiohttp's exceptions mapped by what they prove.

    Asyncio only. The aiohttp session is created on the first request (it needs
    the running loop) and closed by `aclose`.

    Example::

        transport = AiohttpTransport(max_connections=16)
        async with httpx.AsyncClient(transport=transport) as http:
            ...

    Args:
        max_connections: the connection pool's size (aiohttp's ``limit``).
    """

    def __init__(self, *, max_connections: int) -> None:
        inner = require("httpx_aiohttp", "aiohttp", feature="AiohttpTransport")
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
        )
        self._inner: httpx.AsyncBaseTransport = inner.AiohttpTransport(limits=limits)
        self.max_connections = max_connections

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; every network failure is an ``httpx.TransportError``."""
        try:
            response = await self._inner.handle_async_request(request)
        except ValueError as exc:
            # aiohttp refuses some requests with a bare ValueError before
            # sending (an Authorization header next to credentials in the URL,
            # e.g. after a redirect to http://user:pw@host/): a request that
            # cannot be made is httpx's LocalProtocolError, which every caller
            # already handles.
            raise httpx.LocalProtocolError(
                f"aiohttp refused the request: {exc}", request=request
            ) from exc
        except aiohttp_failures() as exc:
            mapped = map_aiohttp_error(exc, request)
            if mapped is None:
                raise
            raise mapped from origin_of_error(exc)
        response.stream = _MappedStream(response.stream, request)
        return response

    async def aclose(self) -> None:
        """Close the aiohttp session and its connections."""
        await self._inner.aclose()

    def __repr__(self) -> str:
        return "AiohttpTransport()"


class _MappedStream(httpx.AsyncByteStream):
    """A response body whose read errors are re-mapped like the request's."""

    __slots__ = ("_inner", "_request")

    def __init__(self, inner: Any, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except aiohttp_failures() as exc:
            mapped = map_aiohttp_error(exc, self._request)
            if mapped is None:
                raise
            raise mapped from origin_of_error(exc)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except aiohttp_failures() as exc:
            mapped = map_aiohttp_error(exc, self._request)
            if mapped is None:
                raise
            raise mapped from origin_of_error(exc)
