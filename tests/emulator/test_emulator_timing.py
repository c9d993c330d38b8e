"""Latency, time scale and seeded determinism, driven by a FakeClock (no sleeping)."""

from __future__ import annotations

import pytest

from atlas_async.emulator import EmulatorConfig, Faults

from .conftest import WireFactory

pytestmark = pytest.mark.asyncio

IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
I2V = "kwaivgi/kling-v3.0-std/image-to-video"
EDIT = "google/nano-banana/edit"
AUDIO = "bytedance/seed-audio-1.0"


class TestLatency:
    async def test_time_scale_divides_the_latency(
        self, in_process: WireFactory
    ) -> None:
        """At time_scale 10 an image (2-10 s) is done by clock 1.0 and not at 0.19."""
        async with in_process(EmulatorConfig(time_scale=10)) as wire:
            ids = [await wire.submit(model=IMAGE, prompt=str(i)) for i in range(20)]
            wire.clock.advance(0.19)
            assert {(await wire.poll(i))["status"] for i in ids} == {"processing"}
            wire.clock.advance(0.81)
            assert {(await wire.poll(i))["status"] for i in ids} == {"completed"}

    async def test_model_override_sets_an_exact_latency(
        self, in_process: WireFactory
    ) -> None:
        """A per-model (min, max) override wins over the kind's row."""
        config = EmulatorConfig(model_latency={IMAGE: (3.0, 3.0)})
        async with in_process(config) as wire:
            prediction_id = await wire.submit(model=IMAGE, prompt="a")
            wire.clock.advance(2.999)
            assert (await wire.poll(prediction_id))["status"] == "processing"
            wire.clock.advance(0.001)
            data = await wire.poll(prediction_id)
            assert data["status"] == "completed"
            assert data["metrics"] == {"predict_time": 3.0}

    @pytest.mark.parametrize(
        ("path", "body", "low", "high"),
        [
            pytest.param(
                "/model/generateImage",
                {"model": IMAGE, "prompt": "a"},
                2,
                10,
                id="image",
            ),
            pytest.param(
                "/model/generateVideo",
                {"model": VIDEO, "prompt": "a"},
                30,
                180,
                id="video",
            ),
            pytest.param(
                "/model/generateVideo", {"model": I2V, "image": "u"}, 30, 180, id="i2v"
            ),
            pytest.param(
                "/model/generateImage", {"model": EDIT, "image": "u"}, 5, 15, id="tool"
            ),
            pytest.param(
                "/model/generateAudio",
                {"model": AUDIO, "text": "a"},
                10,
                60,
                id="audio",
            ),
        ],
    )
    async def test_default_latencies_follow_the_guide(
        self,
        in_process: WireFactory,
        path: str,
        body: dict[str, object],
        low: float,
        high: float,
    ) -> None:
        """Each kind's latency is drawn from docs/wire.md, "Typical durations"."""
        async with in_process(EmulatorConfig(seed=5)) as wire:
            for _ in range(30):
                record = wire.emulator.prediction(await wire.submit(path, **body))
                assert record is not None
                assert low <= record.predict_time <= high

    async def test_latency_row_override(self, in_process: WireFactory) -> None:
        """latency={"video": (1, 1)} changes the video row only."""
        config = EmulatorConfig(latency={"video": (1.0, 1.0)})
        async with in_process(config) as wire:
            video = await wire.submit("/model/generateVideo", model=VIDEO, prompt="a")
            i2v = await wire.submit("/model/generateVideo", model=I2V, image="u")
            wire.clock.advance(1.0)
            assert (await wire.poll(video))["status"] == "completed"
            assert (await wire.poll(i2v))["status"] == "processing"

    async def test_created_at_follows_the_epoch_and_clock(
        self, in_process: WireFactory
    ) -> None:
        """created_at is epoch + clock time since start, in ISO 8601 with Z."""
        async with in_process(EmulatorConfig(epoch=0.0)) as wire:
            wire.clock.advance(1.5)
            prediction_id = await wire.submit(model=IMAGE, prompt="a")
            assert (await wire.poll(prediction_id))[
                "created_at"
            ] == "1970-01-01T00:00:01.500Z"


class TestDeterminism:
    async def _run(
        self, factory: WireFactory, config: EmulatorConfig
    ) -> list[tuple[str, float]]:
        async with factory(config) as wire:
            out = []
            for i in range(5):
                prediction_id = await wire.submit(model=IMAGE, prompt=str(i))
                record = wire.emulator.prediction(prediction_id)
                assert record is not None
                out.append((prediction_id, record.predict_time))
            return out

    async def test_same_seed_same_ids_and_latencies(
        self, in_process: WireFactory
    ) -> None:
        """Two runs with one seed give the same ids and latencies."""
        first = await self._run(in_process, EmulatorConfig(seed=42))
        assert first == await self._run(in_process, EmulatorConfig(seed=42))
        assert first != await self._run(in_process, EmulatorConfig(seed=43))

    async def test_failure_rate_does_not_shift_ids(
        self, in_process: WireFactory
    ) -> None:
        """Every creation draws the same numbers, so error_rate leaves ids alone."""
        plain = await self._run(in_process, EmulatorConfig(seed=1))
        failing = EmulatorConfig(seed=1, faults=Faults(error_rate=0.5))
        assert await self._run(in_process, failing) == plain

    async def test_uploads_do_not_shift_ids(self, in_process: WireFactory) -> None:
        """Upload names come from a counter, not the seeded stream."""
        async with in_process(EmulatorConfig(seed=2)) as wire:
            await wire.http.post("/model/uploadMedia", files={"file": ("a.png", b"x")})
            with_upload = await wire.submit(model=IMAGE, prompt="a")
        async with in_process(EmulatorConfig(seed=2)) as wire:
            assert await wire.submit(model=IMAGE, prompt="a") == with_upload
