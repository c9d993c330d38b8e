"""
The example app under a real uvicorn server on loopback, against the emulator
over a socket: signed webhooks travel over HTTP both ways, and the app's
callers are plain httpx clients.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import httpx
import pytest
from _examples import load_example
from fastapi import FastAPI

from atlas_async import AtlasClient, FixedPolicy, PredictionStatus
from atlas_async.emulator import EmulatorConfig, RunningEmulator, serve
from atlas_async.emulator._uvicorn import serve_asgi
from atlas_async.webhooks import WebhookSigner, build_body, event_type_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

MODEL = "google/nano-banana-2/text-to-image"
SLOW = "z-image/turbo"  # never ends within a test
LATENCY = {MODEL: (0.3, 0.3), SLOW: (10_000.0, 10_000.0)}


example = load_example("fastapi_app.py", "fastapi_app_e2e")


@attrs.define
class Worker:
    """One uvicorn "worker": the example app on its own port, with its client."""

    app: FastAPI
    http: httpx.AsyncClient

    @property
    def client(self) -> AtlasClient:
        """This worker's AtlasClient (valid while the worker runs)."""
        client: AtlasClient = self.app.state.atlas_client
        return client


@asynccontextmanager
async def worker(
    emu: RunningEmulator, *, webhooks: bool = True, **client: Any
) -> AsyncIterator[Worker]:
    """Serve the example app on a free port; webhooks point at that port."""
    settings = example.Settings(jwks_url=emu.jwks_url, fallback_poll=FixedPolicy(60))
    app = example.create_app(settings, api_key="key", base_url=emu.base_url, **client)
    async with serve_asgi(app, lifespan=True, name="example-app") as port:
        origin = f"http://127.0.0.1:{port}"
        if webhooks:
            hook = f"{origin}/atlas/webhook"
            app.state.settings = attrs.evolve(settings, public_webhook_url=hook)
        async with httpx.AsyncClient(base_url=origin, timeout=30) as http:
            yield Worker(app, http)


def emulator(**options: Any) -> Any:
    """The emulator on a socket, with short image latencies."""
    return serve(EmulatorConfig(model_latency=LATENCY, **options))


async def submit_and_wait(http: httpx.AsyncClient, prompt: str) -> httpx.Response:
    """POST /images, then wait for it on the same worker."""
    created = await http.post("/images", json={"prompt": prompt})
    assert created.status_code == 202, created.text
    pid = created.json()["id"]
    return await http.get(f"/predictions/{pid}/wait", params={"timeout": 20})


async def until(condition: Any, seconds: float = 5.0) -> None:
    """Wait (bounded) until ``condition()`` holds: the app runs in this loop,
    and the conditions read its state, which has no event to wait on."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_two_hundred_concurrent_submits_and_waits_all_resolve() -> None:
    """200 callers submit and wait at once; every wait ends with its outputs,
    each prediction is delivered once, and nothing is left in flight."""
    # One client per caller, as 200 independent callers would be. They share
    # one TLS context: building one per client costs ~25 ms of CA loading.
    tls = ssl.create_default_context()
    async with emulator() as emu, worker(emu) as app:
        answers: list[httpx.Response] = []

        async def one(index: int) -> None:
            async with httpx.AsyncClient(
                base_url=app.http.base_url, timeout=30, verify=tls
            ) as http:
                answers.append(await submit_and_wait(http, f"fox {index}"))

        async with anyio.create_task_group() as tg:
            for index in range(200):
                tg.start_soon(one, index)
        stats = app.client.statistics()
    assert [a.status_code for a in answers] == [200] * 200
    assert {a.json()["status"] for a in answers} == {"completed"}
    assert len({a.json()["id"] for a in answers}) == 200
    assert (stats.submitted, stats.in_flight) == (200, 0)
    snapshot = emu.stats.snapshot()
    assert (snapshot.predictions_created, snapshot.webhooks_delivered) == (200, 200)
    assert snapshot.webhook_failures == 0


async def test_webhooks_end_the_waits_before_any_poll() -> None:
    """With a 60 s fallback poll, only the webhook can end these waits: no poll
    reaches the emulator, and every wait returns completed."""
    async with emulator() as emu, worker(emu) as app:
        answers: list[httpx.Response] = []

        async def one(index: int) -> None:
            answers.append(await submit_and_wait(app.http, f"fox {index}"))

        async with anyio.create_task_group() as tg:
            for index in range(5):
                tg.start_soon(one, index)
        delivered = app.client.statistics().delivered
    assert [a.json()["status"] for a in answers] == ["completed"] * 5
    stats = emu.stats.snapshot()
    assert (stats.polls, stats.webhooks_delivered, delivered) == (0, 5, 5)


async def test_a_waiter_that_hangs_up_leaves_no_task_and_no_polling() -> None:
    """When the caller of /wait disconnects, the handler returns, the prediction
    is no longer followed, and the task count is back where it was."""
    async with emulator() as emu, worker(emu) as app:
        headers = {"Authorization": "Bearer key"}
        async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as atlas:
            created = await atlas.post(
                "/model/generateImage", json={"model": SLOW, "prompt": "a"}
            )
        pid = created.json()["data"]["id"]
        client = app.client
        before = len(asyncio.all_tasks())
        waiting = asyncio.create_task(
            app.http.get(f"/predictions/{pid}/wait", params={"timeout": 60})
        )
        await until(lambda: client.statistics().in_flight == 1)
        waiting.cancel()  # the caller goes away: httpx closes the connection
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await until(
            lambda: (
                client.statistics().in_flight == 0
                and len(asyncio.all_tasks()) == before
            )
        )
        polls = emu.stats.snapshot().polls_for(pid)
        await asyncio.sleep(0.2)
        assert emu.stats.snapshot().polls_for(pid) == polls
        assert client.statistics().cancelled == 1


async def test_a_forged_delivery_is_401_and_a_replay_is_ignored() -> None:
    """Over HTTP, with keys from the emulator's JWKS: a forgery resolves nothing,
    the real delivery ends the wait, and sending it again changes nothing."""
    async with emulator() as emu, worker(emu, webhooks=False) as app:
        created = await app.http.post("/images", json={"model": SLOW, "prompt": "a"})
        pid = created.json()["id"]
        body = build_body(
            session_id=pid,
            event_type=event_type_for("image"),
            payload={"status": "completed", "outputs": ["https://cdn.test/a.png"]},
        )

        genuine = emu.emulator.signer.sign(
            body,
            webhook_id=pid,
            event_type="image.task.terminal",
            timestamp=time.time(),
        )
        forged = WebhookSigner.generate(kid=emu.emulator.signer.kid).sign(
            body,
            webhook_id=pid,
            event_type="image.task.terminal",
            timestamp=time.time(),
        )
        waited: list[httpx.Response] = []

        async def wait() -> None:
            waited.append(await app.http.get(f"/predictions/{pid}/wait"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            refused = await app.http.post(
                "/atlas/webhook", headers=forged, content=body
            )
            assert app.client.statistics().in_flight == 1
            first = await app.http.post("/atlas/webhook", headers=genuine, content=body)
            replay = await app.http.post(
                "/atlas/webhook", headers=genuine, content=body
            )
        assert (refused.status_code, refused.json()) == (
            401,
            {"status": "bad_signature"},
        )
        assert [first.json(), replay.json()] == [
            {"status": "resolved"},
            {"status": "replay"},
        ]
        assert waited[0].json()["outputs"] == ["https://cdn.test/a.png"]
        assert emu.stats.snapshot().polls_for(pid) == 0


async def test_events_stream_status_changes_over_sse() -> None:
    """GET /events over a socket: processing, completed, then done."""
    async with (
        emulator() as emu,
        worker(emu, webhooks=False, poll=FixedPolicy(0.05)) as app,
    ):
        created = await app.http.post("/images", json={"prompt": "a"})
        pid = created.json()["id"]
        async with app.http.stream("GET", f"/predictions/{pid}/events") as stream:
            text = "".join([chunk async for chunk in stream.aiter_text()])
    blocks = [block.split("\n") for block in text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in blocks]
    statuses = [
        json.loads(lines[1].removeprefix("data: "))["status"] for lines in blocks
    ]
    assert names[-1] == "done"
    assert statuses[-2:] == ["completed", "completed"]
    assert set(names[:-1]) == {"status"}


async def test_any_worker_answers_for_any_id() -> None:
    """Submitted on worker A (whose webhook it gets), waited for and read on
    worker B, which has never seen it: B attaches and polls Atlas."""
    async with (
        emulator() as emu,
        worker(emu) as a,
        worker(emu, webhooks=False, poll=FixedPolicy(0.05)) as b,
    ):
        created = await a.http.post("/images", json={"prompt": "a"})
        pid = created.json()["id"]
        waited = await b.http.get(f"/predictions/{pid}/wait", params={"timeout": 10})
        read = await b.http.get(f"/predictions/{pid}")
        await until(lambda: a.client.statistics().delivered == 1)
    assert waited.json()["status"] == read.json()["status"] == "completed"
    assert emu.stats.snapshot().polls_for(pid) >= 2  # B's waits and its read
    assert PredictionStatus(read.json()["status"]).is_success


async def test_a_failing_startup_raises_instead_of_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """If the app's lifespan fails (a malformed key), the server never listens
    and serving it raises; the cause is in uvicorn's log."""
    app = example.create_app(example.Settings(), api_key="bad\nkey")
    with pytest.raises(RuntimeError, match="could not start"):
        async with serve_asgi(app, lifespan=True):
            raise AssertionError("unreachable")
    assert "ConfigurationError" in caplog.text
