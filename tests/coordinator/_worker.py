"""
One worker process of the coordinator's tests: a client with a coordinator,
driven by its command line, reporting on stdout one JSON line per event.

    python _worker.py submit BASE_URL REDIS_URL MODEL JOBS LIMIT TTL
        prints {"event": "ready"} once its client is open, then submits JOBS
        predictions to MODEL (known in-flight limit LIMIT), prints
        {"event": "submitted", "at": ...} after each submit returns and
        {"event": "done", "failed": N} at the end.
    python _worker.py wait BASE_URL REDIS_URL MODEL
        submits one prediction polled every 10 minutes, prints
        {"event": "submitted", "id": ...}, then {"event": "resolved", ...} when
        its future ends (a delivery relayed by another process).
"""

from __future__ import annotations

import json
import sys
import time

import anyio

from atlas_async import AtlasClient, FixedPolicy, Limits, RedisCoordinator


def say(**event: object) -> None:
    """One event, as a JSON line on stdout (the test reads them)."""
    print(json.dumps({**event, "at": time.time()}), flush=True)  # noqa: T201


async def submit(
    base_url: str, url: str, model: str, jobs: int, limit: int, ttl: float
) -> None:
    coordinator = RedisCoordinator(url, lease_ttl=ttl)
    failed = 0
    async with AtlasClient(
        "sk-coordinator-test",
        base_url=base_url,
        poll=FixedPolicy(0.05),
        limits=Limits(in_flight={model: limit}),
        coordinator=coordinator,
    ) as client:
        say(event="ready")

        async def one(index: int) -> None:
            nonlocal failed
            try:
                future = await client.submit_video(
                    model, prompt=f"job {index}", timeout=120
                )
                say(event="submitted", id=future.id)
                await future
            except Exception:  # noqa: BLE001  # counted
                failed += 1

        async with anyio.create_task_group() as tg:
            for index in range(jobs):
                tg.start_soon(one, index)
    say(event="done", failed=failed)


async def wait(base_url: str, url: str, model: str) -> None:
    async with AtlasClient(
        "sk-coordinator-test",
        base_url=base_url,
        poll=FixedPolicy(600),
        coordinator=url,
    ) as client:
        future = await client.submit_image(model, prompt="waits for a webhook")
        say(event="submitted", id=future.id)
        prediction = await future
        say(event="resolved", id=prediction.id, status=str(prediction.status))


if __name__ == "__main__":
    command, base_url, url, model, *rest = sys.argv[1:]
    if command == "submit":
        jobs, limit, ttl = int(rest[0]), int(rest[1]), float(rest[2])
        anyio.run(submit, base_url, url, model, jobs, limit, ttl)
    else:
        anyio.run(wait, base_url, url, model)
