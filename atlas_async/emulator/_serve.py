"""
The three ways to run the emulator.

* `Emulator`: in-process. ``emulator.transport`` is an httpx transport (no
  socket at all), ``emulator.app`` the ASGI app; pair it with ``clock`` and
  ``sleep`` from a `FakeClock` and tests never wait for real time.
* `serve`: a real loopback socket inside the running asyncio loop. uvicorn runs
  as a task of the caller's loop (``httptools`` when installed, else ``h11``),
  with no signal handlers of its own, no logging configuration and no
  websockets; leaving the block stops it and awaits the task, so nothing leaks.
* `run_emulator`: blocking, for the CLI and ``python -m atlas_async.emulator``:
  its own event loop, SIGINT/SIGTERM stop it cleanly, and it returns normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import attrs
import httpx
import uvicorn

from ._adapters import EmulatorApp, EmulatorTransport, Sleep
from ._config import EmulatorConfig
from ._handler import EmulatorCore
from ._state import PredictionRecord
from ._stats import EmulatorStats

__all__ = ["Emulator", "RunningEmulator", "run_emulator", "serve"]

IN_PROCESS_BASE_URL = "http://127.0.0.1/api/v1"


class Emulator:
    """
    A local Atlas Cloud, in-process.

    Example::

        emulator = Emulator(EmulatorConfig(time_scale=100))
        async with httpx.AsyncClient(
            transport=emulator.transport, base_url=emulator.base_url
        ) as http:
            ...

    Args:
        config: the configuration (defaults: real latencies, no faults).
        clock: returns clock seconds; pass ``FakeClock.now`` to drive time.
        sleep: waits out slow answers; pass ``FakeClock.sleep`` with a FakeClock.

    Attributes:
        config: the configuration.
        stats: the live counters (`EmulatorStats`; read ``stats.snapshot()``).
        app: the ASGI application.
        transport: an ``httpx.AsyncBaseTransport`` answering from this emulator.
        base_url: the API base for in-process use (``http://127.0.0.1/api/v1``);
            with `transport` no socket is ever opened.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self._core = EmulatorCore(self.config, clock)
        self._sleep: Sleep = sleep if sleep is not None else anyio.sleep
        self.stats: EmulatorStats = self._core.stats
        self.app = EmulatorApp(self._core, self._sleep)
        self.transport = EmulatorTransport(self._core, self._sleep)
        self.base_url = IN_PROCESS_BASE_URL

    def transport_from(self, client_host: str) -> EmulatorTransport:
        """Return a transport whose requests appear to come from ``client_host``."""
        return EmulatorTransport(self._core, self._sleep, client_host=client_host)

    def client(self, api_key: str = "test-key", **kwargs: object) -> httpx.AsyncClient:
        """
        Return a plain ``httpx.AsyncClient`` wired to this emulator with a key.

        Extra keyword arguments go to ``httpx.AsyncClient``.
        """
        return httpx.AsyncClient(
            transport=self.transport,
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            **kwargs,  # type: ignore[arg-type]
        )

    def prediction(self, prediction_id: str) -> PredictionRecord | None:
        """Return the emulator's record of a prediction (its decided future)."""
        return self._core.store.predictions.get(prediction_id)

    def reset(self, *, state: bool = False) -> None:
        """Zero the stats and rate limits; with ``state``, forget all predictions."""
        self._core.reset(state=state)

    def __repr__(self) -> str:
        return (
            f"Emulator(seed={self.config.seed}, time_scale={self.config.time_scale:g})"
        )


@attrs.frozen
class RunningEmulator:
    """
    An emulator serving on a loopback socket (what `serve` yields).

    Attributes:
        emulator: the in-process `Emulator` behind the socket.
        host: the address it listens on.
        port: the port it listens on.
        base_url: ``http://host:port/api/v1``.
    """

    emulator: Emulator
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """The API base URL, ending in ``/api/v1``."""
        return f"{self.origin}/api/v1"

    @property
    def origin(self) -> str:
        """``http://host:port``, where ``/files/...`` and ``/_emulator/...`` live."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def stats(self) -> EmulatorStats:
        """The live counters."""
        return self.emulator.stats


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


def _uvicorn_config(app: EmulatorApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_http_implementation(),
        ws="none",
        lifespan="off",
        loop="none",
        log_config=None,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
        backlog=4096,
        timeout_graceful_shutdown=2,
    )


@contextlib.asynccontextmanager
async def serve(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep | None = None,
) -> AsyncIterator[RunningEmulator]:
    """
    Serve an emulator on a real socket for the duration of an ``async with``.

    Example::

        async with serve(EmulatorConfig(time_scale=100)) as emu:
            async with httpx.AsyncClient(base_url=emu.base_url) as http:
                ...
            print(emu.stats.snapshot().polls)

    Args:
        config: the configuration.
        host: the address to listen on; keep it loopback.
        port: the port; 0 picks a free one (read ``emu.port``).
        clock: as for `Emulator`.
        sleep: as for `Emulator`.

    Raises:
        OSError: if the address cannot be bound.
    """
    emulator = Emulator(config, clock=clock, sleep=sleep)
    # Bind here rather than in uvicorn, which answers a bind error with
    # sys.exit() from inside its task (a SystemExit that escapes the loop).
    listener = _bind(host, port)
    server = _Server(_uvicorn_config(emulator.app, host, port))
    task = asyncio.create_task(server.serve(sockets=[listener]), name="atlas-emulator")
    try:
        await server.startup_done.wait()
        if not server.started:  # pragma: no cover - defensive: we bind ourselves
            await task  # re-raises what stopped it
            raise OSError(f"the emulator could not start on {host}:{port}")
        bound = listener.getsockname()
        yield RunningEmulator(emulator=emulator, host=host, port=int(bound[1]))
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


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 8787,
    config: EmulatorConfig | None = None,
    *,
    on_ready: Callable[[RunningEmulator], None] | None = None,
) -> None:
    """
    Serve an emulator until SIGINT or SIGTERM, then return normally.

    Args:
        host: the address to listen on.
        port: the port (0 picks one; ``on_ready`` learns which).
        config: the configuration.
        on_ready: called once the socket listens, e.g. to print the URL.

    Raises:
        OSError: if the address cannot be bound.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            async with serve(config, host=host, port=port) as running:
                if on_ready is not None:
                    on_ready(running)
                await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    asyncio.run(main())
