"""
Goodput of the default client under the account's limits: a request rate and
a per-model number of unfinished predictions.

Atlas refuses (429) over two limits: the account's requests per second, and a
model's predictions in flight. The client learns both (``client.statistics()``
shows the rate estimate and each model's window). Every scenario runs a fresh
client process against a fresh emulator process (``python -m
atlas_async.emulator``, ``--fault rps=R`` and ``--fault
max_in_flight_model=MODEL:N``), and samples ``client.statistics()`` every
100 ms (every Atlas second in (b), at most 100 ms) into the JSON.

Scenarios
---------
(a) **rate**: 2,000 image prompts through ``generate_many`` against
    R = 50 and R = 200 requests/s.
(b) **window**: 40 videos (and 200) through ``generate_many`` on a model limited
    to 5 in flight (and 20), lasting 30-60 Atlas seconds, and a variant lasting
    2-4 s (far below the video prior of 30-180 s), with image jobs on another
    model submitted at an even pace over 90% of the ideal makespan; then the
    same image jobs alone, against a fresh emulator with the same seed.
(c) **burst**: 5,000 concurrent ``submit_image`` calls against R = 100.

The client
----------
(a) and (c) use the default client: ``AtlasClient(key, base_url=...)``, nothing
else. The emulator runs at time scale 10 (an image takes 0.2-1 s instead of
2-10 s), so R=50 takes about 2 minutes instead of 4-5: the rate limit is in
clock seconds whatever the scale, the adaptive policy learns the shorter
durations by itself, and polls per prediction (measured, and part of the ideal)
fall from about 4.4 (600 images at R=50, scale 1) to about 2.

(b) runs at time scale 50 (5 for the 2-4 s variant) and needs its poll policy
scaled like the emulator: the default ``AdaptivePolicy()`` with spacing divided
by sqrt(S), floor, cap and cold-start probe floor by S, and its priors (image
2-10 s, video 30-180 s) divided by S (set on the client's duration book, as
``bench_policies.py`` does; the client has no public knob for priors).
Nothing else differs from the defaults. Times are reported in Atlas seconds
(clock seconds x S).

Definitions
-----------
* **steady part** (a, c): from the moment 10% of the jobs had completed to the
  moment 90% had, read off the 100 ms samples (linear between samples). It
  leaves out the first contact (the rate unknown, so unlimited) and the tail
  (too few jobs left to need the whole rate).
* **useful requests**: requests answered with anything but a 429 (the
  client's ``requests_sent - rate_limited``). **goodput** = useful requests per
  second over the steady part / R. The server's token bucket admits at most R
  a second (plus one bucket, R requests, once), so goodput cannot exceed about 1.
* **refusals**: 429s as a share of all requests (``rate_limited /
  requests_sent``), over the steady part and over the whole run (the emulator's
  counts for the latter).
* **ideal predictions/s** (a, c) = R / (1 + p), with p the answered polls per
  completed prediction over the steady part (``polls`` minus the refused
  ones, over ``completed``): the throughput if every request the account allows
  were used and each prediction cost one submit and p polls. The ratio
  measured / ideal is the share of that the client got.
* **ideal makespan** (b): the makespan of a client that sees each video end
  at once and starts the next one, in batch order, on the first slot to free
  up, with the videos' own durations (their ``metrics.predict_time``, Atlas
  seconds): list scheduling, the best any client submitting in batch order can
  do. **efficiency** = ideal / measured wall time (first submit to last video
  result). What separates the client from it is the **video lag**: from a
  video's end at the server (its ``created_at`` plus ``predict_time``) to its
  result coming out of ``generate_many``, Atlas seconds, mean over the videos.
  For reference, the **divisible bound** = jobs / limit x mean duration: the
  slots kept busy as if jobs could be split, which no client reaches (40 videos
  of 30-60 s on 20 slots are two waves, and the second ends with its slowest
  pair: a zero-lag client gets 0.81 of that bound there).
* **image latency** (b): from calling ``submit_image`` to the prediction's
  result, Atlas seconds; with the videos vs the same schedule alone. Durations
  are drawn anew in each run, so ``lag`` (latency minus the image's own
  ``predict_time``) is given too.

Targets: goodput and predictions/s >= 0.9 of ideal, refusals <= 2% over the
steady part, 0 failed, makespan efficiency >= 0.9, image latency p50 and p95
within 25% of alone. Exit 1 if one is missed.

Running
-------
The rate-bound scenarios run in two lanes at once, each scenario with its own
emulator and client process: the burst (c) in one, (a) R=50 then R=200 in the
other, started 5 s later. They are bound by the emulator's clock, not by CPU
(each client used 13-41% of a core), but a client's first contact with
an unknown rate depends on timing: with all three started at the same
instant, R=200's first seconds cost 164 refusals instead of 12, so no two
clients start together. ``--serial`` runs them one after another (about 2.5
minutes longer). The window scenarios (b) run one after another afterwards,
alone, because their latencies are measured at 50x.

Usage::

    python benchmarks/bench_limits.py            # ~4 minutes
    python benchmarks/bench_limits.py --quick    # ~75 s; too short to be steady
    python benchmarks/bench_limits.py --only a,c [--serial]
    python benchmarks/bench_limits.py --plot-only

Writes ``benchmarks/results/limits.json`` and ``docs/images/limits.png`` (needs
matplotlib, the ``bench`` extra; without it the plot is skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import math
import sys
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _common
import attrs

from atlas_async import (
    AdaptivePolicy,
    AtlasClient,
    AtlasError,
    ClientStatistics,
    Prediction,
)
from atlas_async._core.policies import KIND_PRIORS, DurationBook

IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
RATE_SCALE = 10.0  # (a), (c): images take 0.2-1 s
VIDEO_SCALE = 50.0  # (b): a 30-60 s video takes 0.6-1.2 s
SHORT_SCALE = 5.0  # (b), 2-4 s videos: 0.4-0.8 s
SAMPLE_EVERY = 0.1  # clock seconds; in (b) at most one Atlas second
IMAGES_BESIDE = 80  # image jobs beside the videos in (b)
LANE_DELAY = 5.0  # seconds between the two lanes' starts (see _rate_bound)
PLOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "limits.png"

# One row of the timeline per sample; the model is the video model in (b), the
# image model otherwise.
COLUMNS = (
    "t",
    "rate",
    "sent_per_s",
    "requests",
    "refused",
    "submits_refused",
    "polls",
    "submitted",
    "completed",
    "failed",
    "in_flight",
    "queued_polls",
    "window",
    "model_in_flight",
    "model_queued",
)


@attrs.frozen(kw_only=True)
class Scenario:
    """One measured run: the emulator's limits and what the client is given."""

    name: str
    part: str  # "a", "b" or "c"
    mode: str  # "batch", "burst", "mixed" (videos and images) or "alone"
    jobs: int  # image prompts (a, c) or videos (b)
    scale: float
    rps: float | None = None
    limit: int | None = None  # the video model's in-flight limit
    video_latency: tuple[float, float] = (30.0, 60.0)
    images: int = 0

    def faults(self) -> list[str]:
        """The emulator's ``--fault`` options."""
        faults = [] if self.rps is None else [f"rps={self.rps:g}"]
        if self.limit is not None:
            faults.append(f"max_in_flight_model={VIDEO}:{self.limit}")
        return faults

    def latency(self) -> list[str]:
        """The emulator's ``--latency`` options."""
        low, high = self.video_latency
        return [f"{VIDEO}={low:g},{high:g}"] if self.part == "b" else []

    def nominal_makespan(self) -> float:
        """jobs / limit x the middle of the video latency range (Atlas s)."""
        if self.limit is None:
            return 0.0
        return self.jobs / self.limit * sum(self.video_latency) / 2.0

    def image_gap(self) -> float:
        """Clock seconds between two image jobs in (b)."""
        if not self.images:
            return 0.0
        return 0.9 * self.nominal_makespan() / self.images / self.scale


def scenarios(quick: bool) -> list[Scenario]:
    """Every scenario, in the order they run (the alone twins after their mixes)."""
    images = 2000 if not quick else 500
    burst = 5000 if not quick else 1000
    runs = [
        Scenario(
            name="a R=50", part="a", mode="batch", jobs=images, scale=RATE_SCALE, rps=50
        ),
        Scenario(
            name="a R=200",
            part="a",
            mode="batch",
            jobs=images,
            scale=RATE_SCALE,
            rps=200,
        ),
        Scenario(
            name="c R=100 burst",
            part="c",
            mode="burst",
            jobs=burst,
            scale=RATE_SCALE,
            rps=100,
        ),
    ]
    shapes: list[tuple[int, int, tuple[float, float], float]] = [
        (40, 5, (30.0, 60.0), VIDEO_SCALE),
        (40, 5, (2.0, 4.0), SHORT_SCALE),
    ]
    if not quick:
        shapes[1:1] = [
            (40, 20, (30.0, 60.0), VIDEO_SCALE),
            (200, 20, (30.0, 60.0), VIDEO_SCALE),
        ]
        shapes.append((200, 20, (2.0, 4.0), SHORT_SCALE))
    for videos, limit, latency, scale in shapes:
        name = f"b {videos} videos, limit {limit}, {latency[0]:g}-{latency[1]:g} s"
        for mode in ("mixed", "alone"):
            runs.append(
                Scenario(
                    name=name if mode == "mixed" else f"{name}, images alone",
                    part="b",
                    mode=mode,
                    jobs=videos,
                    scale=scale,
                    limit=limit,
                    video_latency=latency,
                    images=IMAGES_BESIDE,
                )
            )
    return runs


# -- the child: one client, one scenario ----------------------------------------


def _row(stats: ClientStatistics, t: float, model: str) -> list[float | int | None]:
    figures = stats.models.get(model)
    rate = stats.requests_per_second
    return [
        round(t, 3),
        None if rate is None else round(rate, 2),
        round(stats.sent_per_second, 1),
        stats.requests_sent,
        stats.rate_limited,
        stats.submits_refused,
        stats.polls,
        stats.submitted,
        stats.completed,
        stats.failed,
        stats.in_flight,
        stats.queued_polls,
        None if figures is None else figures.window,
        0 if figures is None else figures.in_flight,
        0 if figures is None else figures.queued,
    ]


def _scale_client(client: AtlasClient, scale: float) -> None:
    """Divide the adaptive policy's priors by ``scale`` (see the docstring)."""
    assert client._scheduler is not None
    client._scheduler._core.durations = DurationBook(
        {kind: (low / scale, high / scale) for kind, (low, high) in KIND_PRIORS.items()}
    )


def _scaled_policy(scale: float) -> AdaptivePolicy:
    """The default policy with every time constant divided by ``scale``."""
    policy = AdaptivePolicy()
    # interval = spacing * sqrt(width): spacing scales with sqrt(scale).
    changes: dict[str, Any] = {
        "spacing": policy.spacing / math.sqrt(scale),
        "floor": policy.floor / scale,
        "cap": policy.cap / scale,
    }
    # The cold-start probe's earliest time, where the policy has one.
    values = attrs.asdict(policy)
    if "probe_floor" in values:
        changes["probe_floor"] = values["probe_floor"] / scale
    return attrs.evolve(policy, **changes)


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    scaled = args.mode in ("mixed", "alone")
    client = (
        AtlasClient(
            _common.KEY, base_url=args.base_url, poll=_scaled_policy(args.scale)
        )
        if scaled
        else AtlasClient(_common.KEY, base_url=args.base_url)
    )
    model = VIDEO if scaled else IMAGE
    timeline: list[list[float | int | None]] = []
    result: dict[str, Any] = {"mode": args.mode, "errors": []}
    async with client:
        if scaled:
            _scale_client(client, args.scale)
        started = time.perf_counter()

        async def sample() -> None:
            while True:
                timeline.append(
                    _row(client.statistics(), time.perf_counter() - started, model)
                )
                await asyncio.sleep(
                    min(SAMPLE_EVERY, 1.0 / args.scale if scaled else SAMPLE_EVERY)
                )

        sampler = asyncio.ensure_future(sample())
        try:
            if args.mode == "batch":
                result.update(await _batch(client, IMAGE, "image", args.jobs))
                del result["durations"], result["lags"]  # 2,000 numbers each
            elif args.mode == "burst":
                result.update(await _burst(client, args.jobs))
            else:
                result.update(await _window(client, args, started))
        finally:
            sampler.cancel()
        result["elapsed"] = time.perf_counter() - started
        timeline.append(_row(client.statistics(), result["elapsed"], model))
        result["final"] = attrs.asdict(client.statistics())
    result["cpu_s"] = _common.cpu_seconds()  # the client's, imports included
    result["timeline"] = timeline
    return result


async def _batch(
    client: AtlasClient, model: str, kind: str, jobs: int, scale: float = 1.0
) -> dict[str, Any]:
    requests = [
        {"kind": kind, "model": model, "prompt": f"{kind} {i}"} for i in range(jobs)
    ]
    ok, failed, errors = 0, 0, []
    # Each job's own duration (Atlas s), in batch order: the list schedule of (b).
    durations: list[float | None] = [None] * jobs
    lags: list[float] = []
    async for item in client.generate_many(requests):
        prediction = item.prediction
        if prediction is None:
            failed += 1
            errors.append(repr(item.error))
            continue
        ok += 1
        seen = time.time()
        took = durations[item.index] = _predict_time(prediction)
        if took is not None and prediction.created_at is not None:
            # The emulator's created_at is its clock as wall time (ms), and
            # predict_time its latency in Atlas seconds: when it really ended.
            ended = prediction.created_at.timestamp() + took / scale
            lags.append((seen - ended) * scale)
    return {
        "ok": ok,
        "failed": failed,
        "durations": durations,
        "lags": lags,
        "errors": errors[:5],
    }


async def _burst(client: AtlasClient, jobs: int) -> dict[str, Any]:
    async def one(index: int) -> str | None:
        try:
            future = await client.submit_image(IMAGE, prompt=f"burst {index}")
            await future
        except AtlasError as error:  # counted, never raised: every job reports
            return repr(error)
        return None

    outcomes = await asyncio.gather(*(one(i) for i in range(jobs)))
    errors = [error for error in outcomes if error is not None]
    return {"ok": jobs - len(errors), "failed": len(errors), "errors": errors[:5]}


async def _window(
    client: AtlasClient, args: argparse.Namespace, started: float
) -> dict[str, Any]:
    latencies: list[float] = []
    lags: list[float] = []
    errors: list[str] = []

    async def image(index: int) -> None:
        await asyncio.sleep(
            max(0.0, started + index * args.image_gap - time.perf_counter())
        )
        sent = time.perf_counter()
        try:
            future = await client.submit_image(IMAGE, prompt=f"beside {index}")
            prediction = await future
        except AtlasError as error:  # counted, never raised
            errors.append(repr(error))
            return
        latency = (time.perf_counter() - sent) * args.scale
        latencies.append(latency)
        lags.append(latency - (_predict_time(prediction) or 0.0))

    async def videos() -> dict[str, Any]:
        outcome = await _batch(client, VIDEO, "video", args.jobs, args.scale)
        outcome["wall"] = (time.perf_counter() - started) * args.scale
        return outcome

    images = [image(i) for i in range(args.images)]
    if args.mode == "alone":
        await asyncio.gather(*images)
        result: dict[str, Any] = {"ok": 0, "failed": 0, "errors": []}
    else:
        result, *_ = await asyncio.gather(videos(), *images)
    result["image_latency"] = latencies
    result["image_lag"] = lags
    result["image_failed"] = len(errors)
    result["errors"] = result["errors"] + errors[:5]
    return result


def _predict_time(prediction: Prediction) -> float | None:
    value = prediction.metrics.get("predict_time")
    return None if value is None else float(value)


# -- the parent: emulators, children, figures -------------------------------------


def _server_stats(server: _common.Server) -> dict[str, Any]:
    with urllib.request.urlopen(
        f"{server.origin}/_emulator/stats", timeout=10
    ) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    for bulky in ("polls_by_prediction", "requests_by_endpoint"):
        stats.pop(bulky, None)
    return stats


def _run(scenario: Scenario) -> dict[str, Any]:
    """One scenario: a fresh emulator, a fresh client process; raw results."""
    with _common.emulator(
        time_scale=scenario.scale, faults=scenario.faults(), latency=scenario.latency()
    ) as server:
        command = [sys.executable, __file__, "--child", "--base-url", server.base_url]
        command += ["--mode", scenario.mode, "--jobs", str(scenario.jobs)]
        command += ["--scale", f"{scenario.scale:g}", "--images", str(scenario.images)]
        command += ["--image-gap", f"{scenario.image_gap():.6f}"]
        if _common.can_pin():
            command = ["taskset", "-c", str(_common.CLIENT_CORE), *command]
        started = time.monotonic()
        result = _common.run_json(command, timeout=900)
        result["wall_clock_s"] = time.monotonic() - started
        result["server"] = _server_stats(server)
    result["scenario"] = attrs.asdict(scenario)
    if scenario.mode == "alone":
        del result["timeline"]  # no video model to watch; keeps the JSON small
    print(f"  done: {scenario.name} ({result['wall_clock_s']:.0f} s)", file=sys.stderr)
    return result


def _at(timeline: list[list[Any]], column: str, t: float) -> float:
    """A counter's value at ``t``, linear between samples."""
    index = COLUMNS.index(column)
    previous = timeline[0]
    for row in timeline:
        if row[0] >= t:
            span = row[0] - previous[0]
            share = 0.0 if span <= 0 else (t - previous[0]) / span
            return float(previous[index] + share * (row[index] - previous[index]))
        previous = row
    return float(timeline[-1][index])


def _crossing(timeline: list[list[Any]], column: str, value: float) -> float:
    """When a counter first reached ``value`` (linear between samples)."""
    index = COLUMNS.index(column)
    previous = timeline[0]
    for row in timeline:
        if row[index] >= value:
            span = row[index] - previous[index]
            share = 0.0 if span <= 0 else (value - previous[index]) / span
            return float(previous[0] + share * (row[0] - previous[0]))
        previous = row
    return float(timeline[-1][0])


def _rate_figures(raw: dict[str, Any]) -> dict[str, Any]:
    """(a) and (c): goodput, refusals and predictions/s over the steady part."""
    scenario, timeline, server = raw["scenario"], raw["timeline"], raw["server"]
    rps, jobs = float(scenario["rps"]), scenario["jobs"]
    t0 = _crossing(timeline, "completed", 0.1 * jobs)
    t1 = _crossing(timeline, "completed", 0.9 * jobs)
    span = max(t1 - t0, 1e-9)

    def delta(column: str) -> float:
        return _at(timeline, column, t1) - _at(timeline, column, t0)

    requests, refused, completed = (
        delta("requests"),
        delta("refused"),
        delta("completed"),
    )
    answered_polls = delta("polls") - (refused - delta("submits_refused"))
    per_prediction = answered_polls / max(completed, 1.0)
    ideal = rps / (1.0 + per_prediction)
    rate = COLUMNS.index("rate")
    estimates = [
        row[rate] for row in timeline if t0 <= row[0] <= t1 and row[rate] is not None
    ]
    refusals = sum(server["refusals"].values())
    return {
        "name": scenario["name"],
        "part": scenario["part"],
        "rps": rps,
        "jobs": jobs,
        "wall_s": raw["elapsed"],
        "steady_from_s": t0,
        "steady_to_s": t1,
        "goodput": (requests - refused) / span / rps,
        "refused_share_steady": refused / max(requests, 1.0),
        "refused_share_run": refusals / max(server["requests"], 1),
        "refusals_run": refusals,
        "requests_run": server["requests"],
        "polls_per_prediction": per_prediction,
        "polls_per_prediction_run": server["polls"]
        / max(server["predictions_created"], 1),
        "predictions_per_s": completed / span,
        "ideal_predictions_per_s": ideal,
        "vs_ideal": completed / span / ideal,
        "rate_estimate_median": _common.median(estimates),
        "client_rate_refusals": raw["final"]["rate_refusals"],
        "failed": raw["failed"],
        "errors": raw["errors"],
        "created": server["predictions_created"],
        "client_cpu_share": raw["cpu_s"] / raw["elapsed"],
    }


def _window_figures(mixed: dict[str, Any], alone: dict[str, Any]) -> dict[str, Any]:
    """(b): makespan against the ideal, refusals, image latency against alone."""
    pct = _common.percentile
    scenario, server, final = mixed["scenario"], mixed["server"], mixed["final"]
    durations = [d for d in mixed["durations"] if d is not None]
    mean = sum(durations) / max(len(durations), 1)
    divisible = scenario["jobs"] / scenario["limit"] * mean
    ideal = _list_makespan(durations, scenario["limit"])
    refusals = sum(server["refusals"].values())
    video = final["models"].get(VIDEO, {})

    latency, lone = mixed["image_latency"], alone["image_latency"]
    return {
        "name": scenario["name"],
        "part": "b",
        "videos": scenario["jobs"],
        "limit": scenario["limit"],
        "video_latency": scenario["video_latency"],
        "scale": scenario["scale"],
        "mean_duration": mean,
        "ideal_makespan": ideal,
        "wall": mixed["wall"],
        "efficiency": ideal / mixed["wall"] if mixed["wall"] else math.nan,
        "divisible_makespan": divisible,
        "vs_divisible": divisible / mixed["wall"] if mixed["wall"] else math.nan,
        "video_lag_mean": sum(mixed["lags"]) / max(len(mixed["lags"]), 1),
        "video_lag_p95": pct(mixed["lags"], 0.95),
        "refusals": server["refusals"],
        "refused_share_run": refusals / max(server["requests"], 1),
        "refusals_per_video": server["refusals"]["model_in_flight"] / scenario["jobs"],
        "client_window_refusals": final["window_refusals"],
        "client_rate_refusals": final["rate_refusals"],
        "probes": video.get("probes", 0),
        "peak_in_flight": server["peak_in_flight_by_model"].get(VIDEO, 0),
        "waited_for_slots_s": final["waited_for_slots"],
        "requests_run": server["requests"],
        "failed": mixed["failed"] + mixed["image_failed"] + alone["image_failed"],
        "errors": mixed["errors"] + alone["errors"],
        "images": len(latency),
        "image_p50": pct(latency, 0.5),
        "image_p95": pct(latency, 0.95),
        "alone_p50": pct(lone, 0.5),
        "alone_p95": pct(lone, 0.95),
        "p50_vs_alone": pct(latency, 0.5) / pct(lone, 0.5),
        "p95_vs_alone": pct(latency, 0.95) / pct(lone, 0.95),
        "lag_p50": pct(mixed["image_lag"], 0.5),
        "lag_p95": pct(mixed["image_lag"], 0.95),
        "alone_lag_p50": pct(alone["image_lag"], 0.5),
        "alone_lag_p95": pct(alone["image_lag"], 0.95),
    }


def _list_makespan(durations: Sequence[float], limit: int) -> float:
    """
    The makespan of a client with no lag at all: each job, in batch order, starts
    on the first slot to free up: the ideal makespan.
    """
    slots = [0.0] * limit
    for duration in durations:
        heapq.heapreplace(slots, slots[0] + duration)
    return max(slots)


def _targets(rows: Sequence[dict[str, Any]]) -> list[tuple[str, bool]]:
    checks: list[tuple[str, bool]] = []
    for row in rows:
        name = row["name"]
        checks.append((f"{name}: 0 failed", row["failed"] == 0))
        if row["part"] in ("a", "c"):
            checks.append((f"{name}: goodput >= 0.9", row["goodput"] >= 0.9))
            checks.append(
                (f"{name}: predictions/s >= 0.9 of ideal", row["vs_ideal"] >= 0.9)
            )
            checks.append(
                (
                    f"{name}: refusals <= 2% (steady)",
                    row["refused_share_steady"] <= 0.02,
                )
            )
        else:
            checks.append(
                (f"{name}: makespan efficiency >= 0.9", row["efficiency"] >= 0.9)
            )
            checks.append(
                (
                    f"{name}: refusals <= 2% of requests",
                    row["refused_share_run"] <= 0.02,
                )
            )
            within = row["p50_vs_alone"] <= 1.25 and row["p95_vs_alone"] <= 1.25
            checks.append((f"{name}: image p50, p95 within 25% of alone", within))
    return checks


def _tables(rows: Sequence[dict[str, Any]]) -> str:
    rate = [r for r in rows if r["part"] in ("a", "c")]
    window = [r for r in rows if r["part"] == "b"]
    out = []
    if rate:
        out.append(
            _common.table(
                [
                    "scenario",
                    "jobs",
                    "wall s",
                    "goodput",
                    "refused (steady)",
                    "refused (run)",
                    "polls/pred",
                    "pred/s",
                    "ideal pred/s",
                    "vs ideal",
                    "rate estimate",
                    "failed",
                ],
                [
                    [
                        r["name"],
                        r["jobs"],
                        r["wall_s"],
                        f"{r['goodput']:.2f}",
                        f"{100 * r['refused_share_steady']:.1f}%",
                        f"{100 * r['refused_share_run']:.1f}% ({r['refusals_run']})",
                        r["polls_per_prediction"],
                        r["predictions_per_s"],
                        r["ideal_predictions_per_s"],
                        f"{r['vs_ideal']:.2f}",
                        r["rate_estimate_median"],
                        r["failed"],
                    ]
                    for r in rate
                ],
            )
        )
    if window:
        out.append(
            _common.table(
                [
                    "scenario",
                    "ideal s",
                    "wall s",
                    "efficiency",
                    "divisible s",
                    "vs divisible",
                    "video lag",
                    "refusals (window / rate)",
                    "refused",
                    "peak",
                    "failed",
                    "image p50 / alone",
                    "image p95 / alone",
                    "lag p95 / alone",
                ],
                [
                    [
                        r["name"],
                        r["ideal_makespan"],
                        r["wall"],
                        f"{r['efficiency']:.3f}",
                        r["divisible_makespan"],
                        f"{r['vs_divisible']:.3f}",
                        f"{r['video_lag_mean']:.2f}",
                        f"{r['refusals']['model_in_flight']} / {r['refusals']['rate']}",
                        f"{100 * r['refused_share_run']:.1f}%",
                        f"{r['peak_in_flight']}/{r['limit']}",
                        r["failed"],
                        f"{r['image_p50']:.1f} / {r['alone_p50']:.1f}"
                        f" ({r['p50_vs_alone']:.2f}x)",
                        f"{r['image_p95']:.1f} / {r['alone_p95']:.1f}"
                        f" ({r['p95_vs_alone']:.2f}x)",
                        f"{r['lag_p95']:.2f} / {r['alone_lag_p95']:.2f}",
                    ]
                    for r in window
                ],
            )
        )
    return "\n\n".join(out)


# -- the JSON and the plot ----------------------------------------------------------


def _dump(value: Any, indent: int = 0) -> str:
    """JSON, indented, but a list of numbers on one line (timelines stay small)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(str(key))}: {_dump(item, indent + 2)}"
            for key, item in sorted(value.items())
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list | tuple) and value:
        if all(not isinstance(item, dict | list | tuple) for item in value):
            return json.dumps(value)
        items = [f"{inner}{_dump(item, indent + 2)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value)


def _write(data: dict[str, Any]) -> Path:
    _common.RESULTS.mkdir(exist_ok=True)
    path = _common.RESULTS / "limits.json"
    payload = {"benchmark": "limits", "environment": _common.environment(), **data}
    path.write_text(_dump(payload) + "\n")
    return path


def plot(data: dict[str, Any]) -> Path | None:
    """Rate estimates and windows over time against the true limits."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is missing (pip install matplotlib): no plot", file=sys.stderr
        )
        return None
    runs = list(data["runs"].values())
    rate_runs = sorted(
        (r for r in runs if r["scenario"]["part"] in ("a", "c")),
        key=lambda r: (r["scenario"]["part"], r["scenario"]["rps"]),
    )
    mixed = [r for r in runs if r["scenario"]["part"] == "b" and r["mode"] == "mixed"]
    groups = [
        [r for r in mixed if r["scenario"]["video_latency"][1] > 10],
        [r for r in mixed if r["scenario"]["video_latency"][1] <= 10],
    ]
    groups = [group for group in groups if group]
    panels = len(rate_runs) + len(groups)
    rows = max(1, math.ceil(panels / 2))
    figure, axes = plt.subplots(rows, 2, figsize=(11, 3.3 * rows), squeeze=False)
    flat = [ax for line in axes for ax in line]
    for ax, run in zip(flat, rate_runs, strict=False):
        _rate_panel(ax, run)
    if rate_runs:
        flat[0].legend(fontsize=7, loc="upper right")
    for ax, group in zip(flat[len(rate_runs) :], groups, strict=False):
        _window_panel(ax, group)
    for ax in flat[panels:]:
        ax.set_visible(False)
    figure.suptitle(
        "The default client under the account's limits"
        " (benchmarks/results/limits.json)",
        fontsize=10,
    )
    figure.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT, dpi=110)
    plt.close(figure)
    return PLOT


def _column(timeline: Sequence[Sequence[Any]], name: str) -> list[float]:
    index = COLUMNS.index(name)
    return [math.nan if row[index] is None else float(row[index]) for row in timeline]


def _rate_panel(ax: Any, run: dict[str, Any]) -> None:
    """(a), (c): the rate estimate, what was sent and answered, and R."""
    timeline, scenario = run["timeline"], run["scenario"]
    rps = scenario["rps"]
    times = _column(timeline, "t")
    answered = [
        r - f
        for r, f in zip(
            _column(timeline, "requests"), _column(timeline, "refused"), strict=True
        )
    ]
    per_second = [
        (b - a) / (t1 - t0) if t1 > t0 else math.nan
        for (t0, a), (t1, b) in itertools.pairwise(zip(times, answered, strict=True))
    ]
    ax.plot(
        times,
        _column(timeline, "sent_per_s"),
        lw=0.8,
        color="0.6",
        label="sent, last second",
    )
    ax.plot(
        times[1:],
        _smooth(per_second, 10),
        lw=0.9,
        color="tab:green",
        label="answered (not 429), 1 s mean",
    )
    ax.plot(
        times,
        _column(timeline, "rate"),
        lw=1.3,
        color="tab:blue",
        label="rate estimate",
    )
    ax.axhline(rps, color="tab:red", ls="--", lw=1, label="true limit R")
    refused = _column(timeline, "refused")
    marks = [
        t
        for t, (a, b) in zip(times[1:], itertools.pairwise(refused), strict=True)
        if b > a
    ]
    ax.plot(
        marks, [0.03 * rps] * len(marks), "|", color="tab:red", ms=7, label="a 429 came"
    )
    ax.set_ylim(0, 2.2 * rps)
    ax.set_xlabel("seconds")
    ax.set_ylabel("requests/s")
    ax.set_title(f"{scenario['name']}: {scenario['jobs']:,} images", fontsize=10)
    ax.grid(True, alpha=0.3)


def _window_panel(ax: Any, runs: Sequence[dict[str, Any]]) -> None:
    """(b): each video model's window and in flight, against its limit."""
    for index, run in enumerate(runs):
        timeline, scenario = run["timeline"], run["scenario"]
        color = f"C{index}"
        times = [t * scenario["scale"] for t in _column(timeline, "t")]
        label = f"{scenario['jobs']} videos, limit {scenario['limit']}"
        ax.step(
            times,
            _column(timeline, "window"),
            where="post",
            color=color,
            lw=1.3,
            label=label,
        )
        ax.plot(
            times, _column(timeline, "model_in_flight"), color=color, lw=0.6, alpha=0.6
        )
        ax.axhline(scenario["limit"], color=color, ls="--", lw=0.8)
    low, high = runs[0]["scenario"]["video_latency"]
    ax.set_xlabel("Atlas seconds")
    ax.set_ylabel("video model: window")
    ax.set_title(
        f"(b) videos {low:g}-{high:g} s: window (step), in flight (thin),"
        " limit (dashed)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, alpha=0.3)


def _smooth(values: Sequence[float], width: int) -> list[float]:
    out, window = [], []
    for value in values:
        window.append(value)
        if len(window) > width:
            window.pop(0)
        out.append(sum(window) / len(window))
    return out


# -- main ----------------------------------------------------------------------------


def _rate_bound(runs: Sequence[Scenario], serial: bool) -> list[dict[str, Any]]:
    """
    (a) and (c) in two lanes: the burst in one, the batches one after the other
    in the other, started ``LANE_DELAY`` later so no two clients learn the rate
    at the same moment (see the docstring); ``serial``: one lane.
    """
    if serial:
        return [_run(scenario) for scenario in runs]
    lanes = [[s for s in runs if s.part == "c"], [s for s in runs if s.part != "c"]]

    def lane(scenarios: Sequence[Scenario], delay: float) -> list[dict[str, Any]]:
        time.sleep(delay if scenarios else 0.0)
        return [_run(scenario) for scenario in scenarios]

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(lane, lanes[0], 0.0)
        second = pool.submit(lane, lanes[1], LANE_DELAY if lanes[0] else 0.0)
        done = first.result() + second.result()
    order = [scenario.name for scenario in runs]
    return sorted(done, key=lambda raw: order.index(raw["scenario"]["name"]))


def main() -> int:
    """Run the scenarios; print the tables, write the JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer jobs, ~75 s (a smoke test)"
    )
    parser.add_argument("--only", default="a,b,c", help="parts to run: a,b,c")
    parser.add_argument("--serial", action="store_true", help="(a), (c) one at a time")
    parser.add_argument("--plot-only", action="store_true", help="redraw from the JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--image-gap", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args))))
        return 0
    if args.plot_only:
        path = plot(json.loads((_common.RESULTS / "limits.json").read_text()))
        print(f"wrote {path}")
        return 0
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    chosen = [s for s in scenarios(args.quick) if s.part in parts]
    started = time.monotonic()
    raw: list[dict[str, Any]] = _rate_bound(
        [s for s in chosen if s.part != "b"], args.serial
    )
    raw += [_run(s) for s in chosen if s.part == "b"]
    rows = [_rate_figures(r) for r in raw if r["scenario"]["part"] != "b"]
    windows = [r for r in raw if r["scenario"]["part"] == "b"]
    rows += [
        _window_figures(mixed, alone)
        for mixed, alone in zip(windows[::2], windows[1::2], strict=True)
    ]
    print(_tables(rows))
    checks = _targets(rows)
    for label, met in checks:
        print(f"  {'PASS' if met else 'FAIL'}  {label}")
    target = all(met for _, met in checks)
    data = {
        "quick": args.quick,
        "serial": args.serial,
        "seconds": time.monotonic() - started,
        "columns": list(COLUMNS),
        "summary": rows,
        "targets": dict(checks),
        "target_met": target,
        "runs": {r["scenario"]["name"]: r for r in raw},
    }
    print(f"wrote {_write(data)}")
    path = plot(data)
    if path is not None:
        print(f"wrote {path}")
    return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
