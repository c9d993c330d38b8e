"""
httpx's default transport against the aiohttp-backed one, on the SDK's workload.

The emulator runs in its own process (core 1) with predictions that never
finish; each measurement is a fresh client process (core 0) that opens
``c`` connections, submits one prediction per worker, then polls in a closed
loop (``GET /model/prediction/{id}`` and parse the JSON) for ``--duration``
seconds or ``--requests`` requests, whichever comes first. Client CPU is
``getrusage`` over the measured phase only, divided by the requests made.

Rows (all through ``httpx.AsyncClient`` except the last):

* ``httpx``: httpx's default transport (httpcore), pool = ``c`` connections;
* ``aiohttp``: ``atlas_async._net.transport.AiohttpTransport`` (httpx-aiohttp);
* ``aiohttp-native``: a bare ``aiohttp.ClientSession``, for reference: what
  the httpx interface itself costs on top of aiohttp.

Each configuration runs ``--repeats`` times, each after waiting for the
machine to be quiet; the median of the runs other processes disturbed least
is reported (``foreign_cores`` in the JSON). Ratios are against the ``httpx``
row of the same run.

Usage::

    python benchmarks/bench_transport.py [--duration 2] [--repeats 3]

Writes ``benchmarks/results/transport.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import _common
import httpx

from atlas_async._net.transport import AiohttpTransport

MODEL = "google/nano-banana-2/text-to-image"
TRANSPORTS = ("httpx", "aiohttp", "aiohttp-native")
Get = Callable[[str], Awaitable[object]]


async def _measure(
    base_url: str, transport: str, concurrency: int, duration: float, limit: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {_common.KEY}"}
    if transport == "aiohttp-native":
        import aiohttp

        session = aiohttp.ClientSession(
            headers=headers, connector=aiohttp.TCPConnector(limit=concurrency)
        )

        async def get(url: str) -> object:
            async with session.get(url) as response:
                return json.loads(await response.read())

        async def post(url: str, body: dict[str, str]) -> Any:
            async with session.post(url, json=body) as response:
                return json.loads(await response.read())

        close = session.close
    else:
        http = httpx.AsyncClient(
            transport=(
                AiohttpTransport(max_connections=concurrency)
                if transport == "aiohttp"
                else None
            ),
            limits=httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            ),
            headers=headers,
            timeout=30.0,
        )

        async def get(url: str) -> object:
            return (await http.get(url)).json()

        async def post(url: str, body: dict[str, str]) -> Any:
            return (await http.post(url, json=body)).json()

        close = http.aclose
    try:
        return await _closed_loop(base_url, get, post, concurrency, duration, limit)
    finally:
        await close()


async def _closed_loop(
    base_url: str,
    get: Get,
    post: Callable[[str, dict[str, str]], Awaitable[Any]],
    concurrency: int,
    duration: float,
    limit: int,
) -> dict[str, Any]:
    # Warm-up: one prediction per worker (opens the connections), a few polls.
    urls = []
    for index in range(concurrency):
        answer = await post(
            f"{base_url}/model/generateImage", {"model": MODEL, "prompt": f"{index}"}
        )
        urls.append(f"{base_url}/model/prediction/{answer['data']['id']}")
    for _ in range(5):
        await asyncio.gather(*(get(url) for url in urls))

    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + duration

    async def worker(url: str) -> None:
        nonlocal issued, errors
        while issued < limit and time.perf_counter() < deadline:
            issued += 1
            started = time.perf_counter()
            try:
                await get(url)
            except Exception:  # noqa: BLE001 - counted, and a run with errors is flagged
                errors += 1
            latencies.append(time.perf_counter() - started)

    cpu = _common.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker(url) for url in urls))
    elapsed = time.perf_counter() - started
    cpu = _common.cpu_seconds() - cpu
    done = len(latencies) - errors
    return {
        "requests": len(latencies),
        "errors": errors,
        "elapsed_s": elapsed,
        "rps": done / elapsed,
        "cpu_us_per_request": 1e6 * cpu / max(len(latencies), 1),
        "p50_ms": 1e3 * _common.percentile(latencies, 0.5),
        "p99_ms": 1e3 * _common.percentile(latencies, 0.99),
    }


def _child(args: argparse.Namespace) -> int:
    result = asyncio.run(
        _measure(
            args.base_url, args.transport, args.concurrency, args.duration, args.limit
        )
    )
    print(json.dumps(result))
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    levels = [int(c) for c in args.concurrency_levels.split(",")]
    latency = ["image=36000,36000"]  # never finishes: every poll is "processing"
    with _common.emulator(latency=latency) as server:
        for repeat in range(args.repeats):
            for concurrency in levels:
                for transport in TRANSPORTS:
                    command = [sys.executable, __file__, "--child"]
                    command += ["--base-url", server.base_url]
                    command += ["--transport", transport]
                    command += ["--concurrency", str(concurrency)]
                    command += ["--duration", str(args.duration)]
                    command += ["--limit", str(args.limit)]
                    if _common.can_pin():
                        command = ["taskset", "-c", str(_common.CLIENT_CORE), *command]
                    server_cpu = _common.process_cpu(server.pid)
                    result = _common.run_measured(
                        command, timeout=60, server_pid=server.pid
                    )
                    server_cpu = _common.process_cpu(server.pid) - server_cpu
                    result.update(
                        transport=transport,
                        concurrency=concurrency,
                        repeat=repeat,
                        server_cpu_share=server_cpu / result["elapsed_s"],
                    )
                    runs.append(result)
                    print(
                        f"  run {repeat + 1}/{args.repeats} c={concurrency:<3}"
                        f" {transport:<15} {result['rps']:8,.0f} rps"
                        f" {result['cpu_us_per_request']:7.0f} us/req",
                        file=sys.stderr,
                    )
    return _summarise(runs, levels)


def _summarise(runs: list[dict[str, Any]], levels: list[int]) -> dict[str, Any]:
    summary: list[dict[str, Any]] = []
    for concurrency in levels:
        medians: dict[str, dict[str, float]] = {}
        for transport in TRANSPORTS:
            mine = _common.quiet(
                [
                    r
                    for r in runs
                    if r["transport"] == transport and r["concurrency"] == concurrency
                ]
            )
            medians[transport] = {
                key: _common.median([r[key] for r in mine])
                for key in (
                    "rps",
                    "cpu_us_per_request",
                    "p50_ms",
                    "p99_ms",
                    "server_cpu_share",
                    "foreign_cores",
                )
            }
            medians[transport]["errors"] = sum(r["errors"] for r in mine)
        base = medians["httpx"]
        for transport in TRANSPORTS:
            row = medians[transport]
            summary.append(
                {
                    "transport": transport,
                    "concurrency": concurrency,
                    **row,
                    "cpu_ratio_vs_httpx": row["cpu_us_per_request"]
                    / base["cpu_us_per_request"],
                    "rps_ratio_vs_httpx": row["rps"] / base["rps"],
                }
            )
    return {"runs": runs, "summary": summary}


def main() -> int:
    """Run every configuration, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency-levels", default="1,16,64")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.duration = min(args.duration, 10.0)  # bounded, whatever is asked
    args.repeats = max(1, min(args.repeats, 5))
    if args.child:
        return _child(args)
    data = _run(args)
    print(
        _common.table(
            [
                "transport",
                "c",
                "rps",
                "client CPU µs/req",
                "CPU vs httpx",
                "rps vs httpx",
                "p50 ms",
                "p99 ms",
                "server core busy",
                "errors",
            ],
            [
                [
                    row["transport"],
                    row["concurrency"],
                    row["rps"],
                    row["cpu_us_per_request"],
                    f"{row['cpu_ratio_vs_httpx']:.2f}x",
                    f"{row['rps_ratio_vs_httpx']:.2f}x",
                    row["p50_ms"],
                    row["p99_ms"],
                    f"{100 * row['server_cpu_share']:.0f}%",
                    int(row["errors"]),
                ]
                for row in data["summary"]
            ],
        )
    )
    path = _common.write_results("transport", data)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
