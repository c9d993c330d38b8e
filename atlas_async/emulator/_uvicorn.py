"""
Serve an ASGI app with uvicorn as a task of the running asyncio loop.

`serve_asgi` is what `serve` runs the emulator with, and what the tests run
other apps with (the FastAPI example): uvicorn without its signal handlers (the
host program owns its signals), without its 0.1 s polling main loop (leaving
the block wakes it at once), without logging configuration or websockets, on a
socket bound here (uvicorn answers a bind error with ``sys.exit()`` from inside
its task, a SystemExit that would escape the loop). Leaving the block stops the
server and awaits its task, so no task or socket outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

try:
    import uvicorn
except ModuleNotFoundError as exc:  # the emulator extra is not installed
    raise ModuleNotFoundError(
        "the emulator needs uvicorn, which is not installed:"
        " pip install 'atlas-async[emulator]'",
        name=exc.name,
    ) from exc

__all__ = ["serve_asgi"]


class _Server(uvicorn.Server):
    """
    uvicorn without its signal capture (the host program owns its signals) and
    without its 0.1 s polling main loop (`stop` wakes it at once).
    """

    _stopping: asyncio.Event | None = None

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:
            # uvicorn exits the process when the app's lifespan startup fails;
            # here that only stops this server (serve_asgi then raises).
            self.should_exit = True
        finally:
            self.startup_done.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        self._stopping = asyncio.Event()
        if not self.should_exit:
            await self._stopping.wait()

    def stop(self) -> None:
        self.should_exit = True
        if self._stopping is not None:
            self._stopping.set()


def _http_implementation() -> str:
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def _uvicorn_config(app: Any, host: str, port: int, lifespan: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_http_implementation(),
        ws="none",
        lifespan="on" if lifespan else "off",
        loop="none",
        log_config=None,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
        backlog=4096,
        timeout_graceful_shutdown=2,
        # Longer than any client's idle expiry (httpx: 5 s, the same as uvicorn's
        # default): a server that closes first races the client's next request
        # on that connection, which then fails with a ReadError.
        timeout_keep_alive=65,
    )


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    lifespan: bool = False,
    name: str = "asgi-server",
) -> AsyncIterator[int]:
    """
    Serve ``app`` on ``host:port`` for the duration of an ``async with``.

    Yields the bound port (``port=0`` picks a free one). With ``lifespan``,
    uvicorn runs the app's startup before it listens and its shutdown on exit.

    Raises:
        OSError: if the address cannot be bound.
        RuntimeError: if the server did not start (e.g. the lifespan failed).
    """
    listener = _bind(host, port)
    server = _Server(_uvicorn_config(app, host, port, lifespan))
    task = asyncio.create_task(server.serve(sockets=[listener]), name=name)
    try:
        await server.startup_done.wait()
        if not server.started:
            await task  # re-raises what stopped it, if anything did
            raise RuntimeError(f"the server could not start on {host}:{port}")
        yield int(listener.getsockname()[1])
    finally:
        server.stop()
        if not task.done():
            await task
        listener.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this. Without it, Nagle's algorithm and the
        # client's delayed ACK hold each keep-alive answer ~40 ms (700 polls/s).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        reason = exc.strerror or str(exc)
        raise OSError(
            f"the emulator could not listen on {host}:{port}: {reason}"
        ) from exc
    return listener
