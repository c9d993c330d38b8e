"""
Worker processes of one account (``_worker.py``), each with its own client and
the same ``redis-server``: a killed worker's places come back within the
lease's TTL and the others finish; a webhook received by one process resolves
the future that waits in another at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from atlas_async import AtlasClient, Prediction, PredictionStatus
from atlas_async.emulator import EmulatorConfig, serve

from .conftest import RedisServer

pytestmark = [pytest.mark.asyncio]

WORKER = Path(__file__).with_name("_worker.py")
VIDEO = "bytedance/seedance-2.0/text-to-video"
IMAGE = "google/nano-banana-2/text-to-image"


@contextmanager
def worker(*args: str) -> Iterator[subprocess.Popen[str]]:
    """A worker process; killed on the way out if it still runs."""
    process = subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def next_event(process: subprocess.Popen[str]) -> dict[str, object]:
    """The worker's next JSON line (read in a thread: the pipe blocks)."""
    assert process.stdout is not None
    line = await anyio.to_thread.run_sync(process.stdout.readline)
    assert line, "the worker exited"
    event: dict[str, object] = json.loads(line)
    return event


async def test_a_killed_workers_places_return_within_the_lease_ttl(
    redis_server: RedisServer,
) -> None:
    """Four workers share a model known to allow 2 in flight. The first takes
    both places and is killed (SIGKILL: it gives nothing back); the three
    others, waiting for a place, get them once its lease runs out (1 s) and
    finish all their jobs."""
    ttl = 1.0
    # Every job takes 2 s: a place held by the killed worker would come back
    # after 2 s if it had lived; dead, only the lease's end gives it back.
    config = EmulatorConfig(seed=2, time_scale=1, model_latency={VIDEO: (2.0, 2.0)})
    async with serve(config) as emulator:
        common = (emulator.base_url, redis_server.url, VIDEO)
        with worker("submit", *common, "2", "2", str(ttl)) as doomed:
            with anyio.fail_after(30):
                for _ in range(3):
                    await next_event(doomed)  # ready, then both places its own
            with (
                worker("submit", *common, "3", "2", str(ttl)) as first,
                worker("submit", *common, "3", "2", str(ttl)) as second,
                worker("submit", *common, "3", "2", str(ttl)) as third,
            ):
                survivors = (first, second, third)
                with anyio.fail_after(30):
                    for process in survivors:
                        assert (await next_event(process))["event"] == "ready"
                doomed.kill()
                killed_at = time.time()
                with anyio.fail_after(60):
                    firsts = [await next_event(p) for p in survivors]
                    ends = []
                    for process in survivors:
                        event = await next_event(process)
                        while event["event"] != "done":
                            event = await next_event(process)
                        ends.append(event)
    assert [end["failed"] for end in ends] == [0, 0, 0]
    # The first place after the kill came within the TTL (plus the 0.25 s
    # between two asks, and a submit's round trip), before the killed
    # worker's jobs would have ended.
    first_place = min(float(str(e["at"])) for e in firsts)
    assert first_place - killed_at < ttl + 0.9
    assert emulator.stats.snapshot().predictions_created == 2 + 9


async def test_a_delivery_received_by_one_process_resolves_the_wait_in_another(
    redis_server: RedisServer,
) -> None:
    """A worker waits for a prediction it polls every 10 minutes; this process,
    which does not follow it, receives its webhook: the worker's future ends
    at once, with the delivered snapshot."""
    config = EmulatorConfig(seed=4, time_scale=1, model_latency={IMAGE: (500, 500)})
    async with serve(config) as emulator:
        with worker("wait", emulator.base_url, redis_server.url, IMAGE) as waiting:
            with anyio.fail_after(30):
                submitted = await next_event(waiting)
            pid = str(submitted["id"])
            async with AtlasClient(
                "sk-coordinator-test",
                base_url=emulator.base_url,
                coordinator=redis_server.url,
            ) as receiver:
                url = "https://example.invalid/out.png"
                delivered = Prediction(
                    id=pid,
                    status=PredictionStatus.COMPLETED,
                    outputs=(url,),
                    raw={"id": pid, "status": "completed", "outputs": [url]},
                )
                sent_at = time.time()
                assert receiver.deliver(delivered) is False  # not followed here
                with anyio.fail_after(30):
                    resolved = await next_event(waiting)
    assert resolved == {
        "event": "resolved",
        "id": pid,
        "status": "completed",
        "at": resolved["at"],
    }
    assert float(str(resolved["at"])) - sent_at < 1.0
