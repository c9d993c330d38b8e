"""
Several clients of one account sharing its limits through a real
``redis-server`` (the ``redis_server`` fixture): a known limit is shared, not
multiplied; what one client learns, every client follows; the account's keys
are a hash of the API key; a lost server costs pace, never a prediction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pytest
import redis.asyncio as aioredis

from atlas_async import (
    AtlasClient,
    ConfigurationError,
    FixedPolicy,
    Limits,
    NotFoundError,
    Prediction,
    PredictionStatus,
    RedisCoordinator,
    TransportError,
)
from atlas_async.emulator import EmulatorConfig, Faults, RunningEmulator, serve

from .conftest import RedisServer

pytestmark = [pytest.mark.asyncio]

KEY = "sk-coordinator-test-key"
VIDEO = "bytedance/seedance-2.0/text-to-video"
IMAGE = "google/nano-banana-2/text-to-image"


@asynccontextmanager
async def clients(
    emulator: RunningEmulator, count: int, coordinator: object, **options: object
) -> AsyncIterator[list[AtlasClient]]:
    """``count`` clients of one account, open together."""
    async with AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(
                AtlasClient(
                    KEY,
                    base_url=emulator.base_url,
                    poll=FixedPolicy(0.02),
                    coordinator=coordinator,
                    **options,  # type: ignore[arg-type]
                )
            )
            for _ in range(count)
        ]
        yield opened


async def run_videos(group: list[AtlasClient], jobs: int) -> list[Prediction]:
    results: list[Prediction] = []

    async def one(client: AtlasClient, index: int) -> None:
        results.append(
            await client.generate_video(VIDEO, prompt=f"video {index}", timeout=60)
        )

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(jobs):
                tg.start_soon(one, group[index % len(group)], index)
    return results


async def poke(client: AtlasClient, index: int) -> None:
    """One request that counts against the rate (an unknown id: 404)."""
    with contextlib.suppress(NotFoundError):
        await client.get_prediction(f"p{index}")


def video_config(limit: int) -> EmulatorConfig:
    return EmulatorConfig(
        seed=3,
        time_scale=200,  # a 30-60 s video takes 0.15-0.3 s
        model_latency={VIDEO: (30.0, 60.0)},
        faults=Faults(max_in_flight_per_model={VIDEO: limit}),
    )


async def test_a_known_model_limit_is_shared_by_the_clients_not_multiplied(
    redis_server: RedisServer,
) -> None:
    """Three clients each told the model allows 3: together they never hold
    more than 3, so the server refuses none of their 24 submits."""
    limits = Limits(in_flight={VIDEO: 3})
    async with (
        serve(video_config(3)) as emulator,
        clients(emulator, 3, redis_server.url, limits=limits) as group,
    ):
        results = await run_videos(group, 24)
    server = emulator.stats.snapshot()
    assert {r.status for r in results} == {PredictionStatus.COMPLETED}
    assert len(results) == server.predictions_created == 24
    assert server.refusals["model_in_flight"] == 0
    assert server.peak_in_flight_by_model[VIDEO] == 3


async def test_without_a_coordinator_the_same_clients_overrun_the_limit() -> None:
    """The baseline of the test above: each client alone fills the model's 3
    places, so the server refuses some of their submits."""
    limits = Limits(in_flight={VIDEO: 3})
    async with (
        serve(video_config(3)) as emulator,
        clients(emulator, 3, None, limits=limits) as group,
    ):
        results = await run_videos(group, 24)
    server = emulator.stats.snapshot()
    assert len(results) == 24
    assert server.refusals["model_in_flight"] > 0


async def test_a_window_learned_by_one_client_holds_for_all(
    redis_server: RedisServer,
) -> None:
    """With the limit unknown, the shared window is learned from the refusals
    and bounds every client: all complete, none is created twice."""
    async with (
        serve(video_config(4)) as emulator,
        clients(emulator, 3, redis_server.url) as group,
    ):
        results = await run_videos(group, 30)
        figures = [c.statistics().models[VIDEO] for c in group]
    server = emulator.stats.snapshot()
    assert {r.status for r in results} == {PredictionStatus.COMPLETED}
    assert server.predictions_created == 30
    assert server.peak_in_flight_by_model[VIDEO] == 4
    assert sum(f.refusals for f in figures) == server.refusals["model_in_flight"]


def rate_config() -> EmulatorConfig:
    # A burst of 5 lets this test's own event loop (server and clients share
    # it) stall for 200 ms on a loaded CI machine without bunching requests
    # past the server's bucket; paced at exactly the limit, a burst of 2 left
    # no room for that.
    return EmulatorConfig(seed=5, time_scale=100, faults=Faults(rps=20, rps_burst=5))


async def poke_all(group: list[AtlasClient], count: int) -> None:
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(count):
                tg.start_soon(poke, group[index % len(group)], index)


async def test_a_known_rate_is_shared_by_the_clients_not_multiplied(
    redis_server: RedisServer,
) -> None:
    """Two clients told the account allows 20 requests/s send 20 a second
    together: the server refuses none of their 40 requests."""
    async with (
        serve(rate_config()) as emulator,
        clients(emulator, 2, redis_server.url, requests_per_second=20) as group,
    ):
        await poke_all(group, 40)
    server = emulator.stats.snapshot()
    assert server.refusals["rate"] == 0


async def test_without_a_coordinator_the_same_clients_send_twice_the_rate() -> None:
    """The baseline of the test above: each client alone sends 20 a second,
    so the server refuses many of their requests."""
    async with (
        serve(rate_config()) as emulator,
        clients(emulator, 2, None, requests_per_second=20) as group,
    ):
        await poke_all(group, 40)
    server = emulator.stats.snapshot()
    assert server.refusals["rate"] >= 10


async def test_a_rate_refusal_seen_by_one_client_slows_the_other(
    redis_server: RedisServer,
) -> None:
    """Client A runs into the account's rate; client B of the same account
    (talking to a server that refuses nothing, so it cannot learn by itself)
    then runs at the rate A learned, no longer unlimited."""
    limited = EmulatorConfig(seed=5, time_scale=100, faults=Faults(rps=5, rps_burst=5))
    async with (
        serve(limited) as emulator,
        serve(EmulatorConfig(seed=6)) as unlimited,
        clients(emulator, 1, redis_server.url) as (first,),
        clients(unlimited, 1, redis_server.url) as (second,),
    ):
        await poke(second, -1)
        assert second.statistics().requests_per_second is None
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for index in range(20):
                    tg.start_soon(poke, first, index)
        assert first.statistics().rate_refusals > 0
        await poke(second, -2)
        rate = second.statistics().requests_per_second
    assert unlimited.stats.snapshot().refusals["rate"] == 0
    assert rate is not None
    assert rate < 20


async def test_the_accounts_keys_are_a_hash_of_its_key_never_the_key(
    redis_server: RedisServer,
) -> None:
    """Every key the coordinator writes is under ``atlas:<hash>:``; the API key
    appears in none, and another account's keys are apart."""
    limits = Limits(in_flight={VIDEO: 2})
    async with (
        serve(video_config(2)) as emulator,
        clients(emulator, 1, redis_server.url, limits=limits) as group,
    ):
        await run_videos(group, 2)
        async with AtlasClient(
            "sk-another-account",
            base_url=emulator.base_url,
            coordinator=redis_server.url,
            poll=FixedPolicy(0.02),
        ) as other:
            await other.generate_video(VIDEO, prompt="other account", timeout=60)
        store = aioredis.from_url(redis_server.url, decode_responses=True)
        keys = [str(key) for key in await store.keys("*")]
        await store.aclose()
    prefixes = {key.split(":")[1] for key in keys}
    assert all(key.startswith("atlas:") for key in keys)
    assert len(prefixes) == 2
    assert not any(KEY in key or "another" in key for key in keys)


async def test_an_unreachable_coordinator_is_a_clear_error_at_start() -> None:
    """Entering a client whose Redis does not answer raises TransportError
    naming the server (without a password) before anything is sent."""
    client = AtlasClient(
        KEY,
        base_url="http://127.0.0.1:9/api/v1",
        coordinator=RedisCoordinator("redis://:hunter2@127.0.0.1:9/0", timeout=1),
    )
    with pytest.raises(TransportError, match=r"127\.0\.0\.1:9") as caught:
        async with client:
            pass
    assert "hunter2" not in str(caught.value)


async def test_a_coordinator_url_of_another_scheme_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``coordinator="http://..."`` and a bad environment value fail at once."""
    with pytest.raises(ConfigurationError, match="redis://"):
        AtlasClient(KEY, coordinator="http://127.0.0.1:6379")
    monkeypatch.setenv("ATLAS_ASYNC_COORDINATOR", "memcached://127.0.0.1")
    with pytest.raises(ConfigurationError, match="redis://"):
        AtlasClient(KEY)


async def test_the_environment_names_the_coordinator(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ATLAS_ASYNC_COORDINATOR`` alone makes the clients share a limit."""
    monkeypatch.setenv("ATLAS_ASYNC_COORDINATOR", redis_server.url)
    limits = Limits(in_flight={VIDEO: 2})
    async with (
        serve(video_config(2)) as emulator,
        clients(emulator, 2, None, limits=limits) as group,
    ):
        await run_videos(group, 10)
    assert emulator.stats.snapshot().refusals["model_in_flight"] == 0


async def test_losing_the_coordinator_mid_run_falls_back_and_loses_nothing(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis is killed while two clients run 40 videos: one warning each, they
    go on with their own limits, every video completes and none is created
    twice; once Redis is back they share again."""
    caplog.set_level(logging.WARNING, logger="atlas_async")
    limits = Limits(in_flight={VIDEO: 3})
    config = EmulatorConfig(seed=9, time_scale=100, model_latency={VIDEO: (30.0, 60.0)})
    async with (
        serve(config) as emulator,
        clients(emulator, 2, redis_server.url, limits=limits) as group,
    ):

        async def outage() -> None:
            await anyio.sleep(0.5)
            redis_server.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(outage)
            results = await run_videos(group, 40)
        lost = [r for r in caplog.records if "coordinator unreachable" in r.message]
        redis_server.start()
        with anyio.fail_after(20):
            while not any("reachable again" in r.message for r in caplog.records):
                await poke(group[0], -1)
                await anyio.sleep(0.2)
    assert 1 <= len(lost) <= 2
    assert {r.status for r in results} == {PredictionStatus.COMPLETED}
    assert emulator.stats.snapshot().predictions_created == 40
