"""
Bounded time: every request has an overall deadline (``Timeouts.total``:
connect, send and the whole answer), and a server's ``Retry-After`` never holds
one request past its deadline nor the client's other requests past the cap.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from atlas_async import (
    AtlasClient,
    RateLimitError,
    ServerError,
    SubmissionUnknownError,
    Timeouts,
    TransportError,
)
from atlas_async._core.config import resolve_config
from atlas_async.testing import FakeClock

from .answers import OK_SUBMIT, poll_body
from .conftest import IMAGE, KEY, POLL_PATH, SUBMIT_PATH, client_for
from .server import Connection, HostileServer, Request, json_answer, trickle_answer

#: A body that would take 20 s at one byte per 0.05 s.
SLOW = json.dumps(poll_body(padding="z" * 400)).encode()


class TestTotalTimeout:
    def test_the_default_total_is_five_minutes(self) -> None:
        """Long enough for a slow upload or a sync-mode submit; still finite."""
        assert Timeouts().total == 300.0

    def test_one_number_raises_the_total_to_at_least_itself(self) -> None:
        """timeout=600 (each phase) must not be cut at the 300 s default total."""
        for given, total in ((600, 600.0), (5, 300.0)):
            config = resolve_config(KEY, env={}, timeout=given)
            assert config.timeout is not None
            assert config.timeout.total == total

    @pytest.mark.parametrize("total", [0, -1.0, float("nan")])
    def test_a_total_that_is_not_positive_is_refused(self, total: float) -> None:
        with pytest.raises(ValueError, match="total"):
            Timeouts(total=total)

    @pytest.mark.asyncio
    async def test_a_trickling_poll_answer_ends_at_the_total(
        self, hostile: HostileServer, transport: str
    ) -> None:
        """One byte every 50 ms never trips the read timeout; the total does."""
        hostile.route("GET", POLL_PATH, trickle_answer(SLOW, interval=0.05))
        async with client_for(
            hostile, transport, timeout=Timeouts(total=0.5)
        ) as client:
            with pytest.raises(TransportError, match="total") as caught:
                await client.get_prediction("p1")
        assert not isinstance(caught.value, SubmissionUnknownError)
        await hostile.settled()
        [conn] = hostile.connections  # the deadline covers the retries too
        assert conn.hung_up
        assert conn.bytes_sent < len(SLOW)

    @pytest.mark.asyncio
    async def test_a_trickling_submit_answer_is_unknown_and_sent_once(
        self, hostile: HostileServer, transport: str
    ) -> None:
        """Sent, then out of time: it may exist, so unknown, never re-sent."""
        body = json.dumps({**OK_SUBMIT, "padding": "z" * 400}).encode()
        hostile.route("POST", SUBMIT_PATH, trickle_answer(body, interval=0.05))
        async with client_for(
            hostile, transport, timeout=Timeouts(total=0.5)
        ) as client:
            with pytest.raises(SubmissionUnknownError, match="total"):
                await client.submit("image", IMAGE, prompt="a fox")
        assert len(hostile.requests("POST")) == 1


@pytest.mark.asyncio
async def test_a_retry_after_past_the_deadline_is_not_waited_for(
    hostile: HostileServer, transport: str
) -> None:
    """On a real socket: a 503 asking for an hour, with 0.5 s left of the
    request's deadline, ends the request at once with the server's figure."""
    hostile.route(
        "GET",
        POLL_PATH,
        json_answer(
            {"code": 503, "msg": "busy"}, status=503, headers=[("Retry-After", "3600")]
        ),
    )
    async with client_for(
        hostile, transport, timeout=Timeouts(total=0.5), max_retries=5
    ) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_prediction("p1")
    assert caught.value.retry_after == 3600.0
    assert len(hostile.connections) == 1


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


class TestRetryAfter:
    @pytest.mark.asyncio
    async def test_retry_after_never_takes_a_request_past_its_deadline(self) -> None:
        """A 503 asking for an hour, ten retries allowed: the request still ends
        by its total (300 s), carrying the server's Retry-After."""
        clock = FakeClock()

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                503, json={"code": 503, "msg": "busy"}, headers={"Retry-After": "3600"}
            )

        client = AtlasClient(KEY, transport=mock(handler), clock=clock, max_retries=10)
        async with clock.autojump(), client:
            started = clock.now()
            with pytest.raises(ServerError) as caught:
                await client.get_prediction("p1")
            elapsed = clock.now() - started
        assert elapsed <= 300.0
        assert caught.value.retry_after == 3600.0

    @pytest.mark.asyncio
    async def test_a_huge_retry_after_blocks_other_requests_at_most_the_cap(
        self,
    ) -> None:
        """One poll refused for the rate with Retry-After: 3600 holds the next,
        unrelated request for at most the 60 s cap, not an hour (nor 120 s)."""
        clock = FakeClock()

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/a"):
                return httpx.Response(
                    429,
                    json={"code": 429, "msg": "rate limit exceeded"},
                    headers={"Retry-After": "3600"},
                )
            return httpx.Response(200, json=poll_body("b"))

        client = AtlasClient(KEY, transport=mock(handler), clock=clock, max_retries=0)
        async with clock.autojump(), client:
            with pytest.raises(RateLimitError):
                await client.get_prediction("a")
            started = clock.now()
            await client.get_prediction("b")
            waited = clock.now() - started
        assert 0.0 < waited <= 60.0

    @pytest.mark.asyncio
    async def test_a_window_refusal_with_retry_after_does_not_hold_polls(
        self,
    ) -> None:
        """A submit refused for its model's window (with Retry-After) is the
        scheduler's to wait for; a poll of another prediction goes at once."""
        clock = FakeClock()
        refused = anyio.Event()

        def handler(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                refused.set()
                return httpx.Response(
                    429,
                    json={"code": 429, "msg": "too many concurrent tasks for model"},
                    headers={"Retry-After": "3600"},
                )
            return httpx.Response(200, json=poll_body("b"))

        client = AtlasClient(KEY, transport=mock(handler), clock=clock, max_retries=0)
        async with clock.autojump(), client, anyio.create_task_group() as tg:

            async def submit() -> None:
                await client.submit("image", IMAGE, prompt="x", timeout=10_000)

            tg.start_soon(submit)
            await refused.wait()
            started = clock.now()
            await client.get_prediction("b")
            waited = clock.now() - started
            tg.cancel_scope.cancel()
        assert waited == 0.0


class _Trickle(httpx.AsyncByteStream):
    """A body that sends one byte, then waits (real time) before each next one."""

    def __init__(self, body: bytes, interval: float) -> None:
        self.body = body
        self.interval = interval
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for byte in self.body:
            yield bytes([byte])
            self.sent += 1
            await anyio.sleep(self.interval)


class TestTotalTimeoutOnEveryLoop:
    """The deadline under asyncio (asyncio.timeout) and trio (a cancel scope)."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.mark.anyio
    async def test_a_trickling_body_ends_at_the_total_on_both_loops(self) -> None:
        streams: list[_Trickle] = []

        def handler(request: httpx.Request) -> httpx.Response:
            stream = _Trickle(SLOW, interval=0.05)
            streams.append(stream)
            return httpx.Response(200, stream=stream)

        client = AtlasClient(
            KEY, transport=mock(handler), timeout=Timeouts(total=0.3), max_retries=3
        )
        async with client:
            with pytest.raises(TransportError, match=r"total timeout of 0\.3s"):
                await client.get_prediction("p1")
            # The client is still usable: the deadline ended one request.
            assert client.statistics().in_flight == 0
        [stream] = streams  # no retry past the request's deadline
        assert 0 < stream.sent < len(SLOW)


class TestDownloadDeadline:
    @pytest.mark.asyncio
    async def test_a_trickling_output_ends_at_the_download_timeout(
        self, hostile: HostileServer, transport: str, tmp_path: Path
    ) -> None:
        """An output host sending a byte every 50 ms never trips a read timeout;
        the download's own deadline ends each attempt, and no partial file stays."""
        from atlas_async import DownloadError, Prediction, PredictionStatus

        hostile.route("GET", "/files/x.png", trickle_answer(b"p" * 400, interval=0.05))
        done = Prediction(
            id="p1",
            status=PredictionStatus.COMPLETED,
            outputs=(f"{hostile.origin}/files/x.png",),
        )
        async with client_for(hostile, transport) as client:
            with pytest.raises(DownloadError, match=r"within 0\.3 s"):
                await client.download(done, tmp_path, timeout=0.3, retries=1)
        await hostile.settled()
        assert len(hostile.connections) == 2  # the attempt and its one retry
        assert all(conn.hung_up for conn in hostile.connections)
        assert [p async for p in anyio.Path(tmp_path).iterdir()] == []


class TestReadTimeout:
    @pytest.mark.asyncio
    async def test_a_server_that_goes_quiet_ends_the_attempt_at_the_read_timeout(
        self, hostile: HostileServer, transport: str
    ) -> None:
        """Headers, then silence: a read timeout (retried as one), not the total."""

        async def quiet(request: Request, conn: Connection) -> None:
            await conn.head(200, [("Content-Type", "application/json")], length=500)
            # Ten read timeouts of silence, then the connection ends: a client
            # without a read timeout would see a cut answer, not a timeout.
            await anyio.sleep(1.0)

        hostile.route("GET", POLL_PATH, quiet)
        async with client_for(
            hostile, transport, timeout=Timeouts(read=0.1, total=20.0), max_retries=1
        ) as client:
            with pytest.raises(TransportError, match="ReadTimeout") as caught:
                await client.get_prediction("p1")
        assert "total" not in str(caught.value)
        await hostile.settled()
        assert len(hostile.connections) == 2  # the read timeout was retried once
