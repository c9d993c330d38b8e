"""
Client CPU per poll: the SDK's scheduler against a bare loop of the same GETs.

The emulator runs in its own process (core 1) with predictions that never
finish. Each measurement is a fresh client process (core 0):

* ``sdk``: an ``AtlasClient`` with ``FixedPolicy(0.001)`` polls ``--n``
  predictions it submitted; every poll is due at once, so its
  ``max_concurrent_requests`` (16) workers poll back to back, like the loop;
* ``bare``: ``httpx.AsyncClient`` with the same transport, pool and headers,
  16 workers each looping ``GET /model/prediction/{id}`` and ``response.json()``
  over the same number of predictions;
* ``floor``: the same loop in plain aiohttp (``ClientSession.get``, ``read``,
  ``json.loads``), with no httpx anywhere: what one poll costs at the least on
  this machine. The issue's target is the SDK at most 1.5x this floor.

Both saturate the client core, so CPU per poll is the whole story: getrusage
over ``--duration`` seconds after a warm-up, divided by the polls made
(``client.statistics().polls`` for the SDK). Each run waits for the machine to
be quiet and records how busy other processes kept it; each cell is the median
of the quiet runs (other load inflates CPU time) among ``--repeats``; the
ratios are sdk / floor (target: at most 1.5 with the aiohttp backend) and
sdk / bare with the same transport. Modes alternate within each round.

Usage::

    python benchmarks/bench_cpu.py [--duration 3] [--repeats 3] [--profile]

``--profile`` runs the SDK once under cProfile and prints the top functions.
Writes ``benchmarks/results/cpu.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import time
from typing import Any

import _common
import httpx

from atlas_async._client import AtlasClient
from atlas_async._core.policies import FixedPolicy
from atlas_async._net.session import USER_AGENT
from atlas_async._net.transport import AiohttpTransport

MODEL = "google/nano-banana-2/text-to-image"
CONCURRENCY = 16  # the SDK's default max_concurrent_requests
TRANSPORTS = ("httpx", "aiohttp")
MODES = ("floor", "bare", "sdk")


async def _sdk(
    base_url: str, transport: str, n: int, warmup: float, duration: float
) -> dict[str, Any]:
    async with AtlasClient(
        _common.KEY,
        base_url=base_url,
        transport=transport,  # type: ignore[arg-type]
        poll=FixedPolicy(0.001),
        max_concurrent_requests=CONCURRENCY,
    ) as client:
        futures = [
            await client.submit_image(MODEL, prompt=f"cpu {i}") for i in range(n)
        ]
        await asyncio.sleep(warmup)
        polls, cpu = client.statistics().polls, _common.cpu_seconds()
        started = time.perf_counter()
        await asyncio.sleep(duration)
        elapsed = time.perf_counter() - started
        polls = client.statistics().polls - polls
        cpu = _common.cpu_seconds() - cpu
        errors = client.statistics().retries
        for future in futures:
            future.cancel()
    return _result(polls, cpu, elapsed, errors)


async def _bare(
    base_url: str, transport: str, n: int, warmup: float, duration: float
) -> dict[str, Any]:
    headers = {"User-Agent": USER_AGENT, "Authorization": f"Bearer {_common.KEY}"}
    async with httpx.AsyncClient(
        transport=AiohttpTransport(max_connections=CONCURRENCY)
        if transport == "aiohttp"
        else None,
        limits=httpx.Limits(
            max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY
        ),
        headers=headers,
        timeout=httpx.Timeout(60.0, connect=10.0, pool=None),
        follow_redirects=False,
    ) as http:
        urls = []
        for index in range(n):
            answer = await http.post(
                f"{base_url}/model/generateImage",
                json={"model": MODEL, "prompt": f"cpu {index}"},
            )
            urls.append(f"{base_url}/model/prediction/{answer.json()['data']['id']}")
        counts = [0, 0]  # polls, errors
        phase = {"stop": time.perf_counter() + warmup + duration}

        async def worker(mine: list[str]) -> None:
            while time.perf_counter() < phase["stop"]:
                for url in mine:
                    response = await http.get(url)
                    counts[response.json()["code"] != 200] += 1

        tasks = [
            asyncio.ensure_future(worker(urls[w::CONCURRENCY]))
            for w in range(CONCURRENCY)
        ]
        await asyncio.sleep(warmup)
        polls, cpu = counts[0], _common.cpu_seconds()
        started = time.perf_counter()
        await asyncio.sleep(duration)
        elapsed = time.perf_counter() - started
        polls, cpu = counts[0] - polls, _common.cpu_seconds() - cpu
        await asyncio.gather(*tasks)
    return _result(polls, cpu, elapsed, counts[1])


async def _floor(
    base_url: str, transport: str, n: int, warmup: float, duration: float
) -> dict[str, Any]:
    import aiohttp

    headers = {"User-Agent": USER_AGENT, "Authorization": f"Bearer {_common.KEY}"}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        urls = []
        for index in range(n):
            async with http.post(
                f"{base_url}/model/generateImage",
                json={"model": MODEL, "prompt": f"cpu {index}"},
            ) as answer:
                created = json.loads(await answer.read())
            urls.append(f"{base_url}/model/prediction/{created['data']['id']}")
        counts = [0, 0]  # polls, errors
        phase = {"stop": time.perf_counter() + warmup + duration}

        async def worker(mine: list[str]) -> None:
            while time.perf_counter() < phase["stop"]:
                for url in mine:
                    async with http.get(url) as response:
                        body = json.loads(await response.read())
                    counts[body["code"] != 200] += 1

        tasks = [
            asyncio.ensure_future(worker(urls[w::CONCURRENCY]))
            for w in range(CONCURRENCY)
        ]
        await asyncio.sleep(warmup)
        polls, cpu = counts[0], _common.cpu_seconds()
        started = time.perf_counter()
        await asyncio.sleep(duration)
        elapsed = time.perf_counter() - started
        polls, cpu = counts[0] - polls, _common.cpu_seconds() - cpu
        await asyncio.gather(*tasks)
    return _result(polls, cpu, elapsed, counts[1])


async def _alternate(
    base_url: str, n: int, rounds: int, window: float
) -> dict[str, Any]:
    """
    The floor and the SDK (aiohttp backend) in one process, in alternating
    windows: the SDK's predictions are attached for its window and cancelled
    for the floor's, so only one of them polls at a time. Load from other
    processes drifts slowly; windows of half a second apart see about the same
    machine, so the per-window ratio is the steady figure.
    """
    import aiohttp

    headers = {"User-Agent": USER_AGENT, "Authorization": f"Bearer {_common.KEY}"}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    http = aiohttp.ClientSession(connector=connector, headers=headers)
    ids = []
    for index in range(n):
        async with http.post(
            f"{base_url}/model/generateImage",
            json={"model": MODEL, "prompt": f"cpu {index}"},
        ) as answer:
            ids.append(json.loads(await answer.read())["data"]["id"])
    urls = [f"{base_url}/model/prediction/{i}" for i in ids]
    floor_on = asyncio.Event()
    count = [0]

    async def worker(mine: list[str]) -> None:
        while True:
            await floor_on.wait()
            for url in mine:
                async with http.get(url) as response:
                    json.loads(await response.read())
                count[0] += 1

    tasks = [
        asyncio.ensure_future(worker(urls[w::CONCURRENCY])) for w in range(CONCURRENCY)
    ]
    floor: list[float] = []
    sdk: list[float] = []
    async with AtlasClient(
        _common.KEY,
        base_url=base_url,
        poll=FixedPolicy(0.001),
        max_concurrent_requests=CONCURRENCY,
    ) as client:
        for index in range(rounds):
            order = ("floor", "sdk") if index % 2 == 0 else ("sdk", "floor")
            for mode in order:
                if mode == "floor":
                    floor_on.set()
                    await asyncio.sleep(0.1)  # warm: every worker busy
                    polls, cpu = count[0], _common.cpu_seconds()
                    await asyncio.sleep(window)
                    polls, cpu = count[0] - polls, _common.cpu_seconds() - cpu
                    floor_on.clear()
                    await asyncio.sleep(0.05)  # the loop's last requests end
                    floor.append(1e6 * cpu / max(polls, 1))
                else:
                    futures = [client.attach(i, model=MODEL) for i in ids]
                    await asyncio.sleep(0.1)
                    polls, cpu = client.statistics().polls, _common.cpu_seconds()
                    await asyncio.sleep(window)
                    polls = client.statistics().polls - polls
                    cpu = _common.cpu_seconds() - cpu
                    for future in futures:
                        future.cancel()
                    await asyncio.sleep(0.05)
                    sdk.append(1e6 * cpu / max(polls, 1))
    for task in tasks:
        task.cancel()
    await http.close()
    return {"floor_us": floor, "sdk_us": sdk}


def _result(polls: int, cpu: float, elapsed: float, errors: int) -> dict[str, Any]:
    return {
        "polls": polls,
        "errors": errors,
        "elapsed_s": elapsed,
        "polls_per_s": polls / elapsed,
        "cpu_us_per_poll": 1e6 * cpu / max(polls, 1),
        "cpu_share": cpu / elapsed,
    }


def _child(args: argparse.Namespace) -> int:
    if args.mode == "alternate":
        windows = max(2, int(args.duration / 0.5))
        result = asyncio.run(_alternate(args.base_url, args.n, windows, 0.5))
        print(json.dumps(result))
        return 0
    run = {"sdk": _sdk, "bare": _bare, "floor": _floor}[args.mode]
    coroutine = run(args.base_url, args.transport, args.n, args.warmup, args.duration)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        result = asyncio.run(coroutine)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime")).print_stats(
            os.environ.get("BENCH_PROFILE_FILTER", ""), 35
        )
    else:
        result = asyncio.run(coroutine)
    print(json.dumps(result))
    return 0


def _cell(runs: list[dict[str, Any]], mode: str, transport: str) -> dict[str, float]:
    """Medians of the quiet runs of one mode (the floor has no transport)."""
    mine = _common.quiet(
        [
            r
            for r in runs
            if r["mode"] == mode and (mode == "floor" or r["transport"] == transport)
        ]
    )
    cell = {
        key: _common.median([r[key] for r in mine])
        for key in ("cpu_us_per_poll", "polls_per_s", "foreign_cores")
    }
    cell["runs"] = len(mine)
    return cell


def _summary(runs: list[dict[str, Any]], transport: str) -> dict[str, Any]:
    """Medians of the quiet runs of one transport; sdk / floor and sdk / bare."""
    floor, bare, sdk = (_cell(runs, mode, transport) for mode in MODES)
    return {
        "transport": transport,
        "floor_cpu_us_per_poll": floor["cpu_us_per_poll"],
        "bare_cpu_us_per_poll": bare["cpu_us_per_poll"],
        "sdk_cpu_us_per_poll": sdk["cpu_us_per_poll"],
        "ratio_to_floor": sdk["cpu_us_per_poll"] / floor["cpu_us_per_poll"],
        "ratio": sdk["cpu_us_per_poll"] / bare["cpu_us_per_poll"],
        "sdk_overhead_us_per_poll": sdk["cpu_us_per_poll"] - floor["cpu_us_per_poll"],
        "floor_polls_per_s": floor["polls_per_s"],
        "sdk_polls_per_s": sdk["polls_per_s"],
        "quiet_runs": min(floor["runs"], bare["runs"], sdk["runs"]),
        "foreign_cores": max(
            floor["foreign_cores"], bare["foreign_cores"], sdk["foreign_cores"]
        ),
    }


def _command(
    args: argparse.Namespace, base_url: str, mode: str, transport: str
) -> list[str]:
    command = [sys.executable, __file__, "--child", "--base-url", base_url]
    command += ["--mode", mode, "--transport", transport, "--n", str(args.n)]
    command += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    if args.profile:
        command.append("--profile")
    if _common.can_pin():
        command = ["taskset", "-c", str(_common.CLIENT_CORE), *command]
    return command


def _round(repeat: int) -> list[tuple[str, str]]:
    """One round: the floor once, then each transport's bare and sdk runs;
    every other round backwards, so no mode always runs first."""
    cells = [("aiohttp", "floor")] + [
        (transport, mode) for transport in TRANSPORTS for mode in MODES[1:]
    ]
    return cells if repeat % 2 == 0 else cells[::-1]


def main() -> int:
    """Measure sdk and bare per transport; print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=(*MODES, "alternate"), help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.duration = min(args.duration, 10.0)  # bounded, whatever is asked
    args.repeats = max(1, min(args.repeats, 7))
    args.n = max(CONCURRENCY, min(args.n, 2000))
    if args.child:
        return _child(args)
    runs: list[dict[str, Any]] = []
    latency = ["image=36000,36000"]  # never finishes: every poll is "processing"
    with _common.emulator(latency=latency) as server:
        if args.profile:
            for transport in TRANSPORTS:
                print(f"--- sdk, {transport}", file=sys.stderr)
                _common.run_json(
                    _command(args, server.base_url, "sdk", transport),
                    timeout=120,
                    show_stderr=True,
                )
            return 0
        for repeat in range(args.repeats):
            for transport, mode in _round(repeat):
                result = _common.run_measured(
                    _command(args, server.base_url, mode, transport),
                    timeout=60,
                    server_pid=server.pid,
                )
                result.update(mode=mode, transport=transport, repeat=repeat)
                runs.append(result)
                print(
                    f"  run {repeat + 1}/{args.repeats} {transport:<8} {mode:<5}"
                    f" {result['polls_per_s']:7,.0f} polls/s"
                    f" {result['cpu_us_per_poll']:6.0f} us/poll"
                    f" (others busy: {result['foreign_cores']:.2f} cores)",
                    file=sys.stderr,
                )
        # The target's figure: the floor and the SDK in alternating windows of
        # one process, a process per repeat.
        alternating: list[dict[str, Any]] = []
        for repeat in range(args.repeats):
            command = _command(args, server.base_url, "alternate", "aiohttp")
            result = _common.run_measured(command, timeout=120, server_pid=server.pid)
            alternating.append(result)
            ratios = [
                s / f for s, f in zip(result["sdk_us"], result["floor_us"], strict=True)
            ]
            print(
                f"  alternating {repeat + 1}/{args.repeats}: SDK / floor per window"
                f" {_common.median(ratios):.2f}x (others busy:"
                f" {result['foreign_cores']:.2f} cores)",
                file=sys.stderr,
            )
    summary = [_summary(runs, transport) for transport in TRANSPORTS]
    floor_windows = [f for r in alternating for f in r["floor_us"]]
    sdk_windows = [s for r in alternating for s in r["sdk_us"]]
    window_ratios = [
        s / f
        for r in alternating
        for s, f in zip(r["sdk_us"], r["floor_us"], strict=True)
    ]
    alternated = {
        "windows": len(window_ratios),
        "floor_cpu_us_per_poll": _common.median(floor_windows),
        "sdk_cpu_us_per_poll": _common.median(sdk_windows),
        "ratio": _common.median(window_ratios),
        "ratio_p25": _common.percentile(window_ratios, 0.25),
        "ratio_p75": _common.percentile(window_ratios, 0.75),
    }
    print(
        _common.table(
            [
                "transport",
                "floor µs/poll",
                "bare µs/poll",
                "SDK µs/poll",
                "SDK / floor",
                "SDK / bare",
                "SDK adds µs",
                "SDK polls/s",
            ],
            [
                [
                    row["transport"],
                    row["floor_cpu_us_per_poll"],
                    row["bare_cpu_us_per_poll"],
                    row["sdk_cpu_us_per_poll"],
                    f"{row['ratio_to_floor']:.2f}x",
                    f"{row['ratio']:.2f}x",
                    row["sdk_overhead_us_per_poll"],
                    row["sdk_polls_per_s"],
                ]
                for row in summary
            ],
        )
    )
    print(
        f"\nalternating windows ({alternated['windows']} of 0.5 s, aiohttp backend):"
        f" floor {alternated['floor_cpu_us_per_poll']:.0f} µs/poll, SDK"
        f" {alternated['sdk_cpu_us_per_poll']:.0f} µs/poll, SDK / floor"
        f" {alternated['ratio']:.2f}x (quartiles {alternated['ratio_p25']:.2f}-"
        f"{alternated['ratio_p75']:.2f})"
    )
    # The target is the default path (aiohttp) against the plain aiohttp loop,
    # taken from the alternating windows (the process-level rows drift with
    # other load between runs).
    target = alternated["ratio"] <= 1.5
    print(
        f"  {'PASS' if target else 'FAIL'}  SDK CPU per poll <= 1.5x a bare aiohttp"
        " loop (aiohttp backend, median of alternating windows)"
    )
    path = _common.write_results(
        "cpu",
        {
            "runs": runs,
            "alternating": alternating,
            "alternated": alternated,
            "summary": summary,
            "n": args.n,
            "target_met": target,
        },
    )
    print(f"wrote {path}")
    return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
