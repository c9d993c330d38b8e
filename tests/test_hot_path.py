"""What keeps the per-poll path cheap: no cyclic garbage, shared snapshots and keys."""

from __future__ import annotations

import gc
import json
import random
from collections.abc import Iterator

import httpx
import pytest

from atlas_async._client import AtlasClient
from atlas_async._core.policies import FixedPolicy
from atlas_async._wire import parse as _wire
from atlas_async.emulator import Emulator, EmulatorConfig
from atlas_async.testing import FakeClock

KEY = "sk-test-key-0123"
IMAGE = "google/nano-banana-2/text-to-image"


def poll_body(prediction_id: str) -> bytes:
    data = {"id": prediction_id, "status": "processing", "model": IMAGE, "urls": {}}
    return json.dumps({"code": 200, "message": "", "data": data}).encode()


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """Collect, then keep whatever the collector finds unreachable in cycles."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.asyncio
async def test_requests_leave_no_cyclic_garbage(saved_garbage: list[object]) -> None:
    """A request's httpx objects are freed by reference counting, not the collector."""
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=poll_body("p1"))
    )
    async with AtlasClient(KEY, transport=transport) as client:
        gc.collect()
        saved_garbage.clear()
        for _ in range(20):
            await client.get_prediction("p1")
        gc.collect()
    responses = [o for o in saved_garbage if isinstance(o, httpx.Response)]
    assert responses == []


def test_snapshots_share_their_key_strings_and_status() -> None:
    """Two parsed answers share key, status and model strings (interned)."""
    first = _wire.parse_prediction(200, {}, poll_body("a" * 32), now=0.0)
    second = _wire.parse_prediction(200, {}, poll_body("b" * 32), now=0.0)
    assert first.raw == {**second.raw, "id": "a" * 32}
    keys = {id(k) for k in first.raw} & {id(k) for k in second.raw}
    assert len(keys) == len(first.raw)
    assert first.status_raw is second.status_raw
    assert first.model is second.model
    assert first.raw["status"] is first.status_raw


@pytest.mark.asyncio
async def test_an_identical_answer_keeps_the_previous_snapshot() -> None:
    """A poll answering exactly what the last one did leaves future.latest as is."""
    clock = FakeClock()
    config = EmulatorConfig(model_latency={IMAGE: (10.0, 10.0)})
    emulator = Emulator(config, clock=clock.now, sleep=clock.sleep)
    async with (
        clock.autojump(),
        AtlasClient(
            KEY,
            base_url=emulator.base_url,
            transport=emulator.transport,
            clock=clock,
            rng=random.Random(0),
            poll=FixedPolicy(1.0),
        ) as client,
    ):
        future = await client.submit_image(IMAGE, prompt="a fox")
        await clock.sleep(1.5)  # one poll: "processing"
        after_one = future.latest
        await clock.sleep(3.0)  # three more, the same answer each time
        assert client.statistics().polls == 4
        assert future.latest is after_one
        prediction = await future
    assert prediction is not after_one
    assert prediction.outputs
