"""What keeps the per-poll path cheap: no cyclic garbage, shared snapshots and keys."""

from __future__ import annotations

import gc
import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import attrs
import httpx
import pytest

from atlas_async._client import AtlasClient
from atlas_async._core.config import resolve_config
from atlas_async._core.models import Prediction
from atlas_async._core.policies import FixedPolicy
from atlas_async._net.session import ApiSession
from atlas_async._ops.operations import Operations
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


class Memo:
    """A `PollMemo` as the scheduler keeps one per prediction."""

    def __init__(self) -> None:
        self.seen = 0
        self.latest: Prediction | None = None


@asynccontextmanager
async def operations_answering(
    answers: list[tuple[int, bytes]],
) -> AsyncIterator[Operations]:
    """Operations over a session whose polls get ``answers`` in turn."""
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        status, body = queue.pop(0)
        return httpx.Response(status, content=body)

    clock = FakeClock()
    session = ApiSession(
        resolve_config(KEY, env={}),
        transport=httpx.MockTransport(answer),
        clock=clock,
        rng=random.Random(0),
    )
    async with session:
        yield Operations(session, clock=clock, rng=random.Random(0))


@pytest.mark.asyncio
async def test_a_poll_answering_the_bytes_it_answered_last_is_not_decoded() -> None:
    """The same 2xx bytes again give back the memo's snapshot itself."""
    body = poll_body("p1")
    async with operations_answering([(200, body), (200, body)]) as ops:
        memo = Memo()
        first = await ops.fetch("p1", memo)
        assert memo.seen == hash(body)
        # Stand-in for what the scheduler keeps: were the answer decoded, an
        # equal but new snapshot would come back, not this very object.
        memo.latest = kept = attrs.evolve(first, raw={"kept": True})
        assert await ops.fetch("p1", memo) is kept


@pytest.mark.asyncio
async def test_a_changed_answer_is_read_afresh_and_remembered() -> None:
    done = json.loads(poll_body("p1"))
    done["data"].update(status="completed", outputs=["https://x/1.png"])
    changed = json.dumps(done).encode()
    async with operations_answering([(200, poll_body("p1")), (200, changed)]) as ops:
        memo = Memo()
        memo.latest = await ops.fetch("p1", memo)
        second = await ops.fetch("p1", memo)
    assert second.status == "completed"
    assert second.outputs == ("https://x/1.png",)
    assert memo.seen == hash(changed)


@pytest.mark.asyncio
async def test_the_same_bytes_in_an_error_status_are_classified_again() -> None:
    """Only a 2xx answer can be 'unchanged': a 5xx verdict is read as one."""
    failed = json.loads(poll_body("p1"))
    failed["data"].update(status="failed", error="boom")
    body = json.dumps(failed).encode()
    async with operations_answering([(200, body), (500, body)]) as ops:
        memo = Memo()
        memo.latest = await ops.fetch("p1", memo)
        memo.latest = attrs.evolve(memo.latest, raw={"kept": True})
        again = await ops.fetch("p1", memo)
    assert again is not memo.latest
    assert again.error == "boom"


@pytest.mark.asyncio
async def test_without_a_memo_every_answer_is_decoded() -> None:
    body = poll_body("p1")
    async with operations_answering([(200, body), (200, body)]) as ops:
        first = await ops.fetch("p1")
        second = await ops.fetch("p1")
    assert first == second
    assert first is not second


@pytest.mark.asyncio
async def test_a_delivery_makes_the_next_identical_poll_answer_count_again() -> None:
    """After a webhook's snapshot, the poll's unchanged bytes are read afresh."""
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
        polled = future.latest
        assert polled is not None
        delivered = attrs.evolve(polled, raw={"from": "a webhook"})
        assert client.deliver(delivered) is False  # not terminal: polling goes on
        assert future.latest is delivered
        await clock.sleep(1.0)  # the same bytes as before the delivery
        assert future.latest is not delivered
        assert future.latest == polled
        await future


@pytest.mark.asyncio
async def test_default_settings_take_more_than_a_thousand_predictions_in_flight() -> (
    None
):
    """No fixed cap of the client's own: submit 1,001 does not wait for a slot."""
    clock = FakeClock()
    config = EmulatorConfig(model_latency={IMAGE: (3600.0, 3600.0)})
    emulator = Emulator(config, clock=clock.now, sleep=clock.sleep)
    async with (
        clock.autojump(),
        AtlasClient(
            KEY,
            base_url=emulator.base_url,
            transport=emulator.transport,
            clock=clock,
            rng=random.Random(0),
        ) as client,
    ):
        started = clock.now()
        futures = [
            await client.submit_image(IMAGE, prompt=f"fox {i}") for i in range(1_200)
        ]
        assert clock.now() == started  # no submit waited
        assert client.statistics().in_flight == 1_200
        assert client.statistics().waited_for_slots == 0
        for future in futures:
            future.cancel()


def test_a_snapshot_shares_its_urls_with_its_raw_object() -> None:
    """One ``urls`` object per snapshot, not a copy beside the raw one."""
    body = json.dumps(
        {
            "code": 200,
            "data": {"id": "p1", "status": "processing", "urls": {"get": "u"}},
        }
    ).encode()
    prediction = _wire.parse_prediction(200, {}, body, now=0.0)
    assert prediction.urls is prediction.raw["urls"]
    assert prediction.urls == {"get": "u"}


def test_urls_with_values_that_are_not_strings_keep_only_the_strings() -> None:
    body = json.dumps(
        {"code": 200, "data": {"id": "p1", "urls": {"get": "u", "n": 3}}}
    ).encode()
    prediction = _wire.parse_prediction(200, {}, body, now=0.0)
    assert prediction.urls == {"get": "u"}
    assert prediction.raw["urls"] == {"get": "u", "n": 3}
