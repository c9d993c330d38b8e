"""
A hostile HTTP/1.1 server on raw asyncio sockets, for the SDK's trust tests.

No framework: a framework would refuse to send most of what this server is for
(bodies of hundreds of MB, compression bombs, one byte a second, a redirect to
``user:pw@host``). Each connection carries one request and one answer
(``Connection: close``), so every answer's bytes are counted on their own:
`Connection.bytes_sent` is what the server managed to hand to the socket before
the client hung up, an upper bound on what the client read.

Nothing large is ever built in memory: huge bodies are one reused chunk written
again and again; bombs are one compressed block (1 MiB of zeros, byte-aligned
after a full flush, so copies of it make a valid stream) written again and again.

Example::

    server = HostileServer()
    server.route("GET", "/api/v1/model/prediction/p1", huge_answer(400 * MiB))
    async with server:
        ...  # AtlasClient(base_url=server.base_url, ...)
    assert server.connections[0].bytes_sent < 50 * MiB
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType

import anyio
import attrs

__all__ = [
    "GiB",
    "KiB",
    "MiB",
    "Connection",
    "Handler",
    "HostileServer",
    "Request",
    "bomb_answer",
    "echo_key_answer",
    "huge_answer",
    "json_answer",
    "raw_answer",
    "redirect_answer",
    "sequence",
    "trickle_answer",
]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@attrs.frozen
class Request:
    """One request as the server read it; header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@attrs.define(eq=False)
class Connection:
    """
    One connection's answer, as far as it went.

    Attributes:
        request: what the client asked, once read.
        bytes_sent: bytes handed to the socket (headers included) before the
            end or the client's hang-up.
        hung_up: the client closed the connection before the answer ended.
        done: the handler has returned.
    """

    writer: asyncio.StreamWriter = attrs.field(repr=False)
    request: Request | None = None
    bytes_sent: int = 0
    hung_up: bool = False
    done: bool = False

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False (and ``hung_up``) once the client is gone."""
        if self.hung_up:
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.hung_up = True
            return False
        self.bytes_sent += len(data)
        return True

    async def head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        *,
        length: int | None = None,
    ) -> bool:
        """Send the status line and headers (``Content-Length`` when given)."""
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        lines.append("Connection: close")
        return await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


Handler = Callable[[Request, Connection], Awaitable[None]]
"""Answers one request on its connection."""


async def _not_routed(request: Request, conn: Connection) -> None:
    await json_answer({"code": 404, "msg": "not found"}, status=404)(request, conn)


class HostileServer:
    """
    Serves whatever its routes say, on 127.0.0.1 at a free port.

    Routes map ``(method, path)`` to a `Handler`; a path ending in ``*``
    matches by prefix. Use it as an async context manager inside the test's
    event loop.

    Attributes:
        connections: every connection so far, in order.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Handler] = {}
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections: list[Connection] = []
        self.port = 0

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` with ``handler`` (the last route set wins)."""
        self._routes[(method.upper(), path)] = handler

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base an `AtlasClient` is given: ``<origin>/api/v1``."""
        return f"{self.origin}/api/v1"

    def requests(
        self, method: str | None = None, path: str | None = None
    ) -> list[Request]:
        """The requests read so far, optionally only one method and path."""
        return [
            c.request
            for c in self.connections
            if c.request is not None
            and (method is None or c.request.method == method)
            and (path is None or c.request.path == path)
        ]

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def settled(self, timeout: float = 30.0) -> None:
        """Wait until every connection's handler has returned (a safety bound)."""
        with anyio.fail_after(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Connection(writer)
        self.connections.append(conn)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            conn.request = request
            handler = self._handler(request)
            await handler(request, conn)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            conn.hung_up = True
        finally:
            conn.done = True
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            self._tasks.discard(task)

    def _handler(self, request: Request) -> Handler:
        exact = self._routes.get((request.method, request.path))
        if exact is not None:
            return exact
        for (method, path), handler in self._routes.items():
            if (
                method == request.method
                and path.endswith("*")
                and request.path.startswith(path[:-1])
            ):
                return handler
        return _not_routed


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    return Request(method.upper(), target.split("?", 1)[0], headers, body)


# -- answers -------------------------------------------------------------------


def raw_answer(
    status: int, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()
) -> Handler:
    """Any status, headers and body, as given."""

    async def handle(request: Request, conn: Connection) -> None:
        if await conn.head(status, headers, length=len(body)):
            await conn.send(body)

    return handle


def json_answer(
    body: object, *, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> Handler:
    """A JSON body (a value to dump, or bytes sent as they are)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw_answer(status, data, [("Content-Type", "application/json"), *headers])


def huge_answer(
    size: int,
    *,
    status: int = 200,
    chunked: bool = False,
    chunk: int = 256 * KiB,
) -> Handler:
    """
    ``size`` bytes of JSON-looking whitespace, streamed from one reused chunk.

    ``chunked=True`` sends no ``Content-Length`` (chunked transfer coding), so a
    client cannot refuse it from the headers alone.
    """
    piece = b" " * chunk
    framed = f"{chunk:x}\r\n".encode() + piece + b"\r\n"

    async def handle(request: Request, conn: Connection) -> None:
        headers = [("Content-Type", "application/json")]
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        if not await conn.head(status, headers, length=None if chunked else size):
            return
        left = size
        while left >= chunk:
            if not await conn.send(framed if chunked else piece):
                return
            left -= chunk
        tail = b" " * left
        if chunked:
            tail = (f"{left:x}\r\n".encode() + tail + b"\r\n" if left else b"") + (
                b"0\r\n\r\n"
            )
        await conn.send(tail)

    return handle


def _zeros_block(wbits: int) -> bytes:
    # 1 MiB of zeros, compressed as the first block of a stream and ended with
    # a full flush: byte-aligned, no reference before it, not the final block.
    # Copies of it one after another are a valid stream of that many MiB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(b"\0" * MiB) + compressor.flush(zlib.Z_FULL_FLUSH)


_RAW_BLOCK = _zeros_block(-15)


def bomb_answer(
    encoding: str,
    decoded_size: int,
    *,
    status: int = 200,
    content_type: str = "application/json",
) -> Handler:
    """
    A ``Content-Encoding`` bomb: ``decoded_size`` bytes of zeros (whole MiB),
    sent compressed (``gzip``, ``deflate`` or ``br``), about 1 KB per MiB for
    gzip and deflate.

    The stream ends properly (final block, checksum and size), so a bomb small
    enough to be allowed decodes to exactly ``decoded_size`` zeros.
    """
    mib = max(1, decoded_size // MiB)
    if encoding in ("gzip", "deflate"):
        header = (
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
            if encoding == "gzip"
            else b"\x78\xda"
        )
        final = b"\x03\x00"  # an empty final block with fixed codes
        crc, adler = 0, 1
        # The checksum is only reached by a client that decodes it all: worth
        # computing only for bombs small enough to be allowed.
        if mib <= 64:
            zero = b"\0" * MiB
            for _ in range(mib):
                crc = zlib.crc32(zero, crc)
                adler = zlib.adler32(zero, adler)
        trailer = (
            struct.pack("<II", crc, (mib * MiB) & 0xFFFFFFFF)
            if encoding == "gzip"
            else struct.pack(">I", adler)
        )
        pieces: Callable[[], Iterable[bytes]] = lambda: _repeat(  # noqa: E731
            header, _RAW_BLOCK, mib, final + trailer
        )
    elif encoding == "br":
        # The test skips br without brotli installed.
        compressed = _brotli_zeros(importlib.import_module("brotli"), mib)
        pieces = lambda: [compressed]  # noqa: E731
    else:
        raise ValueError(f"no bomb for {encoding!r}")

    async def handle(request: Request, conn: Connection) -> None:
        headers = [("Content-Type", content_type), ("Content-Encoding", encoding)]
        if not await conn.head(status, [*headers, ("Transfer-Encoding", "chunked")]):
            return
        for piece in pieces():
            if not await conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n"):
                return
        await conn.send(b"0\r\n\r\n")

    return handle


def _repeat(head: bytes, block: bytes, count: int, tail: bytes) -> Iterable[bytes]:
    yield head
    batch = 64
    while count > 0:
        n = min(batch, count)
        yield block * n
        count -= n
    yield tail


_BROTLI_CACHE: dict[int, bytes] = {}


def _brotli_zeros(brotli: object, mib: int) -> bytes:
    cached = _BROTLI_CACHE.get(mib)
    if cached is None:
        compressor = brotli.Compressor(quality=5)  # type: ignore[attr-defined]
        zero = b"\0" * MiB
        parts = [compressor.process(zero) for _ in range(mib)]
        parts.append(compressor.finish())
        cached = _BROTLI_CACHE[mib] = b"".join(parts)
    return cached


def trickle_answer(
    body: bytes, *, interval: float, status: int = 200, length: int | None = None
) -> Handler:
    """
    Headers at once, then ``body`` one byte every ``interval`` seconds (real
    time), announcing ``length`` bytes (default ``len(body)``).
    """

    async def handle(request: Request, conn: Connection) -> None:
        announced = len(body) if length is None else length
        headers = [("Content-Type", "application/json")]
        if not await conn.head(status, headers, length=announced):
            return
        for byte in body:
            await asyncio.sleep(interval)
            if not await conn.send(bytes([byte])):
                return

    return handle


def redirect_answer(location: str, *, status: int = 302) -> Handler:
    """A redirect to ``location``, sent as it is (credentials, odd schemes...)."""
    return raw_answer(status, b"", [("Location", location)])


def echo_key_answer(*, status: int = 200) -> Handler:
    """A non-JSON page that echoes the request's ``Authorization`` header."""

    async def handle(request: Request, conn: Connection) -> None:
        seen = request.headers.get("authorization", "")
        body = f"<html>proxy says hello to {seen}</html>".encode()
        await raw_answer(status, body, [("Content-Type", "text/html")])(request, conn)

    return handle


def sequence(*handlers: Handler) -> Handler:
    """The n-th request gets the n-th handler; the last one repeats."""
    calls = 0

    async def handle(request: Request, conn: Connection) -> None:
        nonlocal calls
        handler = handlers[min(calls, len(handlers) - 1)]
        calls += 1
        await handler(request, conn)

    return handle
