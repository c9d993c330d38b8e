"""The pluggable transport: which one is chosen, and what its failures mean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest

from atlas_async._client import AtlasClient
from atlas_async._core.errors import (
    ClientClosedError,
    ConfigurationError,
    SubmissionUnknownError,
    TransportError,
    UnexpectedResponseError,
)
from atlas_async._core.models import PredictionStatus
from atlas_async._core.policies import BackoffPolicy, FixedPolicy
from atlas_async._net import transport as _transport
from atlas_async._net.transport import AiohttpTransport, choose_transport
from atlas_async.emulator import EmulatorConfig, Faults, FaultTarget, serve

KEY = "sk-test-key-0123"
IMAGE = "google/nano-banana-2/text-to-image"
# The emulator runs 200-1000x faster than Atlas: poll and retry on that scale.
FAST = FixedPolicy(0.005)


#: Retry failed polls after milliseconds, not the default 1 s, 2 s, 4 s...
QUICK_RETRIES = BackoffPolicy(initial=0.005, cap=0.02)


class TestChoice:
    @pytest.mark.parametrize(
        ("option", "library", "installed", "expected"),
        [
            pytest.param("auto", "asyncio", True, "aiohttp", id="auto-asyncio"),
            pytest.param(None, "asyncio", True, "aiohttp", id="none-is-auto"),
            pytest.param("auto", "asyncio", False, "httpx", id="auto-no-extra"),
            pytest.param("auto", "trio", True, "httpx", id="auto-trio"),
            pytest.param("httpx", "asyncio", True, "httpx", id="httpx-asyncio"),
            pytest.param("httpx", "trio", True, "httpx", id="httpx-trio"),
            pytest.param("aiohttp", "asyncio", True, "aiohttp", id="aiohttp"),
        ],
    )
    def test_choice_follows_option_library_and_extra(
        self,
        monkeypatch: pytest.MonkeyPatch,
        option: str | None,
        library: str,
        installed: bool,
        expected: str,
    ) -> None:
        """auto takes aiohttp only under asyncio with the extra; names are obeyed."""
        monkeypatch.setattr(_transport, "aiohttp_installed", lambda: installed)
        assert choose_transport(option, library) == expected

    def test_aiohttp_under_trio_is_refused(self) -> None:
        """Asking for aiohttp under trio explains that it needs asyncio."""
        with pytest.raises(ConfigurationError, match="only under asyncio"):
            choose_transport("aiohttp", "trio")

    @pytest.mark.parametrize(
        "option",
        [
            pytest.param("curl", id="unknown-name"),
            pytest.param(42, id="not-a-transport"),
            pytest.param(httpx.AsyncClient, id="a-class"),
        ],
    )
    def test_bad_option_fails_when_the_client_is_built(self, option: object) -> None:
        """An unknown transport fails in the constructor, naming the choices."""
        with pytest.raises(ConfigurationError, match="'auto', 'httpx', 'aiohttp'"):
            AtlasClient(KEY, transport=option)  # type: ignore[arg-type]

    def test_aiohttp_without_the_extra_names_the_extra(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """transport='aiohttp' without aiohttp installed says what to install."""
        monkeypatch.setattr(_transport, "aiohttp_installed", lambda: False)
        with pytest.raises(ConfigurationError, match=r"atlas-async\[aiohttp\]"):
            AtlasClient(KEY, transport="aiohttp")

    def test_http_client_with_a_transport_name_is_refused(self) -> None:
        """An injected http_client cannot be combined with an explicit transport."""
        with pytest.raises(ConfigurationError, match="not both"):
            AtlasClient(KEY, http_client=httpx.AsyncClient(), transport="httpx")


class TestSelectionInTheClient:
    @pytest.mark.asyncio
    async def test_default_under_asyncio_is_aiohttp_with_a_pool_as_large_as_limit(
        self,
    ) -> None:
        """Under asyncio with the extra, the default client sends through aiohttp."""
        async with AtlasClient(KEY, max_concurrent_requests=7) as client:
            assert client.transport_name == "aiohttp"
        transport, name = _transport.build_transport("aiohttp", max_connections=7)
        assert isinstance(transport, AiohttpTransport)
        assert (name, transport.max_connections) == ("aiohttp", 7)

    @pytest.mark.asyncio
    async def test_httpx_by_name_keeps_httpx_pool_at_the_limit(self) -> None:
        """transport='httpx' builds httpx's pool with room for every request."""
        async with AtlasClient(
            KEY, transport="httpx", max_concurrent_requests=9
        ) as client:
            assert client.transport_name == "httpx"

    @pytest.mark.anyio
    @pytest.mark.parametrize("anyio_backend", ["trio"])
    async def test_default_under_trio_is_httpx(self, anyio_backend: str) -> None:
        """Under trio, auto falls back to httpx's own transport."""
        async with AtlasClient(KEY) as client:
            assert client.transport_name == "httpx"

    @pytest.mark.anyio
    @pytest.mark.parametrize("anyio_backend", ["trio"])
    async def test_aiohttp_by_name_under_trio_fails_on_enter(
        self, anyio_backend: str
    ) -> None:
        """Entering a client that asked for aiohttp under trio raises a clear error,
        and leaves the client closed, not half-open."""
        client = AtlasClient(KEY, transport="aiohttp")
        # The guard turns a regression (waiting on a started task) into a failure.
        with anyio.fail_after(5), pytest.raises(ConfigurationError, match="asyncio"):
            await client.__aenter__()
        assert "state=closed" in repr(client)
        with pytest.raises(ClientClosedError):
            await client.get_prediction("p1")

    @pytest.mark.asyncio
    async def test_injected_transport_and_client_are_reported(self) -> None:
        """A transport instance is used as given; an http_client keeps its own."""
        mock = httpx.MockTransport(lambda request: httpx.Response(204))
        async with AtlasClient(KEY, transport=mock) as client:
            assert client.transport_name == "custom"
        async with (
            httpx.AsyncClient() as http,
            AtlasClient(KEY, http_client=http) as client,
        ):
            assert client.transport_name == "injected"


# -- the aiohttp transport against real sockets --------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on a loopback port; yield the base URL."""

    async def wrapped(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request, then close without a word."""


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer with something that is not HTTP."""
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()


async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Promise 100 bytes of body, send 5, hang up."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
    await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Never answer (until the client gives up)."""
    await reader.read()


@pytest.mark.e2e
class TestAiohttpErrors:
    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("handler", "expected"),
        [
            pytest.param(hang_up, httpx.RemoteProtocolError, id="hang-up"),
            pytest.param(garbage, httpx.RemoteProtocolError, id="garbage"),
            pytest.param(truncated, httpx.ReadError, id="truncated-body"),
        ],
    )
    async def test_failures_after_sending_are_never_connect_errors(
        self, handler: Handler, expected: type[httpx.HTTPError]
    ) -> None:
        """A request that went out fails with a type that does not claim 'unsent'."""
        async with (
            raw_server(handler) as url,
            httpx.AsyncClient(transport=AiohttpTransport(max_connections=2)) as http,
        ):
            with pytest.raises(expected) as caught:
                await http.post(url, json={"model": "m"})
        assert not isinstance(
            caught.value, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
        )
        assert caught.value.request.method == "POST"

    @pytest.mark.asyncio
    async def test_silence_is_a_read_timeout(self) -> None:
        """No answer within the read timeout is httpx.ReadTimeout."""
        async with (
            raw_server(silent) as url,
            httpx.AsyncClient(
                transport=AiohttpTransport(max_connections=2),
                timeout=httpx.Timeout(5.0, read=0.05),
            ) as http,
        ):
            with pytest.raises(httpx.ReadTimeout):
                await http.get(url)

    @pytest.mark.asyncio
    async def test_refused_connection_is_a_connect_error(self) -> None:
        """Nobody listening is httpx.ConnectError: provably never sent."""
        async with raw_server(hang_up) as url:
            pass  # closed: the port refuses now
        async with httpx.AsyncClient(
            transport=AiohttpTransport(max_connections=2)
        ) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(url)


@pytest.mark.e2e
class TestAiohttpAgainstTheEmulator:
    @pytest.mark.asyncio
    async def test_generate_image_end_to_end(self) -> None:
        """Submit, poll and complete a prediction through aiohttp over a socket."""
        config = EmulatorConfig(time_scale=1000, seed=3)
        async with (
            serve(config) as emu,
            AtlasClient(
                KEY, base_url=emu.base_url, transport="aiohttp", poll=FAST
            ) as client,
        ):
            prediction = await client.generate_image(IMAGE, prompt="a fox")
            models = await client.list_models()
        assert client.transport_name == "aiohttp"
        assert prediction.status is PredictionStatus.COMPLETED
        assert prediction.outputs[0].startswith(emu.origin)
        assert models
        stats = emu.stats.snapshot()
        assert stats.predictions_created == 1
        assert stats.polls == client.statistics().polls

    @pytest.mark.asyncio
    async def test_dropped_submit_is_unknown_and_never_resent(self) -> None:
        """A submit whose connection drops raises SubmissionUnknownError, sent once."""
        faults = Faults(drop_rate=1.0, targets=[FaultTarget.SUBMIT])
        async with (
            serve(EmulatorConfig(faults=faults)) as emu,
            AtlasClient(KEY, base_url=emu.base_url, transport="aiohttp") as client,
        ):
            with pytest.raises(SubmissionUnknownError) as caught:
                await client.submit_image(IMAGE, prompt="a fox")
        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
        stats = emu.stats.snapshot()
        assert stats.predictions_created == 1
        assert stats.requests_by_endpoint == {"POST /api/v1/model/generateImage": 1}

    @pytest.mark.asyncio
    async def test_dropped_and_malformed_polls_are_retried(self) -> None:
        """Polls survive drops, 5xx and truncated bodies and still complete."""
        faults = Faults(
            drop_rate=0.3,
            server_error_rate=0.2,
            malformed_rate=0.2,
            targets=[FaultTarget.POLL],
        )
        config = EmulatorConfig(time_scale=200, seed=5, faults=faults)
        async with (
            serve(config) as emu,
            AtlasClient(
                KEY,
                base_url=emu.base_url,
                transport="aiohttp",
                poll=FAST,
                poll_retry=QUICK_RETRIES,
            ) as client,
        ):
            futures = [
                await client.submit_image(IMAGE, prompt=f"fox {i}") for i in range(8)
            ]
            results = [await future for future in futures]
        assert all(p.status is PredictionStatus.COMPLETED for p in results)
        stats = emu.stats.snapshot()
        assert stats.faults.get("drop", 0) > 0
        assert stats.duplicate_submissions == 0

    @pytest.mark.asyncio
    async def test_malformed_answer_to_a_get_is_unexpected_response(self) -> None:
        """A truncated JSON body over aiohttp is UnexpectedResponseError."""
        faults = Faults(malformed_rate=1.0, targets=[FaultTarget.MODELS])
        async with (
            serve(EmulatorConfig(faults=faults)) as emu,
            AtlasClient(KEY, base_url=emu.base_url, transport="aiohttp") as client,
        ):
            with pytest.raises(UnexpectedResponseError):
                await client.list_models()

    @pytest.mark.asyncio
    async def test_refused_connection_is_retried_then_a_transport_error(self) -> None:
        """A submit to a closed port is retried (never sent) and ends TransportError."""
        async with serve() as emu:
            base_url = emu.base_url
        async with AtlasClient(
            KEY, base_url=base_url, transport="aiohttp", max_retries=1
        ) as client:
            with pytest.raises(TransportError) as caught:
                await client.submit_image(IMAGE, prompt="a fox")
        assert not isinstance(caught.value, SubmissionUnknownError)
        assert isinstance(caught.value.__cause__, httpx.ConnectError)
