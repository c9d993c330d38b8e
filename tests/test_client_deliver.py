"""`AtlasClient.deliver`: the hybrid wait through the public client, on the emulator."""

from __future__ import annotations

import pytest

from atlas_async import (
    AtlasClient,
    ClientStateError,
    FixedPolicy,
    Prediction,
    PredictionStatus,
)
from atlas_async.emulator import Emulator
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

MODEL = "google/nano-banana-2/text-to-image"


async def test_deliver_resolves_a_submitted_prediction_without_a_poll() -> None:
    """A delivered terminal snapshot ends the wait before the first (slow) poll."""
    clock = FakeClock()
    emulator = Emulator(clock=clock.now, sleep=clock.sleep)
    async with (
        clock.autojump(),
        AtlasClient(
            "key",
            base_url=emulator.base_url,
            transport=emulator.transport,
            clock=clock,
        ) as client,
    ):
        future = await client.submit("image", MODEL, poll=FixedPolicy(60), prompt="a")
        done = Prediction(
            id=future.id, status=PredictionStatus.COMPLETED, outputs=("u",)
        )
        assert client.deliver(done)
        assert not client.deliver(done)
        assert await future is done
        assert clock.now() == 0.0
        assert client.statistics().delivered == 1
    assert emulator.stats.snapshot().polls == 0


async def test_deliver_outside_the_client_block_is_refused() -> None:
    """Like every call, deliver needs an open client."""
    client = AtlasClient("key", base_url="https://example.test/api/v1")
    with pytest.raises(ClientStateError):
        client.deliver(Prediction(id="p", status=PredictionStatus.COMPLETED))
