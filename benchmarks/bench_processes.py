"""
Four processes, one account: goodput under the account's limits with and
without a coordinator (``AtlasClient(coordinator="redis://...")``).

Each round starts a fresh emulator process (``--fault rps=100``, ``--fault
max_in_flight_model=VIDEO:10``, time scale 10) and, in the coordinated rounds,
a fresh ``redis-server`` on loopback; then four client processes at the same
instant, each with its own default ``AtlasClient`` (nothing known about the
limits), each running its share of the work: image jobs (rate-bound) and
video jobs on the model limited to 10 in flight. Every client samples its
``statistics()`` every 100 ms; the parent sums the four timelines.

Definitions (as in ``bench_limits.py``):

* **steady part**: from 10% to 90% of all the jobs completed (summed over the
  four processes), which leaves out the first contact and the tail.
* **goodput** = requests answered with anything but a 429, per second over the
  steady part, / R. The emulator's bucket admits at most R a second, so the
  ideal is 1.
* **predictions/s vs ideal**: completed per second over the steady part, over
  R / (1 + p), p the answered polls per completion over the steady part.
* **refusals**: 429s over all requests of the run (the emulator's counts).
* **peak in flight**: the most predictions of the limited model unfinished at
  once (the emulator's figure; its limit refuses beyond 10).

Modes alternate round by round (with, without, with, ...); the table shows
the medians. Targets (with the coordinator): goodput >= 0.85, 0 failed,
refusals <= 5% of requests. Exit 1 if one is missed.

With ``--known`` every client is told the limits
(``Limits(requests_per_second=100, in_flight={VIDEO: 10})``), as a deployment
that knows its account's limits would configure each process.

Running::

    python benchmarks/bench_processes.py            # 2 rounds per mode
    python benchmarks/bench_processes.py --rounds 1 --images 150

Writes ``benchmarks/results/processes.json``. With ``--round-trips``, one
process alone runs its share with the coordinator, and the table gives the
Redis commands it caused per HTTP request (the server's ``INFO
commandstats``) and one loopback round trip's time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import _common

from atlas_async import AtlasClient, Limits

IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
RATE = 100
LIMIT = 10
SCALE = 10.0
PROCESSES = 4
COLUMNS = ("t", "requests", "refused", "polls", "submits_refused", "completed", "rate")


# -- the child: one process's client ---------------------------------------------


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    known = Limits(requests_per_second=RATE, in_flight={VIDEO: LIMIT})
    client = AtlasClient(
        _common.KEY,
        base_url=args.base_url,
        coordinator=args.coordinator or None,
        limits=known if args.known else None,
    )
    timeline: list[list[float]] = []
    failed: list[str] = []
    async with client:
        await asyncio.sleep(max(0.0, args.start_at - time.time()))

        async def sample() -> None:
            while True:
                s = client.statistics()
                timeline.append(
                    [
                        round(time.time() - args.start_at, 3),
                        s.requests_sent,
                        s.rate_limited,
                        s.polls,
                        s.submits_refused,
                        s.completed,
                        s.requests_per_second or 0.0,
                    ]
                )
                await asyncio.sleep(0.1)

        async def one(model: str, index: int) -> None:
            try:
                if model == VIDEO:
                    await client.generate_video(model, prompt=f"v{index}", timeout=600)
                else:
                    await client.generate_image(model, prompt=f"i{index}", timeout=600)
            except Exception as exc:  # noqa: BLE001  # counted, shown in the JSON
                failed.append(f"{type(exc).__name__}: {exc}"[:200])

        sampler = asyncio.ensure_future(sample())
        jobs = [one(VIDEO, i) for i in range(args.videos)]
        jobs += [one(IMAGE, i) for i in range(args.images)]
        await asyncio.gather(*jobs)
        sampler.cancel()
        s = client.statistics()
        timeline.append(
            [
                round(time.time() - args.start_at, 3),
                s.requests_sent,
                s.rate_limited,
                s.polls,
                s.submits_refused,
                s.completed,
                s.requests_per_second or 0.0,
            ]
        )
    return {"timeline": timeline, "failed": failed}


# -- the parent ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Redis:
    """A fresh redis-server on loopback, for one round."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.directory = tempfile.mkdtemp(prefix="bench-redis-")
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.025)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _server_stats(origin: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{origin}/_emulator/stats", timeout=10) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return {
        key: stats[key]
        for key in ("requests", "refusals", "predictions_created", "polls")
        if key in stats
    } | {"peak_in_flight_by_model": stats.get("peak_in_flight_by_model", {})}


def _round(coordinated: bool, images: int, videos: int, known: bool) -> dict[str, Any]:
    redis = _Redis() if coordinated else None
    faults = [f"rps={RATE}", f"max_in_flight_model={VIDEO}:{LIMIT}"]
    try:
        with _common.emulator(
            time_scale=SCALE, faults=faults, latency=[f"{VIDEO}=20,40"]
        ) as server:
            start_at = time.time() + 3.0
            command = [sys.executable, __file__, "--child"]
            command += ["--base-url", server.base_url, "--start-at", repr(start_at)]
            command += ["--images", str(images), "--videos", str(videos)]
            if redis is not None:
                command += ["--coordinator", redis.url]
            if known:
                command += ["--known"]
            children = [
                subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,  # 429 warnings, by the hundred
                    text=True,
                )
                for _ in range(PROCESSES)
            ]
            outputs = [child.communicate(timeout=900)[0] for child in children]
            results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
            stats = _server_stats(server.origin)
    finally:
        if redis is not None:
            redis.stop()
    return {"coordinated": coordinated, "children": results, "server": stats}


def _at(timeline: list[list[float]], column: int, t: float) -> float:
    previous = timeline[0]
    for row in timeline:
        if row[0] >= t:
            span = row[0] - previous[0]
            share = 0.0 if span <= 0 else (t - previous[0]) / span
            return previous[column] + share * (row[column] - previous[column])
        previous = row
    return timeline[-1][column]


def _figures(raw: dict[str, Any], jobs: int) -> dict[str, Any]:
    timelines = [child["timeline"] for child in raw["children"]]
    end = max(t[-1][0] for t in timelines)
    grid = [i / 20 for i in range(int(end * 20) + 2)]

    def total(column: str, t: float) -> float:
        index = COLUMNS.index(column)
        return sum(_at(timeline, index, t) for timeline in timelines)

    completed = [total("completed", t) for t in grid]
    t0 = next(t for t, c in zip(grid, completed, strict=True) if c >= 0.1 * jobs)
    t1 = next(t for t, c in zip(grid, completed, strict=True) if c >= 0.9 * jobs)
    span = max(t1 - t0, 1e-9)

    def delta(column: str) -> float:
        return total(column, t1) - total(column, t0)

    requests, refused = delta("requests"), delta("refused")
    answered_polls = delta("polls") - (refused - delta("submits_refused"))
    per_prediction = answered_polls / max(delta("completed"), 1.0)
    ideal = RATE / (1.0 + per_prediction)
    server = raw["server"]
    refusals = sum(server["refusals"].values())
    return {
        "coordinated": raw["coordinated"],
        "goodput": (requests - refused) / span / RATE,
        "vs_ideal": delta("completed") / span / ideal,
        "refused_share": refusals / max(server["requests"], 1),
        "refusals": server["refusals"],
        "requests": server["requests"],
        "failed": sum(len(child["failed"]) for child in raw["children"]),
        "errors": [e for child in raw["children"] for e in child["failed"]][:5],
        "peak_in_flight": server["peak_in_flight_by_model"].get(VIDEO, 0),
        "makespan_s": end,
    }


async def _round_trips_child(args: argparse.Namespace) -> dict[str, Any]:
    """One client, ``--images`` images and ``--videos`` videos; the Redis
    commands it caused (``INFO commandstats``, before and after)."""
    import redis.asyncio as aioredis

    store = aioredis.from_url(args.coordinator)

    async def commands() -> dict[str, dict[str, float]]:
        info: dict[str, Any] = await store.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): {
                "calls": float(v["calls"]),
                "usec": float(v["usec"]),
            }
            for name, v in info.items()
        }

    before = await commands()
    result = await _child(args)
    after = await commands()
    pings = []
    for _ in range(1000):
        started = time.perf_counter()
        await store.ping()
        pings.append(time.perf_counter() - started)
    await store.aclose()
    used = {
        name: {
            "calls": v["calls"] - before.get(name, {}).get("calls", 0.0),
            "usec": v["usec"] - before.get(name, {}).get("usec", 0.0),
        }
        for name, v in after.items()
    }
    used.pop("info", None)
    last = result["timeline"][-1]
    return {
        "requests": last[COLUMNS.index("requests")],
        "completed": last[COLUMNS.index("completed")],
        "commands": {k: v for k, v in used.items() if v["calls"]},
        "ping_p50_us": _common.median(pings) * 1e6,
    }


# Commands the client sends itself (each a round trip); every other command in
# the table runs inside a script (the deliveries' PUBLISH aside: none here).
_SENT = ("evalsha", "set", "del", "ping", "hello", "script|load", "subscribe")


def round_trips(images: int, videos: int) -> int:
    """Redis commands per HTTP request, one process (``--round-trips``)."""
    redis = _Redis()
    faults = [f"rps={RATE}", f"max_in_flight_model={VIDEO}:{LIMIT}"]
    try:
        with _common.emulator(
            time_scale=SCALE, faults=faults, latency=[f"{VIDEO}=20,40"]
        ) as server:
            command = [sys.executable, __file__, "--child", "--round-trips"]
            command += ["--base-url", server.base_url, "--start-at", "0"]
            command += ["--images", str(images), "--videos", str(videos)]
            command += ["--coordinator", redis.url]
            result = _common.run_json(command, timeout=900)
    finally:
        redis.stop()
    requests = max(result["requests"], 1)
    calls = sum(v["calls"] for v in result["commands"].values())
    usec = sum(v["usec"] for v in result["commands"].values())
    print(
        f"1 process, {result['completed']} predictions,"
        f" {result['requests']} HTTP requests"
    )
    print("command        calls  per request  server us/call")
    for name, v in sorted(result["commands"].items(), key=lambda kv: -kv[1]["calls"]):
        print(
            f"{name:<12} {v['calls']:7.0f}  {v['calls'] / requests:11.3f}"
            f"  {v['usec'] / max(v['calls'], 1):14.1f}"
        )
    print(
        f"all          {calls:7.0f}  {calls / requests:11.3f}"
        f"  {usec / max(calls, 1):14.1f}"
    )
    sent = sum(result["commands"].get(name, {}).get("calls", 0.0) for name in _SENT)
    print(
        f"round trips from the client (evalsha, set, del, ...): {sent:.0f},"
        f" {sent / requests:.3f} per HTTP request; the rest run inside the scripts"
    )
    print(
        f"one round trip (PING, redis-py, loopback): p50 {result['ping_p50_us']:.0f} us"
    )
    out = _common.RESULTS / "processes_round_trips.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def main() -> int:
    """Run the rounds, print the table, write the JSON; 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per mode")
    parser.add_argument("--images", type=int, default=500, help="per process")
    parser.add_argument("--videos", type=int, default=10, help="per process")
    parser.add_argument("--only", default="both", help="both, coordinator or none")
    parser.add_argument(
        "--round-trips", action="store_true", help="Redis commands per request"
    )
    parser.add_argument(
        "--known",
        action="store_true",
        help="every client is told the limits (R and the model's 10)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = _round_trips_child if args.round_trips else _child
        print(json.dumps(asyncio.run(child(args))))
        return 0
    if shutil.which("redis-server") is None:
        print("redis-server is needed (apt-get install redis-server)", file=sys.stderr)
        return 2
    if args.round_trips:
        return round_trips(args.images, args.videos)
    jobs = PROCESSES * (args.images + args.videos)
    rows: list[dict[str, Any]] = []
    for index in range(args.rounds):
        for coordinated in (True, False):
            if args.only != "both" and coordinated != (args.only == "coordinator"):
                continue
            raw = _round(coordinated, args.images, args.videos, args.known)
            row = _figures(raw, jobs)
            row["round"] = index
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    table = []
    for coordinated in (True, False):
        mine = [r for r in rows if r["coordinated"] is coordinated]
        summary: dict[str, Any] = {
            key: _common.median([r[key] for r in mine])
            for key in ("goodput", "vs_ideal", "refused_share", "peak_in_flight")
        }
        summary["failed"] = sum(r["failed"] for r in mine)
        summary["mode"] = "coordinator" if coordinated else "none"
        table.append(summary)
    print(f"{PROCESSES} processes, R={RATE}, {VIDEO} limited to {LIMIT} in flight")
    if args.known:
        print("each client told Limits(requests_per_second=R, in_flight={VIDEO: 10})")
    print("mode         goodput  vs ideal  refusals  peak  failed")
    for s in table:
        print(
            f"{s['mode']:<12} {s['goodput']:7.2f}  {s['vs_ideal']:8.2f}"
            f"  {s['refused_share']:8.1%}  {s['peak_in_flight']:4.0f}  {s['failed']:6d}"
        )
    out = _common.RESULTS / ("processes_known.json" if args.known else "processes.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "table": table}, indent=1) + "\n")
    shared = table[0]
    ok = (
        shared["goodput"] >= 0.85
        and shared["failed"] == 0
        and shared["refused_share"] <= 0.05
    )
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
