"""
atlas_async.fastapi and the example app, in-process: lifespan, dependency, the
webhook router, follow/wait_done, and each endpoint, over httpx.ASGITransport
against the in-process emulator on a FakeClock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import httpx
import pytest
import respx
from _examples import load_example
from fastapi import FastAPI, Request

from atlas_async import (
    APIError,
    AtlasClient,
    AtlasError,
    ClientClosedError,
    ConfigurationError,
    FixedPolicy,
    InvalidRequestError,
    NotFoundError,
    Prediction,
    PredictionFailedError,
    PredictionStatus,
    PredictionTimeoutError,
    RateLimitError,
    TransportError,
)
from atlas_async.emulator import (
    Emulator,
    EmulatorConfig,
    WebhookSigning,
    http_sender,
)
from atlas_async.fastapi import (
    AtlasClientDep,
    atlas_lifespan,
    follow,
    get_atlas_client,
    wait_done,
    webhook_router,
)
from atlas_async.testing import FakeClock
from atlas_async.webhooks import (
    DEFAULT_JWKS_URL,
    WebhookEvent,
    WebhookSigner,
    WebhookVerifier,
    build_body,
    event_type_for,
)

pytestmark = pytest.mark.asyncio

MODEL = "google/nano-banana-2/text-to-image"
SLOW = "z-image/turbo"  # never ends within a test
ORIGIN = "http://testserver"
HOOK = f"{ORIGIN}/atlas/webhook"
# Unix time at the start of every FakeClock here: deliveries are signed at it.
WALL = 1_767_225_600.0


example = load_example("fastapi_app.py", "fastapi_app")


@attrs.define
class Stack:
    """An app, the in-process emulator behind its client, and a caller."""

    app: FastAPI
    emulator: Emulator
    clock: FakeClock
    http: httpx.AsyncClient

    @property
    def client(self) -> AtlasClient:
        """The app's AtlasClient."""
        client: AtlasClient = self.app.state.atlas_client
        return client

    def polls(self) -> int:
        """Polls the emulator has answered."""
        return self.emulator.stats.snapshot().polls


def emulator_for(clock: FakeClock, **options: Any) -> tuple[Emulator, Any]:
    """An emulator on ``clock`` whose webhooks go to the app set on the holder.

    Its Unix time is the clock's ``wall()``, so a verifier on ``clock`` accepts
    its signatures."""
    target: dict[str, httpx.AsyncClient] = {}
    options.setdefault("epoch", clock.wall())

    async def send(url: str, headers: Mapping[str, str], body: bytes) -> int:
        return await http_sender(target["http"])(url, headers, body)

    latency = {MODEL: (4.0, 4.0), SLOW: (10_000.0, 10_000.0)}
    emulator = Emulator(
        EmulatorConfig(model_latency=latency, **options),
        clock=clock.now,
        sleep=clock.sleep,
        webhook_sender=send,
    )
    return emulator, target


def client_options(emulator: Emulator, clock: FakeClock) -> dict[str, Any]:
    """AtlasClient arguments that reach ``emulator`` in-process."""
    return {
        "api_key": "key",
        "base_url": emulator.base_url,
        "transport": emulator.transport,
        "clock": clock,
    }


@asynccontextmanager
async def running(app: FastAPI, **transport: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a caller wired to it."""
    transport.setdefault("raise_app_exceptions", False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app, **transport), base_url=ORIGIN
        ) as http,
    ):
        yield http


@asynccontextmanager
async def example_stack(
    *, webhooks: bool = True, verifier: WebhookVerifier | None = None, **client: Any
) -> AsyncIterator[Stack]:
    """The example app on the emulator; webhooks (when on) delivered in-process."""
    clock = FakeClock(wall=WALL)
    emulator, target = emulator_for(clock)
    settings = example.Settings(
        public_webhook_url=HOOK if webhooks else None,
        fallback_poll=FixedPolicy(60.0),
        jwks_url=emulator.jwks_url,
    )
    app = example.create_app(
        settings,
        verifier=verifier or WebhookVerifier(emulator.signer.jwks(), clock=clock),
        **{**client_options(emulator, clock), **client},
    )
    async with running(app) as http, emulator:
        target["http"] = http
        yield Stack(app, emulator, clock, http)


def sign(
    signer: WebhookSigning,
    session_id: str,
    *,
    status: str = "completed",
    timestamp: float = WALL,
    body: bytes | None = None,
) -> tuple[dict[str, str], bytes]:
    """A delivery for ``session_id``, signed at WALL (or at ``timestamp``)."""
    if body is None:
        outputs = ["https://cdn.test/a.png"] if status == "completed" else []
        body = build_body(
            session_id=session_id,
            event_type=event_type_for("image"),
            payload={"status": status, "outputs": outputs},
        )
    headers = signer.sign(
        body,
        webhook_id=session_id,
        event_type="image.task.terminal",
        timestamp=timestamp,
    )
    return headers, body


async def post(
    http: httpx.AsyncClient, delivery: tuple[dict[str, str], bytes]
) -> httpx.Response:
    """POST a delivery to the webhook route."""
    headers, body = delivery
    return await http.post("/atlas/webhook", headers=headers, content=body)


@asynccontextmanager
async def router_app(
    signer: WebhookSigner | None = None,
    **router: Any,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Emulator, FakeClock]]:
    """A bare app: atlas_lifespan plus the webhook router, on the emulator; the
    router's verifier (``signer``'s, or the one it builds) reads ``clock``."""
    clock = FakeClock(wall=WALL)
    emulator, _ = emulator_for(clock)
    if signer is not None:
        router.setdefault("verifier", WebhookVerifier(signer.jwks(), clock=clock))
    if "verifier" not in router:
        router.setdefault("clock", clock)
    app = FastAPI(lifespan=atlas_lifespan(**client_options(emulator, clock)))
    app.include_router(webhook_router(**router))
    async with running(app) as http:
        yield app, http, emulator, clock


async def submit(client: AtlasClient, model: str = MODEL) -> Any:
    """Submit with a 60 s fixed poll: only a delivery ends it within a test."""
    return await client.submit("image", model, poll=FixedPolicy(60.0), prompt="a")


class TestLifespan:
    async def test_one_client_opens_with_the_app_and_closes_with_it(self) -> None:
        """The lifespan opens a client, shares it as state, and closes it at the end."""
        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        app = FastAPI(lifespan=atlas_lifespan(**client_options(emulator, clock)))
        async with app.router.lifespan_context(app) as state:
            client = app.state.atlas_client
            assert state == {"atlas_client": client}
            assert (await client.list_models())[0].model
        with pytest.raises(ClientClosedError):
            client.attach("p")
        assert not hasattr(app.state, "atlas_client")

    @pytest.mark.parametrize("yields", [{"db": "conn"}, None], ids=["state", "none"])
    async def test_your_lifespan_runs_inside_with_the_client_open(
        self, yields: dict[str, str] | None
    ) -> None:
        """Your lifespan starts after the client opens, stops before it closes,
        and keeps its state."""
        seen: list[str] = []

        @asynccontextmanager
        async def mine(app: FastAPI) -> AsyncIterator[dict[str, str] | None]:
            client = app.state.atlas_client
            seen.append(repr(client))
            yield yields
            client.statistics()  # still open
            assert client.attach("p").id == "p"

        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        app = FastAPI(lifespan=atlas_lifespan(mine, **client_options(emulator, clock)))
        async with app.router.lifespan_context(app) as state:
            assert state == {**(yields or {}), "atlas_client": app.state.atlas_client}
        assert "state=opened" in seen[0]


class TestDependency:
    async def test_handlers_receive_the_apps_client(self) -> None:
        """AtlasClientDep resolves to the one client the lifespan opened."""
        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        app = FastAPI(lifespan=atlas_lifespan(**client_options(emulator, clock)))

        @app.get("/which")
        async def which(client: AtlasClientDep) -> dict[str, int]:
            return {"id": id(client)}

        async with running(app) as http:
            answer = await http.get("/which")
            assert answer.json() == {"id": id(app.state.atlas_client)}

    async def test_without_the_lifespan_the_dependency_fails_loudly(self) -> None:
        """An app built without atlas_lifespan answers 500 and says why."""
        app = FastAPI()

        @app.get("/which")
        async def which(client: AtlasClientDep) -> None:
            raise AssertionError("unreachable")

        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            with pytest.raises(RuntimeError, match="atlas_lifespan"):
                await http.get("/which")

    async def test_lifespan_state_wins_over_app_state(self) -> None:
        """The client in the request's lifespan state is the one handed out."""
        client = AtlasClient("key", base_url="https://example.test/api/v1")
        app = FastAPI()
        scope = {"type": "http", "app": app, "state": {"atlas_client": client}}
        assert await get_atlas_client(Request(scope)) is client


class TestWebhookRouter:
    async def test_a_signed_delivery_resolves_the_waiting_future_at_once(
        self,
    ) -> None:
        """A valid delivery ends the future now: no poll, no time passing."""
        signer = WebhookSigner.generate()
        async with router_app(signer) as (app, http, emulator, clock):
            future = await submit(app.state.atlas_client)
            answer = await post(http, sign(signer, future.id))
            assert (answer.status_code, answer.json()) == (200, {"status": "resolved"})
            assert future.done()
            assert (await future).outputs == ("https://cdn.test/a.png",)
        assert (clock.now(), emulator.stats.snapshot().polls) == (0.0, 0)

    async def test_a_failed_delivery_fails_the_future(self) -> None:
        """A delivery of a failure ends the wait with PredictionFailedError."""
        signer = WebhookSigner.generate()
        async with router_app(signer) as (app, http, _, _):
            future = await submit(app.state.atlas_client)
            await post(http, sign(signer, future.id, status="failed"))
            with pytest.raises(PredictionFailedError):
                await future

    @pytest.mark.parametrize(
        ("tamper", "status", "reason"),
        [
            pytest.param("other-key", 401, "unknown_key", id="unknown-key"),
            pytest.param("forged", 401, "bad_signature", id="bad-signature"),
            pytest.param("stale", 401, "stale_timestamp", id="stale"),
            pytest.param("no-headers", 400, "missing_header", id="missing-header"),
            pytest.param("not-json", 400, "malformed_body", id="malformed-body"),
        ],
    )
    async def test_an_unverifiable_delivery_is_refused_and_resolves_nothing(
        self, tamper: str, status: int, reason: str
    ) -> None:
        """Inauthentic deliveries get 401, malformed ones 400; the future waits on."""
        signer = WebhookSigner.generate()
        async with router_app(signer) as (app, http, _, _):
            future = await submit(app.state.atlas_client)
            headers, body = sign(signer, future.id)
            if tamper == "other-key":
                headers, body = sign(WebhookSigner.generate(), future.id)
            elif tamper == "forged":
                body = body.replace(b"a.png", b"b.png")
            elif tamper == "stale":
                headers, body = sign(signer, future.id, timestamp=WALL - 3600)
            elif tamper == "no-headers":
                headers = {}
            else:
                headers, body = sign(signer, future.id, body=b"not json")
            answer = await post(http, (headers, body))
            assert (answer.status_code, answer.json()) == (status, {"status": reason})
            assert not future.done()

    async def test_a_replay_is_ignored_and_a_redelivery_is_a_no_op(self) -> None:
        """The same signed delivery twice is a replay; a fresh signature of the
        same prediction is a duplicate; both answer 200 and change nothing."""
        signer = WebhookSigner.generate()
        events: list[WebhookEvent] = []

        async def on_event(event: WebhookEvent) -> None:
            events.append(event)

        async with router_app(signer, on_event=on_event) as (app, http, _, _):
            future = await submit(app.state.atlas_client)
            delivery = sign(signer, future.id)
            first = await post(http, delivery)
            replay = await post(http, delivery)
            redelivery = await post(
                http,
                sign(signer, future.id, status="failed", timestamp=WALL + 1),
            )
            assert (await future).status is PredictionStatus.COMPLETED
        assert [r.json()["status"] for r in (first, replay, redelivery)] == [
            "resolved",
            "replay",
            "duplicate",
        ]
        assert {r.status_code for r in (first, replay, redelivery)} == {200}
        assert len(events) == 2  # the replay never reaches the hook
        assert app.state.__dict__.get("atlas_client") is None

    async def test_a_delivery_for_an_id_this_process_does_not_follow_is_accepted(
        self,
    ) -> None:
        """Another worker's prediction: 200 so Atlas stops, nothing resolved here."""
        signer = WebhookSigner.generate()
        async with router_app(signer) as (_, http, _, _):
            answer = await post(http, sign(signer, "someone-elses"))
        assert (answer.status_code, answer.json()) == (200, {"status": "accepted"})

    async def test_keys_come_from_the_jwks_url(self) -> None:
        """Without a verifier the router fetches the key set from jwks_url."""
        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        async with (
            emulator.client() as keys_http,
            router_app(jwks_url=emulator.jwks_url, http_client=keys_http) as (
                app,
                http,
                _,
                _,
            ),
        ):
            future = await submit(app.state.atlas_client)
            answer = await post(http, sign(emulator.signer, future.id))
            assert answer.json() == {"status": "resolved"}

    async def test_an_unreachable_key_set_is_503_so_atlas_retries(self) -> None:
        """When the JWKS cannot be fetched the answer is 503, never 4xx."""

        def down(request: httpx.Request) -> httpx.Response:
            return httpx.Response(500)

        signer = WebhookSigner.generate()
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(down)) as keys_http,
            router_app(http_client=keys_http) as (_, http, _, _),
        ):
            answer = await post(http, sign(signer, "p"))
        assert (answer.status_code, answer.json()) == (
            503,
            {"status": "jwks_unavailable"},
        )

    async def test_the_router_opens_and_closes_its_own_jwks_client(self) -> None:
        """With neither verifier nor http_client it fetches Atlas's published keys
        with a client of its own, closed with the app."""
        signer = WebhookSigner.generate()
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get(DEFAULT_JWKS_URL).respond(json=signer.jwks())
            async with router_app() as (app, http, _, _):
                future = await submit(app.state.atlas_client)
                assert (await post(http, sign(signer, future.id))).status_code == 200
                assert (await post(http, sign(signer, "x"))).status_code == 200
        assert route.call_count == 1

    async def test_a_body_over_the_limit_is_413(self) -> None:
        """Too large, declared or streamed, is refused before verification."""
        signer = WebhookSigner.generate()

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * 40

        async with router_app(signer, max_body_size=100) as (_, http, _, _):
            declared = await http.post("/atlas/webhook", content=b"x" * 101)
            streamed = await http.post("/atlas/webhook", content=chunks())
        assert (declared.status_code, streamed.status_code) == (413, 413)

    async def test_a_failing_hook_is_a_500_and_the_delivery_counts_as_unhandled(
        self,
    ) -> None:
        """If on_event raises, Atlas's retry of the same delivery is handled again."""
        signer = WebhookSigner.generate()
        calls: list[str] = []

        async def on_event(event: WebhookEvent) -> None:
            calls.append(event.session_id)
            if len(calls) == 1:
                raise RuntimeError("database down")

        async with router_app(signer, on_event=on_event) as (_, http, _, _):
            delivery = sign(signer, "p")
            failed = await post(http, delivery)
            retried = await post(http, delivery)
        assert (failed.status_code, retried.json()) == (500, {"status": "accepted"})
        assert calls == ["p", "p"]

    async def test_a_closing_client_answers_503(self) -> None:
        """During shutdown the client refuses, and Atlas is told to retry."""
        signer = WebhookSigner.generate()
        async with router_app(signer) as (app, _, _, _):
            closed = app.state.atlas_client
        app.state.atlas_client = closed  # what a request in flight at shutdown sees
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url=ORIGIN
        ) as late:
            answer = await post(late, sign(signer, "p"))
        assert (answer.status_code, answer.json()) == (503, {"status": "closing"})

    async def test_without_a_client_or_hook_deliveries_are_logged_and_accepted(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A router mounted on an app with no client says so in the log."""
        signer = WebhookSigner.generate()
        app = FastAPI()
        verifier = WebhookVerifier(signer.jwks(), clock=FakeClock(wall=WALL))
        app.include_router(webhook_router(verifier=verifier))
        with caplog.at_level(logging.WARNING, logger="atlas_async"):
            async with running(app) as http:
                answer = await post(http, sign(signer, "p"))
        assert answer.json() == {"status": "accepted"}
        assert "no AtlasClient" in caplog.text

    @pytest.mark.parametrize(
        "extra",
        [
            pytest.param({"jwks_url": DEFAULT_JWKS_URL}, id="jwks-url"),
            pytest.param({"clock": FakeClock()}, id="clock"),
        ],
    )
    async def test_a_verifier_with_keys_or_a_clock_of_the_router_is_refused(
        self, extra: dict[str, Any]
    ) -> None:
        """A verifier has its own keys and clock: two of either is a mistake."""
        verifier = WebhookVerifier(WebhookSigner.generate().jwks())
        with pytest.raises(ConfigurationError):
            webhook_router(verifier=verifier, **extra)

    async def test_one_router_in_two_apps_gives_each_its_own_keys_and_memory(
        self,
    ) -> None:
        """Each app builds its own verifier from the router: it fetches the key
        set itself and remembers its own deliveries, so one delivery posted to
        both apps resolves the wait in each (no "replay" in the second)."""
        signer = WebhookSigner.generate()
        clock = FakeClock(wall=WALL)
        emulator, _ = emulator_for(clock)
        router = webhook_router(clock=clock)
        apps = [
            FastAPI(lifespan=atlas_lifespan(**client_options(emulator, clock)))
            for _ in range(2)
        ]
        for app in apps:
            app.include_router(router)
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get(DEFAULT_JWKS_URL).respond(json=signer.jwks())
            async with running(apps[0]) as first, running(apps[1]) as second:
                ours = await submit(apps[0].state.atlas_client)
                theirs = apps[1].state.atlas_client.attach(ours.id)
                delivery = sign(signer, ours.id)
                answers = [await post(http, delivery) for http in (first, second)]
                assert (ours.done(), theirs.done()) == (True, True)
        assert [answer.json() for answer in answers] == [{"status": "resolved"}] * 2
        assert route.call_count == 2


class TestFollowAndWait:
    async def test_followers_share_a_future_and_the_last_one_out_stops_polling(
        self,
    ) -> None:
        """Nested follows get one future; it is cancelled when the last exits."""
        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        async with AtlasClient(**client_options(emulator, clock)) as client:
            with follow(client, "p") as outer:
                with follow(client, "p") as inner:
                    assert inner is outer
                assert not outer.done()
                assert client.statistics().in_flight == 1
            assert outer.cancelled()
            assert client.statistics().in_flight == 0

    async def test_two_apps_following_one_id_stop_independently(self) -> None:
        """Two clients (two apps' worth) follow the same id: the last block out of
        one cancels that client's future only, and the other keeps polling."""
        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        options = client_options(emulator, clock)
        async with AtlasClient(**options) as one, AtlasClient(**options) as other:
            with follow(other, "p") as theirs:
                with follow(one, "p") as ours:
                    assert ours is not theirs
                assert ours.cancelled()
                assert not theirs.cancelled()
                assert other.statistics().in_flight == 1
            assert theirs.cancelled()

    async def test_a_finished_future_is_left_alone(self) -> None:
        """Leaving after the prediction ended changes nothing."""
        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        async with (
            clock.autojump(),
            AtlasClient(**client_options(emulator, clock)) as client,
        ):
            future = await submit(client)
            with follow(client, future.id) as followed:
                assert await wait_done(followed)
            assert not followed.cancelled()
            assert followed.result().status is PredictionStatus.COMPLETED
            assert await wait_done(followed, timeout=0)  # done: no wait at all

    async def test_wait_done_times_out_without_raising(self) -> None:
        """A timeout returns False; the future is untouched."""
        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        async with AtlasClient(**client_options(emulator, clock)) as client:
            future = await submit(client, SLOW)
            assert not await wait_done(future, timeout=0.01)
            assert not future.done()

    async def test_wait_done_returns_when_the_http_client_disconnects(self) -> None:
        """A disconnect on the request's receive channel ends the wait early."""
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": b""},
            {"type": "http.disconnect"},
        ]

        async def receive() -> Mapping[str, Any]:
            await anyio.lowlevel.checkpoint()
            return messages.pop(0)

        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        request = Request({"type": "http"}, receive)  # type: ignore[arg-type]
        async with AtlasClient(**client_options(emulator, clock)) as client:
            future = await submit(client, SLOW)
            with anyio.fail_after(5):
                assert not await wait_done(future, timeout=60, request=request)
            assert messages == []

    async def test_wait_done_with_a_request_returns_when_the_future_ends(
        self,
    ) -> None:
        """The disconnect watcher is cancelled once the prediction ends."""
        never = anyio.Event()

        async def receive() -> Mapping[str, Any]:
            await never.wait()
            raise AssertionError("unreachable")

        clock = FakeClock()
        emulator, _ = emulator_for(clock)
        request = Request({"type": "http"}, receive)  # type: ignore[arg-type]
        async with AtlasClient(**client_options(emulator, clock)) as client:
            future = await submit(client)

            async def end_it() -> None:
                await anyio.wait_all_tasks_blocked()
                done = Prediction(
                    id=future.id, status=PredictionStatus.COMPLETED, outputs=("u",)
                )
                assert client.deliver(done)

            async with anyio.create_task_group() as tg:
                tg.start_soon(end_it)
                assert await wait_done(future, request=request)


class TestExampleApp:
    async def test_post_images_answers_202_with_the_id_and_sends_the_webhook_url(
        self,
    ) -> None:
        """A submit returns at once; Atlas got the public webhook URL."""
        async with example_stack() as stack:
            answer = await stack.http.post("/images", json={"prompt": "a fox"})
        assert answer.status_code == 202
        body = answer.json()
        assert (body["status"], body["model"]) == ("processing", MODEL)
        assert answer.headers["location"] == f"/predictions/{body['id']}"
        record = stack.emulator.prediction(body["id"])
        assert record is not None
        assert record.params["webhook_url"] == HOOK

    async def test_post_images_validates_its_body(self) -> None:
        """An empty prompt is FastAPI's 422, and nothing is submitted."""
        async with example_stack() as stack:
            answer = await stack.http.post("/images", json={"prompt": ""})
        assert answer.status_code == 422
        assert stack.emulator.stats.snapshot().predictions_created == 0

    async def test_get_prediction_reads_the_status_from_atlas(self) -> None:
        """GET /predictions/{id} polls Atlas once; an unknown id is 404."""
        async with example_stack(webhooks=False) as stack:
            pid = (await stack.http.post("/images", json={"prompt": "a"})).json()["id"]
            before = await stack.http.get(f"/predictions/{pid}")
            stack.clock.advance(4.0)
            after = await stack.http.get(f"/predictions/{pid}")
            missing = await stack.http.get("/predictions/nope")
        assert before.json()["status"] == "processing"
        assert after.json()["status"] == "completed"
        assert after.json()["outputs"][0].endswith(".png")
        assert (missing.status_code, missing.json()["error"]) == (404, "NotFoundError")

    async def test_wait_ends_with_the_outputs_when_the_webhook_lands(self) -> None:
        """The hybrid wait: the emulator's delivery ends /wait with no poll."""
        async with example_stack() as stack:
            pid = (await stack.http.post("/images", json={"prompt": "a"})).json()["id"]
            async with anyio.create_task_group() as tg:
                answers: list[httpx.Response] = []

                async def wait() -> None:
                    answers.append(await stack.http.get(f"/predictions/{pid}/wait"))

                tg.start_soon(wait)
                await anyio.wait_all_tasks_blocked()
                stack.clock.advance(4.0)
            assert stack.emulator.stats.snapshot().webhooks_delivered == 1
            assert stack.client.statistics().delivered == 1
        assert answers[0].status_code == 200
        assert answers[0].json()["status"] == "completed"
        assert (stack.polls(), stack.clock.now()) == (0, 4.0)

    async def test_wait_times_out_with_202_and_the_last_status(self) -> None:
        """When ``timeout`` passes first, the answer is 202 with where it stands."""
        async with example_stack(webhooks=False) as stack:
            pid = (
                await stack.http.post("/images", json={"model": SLOW, "prompt": "a"})
            ).json()["id"]
            answer = await stack.http.get(
                f"/predictions/{pid}/wait", params={"timeout": 0.05}
            )
        assert answer.status_code == 202
        assert answer.json() == {"id": pid, "status": "processing"}

    async def test_wait_for_a_failed_prediction_is_422_with_the_error(self) -> None:
        """A prediction that failed on Atlas is a 422 carrying its error code."""
        async with example_stack() as stack, stack.clock.autojump():
            prompt = "a [emulator:moderate]"
            pid = (await stack.http.post("/images", json={"prompt": prompt})).json()[
                "id"
            ]
            answer = await stack.http.get(f"/predictions/{pid}/wait")
        assert answer.status_code == 422
        body = answer.json()
        assert (body["error"], body["error_code"], body["prediction_id"]) == (
            "PredictionFailedError",
            1039,
            pid,
        )

    async def test_events_stream_each_status_then_done(self) -> None:
        """The SSE stream sends the statuses seen, then the final prediction."""
        async with (
            example_stack(webhooks=False, poll=FixedPolicy(1.0)) as stack,
            stack.clock.autojump(),
        ):
            pid = (await stack.http.post("/images", json={"prompt": "a"})).json()["id"]
            async with stack.http.stream("GET", f"/predictions/{pid}/events") as s:
                assert s.headers["content-type"].startswith("text/event-stream")
                text = "".join([chunk async for chunk in s.aiter_text()])
            assert stack.client.statistics().in_flight == 0
        events = [block.split("\n") for block in text.strip().split("\n\n")]
        names = [lines[0].removeprefix("event: ") for lines in events]
        assert names == ["status", "status", "done"]
        final = json.loads(events[-1][1].removeprefix("data: "))
        assert final["status"] == "completed"

    async def test_events_end_with_an_error_event_for_a_failure(self) -> None:
        """A failed prediction's stream ends with an ``error`` event."""
        async with example_stack() as stack, stack.clock.autojump():
            prompt = "a [emulator:fail]"
            pid = (await stack.http.post("/images", json={"prompt": prompt})).json()[
                "id"
            ]
            answer = await stack.http.get(f"/predictions/{pid}/events")
        last = answer.text.strip().split("\n\n")[-1]
        assert last.startswith("event: error\n")
        assert json.loads(last.split("data: ", 1)[1])["status"] == "failed"

    async def test_events_of_a_closed_client_end_with_an_error_event(self) -> None:
        """Errors from attaching become the stream's last event, not a crash."""
        async with example_stack(webhooks=False) as stack:
            closed = stack.client
        stack.app.state.atlas_client = closed  # what a request at shutdown sees
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(stack.app), base_url=ORIGIN
        ) as late:
            answer = await late.get("/predictions/p/events")
        assert answer.status_code == 200
        last = answer.text.strip().split("\n\n")[-1]
        assert last.startswith("event: error\n")
        assert json.loads(last.split("data: ", 1)[1])["error"] == "ClientClosedError"

    @pytest.mark.parametrize(
        ("error", "status"),
        [
            pytest.param(
                PredictionFailedError("x", prediction_id="p", error_code=1039),
                422,
                id="failed",
            ),
            pytest.param(
                PredictionTimeoutError(
                    "x",
                    prediction_id="p",
                    last_status=PredictionStatus.PROCESSING,
                    timeout=1.0,
                ),
                504,
                id="deadline",
            ),
            pytest.param(NotFoundError("x", status_code=404), 404, id="not-found"),
            pytest.param(InvalidRequestError("x", status_code=400), 400, id="invalid"),
            pytest.param(
                RateLimitError("x", status_code=429, retry_after=2.4),
                429,
                id="rate-limited",
            ),
            pytest.param(ClientClosedError("x"), 503, id="closing"),
            pytest.param(APIError("x", status_code=500), 502, id="server"),
            pytest.param(TransportError("x", method="GET", url="u"), 502, id="network"),
        ],
    )
    async def test_atlas_errors_become_http_statuses(
        self, error: AtlasError, status: int
    ) -> None:
        """Each error a handler lets out maps to the status a caller can act on."""
        app: FastAPI = example.create_app(
            example.Settings(),
            verifier=WebhookVerifier(WebhookSigner.generate().jwks()),
            api_key="key",
        )

        @app.get("/raises")
        async def raises() -> None:
            raise error

        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            answer = await http.get("/raises")
        assert answer.status_code == status
        assert answer.json()["error"] == type(error).__name__
        if isinstance(error, RateLimitError):
            assert answer.headers["retry-after"] == "2"

    async def test_settings_come_from_the_environment(self) -> None:
        """The JWKS URL defaults to <base url>/webhooks/jwks.json."""
        env = {
            "ATLASCLOUD_BASE_URL": "http://127.0.0.1:8787/api/v1/",
            "PUBLIC_WEBHOOK_URL": "https://example.com/atlas/webhook",
            "ATLAS_IMAGE_MODEL": "z-image/turbo",
        }
        settings = example.Settings.from_env(env)
        assert settings.jwks_url == "http://127.0.0.1:8787/api/v1/webhooks/jwks.json"
        assert settings.public_webhook_url == env["PUBLIC_WEBHOOK_URL"]
        assert settings.model == "z-image/turbo"
        assert example.Settings.from_env({}).jwks_url == (
            "https://api.atlascloud.ai/api/v1/webhooks/jwks.json"
        )
        explicit = example.Settings.from_env({"ATLASCLOUD_JWKS_URL": "https://k/j"})
        assert explicit.jwks_url == "https://k/j"
