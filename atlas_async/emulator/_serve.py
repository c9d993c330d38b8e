"""
The three ways to run the emulator.

* `Emulator`: in-process. ``emulator.transport`` is an httpx transport (no
  socket at all), ``emulator.app`` the ASGI app; pair it with ``clock`` and
  ``sleep`` from a `FakeClock` and tests never wait for real time. Webhooks
  are sent only inside ``async with emulator:``, which runs the delivery loop.
* `serve`: a real loopback socket inside the running asyncio loop. uvicorn runs
  as a task of the caller's loop (``httptools`` when installed, else ``h11``),
  with no signal handlers of its own, no logging configuration and no
  websockets; it also runs the webhook delivery loop. Leaving the block stops
  both and awaits them, so nothing leaks.
* `run_emulator`: blocking, for the CLI and ``python -m atlas_async.emulator``:
  its own event loop, SIGINT/SIGTERM stop it cleanly, and it returns normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType

import anyio
import attrs
import httpx
import sniffio

from ._adapters import EmulatorApp, EmulatorTransport, Sleep
from ._config import EmulatorConfig
from ._files import Upload
from ._handler import JWKS_PATH, EmulatorCore
from ._signing import WebhookSigning
from ._state import PredictionRecord
from ._stats import EmulatorStats
from ._uvicorn import serve_asgi
from ._webhooks import WebhookSender, http_sender

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

    Predictions submitted with ``webhook_url`` get a signed delivery when they
    end, sent by a loop that runs inside ``async with emulator:`` (`serve` enters
    it for you); outside it, deliveries wait in the queue::

        async with Emulator(config, webhook_sender=http_sender(app_client)) as emu:
            ...

    Args:
        config: the configuration (defaults: real latencies, no faults).
        clock: returns clock seconds; pass ``FakeClock.now`` to drive time.
        sleep: waits out slow answers and webhook retries; pass
            ``FakeClock.sleep`` with a FakeClock.
        signer: the webhook signing key (default: a fresh `SigningKey` per
            emulator); any `WebhookSigning` works.
        webhook_sender: sends one webhook POST; by default an
            ``httpx.AsyncClient`` with ``config.webhook_timeout``, opened by
            ``async with``.

    Attributes:
        config: the configuration.
        stats: the live counters (`EmulatorStats`; read ``stats.snapshot()``).
        app: the ASGI application.
        transport: an ``httpx.AsyncBaseTransport`` answering from this emulator.
        base_url: the API base for in-process use (``http://127.0.0.1/api/v1``);
            with `transport` no socket is ever opened.
        signer: the webhook signing key; its public half is served at
            ``GET /api/v1/webhooks/jwks.json``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
        signer: WebhookSigning | None = None,
        webhook_sender: WebhookSender | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self._core = EmulatorCore(self.config, clock, signer=signer)
        self._sleep: Sleep = sleep if sleep is not None else anyio.sleep
        self._webhook_sender = webhook_sender
        self._running: contextlib.AsyncExitStack | None = None
        self.stats: EmulatorStats = self._core.stats
        self.signer: WebhookSigning = self._core.signer
        self.app = EmulatorApp(self._core, self._sleep)
        self.transport = EmulatorTransport(self._core, self._sleep)
        self.base_url = IN_PROCESS_BASE_URL

    @property
    def jwks_url(self) -> str:
        """Where the webhook key set is served (under `base_url`)."""
        return _jwks_url(self.base_url)

    @property
    def pending_webhooks(self) -> int:
        """Webhook deliveries waiting for their next attempt."""
        return self._core.webhooks.pending

    async def __aenter__(self) -> Emulator:
        """Start the webhook delivery loop (asyncio or trio)."""
        if self._running is not None:
            raise RuntimeError("this Emulator is running already")
        stack = contextlib.AsyncExitStack()
        send = self._webhook_sender
        if send is None:
            http = httpx.AsyncClient(timeout=self.config.webhook_timeout)
            send = http_sender(await stack.enter_async_context(http))
        run = self._core.webhooks.run
        if sniffio.current_async_library() == "asyncio":
            # A plain task rather than a task group: pytest-asyncio enters and
            # exits an async fixture in two different tasks, which a task
            # group's cancel scope forbids.
            task = asyncio.create_task(
                run(send, self._sleep), name="atlas-emulator-webhooks"
            )
            stack.push_async_callback(_cancel_and_wait, task)
        else:
            task_group = await stack.enter_async_context(anyio.create_task_group())
            await task_group.start(run, send, self._sleep)
            stack.callback(task_group.cancel_scope.cancel)
        self._running = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the delivery loop; attempts in flight are abandoned."""
        stack, self._running = self._running, None
        if stack is not None:
            await stack.aclose()

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

    @property
    def uploads(self) -> Mapping[str, Upload]:
        """Every stored upload, by the name its URL ends in."""
        return self._core.store.uploads

    def prediction(self, prediction_id: str) -> PredictionRecord | None:
        """Return the emulator's record of a prediction (its decided future)."""
        return self._core.store.predictions.get(prediction_id)

    def reset(self, *, state: bool = False) -> None:
        """Zero the stats and rate limits; with ``state``, forget all predictions."""
        self._core.reset(state=state)

    def close(self) -> None:
        """
        Close the state file (``EmulatorConfig.state``) and remove the temporary
        upload folder, if any. `serve` does this when its block ends; an
        in-process emulator with a state file should be closed when done.
        """
        self._core.close()

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

    @property
    def jwks_url(self) -> str:
        """The webhook key set's URL, ``<base_url>/webhooks/jwks.json``."""
        return _jwks_url(self.base_url)


def _jwks_url(base_url: str) -> str:
    return base_url.removesuffix("/api/v1") + JWKS_PATH


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    # The loop only ends by cancellation; anything else it raised is a bug,
    # and awaiting the task raises it here.
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def serve(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep | None = None,
    signer: WebhookSigning | None = None,
    webhook_sender: WebhookSender | None = None,
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
        signer: as for `Emulator`.
        webhook_sender: as for `Emulator` (default: real HTTP POSTs).

    With ``config.state`` set, the state file is read before the socket listens
    and closed when the block ends.

    Raises:
        OSError: if the address cannot be bound.
    """
    emulator = Emulator(
        config, clock=clock, sleep=sleep, signer=signer, webhook_sender=webhook_sender
    )
    try:
        async with (
            emulator,  # the webhook loop starts before the server and stops after it
            serve_asgi(
                emulator.app, host=host, port=port, name="atlas-emulator"
            ) as bound,
        ):
            yield RunningEmulator(emulator=emulator, host=host, port=bound)
    finally:
        emulator.close()


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
