"""
The public prediction calls against the in-process emulator on a FakeClock:
submit_*, generate_*, attach, as_completed and statistics, under asyncio and
(one end-to-end generation) trio.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import sniffio

from atlas_async._client import AtlasClient
from atlas_async._core.errors import (
    InsufficientBalanceError,
    InvalidRequestError,
    PredictionFailedError,
    PredictionTimeoutError,
)
from atlas_async._core.models import Kind, PredictionStatus
from atlas_async._core.policies import FixedPolicy
from atlas_async._ops.futures import PredictionFuture
from atlas_async.emulator import Emulator, EmulatorConfig, Faults
from atlas_async.testing import FakeClock

KEY = "sk-test-key-0123"
IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
I2V = "kwaivgi/kling-v3.0-std/image-to-video"
AUDIO = "bytedance/seed-audio-1.0"


@asynccontextmanager
async def opened(
    config: EmulatorConfig | None = None, *, key: str = KEY, **options: object
) -> AsyncIterator[tuple[AtlasClient, Emulator, FakeClock]]:
    """A client wired to an in-process emulator, both on one autojumping clock."""
    clock = FakeClock()
    emulator = Emulator(config, clock=clock.now, sleep=clock.sleep)
    async with (
        clock.autojump(),
        AtlasClient(
            key,
            base_url=emulator.base_url,
            transport=emulator.transport,
            clock=clock,
            rng=random.Random(0),
            **options,  # type: ignore[arg-type]
        ) as client,
    ):
        yield client, emulator, clock


@pytest.mark.asyncio
class TestSubmitAndGenerate:
    async def test_submit_image_future_resolves_to_the_completed_prediction(
        self,
    ) -> None:
        """submit_image returns at once; awaiting the future gives the outputs."""
        async with opened(EmulatorConfig(seed=1)) as (client, emulator, clock):
            future = await client.submit_image(IMAGE, prompt="a fox", num_images=2)
            assert future.kind is Kind.IMAGE
            assert future.model == IMAGE
            assert not future.done()
            prediction = await future
            record = emulator.prediction(future.id)
            assert record is not None
            assert clock.now() >= record.ready_at
        assert prediction.status is PredictionStatus.COMPLETED
        assert len(prediction.outputs) == 2
        assert future.result() is prediction
        assert emulator.stats.snapshot().predictions_created == 1

    async def test_generate_video_and_audio_by_kind(self) -> None:
        """generate_video/audio submit to their endpoints and wait for the result."""
        async with opened(EmulatorConfig(seed=2)) as (client, emulator, _):
            video = await client.generate_video(I2V, image="https://x/cat.png")
            audio = await client.generate_audio(AUDIO, text="hello")
        assert video.status is audio.status is PredictionStatus.COMPLETED
        assert video.outputs[0].endswith(".mp4")
        assert audio.outputs[0].endswith(".wav")
        endpoints = emulator.stats.snapshot().requests_by_endpoint
        assert endpoints["POST /api/v1/model/generateVideo"] == 1
        assert endpoints["POST /api/v1/model/generateAudio"] == 1

    async def test_submit_takes_the_kind_as_a_string_and_params_as_a_mapping(
        self,
    ) -> None:
        """submit('video', ...) accepts a params mapping for names like timeout."""
        async with opened() as (client, emulator, _):
            future = await client.submit(
                "video", VIDEO, params={"prompt": "waves", "timeout": 7}, duration=5
            )
            prediction = await future
            record = emulator.prediction(future.id)
        assert future.kind is Kind.VIDEO
        assert prediction.status is PredictionStatus.COMPLETED
        assert record is not None
        assert record.params == {
            "model": VIDEO,
            "prompt": "waves",
            "timeout": 7,
            "duration": 5,
        }

    @pytest.mark.parametrize(
        ("marker", "code"),
        [
            pytest.param("[emulator:fail]", 1000, id="failed"),
            pytest.param("[emulator:moderate]", 1039, id="moderated"),
        ],
    )
    async def test_failed_prediction_raises_with_its_code(
        self, marker: str, code: int
    ) -> None:
        """A prediction the server fails raises PredictionFailedError with its code."""
        async with opened() as (client, _, _):
            with pytest.raises(PredictionFailedError) as caught:
                await client.generate_image(IMAGE, prompt=f"a fox {marker}")
        assert caught.value.error_code == code
        assert caught.value.prediction_id is not None
        assert client.statistics().failed == 1

    async def test_refused_submit_raises_and_registers_nothing(self) -> None:
        """A 402 or 400 on submit raises at once and leaves nothing in flight."""
        config = EmulatorConfig(no_balance_keys=["poor"])
        async with opened(config, key="poor") as (client, emulator, _):
            with pytest.raises(InsufficientBalanceError):
                await client.submit_image(IMAGE, prompt="a fox")
            with pytest.raises(InvalidRequestError):
                await client.submit_image("no/such-model", prompt="a fox")
            assert client.statistics().in_flight == 0
        assert emulator.stats.snapshot().predictions_created == 0

    async def test_deadline_raises_timeout_and_attach_resumes(self) -> None:
        """A deadline shorter than the job raises; attach then follows it to the end."""
        config = EmulatorConfig(model_latency={IMAGE: (9.0, 9.0)})
        async with opened(config) as (client, emulator, clock):
            with pytest.raises(PredictionTimeoutError) as caught:
                await client.generate_image(IMAGE, prompt="a fox", timeout=5)
            assert 5.0 <= clock.now() < 9.0
            error = caught.value
            assert error.last_status is PredictionStatus.PROCESSING
            assert error.prediction_id is not None
            prediction = await client.attach(error.prediction_id, kind="image")
            assert clock.now() >= 9.0
        assert prediction.status is PredictionStatus.COMPLETED
        assert emulator.stats.snapshot().predictions_created == 1


@pytest.mark.asyncio
class TestAttach:
    async def test_attach_follows_a_prediction_submitted_elsewhere(self) -> None:
        """An id created by another client resolves through attach; twice is once."""
        async with opened(EmulatorConfig(seed=4)) as (client, emulator, _):
            async with emulator.client(KEY) as other:
                answer = await other.post(
                    "/model/generateVideo", json={"model": VIDEO, "prompt": "waves"}
                )
            prediction_id = answer.json()["data"]["id"]
            future = client.attach(prediction_id, kind=Kind.VIDEO, model=VIDEO)
            assert client.attach(prediction_id) is future
            prediction = await future
        assert prediction.id == prediction_id
        assert prediction.status is PredictionStatus.COMPLETED
        stats = client.statistics()
        assert (stats.attached, stats.submitted, stats.completed) == (1, 0, 1)

    async def test_attach_polls_at_once_when_the_job_is_already_done(self) -> None:
        """Attaching a finished prediction costs exactly one poll."""
        async with opened() as (client, emulator, clock):
            async with emulator.client(KEY) as other:
                answer = await other.post(
                    "/model/generateImage", json={"model": IMAGE, "prompt": "x"}
                )
            clock.advance(60.0)
            prediction = await client.attach(answer.json()["data"]["id"])
        assert prediction.status is PredictionStatus.COMPLETED
        assert emulator.stats.snapshot().polls == 1


@pytest.mark.asyncio
class TestAsCompletedAndStatistics:
    async def test_as_completed_yields_in_completion_order(self) -> None:
        """Futures come out of as_completed in the order their jobs finish."""
        fast, middle, slow = "z-image/turbo", "bytedance/seedream-v4", IMAGE
        config = EmulatorConfig(
            model_latency={fast: (2.0, 2.0), middle: (5.0, 5.0), slow: (8.0, 8.0)}
        )
        async with opened(config) as (client, _, _):
            futures = [
                await client.submit_image(model, prompt="a fox")
                for model in (slow, fast, middle)
            ]
            order = [future.model async for future in client.as_completed(futures)]
        assert order == [fast, middle, slow]

    async def test_as_completed_yields_failures_too(self) -> None:
        """A failed prediction is yielded like any other; its exception is set."""
        async with opened() as (client, _, _):
            futures = [
                await client.submit_image(IMAGE, prompt=prompt)
                for prompt in ("ok", "[emulator:fail]")
            ]
            seen: list[PredictionFuture] = [
                future async for future in client.as_completed(futures)
            ]
        assert sorted(f.exception() is None for f in seen) == [False, True]

    async def test_statistics_match_the_emulators_accounting(self) -> None:
        """Requests, polls and outcomes in statistics() match the server's count."""
        async with opened(EmulatorConfig(seed=6)) as (client, emulator, _):
            futures = [
                await client.submit_image(IMAGE, prompt=f"fox {i}") for i in range(5)
            ]
            futures.append(await client.submit_image(IMAGE, prompt="[emulator:fail]"))
            async for _ in client.as_completed(futures):
                pass
            stats = client.statistics()
        server = emulator.stats.snapshot()
        assert stats.submitted == 6
        assert (stats.completed, stats.failed, stats.in_flight) == (5, 1, 0)
        assert stats.polls == server.polls
        assert stats.requests_sent == server.requests
        assert stats.retries == 0
        assert server.duplicate_submissions == 0
        # Statistics outlive the client: the last figures stay readable.
        assert client.statistics() == stats

    async def test_rate_limited_account_slows_down_without_duplicates(self) -> None:
        """Under a 429 limit every prediction still completes, each submitted once."""
        config = EmulatorConfig(seed=7, faults=Faults(rps=4.0))
        async with opened(config, poll=FixedPolicy(0.5)) as (client, emulator, _):
            futures = [
                await client.submit_image(IMAGE, prompt=f"fox {i}") for i in range(12)
            ]
            results = [await future for future in futures]
            stats = client.statistics()
        assert all(p.status is PredictionStatus.COMPLETED for p in results)
        assert stats.rate_limited > 0
        server = emulator.stats.snapshot()
        assert server.faults["rate_limit"] == stats.rate_limited
        assert server.predictions_created == 12
        assert server.duplicate_submissions == 0

    async def test_max_in_flight_makes_further_submits_wait(self) -> None:
        """With max_in_flight=2 a third submit waits until one prediction ends."""
        config = EmulatorConfig(model_latency={IMAGE: (4.0, 4.0)})
        async with opened(config, max_in_flight=2) as (client, _, clock):
            first = await client.submit_image(IMAGE, prompt="1")
            second = await client.submit_image(IMAGE, prompt="2")
            third = await client.submit_image(IMAGE, prompt="3")
            assert first.done() or second.done()
            assert clock.now() >= 4.0
            await third
        assert client.statistics().completed == 3


class TestUnderTrio:
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.mark.anyio
    async def test_generate_image_end_to_end_under_trio(self) -> None:
        """Under trio the scheduler submits, polls and resolves a generation."""
        assert sniffio.current_async_library() == "trio"
        async with opened(EmulatorConfig(seed=8)) as (client, emulator, _):
            assert client.transport_name == "custom"
            prediction = await client.generate_image(IMAGE, prompt="a fox")
            stats = client.statistics()
        assert prediction.status is PredictionStatus.COMPLETED
        assert prediction.outputs
        server = emulator.stats.snapshot()
        assert server.predictions_created == 1
        assert stats.polls == server.polls >= 1
