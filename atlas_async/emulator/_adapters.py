"""
Two thin adapters around `EmulatorCore.handle`: a raw ASGI app and an httpx
transport.

**Raw ASGI, not starlette routing.** The hot path (one poll) is a prefix test,
a dict lookup and one ``json`` encode; a router and request objects would cost
more than all of that together. starlette is not needed at all.

**Dropped connections.** The handler can ask for "close without answering":

* under the emulator's own uvicorn server, the app aborts the TCP connection
  (``transport.abort()``, reached through uvicorn's ``send`` callable), so the
  client sees exactly what a dying gateway produces: httpx raises
  ``RemoteProtocolError: Server disconnected without sending a response``;
* under any other ASGI server, it raises `ConnectionDroppedError` instead (httpx's
  own ``ASGITransport`` re-raises it to the caller);
* the in-process `EmulatorTransport` raises ``httpx.RemoteProtocolError`` with
  the same message, so code under test meets the same exception either way.

**Slow answers** wait with the ``sleep`` callable given to the emulator:
``anyio.sleep`` by default, or a test's ``FakeClock.sleep``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import httpx

from ._handler import EmulatorCore
from ._http import ConnectionDroppedError, Request, Response
from ._multipart import FormPart, TooLargeError

__all__ = ["EmulatorApp", "EmulatorTransport", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]
"""An async ``sleep(seconds)``, e.g. ``anyio.sleep`` or ``FakeClock.sleep``."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class EmulatorApp:
    """The emulator as an ASGI 3 application (HTTP and lifespan scopes)."""

    def __init__(self, core: EmulatorCore, sleep: Sleep) -> None:
        self._core = core
        self._sleep = sleep

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not part of the API
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        method, path = scope["method"], scope["path"]
        received = await receive_body(
            self._core, method, path, headers, _chunks(receive)
        )
        if received is None:  # the client went away
            return
        if isinstance(received, Response):
            await _answer(send, received, head=False)
            return
        body, form = received
        host = headers.get("host")
        if host is None:
            server = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        client = scope.get("client")
        request = Request(
            method,
            path,
            headers=headers,
            origin=f"{scope.get('scheme', 'http')}://{host}",
            body=body,
            query=scope.get("query_string", b"").decode("latin-1"),
            client_host=client[0] if client else None,
            form=form,
        )
        response = self._core.handle(request)
        if response.delay:
            await self._sleep(response.delay)
        if response.drop:
            await _drop(send)
            return
        await _answer(send, response, head=method == "HEAD")


class _DisconnectedError(Exception):
    """The client closed the connection before its body ended."""


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _DisconnectedError
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def receive_body(
    core: EmulatorCore,
    method: str,
    path: str,
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
) -> tuple[bytes, dict[str, FormPart] | None] | Response | None:
    """
    Read a request's body: ``(body, form)``, a 413 `Response`, or None when the
    client went away.

    An authenticated upload streams into a `FormReceiver` (files straight to
    disk, up to ``max_upload_bytes``); any other body is read into memory up to
    ``max_body_bytes``. A declared ``Content-Length`` over the limit is refused
    before anything is read.
    """
    config = core.config
    receiver = (
        core.form_receiver(headers)
        if core.accepts_upload(method, path, headers)
        else None
    )
    limit = config.max_upload_bytes if receiver is not None else config.max_body_bytes
    declared = headers.get("content-length") or ""
    if declared.isdigit() and int(declared) > limit:
        return core.too_large(method, path)
    try:
        if receiver is not None:
            try:
                async for chunk in chunks:
                    receiver.feed(chunk)
            except TooLargeError:
                return core.too_large(method, path)
            except BaseException:
                receiver.discard()
                raise
            return b"", receiver.finish()
        body = bytearray()
        async for chunk in chunks:
            body += chunk
            if len(body) > limit:
                return core.too_large(method, path)
        return bytes(body), None
    except _DisconnectedError:
        return None


_FILE_CHUNK = 1024 * 1024


async def _answer(send: Send, response: Response, *, head: bool) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": response.headers,
        }
    )
    if response.file is None or head:
        await send({"type": "http.response.body", "body": response.body})
        return
    with response.file.open("rb") as file:
        while chunk := file.read(_FILE_CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _body(request: httpx.Request) -> AsyncIterator[bytes]:
    stream = request.stream
    if isinstance(stream, httpx.AsyncByteStream):
        async for chunk in stream:
            yield chunk
    else:  # a body given as bytes or a plain iterable
        for chunk in stream:
            yield chunk


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_FILE_CHUNK):
            yield chunk


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _drop(send: Send) -> None:
    # uvicorn's send is a bound method of its RequestResponseCycle, which holds
    # the asyncio transport; there is no ASGI message for "abort".
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(cycle, "disconnected"):
        raise ConnectionDroppedError("the emulator dropped this connection on purpose")
    transport.abort()
    # uvicorn learns of the abort from connection_lost a loop turn later; until
    # it does, it would log "returned without starting response".
    for _ in range(10):
        if cycle.disconnected:
            return
        await asyncio.sleep(0)
    cycle.disconnected = True


class EmulatorTransport(httpx.AsyncBaseTransport):
    """
    An in-process httpx transport: requests go straight to the handler.

    Faster than ``httpx.ASGITransport`` (no ASGI messages, no task per request)
    and works under asyncio and trio alike. A dropped connection raises
    ``httpx.RemoteProtocolError``, as over a real socket.

    Args:
        core: the emulator's handler.
        sleep: waits out slow answers.
        client_host: the address requests appear to come from (loopback by
            default; another address makes ``/_emulator/*`` answer 403).
    """

    def __init__(
        self, core: EmulatorCore, sleep: Sleep, *, client_host: str = "127.0.0.1"
    ) -> None:
        self._core = core
        self._sleep = sleep
        self._client_host = client_host

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the emulator."""
        url = request.url
        received = await receive_body(
            self._core, request.method, url.path, request.headers, _body(request)
        )
        if received is None:  # pragma: no cover - an in-process body cannot vanish
            raise httpx.RemoteProtocolError("request body ended early", request=request)
        if isinstance(received, Response):
            return httpx.Response(
                received.status,
                headers=received.headers,
                content=received.body,
                request=request,
            )
        body, form = received
        port = f":{url.port}" if url.port is not None else ""
        emulated = Request(
            request.method,
            url.path,
            headers=request.headers,
            origin=f"{url.scheme}://{url.host}{port}",
            body=body,
            query=url.query.decode("latin-1"),
            client_host=self._client_host,
            form=form,
        )
        response = self._core.handle(emulated)
        if response.delay:
            await self._sleep(response.delay)
        if response.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if response.file is not None:
            return httpx.Response(
                response.status,
                headers=response.headers,
                content=_file_chunks(response.file),
                request=request,
            )
        return httpx.Response(
            response.status,
            headers=response.headers,
            content=response.body,
            request=request,
        )
