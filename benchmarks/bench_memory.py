"""
Memory per in-flight prediction, what one core serves, and timer lateness, at
100,000 predictions in flight with the client's default settings.

The emulator runs in its own process (core 1) with predictions that never
finish; each measurement is a fresh client process (core 0). The client is
``AtlasClient(key, base_url=...)`` with nothing else set but its poll policy:
no ``max_in_flight``, no pool sizes.

* **memory** (``--n`` predictions submitted and pending, each polled once):
  - ``tracemalloc``: the traced bytes still allocated after the submits, minus
    before, per prediction; split by where they were allocated, so the HTTP
    library's own retained memory (aiohttp and its helpers, httpx) is set
    apart. The SDK's share includes the latest snapshot kept per prediction.
  - ``rss``: the resident-set (VmRSS) delta per prediction, in a run without
    tracemalloc: everything included (allocator slack, the HTTP library).
* **capacity**: the polls per second one client core serves with ``--n``
  predictions in flight, all on ``FixedPolicy(0.001)`` so they poll back to
  back; the figure is polls per second divided by the share of the core the
  client used. Measured at the same ``--n`` as the lateness (not a small
  number in flight): each poll costs more with a larger heap and more
  memory to walk, so a capacity measured small would offer the lateness run
  more than half of what the client really serves.
* **lateness**: how late each poll starts (the moment a worker calls
  ``fetch``) against the time its policy scheduled it, with ``--n`` predictions
  on ``FixedPolicy(interval, jitter 0.1)``, the interval chosen so the polls
  come due at each ``--load`` (default 0.3, 0.4 and 0.5) of the measured
  capacity, one fresh client per load, the target checked at the last;
  submits are paced at the same rate, and lateness is measured from the second round on
  (the steady state), in a window of ``--duration`` seconds. The first round
  is reported apart: its first polls come due while the last submits still
  run, so the client is asked for more than it serves. Each window also
  reports the share of polls more than 2 ms late, the garbage collector's
  pauses (``gc.callbacks``), and the share of the machine's CPU time the
  hypervisor stole (``/proc/stat``): on a shared VM a stolen slice makes the
  timers it covers late whatever the client does, so a noisy run shows as
  such. Beside it, how late the scheduler's core handed each poll out (popped
  it as due): the difference is time spent waiting for a free worker, one of
  ``max_concurrent_requests``, while the server answers slowly. Also without
  HTTP (``fetch`` answers at once): the scheduler alone.

Targets: at most 2 KB per prediction beyond the HTTP library; timer lateness
p99 at most 2 ms while the polls due stay below what one core serves.

Usage::

    python benchmarks/bench_memory.py [--n 100000] [--duration 60]
        [--load 0.3 0.4 0.5]
        [--loop asyncio|uvloop]

Writes ``benchmarks/results/memory.json`` (``memory-uvloop.json`` with
``--loop uvloop``). At 100,000 it runs about half an hour.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import math
import random
import sys
import time
import tracemalloc
from collections.abc import Coroutine, Mapping
from typing import Any

import _common
import anyio

from atlas_async._client import AtlasClient
from atlas_async._core.clock import Clock
from atlas_async._core.config import DEFAULT_MAX_CONCURRENT_REQUESTS
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import FixedPolicy
from atlas_async._core.schedule import GROUPING, Decision, Due, PollCore, Rescheduled
from atlas_async._ops.operations import PollMemo, PredictionSource
from atlas_async._ops.scheduler import Scheduler

MODEL = "google/nano-banana-2/text-to-image"
HTTP_LIBRARY = ("/httpx/", "/httpcore/", "/h11/", "/aiohttp/", "/multidict/", "/yarl/")
WARMUP = 100
CHILDREN = ("rss", "tracemalloc", "capacity", "lateness-http", "lateness-no-http")
# When each pending poll is due, by prediction id (filled by _TimedCore).
SCHEDULED: dict[str, float] = {}
# How late the core handed each poll out (popped it as due), in the window.
HANDED: list[float] = []


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _submit_all(
    client: AtlasClient, n: int, start: int = 0, *, rate: float | None = None
) -> list[Any]:
    """Submit ``n`` predictions, 100 at a time, at most ``rate`` a second."""
    futures = []
    began = time.monotonic()
    for first in range(start, start + n, 100):
        batch = range(first, min(first + 100, start + n))
        futures += await asyncio.gather(
            *(client.submit(Kind.IMAGE, MODEL, prompt=f"memory {i}") for i in batch)
        )
        if rate is not None:
            ahead = began + (first + 100 - start) / rate - time.monotonic()
            await asyncio.sleep(max(0.0, ahead))
    return futures


async def _capacity(base_url: str, n: int, duration: float) -> dict[str, Any]:
    """Polls per second with ``n`` in flight and the client's core saturated."""
    async with AtlasClient(
        _common.KEY, base_url=base_url, poll=FixedPolicy(0.001)
    ) as client:
        futures = await _submit_all(client, n)
        await asyncio.sleep(1.0)
        polls, cpu = client.statistics().polls, _common.cpu_seconds()
        started = time.perf_counter()
        await asyncio.sleep(min(duration, 10.0))
        elapsed = time.perf_counter() - started
        polls = client.statistics().polls - polls
        cpu = _common.cpu_seconds() - cpu
        for future in futures:
            future.cancel()
    share = cpu / elapsed
    return {
        "polls_per_s": polls / elapsed,
        "cpu_share": share,
        "polls_per_core_second": polls / max(cpu, 1e-9),
    }


async def _memory(base_url: str, n: int, how: str) -> dict[str, Any]:
    # Poll once, 5 s after the submit (after every submit of the run), then
    # never again within the run: the state measured is "pending, polled once".
    policy = FixedPolicy(3600.0, first=5.0)
    async with AtlasClient(_common.KEY, base_url=base_url, poll=policy) as client:
        warm = await _submit_all(client, WARMUP)
        await asyncio.sleep(5.5)  # the warm-up ones are polled once too
        gc.collect()
        if how == "tracemalloc":
            tracemalloc.start(1)
            before = tracemalloc.take_snapshot()
        rss = _rss()
        futures = await _submit_all(client, n, WARMUP)
        # Wait until every one has been polled once (5 s after its submit).
        for _ in range(1200):  # at most five minutes
            if client.statistics().polls >= n + WARMUP:
                break
            await asyncio.sleep(0.25)
        polled = client.statistics().polls - WARMUP
        gc.collect()
        result: dict[str, Any] = {"n": n, "polled": polled, "how": how}
        if how == "tracemalloc":
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            result.update(_breakdown(before, after, n))
        else:
            result["rss_bytes_per_prediction"] = (_rss() - rss) / n
        for future in [*warm, *futures]:
            future.cancel()
    return result


def _breakdown(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int
) -> dict[str, Any]:
    by_file: dict[str, int] = {}
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        by_file[name] = by_file.get(name, 0) + stat.size_diff
    http = sum(size for name, size in by_file.items() if _is_http(name))
    total = sum(by_file.values())
    top = sorted(by_file.items(), key=lambda item: -item[1])[:12]
    return {
        "traced_bytes_per_prediction": total / n,
        "http_library_bytes_per_prediction": http / n,
        "sdk_bytes_per_prediction": (total - http) / n,
        "top_files": {_short(name): size / n for name, size in top},
    }


def _is_http(filename: str) -> bool:
    return any(part in filename for part in HTTP_LIBRARY)


def _short(filename: str) -> str:
    return filename.split("site-packages/")[-1].split("/work/main/")[-1]


class _TimedCore(PollCore):
    """PollCore that notes when each poll is due (for the lateness run only)."""

    __slots__ = ()

    def add(self, prediction_id: str, now: float, **options: Any) -> float:
        at = super().add(prediction_id, now, **options)
        SCHEDULED[prediction_id] = at
        return at

    def due(
        self, now: float, slack: float = GROUPING, most: float = math.inf
    ) -> list[Due]:
        items = super().due(now, slack, most)
        HANDED.extend(now - SCHEDULED[i.prediction_id] for i in items if not i.expired)
        return items

    def record(self, prediction_id: str, outcome: Any, now: float) -> Decision | None:
        decision = super().record(prediction_id, outcome, now)
        if isinstance(decision, Rescheduled):
            SCHEDULED[prediction_id] = decision.at
        return decision


class _TimedSource:
    """A source that notes how late each poll starts against its due time."""

    def __init__(
        self, inner: PredictionSource, clock: Clock, lateness: list[float]
    ) -> None:
        self.inner, self.clock, self.lateness = inner, clock, lateness

    async def create(
        self, kind: Kind, model: str, params: Mapping[str, Any]
    ) -> Prediction:
        return await self.inner.create(kind, model, params)

    async def fetch(
        self, prediction_id: str, memo: PollMemo | None = None
    ) -> Prediction:
        self.lateness.append(self.clock.now() - SCHEDULED[prediction_id])
        return await self.inner.fetch(prediction_id, memo)


def _timed(scheduler: Scheduler, lateness: list[float]) -> _TimedSource:
    """Time every poll's start against its due time (instrumenting privates)."""
    scheduler._core.__class__ = _TimedCore
    source = _TimedSource(scheduler._source, scheduler._clock, lateness)
    scheduler._source = source
    return source


class _Collections:
    """The garbage collector's pauses while it is on: how many, the longest."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __enter__(self) -> _Collections:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(
                (info["generation"], time.perf_counter() - self._started)
            )

    def summary(self) -> dict[str, Any]:
        full = [pause for generation, pause in self.pauses if generation == 2]
        return {
            "gc_collections": len(self.pauses),
            "gc_full_collections": len(full),
            "gc_longest_ms": 1e3 * max((p for _, p in self.pauses), default=0.0),
        }


async def _window(duration: float) -> tuple[float, float, float | None]:
    """Wait ``duration`` s: the CPU seconds used, the seconds elapsed and the
    share of the machine stolen meanwhile."""
    ticks = _common.machine_ticks()
    cpu, started = _common.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(duration)
    cpu, elapsed = _common.cpu_seconds() - cpu, time.perf_counter() - started
    return cpu, elapsed, _common.steal_share(ticks, _common.machine_ticks())


async def _lateness_http(
    base_url: str, n: int, duration: float, rate: float, workers: int | None = None
) -> dict[str, Any]:
    """Lateness with ``n`` in flight and polls due at ``rate`` a second
    (``workers``: the client's ``max_concurrent_requests``, None: its default)."""
    first: list[float] = []
    policy = FixedPolicy(n / rate, jitter=0.1)
    async with AtlasClient(
        _common.KEY,
        base_url=base_url,
        poll=policy,
        max_concurrent_requests=workers or DEFAULT_MAX_CONCURRENT_REQUESTS,
    ) as client:
        assert client._scheduler is not None
        source = _timed(client._scheduler, first)
        # Submits paced at n / interval, so the first polls come due at the
        # same rate as every later round.
        futures = await _submit_all(client, n, rate=rate)
        with _Collections() as collections:
            # The first round (each first poll within 1.1 intervals of its
            # submit) overlaps the last submits and replaces every submit's
            # snapshot: reported apart, it is not the steady state.
            await asyncio.sleep(policy.interval * 1.15)
            first_round = collections.summary()
            collections.pauses.clear()
            steady: list[float] = []
            source.lateness = steady
            HANDED.clear()
            cpu, elapsed, steal = await _window(duration)
            steady_gc = collections.summary()
        for future in futures:
            future.cancel()
    summary = _lateness_summary(steady, elapsed, cpu, n, policy.interval, steal)
    summary["first_round"] = {
        "late_p50_ms": 1e3 * _common.percentile(first, 0.5),
        "late_p99_ms": 1e3 * _common.percentile(first, 0.99),
        "late_max_ms": 1e3 * max(first, default=float("nan")),
        **first_round,
    }
    return {**summary, **steady_gc}


async def _lateness_no_http(n: int, duration: float) -> dict[str, Any]:
    lateness: list[float] = []

    class Source:
        async def create(
            self, kind: Kind, model: str, params: Mapping[str, Any]
        ) -> Prediction:
            return Prediction(id=params["prompt"], status=PredictionStatus.PROCESSING)

        async def fetch(
            self, prediction_id: str, memo: PollMemo | None = None
        ) -> Prediction:
            await anyio.lowlevel.checkpoint()
            return Prediction(id=prediction_id, status=PredictionStatus.PROCESSING)

    # 5,000 polls due a second, whatever n: the scheduler alone serves more.
    policy = FixedPolicy(n / 5_000, jitter=0.1)
    scheduler = Scheduler(Source(), poll=policy, rng=random.Random(1))
    _timed(scheduler, lateness)
    async with anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        for index in range(n):
            await scheduler.submit(
                Kind.IMAGE, MODEL, {"prompt": f"p{index}"}, timeout=None
            )
        await asyncio.sleep(policy.interval * 1.25)  # every one on its cycle
        lateness.clear()
        HANDED.clear()
        with _Collections() as collections:
            cpu, elapsed, steal = await _window(duration)
        steady_gc = collections.summary()
        await scheduler.aclose()
    return {
        **_lateness_summary(lateness, elapsed, cpu, n, policy.interval, steal),
        **steady_gc,
    }


def _lateness_summary(
    lateness: list[float],
    elapsed: float,
    cpu: float,
    n: int,
    interval: float,
    steal: float | None,
) -> dict[str, Any]:
    return {
        "steal_share": steal,
        "late_over_2ms_share": sum(1 for late in lateness if late > 0.002)
        / max(len(lateness), 1),
        "n": n,
        "interval_s": interval,
        "polls": len(lateness),
        "polls_per_s": len(lateness) / elapsed,
        "cpu_share": cpu / elapsed,
        "late_p50_ms": 1e3 * _common.percentile(lateness, 0.5),
        "late_p99_ms": 1e3 * _common.percentile(lateness, 0.99),
        "late_max_ms": 1e3 * max(lateness, default=float("nan")),
        "handed_p99_ms": 1e3 * _common.percentile(HANDED, 0.99),
    }


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.2f}%"


def _run(main: Coroutine[Any, Any, dict[str, Any]], loop: str) -> dict[str, Any]:
    """Run a child's measurement on the chosen event loop."""
    if loop == "uvloop":
        # Imported by name: uvloop is an option of this script, not a dependency.
        uvloop = importlib.import_module("uvloop")
        return {**uvloop.run(main), "loop": "uvloop"}
    return asyncio.run(main)


def _child(args: argparse.Namespace) -> int:
    if args.child in ("rss", "tracemalloc"):
        result = _run(_memory(args.base_url, args.n, args.child), args.loop)
    elif args.child == "capacity":
        result = _run(_capacity(args.base_url, args.n, args.duration), args.loop)
    elif args.child == "lateness-http":
        result = _run(
            _lateness_http(
                args.base_url, args.n, args.duration, args.rate, args.workers
            ),
            args.loop,
        )
    else:
        result = _run(_lateness_no_http(args.n, args.duration), args.loop)
    print(json.dumps(result))
    return 0


def main() -> int:
    """Run the measurements, print them, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--load", type=float, nargs="+", default=[0.3, 0.4, 0.5])
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of the client processes (uvloop: pip install uvloop)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="max_concurrent_requests of the lateness clients (default: the SDK's)",
    )
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.n = max(1_000, min(args.n, 200_000))  # bounded, whatever is asked
    args.duration = max(5.0, min(args.duration, 300.0))
    args.load = [max(0.05, min(load, 0.95)) for load in args.load]
    if args.child:
        return _child(args)
    results: dict[str, Any] = {}
    latency = ["image=36000,36000"]  # never finishes
    curve: list[dict[str, Any]] = []
    with _common.emulator(latency=latency) as server:

        def measure(child: str, *extra: str) -> dict[str, Any]:
            command = [sys.executable, __file__, "--child", child]
            command += ["--base-url", server.base_url, "--n", str(args.n)]
            command += ["--duration", str(args.duration), "--loop", args.loop]
            command += extra
            if _common.can_pin():
                command = ["taskset", "-c", str(_common.CLIENT_CORE), *command]
            result = _common.run_measured(command, timeout=1200, server_pid=server.pid)
            print(f"  {child} {' '.join(extra)}: {result}", file=sys.stderr)
            return result

        for child in CHILDREN:
            if child != "lateness-http":
                results[child] = measure(child)
                continue
            # One load after another, the target's (the last) at the end.
            workers = [] if args.workers is None else ["--workers", str(args.workers)]
            for load in args.load:
                rate = load * results["capacity"]["polls_per_core_second"]
                extra = ["--rate", f"{rate:.1f}", *workers]
                curve.append({"load": load, **measure(child, *extra)})
            results[child] = curve[-1]
    memory, capacity = results["tracemalloc"], results["capacity"]
    http, alone = results["lateness-http"], results["lateness-no-http"]
    print(f"\nmemory, {args.n:,} predictions in flight, default settings\n")
    print(
        _common.table(
            ["measure", "bytes per prediction"],
            [
                [
                    "SDK (tracemalloc, HTTP library excluded)",
                    memory["sdk_bytes_per_prediction"],
                ],
                [
                    "HTTP library (tracemalloc)",
                    memory["http_library_bytes_per_prediction"],
                ],
                ["RSS delta (everything)", results["rss"]["rss_bytes_per_prediction"]],
            ],
        )
    )
    print("\nwhere the SDK's bytes were allocated (per prediction):")
    for name, size in memory["top_files"].items():
        print(f"  {size:8.1f}  {name}")
    print(
        f"\none core serves {capacity['polls_per_core_second']:,.0f} polls/s"
        f" (measured: {capacity['polls_per_s']:,.0f} polls/s at"
        f" {100 * capacity['cpu_share']:.0f}% of the client's core)"
    )
    print(f"\ntimer lateness, {args.n:,} in flight\n")
    print(
        _common.table(
            [
                "run",
                "polls due/s",
                "polls/s",
                "client CPU",
                "p50 ms",
                "p99 ms",
                "handed out: p99 ms",
                "max ms",
                "> 2 ms late",
                "full GCs",
                "longest GC ms",
                "stolen",
            ],
            [
                [
                    name,
                    row["n"] / row["interval_s"],
                    row["polls_per_s"],
                    f"{100 * row['cpu_share']:.0f}%",
                    row["late_p50_ms"],
                    row["late_p99_ms"],
                    row["handed_p99_ms"],
                    row["late_max_ms"],
                    f"{100 * row['late_over_2ms_share']:.2f}%",
                    row["gc_full_collections"],
                    row["gc_longest_ms"],
                    _percent(row["steal_share"]),
                ]
                for name, row in (
                    *((f"HTTP, {row['load']:.0%} of capacity", row) for row in curve),
                    ("no HTTP (scheduler only)", alone),
                )
            ],
        )
    )
    first = http["first_round"]
    print(
        f"\nthe first round over HTTP (submits ending, each submit's snapshot"
        f" replaced): p50 {first['late_p50_ms']:.2f} ms, p99"
        f" {first['late_p99_ms']:.1f} ms, max {first['late_max_ms']:.1f} ms;"
        f" {first['gc_full_collections']} full collections, the longest"
        f" {first['gc_longest_ms']:.0f} ms"
    )
    targets = {
        "memory: <= 2 KB per prediction beyond the HTTP library": memory[
            "sdk_bytes_per_prediction"
        ]
        <= 2048,
        f"lateness: p99 <= 2 ms at {args.load[-1]:.0%} of what one core serves": http[
            "late_p99_ms"
        ]
        <= 2.0,
    }
    for check, ok in targets.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {check}")
    # A uvloop run is a variant: it leaves the asyncio figures in memory.json.
    name = "memory" if args.loop == "asyncio" else f"memory-{args.loop}"
    path = _common.write_results(
        name,
        {
            **results,
            "lateness_curve": curve,
            "targets": targets,
            "load": args.load,
            "loop": args.loop,
        },
    )
    print(f"wrote {path}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
