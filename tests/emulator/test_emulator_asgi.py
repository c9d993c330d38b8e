"""The raw ASGI adapter, driven with hand-made ASGI messages."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from atlas_async.emulator import Emulator, EmulatorConfig, Faults
from atlas_async.emulator._adapters import _drop
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

Message = MutableMapping[str, Any]


class Channel:
    """Feeds scripted messages to the app and records what it sends."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def test_lifespan_is_acknowledged() -> None:
    """Lifespan startup and shutdown complete, for servers that send them."""
    channel = Channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    await Emulator().app({"type": "lifespan"}, channel.receive, channel.send)
    assert [m["type"] for m in channel.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_websocket_scopes_are_ignored() -> None:
    """A websocket scope gets no answer at all."""
    channel = Channel()
    await Emulator().app({"type": "websocket"}, channel.receive, channel.send)
    assert channel.sent == []


async def test_client_gone_before_the_body_gets_no_answer() -> None:
    """An http.disconnect while reading the body ends the request quietly."""
    channel = Channel({"type": "http.disconnect"})
    scope = {"type": "http", "method": "POST", "path": "/api/v1/models", "headers": []}
    await Emulator().app(scope, channel.receive, channel.send)
    assert channel.sent == []


async def test_chunked_body_without_host_header() -> None:
    """A body in several chunks is joined; without Host, urls use the server."""
    body = json.dumps({"model": "z-image/turbo", "prompt": "a"}).encode()
    channel = Channel(
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/model/generateImage",
        "headers": [(b"authorization", b"Bearer k")],
        "server": ("127.0.0.1", 9999),
        "client": ("127.0.0.1", 5555),
    }
    await Emulator().app(scope, channel.receive, channel.send)
    assert channel.sent[0]["status"] == 200
    data = json.loads(channel.sent[1]["body"])["data"]
    assert data["urls"]["get"].startswith("http://127.0.0.1:9999/api/v1/")


async def test_slow_answers_sleep_in_the_asgi_app_too() -> None:
    """The ASGI app waits out slow answers with the emulator's sleep."""
    clock = FakeClock()
    config = EmulatorConfig(
        faults=Faults(slow_rate=1.0, slow_seconds=4, targets=["models"])
    )
    emulator = Emulator(config, clock=clock.now, sleep=clock.sleep)
    channel = Channel({"type": "http.request", "body": b""})
    scope = {"type": "http", "method": "GET", "path": "/api/v1/models", "headers": []}
    async with clock.autojump():
        await emulator.app(scope, channel.receive, channel.send)
    assert clock.now() == 4.0
    assert channel.sent[0]["status"] == 200


async def test_drop_aborts_the_transport_and_marks_the_cycle() -> None:
    """Under uvicorn a drop aborts the socket and marks the cycle disconnected."""

    class Transport:
        aborted = False

        def abort(self) -> None:
            self.aborted = True

    class Cycle:
        def __init__(self) -> None:
            self.transport = Transport()
            self.disconnected = False

        async def send(self, message: Message) -> None:
            raise AssertionError("a dropped request sends nothing")  # pragma: no cover

    cycle = Cycle()
    await _drop(cycle.send)
    assert cycle.transport.aborted
    assert cycle.disconnected


async def test_fixtures_give_an_emulator_on_the_fake_clock(
    atlas_emulator: Emulator, fake_clock: FakeClock
) -> None:
    """The atlas_emulator fixture runs on the fake_clock fixture's time."""
    async with atlas_emulator.client() as http:
        response = await http.post(
            "/model/generateImage", json={"model": "z-image/turbo", "prompt": "a"}
        )
        prediction_id = response.json()["data"]["id"]
        fake_clock.advance(10)
        response = await http.get(f"/model/prediction/{prediction_id}")
    assert response.json()["data"]["status"] == "completed"
    assert repr(atlas_emulator) == "Emulator(seed=0, time_scale=1)"
