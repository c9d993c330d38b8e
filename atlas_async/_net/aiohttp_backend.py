"""
`AiohttpBackend`: the session's requests straight through aiohttp.

The hot path of a client under asyncio. A poll is one ``session.request`` with
headers the session prepared once, its body read by `BodyReader` as it comes off
the wire (aiohttp's own decompression is off, so the cap counts decoded bytes),
and the connection released for the next poll. No httpx object is built; only
a failure builds one, an httpx exception saying what it proves
(``_net.aiohttp_errors``).

aiohttp is imported when the backend opens, never at ``import atlas_async``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from .._core.config import Timeouts
from .._core.errors import ClientClosedError
from .._wire.answer import BodyReader, BodyRefusedError
from .aiohttp_errors import aiohttp_failures, map_aiohttp_error, origin_of_error
from .exchange import CLOSE_TIMEOUT, Progress, RawAnswer

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpBackend"]

# Answers up to this long (a poll's is under 1 KiB) are read in one call; the
# read deadline then spans the whole of such a body.
_ONE_READ = 64 * 1024


class AiohttpBackend:
    """
    Sends the session's requests with one ``aiohttp.ClientSession`` it owns.

    Asyncio only; build it inside the running event loop.

    Example::

        backend = AiohttpBackend(max_connections=16, timeouts=Timeouts())
        answer = await backend.exchange("GET", url, headers, None, max_bytes=1 << 20)
        await backend.aclose()

    Args:
        max_connections: the connection pool's size (the session's limiter
            keeps requests below it, so the pool never queues).
        timeouts: connect and read timeouts per request (``write`` and
            ``pool`` have no aiohttp counterpart: the session's overall
            deadline bounds a slow send).
        https: verify TLS with httpx's certificate bundle (certifi), as the
            httpx backend does; loaded only when the API is on https.
        read_by_caller: the caller keeps ``timeouts.read`` (its `DeadlineWheel`,
            told of each piece through ``progress``); aiohttp sets none.
    """

    __slots__ = ("_session",)

    name = "aiohttp"

    def __init__(
        self,
        *,
        max_connections: int,
        timeouts: Timeouts,
        https: bool,
        read_by_caller: bool = False,
    ) -> None:
        import aiohttp

        ssl: Any = httpx.create_ssl_context() if https else True
        self._session: aiohttp.ClientSession = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, ssl=ssl),
            # The body reader undoes Content-Encoding itself, in bounded steps.
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=timeouts.pool,
                sock_connect=timeouts.connect,
                # Kept by the caller's deadline wheel when it says so: aiohttp
                # re-arms a loop timer for every piece of every answer.
                sock_read=None if read_by_caller else timeouts.read,
            ),
            # The API sets no cookies the client needs; a jar costs per answer.
            cookie_jar=aiohttp.DummyCookieJar(),
            # The session sends its own User-Agent and Accept-Encoding.
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

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
        """One request and its whole answer, read up to the cap."""
        session = self._session
        if session.closed:
            raise ClientClosedError("the HTTP client is closed")
        try:
            response = await session.request(
                method, url, headers=headers, data=body, allow_redirects=False
            )
        except ValueError as exc:
            # aiohttp refuses some requests with a bare ValueError before
            # sending (an Authorization header beside credentials in the URL):
            # a request that cannot be made, never sent.
            raise httpx.LocalProtocolError(
                f"aiohttp refused the request: {exc}"
            ) from exc
        except aiohttp_failures() as exc:
            mapped = map_aiohttp_error(exc)
            if mapped is None:
                raise
            raise mapped from origin_of_error(exc)
        if progress is not None:
            progress.progress()
        try:
            response_headers = response.headers
            encoding = response_headers.get("Content-Encoding")
            length = response_headers.get("Content-Length")
            if (
                encoding is None
                and length is not None
                and length.isdigit()
                and int(length) <= min(max_bytes, _ONE_READ)
            ):
                # A poll's answer: short, its length announced and under the
                # cap, so one read takes it whole (aiohttp reads no further
                # than the announced length).
                data = await response.read()
            else:
                reader = BodyReader(encoding, max_bytes)
                reader.announce(length)
                content = response.content
                while chunk := await content.readany():
                    reader.feed(chunk)
                    if progress is not None:
                        progress.progress()
                data = reader.finish()
        except BaseException as exc:
            if isinstance(exc, BodyRefusedError):
                exc.status_code = response.status
            # Dropping a half-read answer's connection is synchronous here.
            response.close()
            mapped = (
                map_aiohttp_error(exc) if isinstance(exc, aiohttp_failures()) else None
            )
            if mapped is None:
                raise
            raise mapped from origin_of_error(exc)
        response.release()
        return RawAnswer(response.status, response_headers, data)

    async def aclose(self) -> None:
        """Close the aiohttp session and its connections."""
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await self._session.close()

    def __repr__(self) -> str:
        return "AiohttpBackend()"
