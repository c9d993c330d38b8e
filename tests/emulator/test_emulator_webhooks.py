"""The emulator's signed webhooks: validation, JWKS, signing, retries, lifecycle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from atlas_async import PredictionStatus
from atlas_async.emulator import (
    Emulator,
    EmulatorConfig,
    Faults,
    SigningKey,
    http_sender,
    serve,
)
from atlas_async.emulator._uvicorn import serve_asgi
from atlas_async.testing import FakeClock
from atlas_async.webhooks import (
    HEADER_EVENT,
    HEADER_ID,
    JWKSCache,
    WebhookEvent,
    WebhookVerifier,
    parse_jwks,
)

MODEL = "google/nano-banana-2/text-to-image"
HOOK = "http://127.0.0.1:9/hook"
EPOCH = 1_700_000_000.0
KEY = {"Authorization": "Bearer test-key"}


class Receiver:
    """A `WebhookSender` that records every POST and answers from a script."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers) or [200]
        self.posts: list[tuple[float, str, dict[str, str], bytes]] = []
        self.clock: FakeClock | None = None
        self._changed = anyio.Event()

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        now = self.clock.now() if self.clock is not None else 0.0
        self.posts.append((now, url, dict(headers), body))
        self._changed.set()
        self._changed = anyio.Event()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` POSTs have arrived."""
        while len(self.posts) < count:
            await self._changed.wait()


def config(**options: Any) -> EmulatorConfig:
    """Images take exactly 4 Atlas seconds; the epoch is fixed for signatures."""
    options.setdefault("model_latency", {MODEL: (4.0, 4.0)})
    return EmulatorConfig(epoch=EPOCH, **options)


@asynccontextmanager
async def running(
    receiver: Receiver, **options: Any
) -> AsyncIterator[tuple[Emulator, httpx.AsyncClient, FakeClock]]:
    """An in-process emulator on a FakeClock, delivering to ``receiver``; the
    clock's wall time is the emulator's (EPOCH at clock 0)."""
    clock = FakeClock(wall=EPOCH)
    receiver.clock = clock
    emulator = Emulator(
        config(**options), clock=clock.now, sleep=clock.sleep, webhook_sender=receiver
    )
    async with emulator, emulator.client() as http:
        yield emulator, http, clock


async def submit(http: httpx.AsyncClient, **body: Any) -> str:
    """Submit an image with a webhook; return its id."""
    body.setdefault("prompt", "a fox")
    body.setdefault("webhook_url", HOOK)
    answer = await http.post("/model/generateImage", json={"model": MODEL, **body})
    assert answer.status_code == 200, answer.text
    prediction_id: str = answer.json()["data"]["id"]
    return prediction_id


def verify(
    emulator: Emulator, clock: FakeClock, headers: dict[str, str], body: bytes
) -> WebhookEvent:
    """Check a delivery against the emulator's published key, at its wall time."""
    verifier = WebhookVerifier(emulator.signer.jwks(), clock=clock)
    return verifier.verify(headers, body)


@pytest.mark.asyncio
class TestValidation:
    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("ftp://example.com/hook", id="not-http"),
            pytest.param("/hook", id="relative"),
            pytest.param("http:///hook", id="no-host"),
            pytest.param("https://example.com/" + "a" * 1005, id="1025-chars"),
            pytest.param("https://exa mple.com/", id="whitespace"),
            pytest.param("http://example.com:99999/", id="bad-port"),
            pytest.param("", id="empty"),
            pytest.param(42, id="not-a-string"),
        ],
    )
    async def test_an_invalid_webhook_url_is_refused_with_400(
        self, url: object
    ) -> None:
        """A bad webhook_url is a 400 that names it, and creates nothing."""
        emulator = Emulator(config())
        async with emulator.client() as http:
            answer = await http.post(
                "/model/generateImage",
                json={"model": MODEL, "prompt": "a", "webhook_url": url},
            )
        assert answer.status_code == 400
        assert "webhook_url" in answer.json()["msg"]
        assert emulator.stats.snapshot().predictions_created == 0

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("http://127.0.0.1:8000/atlas/webhook", id="loopback-http"),
            pytest.param("https://example.com/" + "a" * 1004, id="1024-chars"),
        ],
    )
    async def test_loopback_http_and_https_urls_are_accepted(self, url: str) -> None:
        """http on loopback (for tests) and https up to 1024 characters are fine."""
        emulator = Emulator(config())
        async with emulator.client() as http:
            await submit(http, webhook_url=url)
        assert emulator.stats.snapshot().webhooks_scheduled == 1
        assert emulator.pending_webhooks == 1

    async def test_a_null_webhook_url_schedules_nothing(self) -> None:
        """``webhook_url: null`` is the same as leaving it out."""
        emulator = Emulator(config())
        async with emulator.client() as http:
            await submit(http, webhook_url=None)
        assert emulator.pending_webhooks == 0


@pytest.mark.asyncio
class TestJWKS:
    async def test_the_key_set_is_served_without_a_key(self) -> None:
        """GET /webhooks/jwks.json needs no API key and holds the signing key."""
        emulator = Emulator(config())
        async with httpx.AsyncClient(transport=emulator.transport) as http:
            answer = await http.get(emulator.jwks_url)
            refused = await http.post(emulator.jwks_url, headers=KEY)
        assert emulator.jwks_url == "http://127.0.0.1/api/v1/webhooks/jwks.json"
        assert answer.status_code == 200
        assert list(parse_jwks(answer.json())) == [emulator.signer.kid]
        assert refused.status_code == 405
        endpoint = "GET /api/v1/webhooks/jwks.json"
        assert emulator.stats.snapshot().requests_by_endpoint[endpoint] == 1

    async def test_a_jwks_cache_reads_the_emulators_keys(self) -> None:
        """The SDK's JWKSCache fetches the emulator's key set like Atlas's."""
        emulator = Emulator(config())
        async with httpx.AsyncClient(transport=emulator.transport) as http:
            cache = JWKSCache(http, emulator.jwks_url)
            assert await cache.key(emulator.signer.kid) is not None


class TestSigningKey:
    def test_one_seed_gives_one_key_and_the_same_signatures(self) -> None:
        """Keys from one seed share a kid and sign identically; another seed
        gives another key."""
        first, again = SigningKey.from_seed(bytes(32)), SigningKey.from_seed(bytes(32))
        other = SigningKey.from_seed(bytes([1]) * 32)
        signed = [
            key.sign(b"{}", webhook_id="p", event_type="e", timestamp=EPOCH)
            for key in (first, again, other)
        ]
        assert first.kid == again.kid != other.kid
        assert signed[0] == signed[1] != signed[2]

    def test_a_seed_that_is_not_32_bytes_is_refused(self) -> None:
        """An Ed25519 seed is exactly 32 bytes."""
        with pytest.raises(ValueError, match="32 bytes"):
            SigningKey.from_seed(bytes(31))

    def test_an_explicit_kid_names_the_key_and_repr_hides_it(self) -> None:
        """kid= replaces the thumbprint; the repr shows only the kid."""
        key = SigningKey.generate(kid="k9")
        assert key.jwks()["keys"][0]["kid"] == key.kid == "k9"
        assert repr(key) == "SigningKey(kid='k9')"


@pytest.mark.asyncio
class TestDelivery:
    async def test_a_prediction_is_delivered_signed_when_it_ends(self) -> None:
        """At ready_at, one POST carries the F18 body with the poll's data, signed."""
        receiver = Receiver()
        async with running(receiver) as (emulator, http, clock):
            pid = await submit(http)
            clock.advance(3.9)
            await anyio.wait_all_tasks_blocked()
            assert receiver.posts == []
            clock.advance(0.1)
            await receiver.wait_for(1)
            polled = (await http.get(f"/model/prediction/{pid}")).json()["data"]
        when, url, headers, body = receiver.posts[0]
        assert (when, url) == (4.0, HOOK)
        assert headers[HEADER_ID] == pid
        assert headers[HEADER_EVENT] == "image.task.terminal"
        assert headers["Content-Type"] == "application/json"
        event = verify(emulator, clock, headers, body)
        assert event.session_id == pid
        assert event.status == "OK"
        assert event.prediction.status is PredictionStatus.COMPLETED
        assert event.raw["payload"] == polled
        assert event.created_at is not None
        assert event.created_at.timestamp() == EPOCH + 4.0
        stats = emulator.stats.snapshot()
        assert (stats.webhook_attempts, stats.webhooks_delivered) == (1, 1)

    async def test_a_failed_prediction_is_delivered_as_an_error(self) -> None:
        """A failure's envelope says ERROR, with the error and a failed payload."""
        receiver = Receiver()
        async with running(receiver) as (emulator, http, clock):
            await submit(http, prompt="a fox [emulator:fail]")
            clock.advance(4.0)
            await receiver.wait_for(1)
        _, _, headers, body = receiver.posts[0]
        event = verify(emulator, clock, headers, body)
        assert event.status == "ERROR"
        assert event.error is not None
        assert event.prediction.status is PredictionStatus.FAILED
        assert json.loads(body)["payload"]["error_code"] == 1000

    async def test_failed_attempts_are_retried_on_the_scaled_ladder(self) -> None:
        """500, then a dropped connection, then 200: retried after 1 s and 2 s at
        time_scale 10, each attempt freshly signed over the same body."""
        receiver = Receiver(500, httpx.ConnectError("refused"), 204)
        async with (
            running(receiver, time_scale=10) as (emulator, http, clock),
            clock.autojump(),
        ):
            await submit(http)
            await receiver.wait_for(3)
            await clock.sleep(100.0)  # nothing more is sent
        assert [round(post[0], 6) for post in receiver.posts] == [0.4, 1.4, 3.4]
        assert len({post[3] for post in receiver.posts}) == 1
        for _, _, headers, body in receiver.posts:
            verify(emulator, clock, headers, body)
        stats = emulator.stats.snapshot()
        assert (
            stats.webhook_attempts,
            stats.webhook_failures,
            stats.webhooks_delivered,
            stats.webhooks_abandoned,
        ) == (3, 2, 1, 0)

    async def test_delivery_gives_up_after_the_last_attempt(self) -> None:
        """A receiver that never answers 2xx gets webhook_max_attempts POSTs."""
        receiver = Receiver(503)
        async with (
            running(receiver, webhook_max_attempts=3) as (emulator, http, clock),
            clock.autojump(),
        ):
            await submit(http)
            await clock.sleep(10_000.0)
        assert [post[0] for post in receiver.posts] == [4.0, 14.0, 34.0]
        stats = emulator.stats.snapshot()
        assert (stats.webhook_failures, stats.webhooks_abandoned) == (3, 1)
        assert emulator.pending_webhooks == 0

    async def test_an_earlier_delivery_wakes_the_loop(self) -> None:
        """A delivery due before the one the loop sleeps for goes out on time."""
        receiver = Receiver()
        async with running(
            receiver, model_latency={MODEL: (4.0, 4.0), "z-image/turbo": (1.0, 1.0)}
        ) as (_, http, clock):
            await submit(http)
            await anyio.wait_all_tasks_blocked()  # the loop sleeps until 4.0
            await http.post(
                "/model/generateImage",
                json={"model": "z-image/turbo", "prompt": "b", "webhook_url": HOOK},
            )
            clock.advance(1.0)
            await receiver.wait_for(1)
            clock.advance(3.0)
            await receiver.wait_for(2)
        assert [post[0] for post in receiver.posts] == [1.0, 4.0]

    async def test_a_hanging_receiver_delays_no_other_delivery(self) -> None:
        """Attempts run concurrently: one that never returns blocks nothing."""
        hung = anyio.Event()

        async def sender(url: str, headers: Mapping[str, str], body: bytes) -> int:
            if url.endswith("/slow"):
                hung.set()
                await anyio.sleep_forever()
            return 200

        clock = FakeClock()
        emulator = Emulator(
            config(), clock=clock.now, sleep=clock.sleep, webhook_sender=sender
        )
        async with emulator, emulator.client() as http:
            await submit(http, webhook_url="http://127.0.0.1:9/slow")
            await submit(http)
            clock.advance(4.0)
            await hung.wait()
            await anyio.wait_all_tasks_blocked()
            assert emulator.stats.snapshot().webhooks_delivered == 1

    async def test_reset_with_state_forgets_pending_deliveries(self) -> None:
        """reset(state=True) drops deliveries not attempted yet."""
        receiver = Receiver()
        async with running(receiver) as (emulator, http, clock):
            await submit(http)
            emulator.reset(state=True)
            clock.advance(10.0)
            await anyio.wait_all_tasks_blocked()
        assert receiver.posts == []
        assert emulator.pending_webhooks == 0


@pytest.mark.asyncio
class TestLifecycle:
    async def test_leaving_the_emulator_leaves_no_task_behind(self) -> None:
        """The delivery loop and an attempt in flight stop with the block."""
        before = asyncio.all_tasks()
        started = anyio.Event()

        async def sender(url: str, headers: Mapping[str, str], body: bytes) -> int:
            started.set()
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        clock = FakeClock()
        emulator = Emulator(
            config(), clock=clock.now, sleep=clock.sleep, webhook_sender=sender
        )
        async with emulator, emulator.client() as http:
            await submit(http)
            await submit(http)
            clock.advance(4.0)
            await started.wait()
        assert asyncio.all_tasks() == before
        assert emulator.stats.snapshot().webhook_attempts == 2

    async def test_deliveries_wait_until_the_emulator_runs(self) -> None:
        """Outside ``async with`` nothing is sent; entering sends what is due."""
        receiver = Receiver()
        clock = FakeClock()
        receiver.clock = clock
        emulator = Emulator(
            config(), clock=clock.now, sleep=clock.sleep, webhook_sender=receiver
        )
        async with emulator.client() as http:
            await submit(http)
        clock.advance(5.0)
        assert receiver.posts == []
        async with emulator:
            await receiver.wait_for(1)
        assert receiver.posts[0][0] == 5.0

    async def test_entering_twice_is_refused(self) -> None:
        """One delivery loop per emulator."""
        emulator = Emulator(config(), webhook_sender=Receiver())
        async with emulator:
            with pytest.raises(RuntimeError, match="running already"):
                await emulator.__aenter__()


class TestLadder:
    def test_the_retry_ladder_doubles_up_to_its_cap_and_scales(self) -> None:
        """10, 20, 40 ... 1280, then 1800 Atlas seconds; divided by time_scale."""
        ladder = EmulatorConfig().webhook_retry_after
        assert [ladder(n) for n in range(1, 11)] == [
            10.0,
            20.0,
            40.0,
            80.0,
            160.0,
            320.0,
            640.0,
            1280.0,
            1800.0,
            1800.0,
        ]
        assert ladder(10_000) == 1800.0
        assert EmulatorConfig(time_scale=100).webhook_retry_after(2) == 0.2


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_deliveries_work_under_trio(anyio_backend: str) -> None:
    """The delivery loop runs in a task group under trio."""
    receiver = Receiver()
    async with running(receiver) as (emulator, http, clock):
        await submit(http)
        clock.advance(4.0)
        await receiver.wait_for(1)
    assert emulator.stats.snapshot().webhooks_delivered == 1


@pytest.mark.e2e
@pytest.mark.asyncio
async def test_serve_delivers_over_real_http_and_the_jwks_verifies_it() -> None:
    """Over sockets: the emulator POSTs to a live receiver, whose verifier fetches
    the emulator's JWKS, and a 500 is retried."""
    seen: list[tuple[dict[str, str], bytes]] = []
    arrived = anyio.Event()

    async def receiver_app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen.append((headers, body))
        status = 500 if len(seen) == 1 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        if len(seen) == 2:
            arrived.set()

    latency = {MODEL: (0.05, 0.05)}
    async with (
        serve_asgi(receiver_app) as port,
        serve(EmulatorConfig(model_latency=latency, time_scale=1000)) as emu,
        httpx.AsyncClient(base_url=emu.base_url, headers=KEY) as http,
    ):
        hook = f"http://127.0.0.1:{port}/hook"
        pid = await submit(http, webhook_url=hook)
        with anyio.fail_after(10):
            await arrived.wait()
        verifier = WebhookVerifier(JWKSCache(http, emu.jwks_url))
        events = [await verifier.averify(headers, body) for headers, body in seen]
    assert {event.session_id for event in events} == {pid}
    assert emu.stats.snapshot().webhook_failures == 1


@pytest.mark.asyncio
async def test_http_sender_posts_with_the_given_client() -> None:
    """http_sender POSTs the body and headers and returns the status."""
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        status = await http_sender(client)(HOOK, {"X-A": "1"}, b"{}")
    assert status == 202
    assert (received[0].method, received[0].content) == ("POST", b"{}")
    assert received[0].headers["x-a"] == "1"


@pytest.mark.asyncio
class TestDeliveryFaults:
    async def test_webhook_delay_holds_the_first_attempt_after_the_end(self) -> None:
        """With webhook_delay=2, a prediction ending at 4 s is delivered at 6 s."""
        receiver = Receiver()
        async with running(receiver, faults=Faults(webhook_delay=2.0)) as (
            _,
            http,
            clock,
        ):
            await submit(http)
            clock.advance(5.9)
            await anyio.wait_all_tasks_blocked()
            assert receiver.posts == []
            clock.advance(0.1)
            await receiver.wait_for(1)
        assert receiver.posts[0][0] == 6.0

    async def test_webhook_loss_drops_that_share_of_deliveries(self) -> None:
        """webhook_loss=0.5 sends about half, and counts the rest as lost."""
        receiver = Receiver()
        async with running(receiver, faults=Faults(webhook_loss=0.5)) as (
            emulator,
            http,
            clock,
        ):
            for _ in range(40):
                await submit(http)
            clock.advance(4.0)
            await anyio.wait_all_tasks_blocked()
            stats = emulator.stats.snapshot()
            assert stats.webhooks_lost + len(receiver.posts) == 40
        assert 10 <= stats.webhooks_lost <= 30
        assert stats.webhooks_delivered == len(receiver.posts)


def test_the_webhook_faults_parse_from_options() -> None:
    """--fault webhook_delay=1.5 --fault webhook_loss=0.1 on the command line."""
    faults = Faults.from_options(["webhook_delay=1.5", "webhook-loss=0.1"])
    assert (faults.webhook_delay, faults.webhook_loss) == (1.5, 0.1)
    with pytest.raises(ValueError, match="webhook_loss"):
        Faults.from_options(["webhook_loss=2"])
