"""
Flow control over a real loopback socket: a model limited to a few predictions
in flight, and image jobs on another model, through the default client. Nothing
fails, the limit is never overrun, and the refusals stay a handful.
"""

from __future__ import annotations

import anyio
import pytest

from atlas_async import AtlasClient, FixedPolicy, Prediction, PredictionStatus
from atlas_async.emulator import EmulatorConfig, Faults, serve

pytestmark = [pytest.mark.e2e]

KEY = "sk-limits-test-key"
VIDEO = "bytedance/seedance-2.0/text-to-video"
IMAGE = "google/nano-banana-2/text-to-image"


@pytest.mark.asyncio
async def test_videos_on_a_limited_model_and_images_beside_them_all_complete() -> None:
    """20 videos on a model limited to 4 in flight and 10 images on a free
    model: every one completes, the video model never has more than 4
    unfinished, and its refusals are a few (the first, then one per probe)."""
    config = EmulatorConfig(
        seed=11,
        time_scale=200,  # a 30-60 s video takes 0.15-0.3 s
        model_latency={VIDEO: (30.0, 60.0), IMAGE: (2.0, 4.0)},
        faults=Faults(max_in_flight_per_model={VIDEO: 4}),
    )
    results: list[Prediction] = []
    async with (
        serve(config) as emulator,
        AtlasClient(KEY, base_url=emulator.base_url, poll=FixedPolicy(0.02)) as client,
    ):

        async def one(model: str, index: int) -> None:
            generate = (
                client.generate_video if model == VIDEO else client.generate_image
            )
            results.append(await generate(model, prompt=f"{model} {index}", timeout=60))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for index in range(20):
                    tg.start_soon(one, VIDEO, index)
                for index in range(10):
                    tg.start_soon(one, IMAGE, index)
        stats = client.statistics()
    server = emulator.stats.snapshot()
    assert len(results) == 30
    assert {r.status for r in results} == {PredictionStatus.COMPLETED}
    assert server.peak_in_flight_by_model[VIDEO] <= 4
    refused = server.refusals["model_in_flight"]
    assert refused == stats.window_refusals
    # At first contact at most FIRST_CONTACT (4) are out; then one per probe.
    assert 1 <= refused <= 4 + 1 + stats.models[VIDEO].probes
    assert stats.rate_refusals == 0
    assert server.predictions_created == 30
