"""
What aiohttp's exceptions prove, in httpx's vocabulary.

The session decides whether a failed request may be sent again from the httpx
exception type: only ``ConnectError``, ``ConnectTimeout`` and ``PoolTimeout``
prove a request never left. aiohttp says the same things with other types, and
httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` (a server that hung
up after reading the request included) to ``ConnectTimeout``: a dropped submit
would be re-sent and billed twice. Both aiohttp paths (`AiohttpBackend` and the
`AiohttpTransport` under downloads) therefore map aiohttp's exceptions here, by
what they prove: no connection (``ConnectError`` / ``ConnectTimeout``), a
timeout while waiting for the answer (``ReadTimeout``), a hang-up
(``RemoteProtocolError``, httpx's own type and wording for it), anything else on
the wire (``ReadError``).

Imported only once aiohttp is in use: this module imports aiohttp lazily too.
"""

from __future__ import annotations

import asyncio
import functools

import httpx

__all__ = ["aiohttp_failures", "map_aiohttp_error", "origin_of_error"]


@functools.cache
def aiohttp_failures() -> tuple[type[BaseException], ...]:
    """What an aiohttp request may raise for a network failure."""
    import aiohttp

    return (httpx.HTTPError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def origin_of_error(exc: BaseException) -> BaseException:
    """The aiohttp exception behind one httpx-aiohttp has already mapped."""
    cause = exc.__cause__
    if isinstance(exc, httpx.HTTPError) and cause is not None:
        return cause
    return exc


def map_aiohttp_error(
    exc: BaseException, request: httpx.Request | None = None
) -> httpx.TransportError | None:
    """
    The httpx exception ``exc`` stands for, or None to re-raise it as is (an
    httpx error of httpx's own making).

    ``request`` is attached when there is one (the httpx transport); the
    backend builds no httpx request, and its errors carry none.
    """
    origin = origin_of_error(exc)
    mapped = _classify(origin)
    if mapped is None:
        return None
    error_type, message = mapped
    return error_type(message or str(origin) or type(origin).__name__, request=request)


def _classify(origin: BaseException) -> tuple[type[httpx.TransportError], str] | None:
    import aiohttp

    # Most specific first: several aiohttp types are also OSError / TimeoutError.
    if isinstance(origin, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout, ""  # no connection was made: never sent
    if isinstance(origin, aiohttp.ClientConnectorError):
        return httpx.ConnectError, ""  # refused, DNS, TLS handshake: never sent
    if isinstance(origin, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout, ""  # sent, and no answer in time
    if isinstance(origin, aiohttp.ServerDisconnectedError):
        # httpx's own type and wording for a peer that hung up mid-exchange.
        return (
            httpx.RemoteProtocolError,
            "Server disconnected without sending a response.",
        )
    if isinstance(origin, aiohttp.ClientHttpProxyError):
        return httpx.ProxyError, ""
    if isinstance(origin, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError, ""  # a malformed status line or header
    if isinstance(origin, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol, ""
    if isinstance(origin, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        # A truncated body, a reset, a failed write: on the wire, perhaps after
        # the request went out, so never "provably unsent".
        return httpx.ReadError, ""
    return None
