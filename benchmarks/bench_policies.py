"""
Poll policies compared: requests per completed prediction and detection lag.

Two measurements of the same question, on the latency profiles of the
vendor's Predictions guide (image uniform 2-10 s, video uniform 30-180 s;
docs/wire.md, "Typical durations"):

* **simulated** (exact, the default): the scheduler's pure core
  (``atlas_async._core.schedule.PollCore``) on a simulated clock, with zero-latency
  polls. Two scenarios: a *cold batch* (N predictions submitted at once to a
  fresh client, so the adaptive policy runs on its prior) and a *steady stream*
  (Poisson arrivals, about 20 in flight, so it runs on what it learned).
* **emulated** (``--emulator``): a real ``AtlasClient`` against the emulator
  in its own process, with ``time_scale=S``; every time constant of the SDK's
  policies (and the adaptive policy's priors) is divided by S, so the figures,
  multiplied back by S, are in Atlas seconds. It includes what simulation
  leaves out (HTTP round trips, timer lateness, the request limiter), each
  magnified S times. Cold batch only.

Lag is the time from a prediction's completion at the server to the moment
the SDK resolves it. In the emulated run the completion time is the
prediction's ``created_at`` (the emulator's clock as wall time, to the
millisecond) plus the ``metrics.predict_time`` it reports, divided by S.

Policies: the default ``AdaptivePolicy()`` against ``FixedPolicy`` 5 s and 2 s
(the guide's advice for video and images) and 0.5 s and 0.1 s (peer SDKs). The
baseline of each ratio is fixed 5 s of the same run.

The edge scenarios (``_edge``): the steady stream (image-like 2-10 s and
video-like 6-36 s) against the fixed-interval frontier on its own durations,
webhooks first with 0%, 1% and 10% of deliveries lost, and a rate-limited
account with and without the poll budget.

Usage::

    python benchmarks/bench_policies.py [--n 2000] [--rate 20] [--emulator]

Writes ``benchmarks/results/policies.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

import _common
import _edge
import attrs

from atlas_async._client import AtlasClient
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import (
    KIND_PRIORS,
    AdaptivePolicy,
    DurationBook,
    FixedPolicy,
    PollPolicy,
)
from atlas_async._core.schedule import PollCore, Resolved

PROFILES: dict[str, tuple[Kind, str, float, float]] = {
    "image 2-10 s": (Kind.IMAGE, "google/nano-banana-2/text-to-image", 2.0, 10.0),
    "video 30-180 s": (Kind.VIDEO, "bytedance/seedance-2.0/text-to-video", 30.0, 180.0),
}
POLICIES: dict[str, PollPolicy] = {
    "adaptive (default)": AdaptivePolicy(),
    "fixed 5 s": FixedPolicy(5.0),
    "fixed 2 s": FixedPolicy(2.0),
    "fixed 0.5 s": FixedPolicy(0.5),
    "fixed 0.1 s": FixedPolicy(0.1),
}
BASELINE = "fixed 5 s"
# Emulated runs: the scale per profile, and the highest poll rate offered to
# the emulator (beyond it a run would measure the emulator, not the policy);
# a row that would need fewer than MIN_EMULATED predictions is left to the
# simulation.
EMULATOR_SCALE = {"image 2-10 s": 5.0, "video 30-180 s": 20.0}
MAX_OFFERED_POLLS = 1500.0
MIN_EMULATED = 20


@attrs.frozen
class Outcome:
    """One policy on one profile: per-prediction means and lag quantiles."""

    requests: float  # per completed prediction, the submit included
    mean_lag: float
    p95_lag: float
    completed: int

    @classmethod
    def of(cls, polls: Sequence[float], lags: Sequence[float]) -> Outcome:
        """Summarise per-prediction poll counts and lags (seconds)."""
        return cls(
            requests=1.0 + sum(polls) / len(polls),
            mean_lag=sum(lags) / len(lags),
            p95_lag=_common.percentile(lags, 0.95),
            completed=len(lags),
        )


# -- simulated ----------------------------------------------------------------


def simulate(
    policy: PollPolicy, profile: str, n: int, *, stream: bool, seed: int
) -> Outcome:
    """Run ``n`` predictions through `PollCore` on a simulated clock."""
    kind, model, low, high = PROFILES[profile]
    rng = random.Random(seed)
    durations = [rng.uniform(low, high) for _ in range(n)]
    if stream:
        # About 20 in flight: arrivals every (mean duration / 20) on average.
        gap = (low + high) / 2.0 / 20.0
        arrivals = list(_cumulative(rng.expovariate(1.0 / gap) for _ in range(n)))
    else:
        arrivals = [0.0] * n
    core = PollCore(random.Random(seed + 1))
    ready: dict[str, float] = {}
    lags: dict[str, float] = {}
    polls: dict[str, int] = {}
    following = 0
    while following < n or len(core):
        arrival = arrivals[following] if following < n else math.inf
        wake = core.next_wakeup()
        if arrival <= wake:
            pid = f"p{following}"
            ready[pid] = arrival + durations[following]
            polls[pid] = 0
            core.add(pid, arrival, kind=kind, model=model, policy=policy)
            following += 1
            continue
        for item in core.due(wake, slack=0.0):
            pid = item.prediction_id
            polls[pid] += 1
            done = wake >= ready[pid]
            # A completed answer carries the server's created_at/completed_at.
            created = ready[pid] - durations[int(pid[1:])]
            snapshot = Prediction(
                id=pid,
                status=PredictionStatus.COMPLETED
                if done
                else PredictionStatus.PROCESSING,
                outputs=("out",) if done else (),
                raw={"created_at": 1e9 + created, "completed_at": 1e9 + ready[pid]}
                if done
                else {},
            )
            if isinstance(core.record(pid, snapshot, wake), Resolved):
                lags[pid] = wake - ready[pid]
    # A steady stream is measured after its first tenth (the warm-up).
    measured = sorted(polls, key=lambda p: int(p[1:]))[n // 10 if stream else 0 :]
    return Outcome.of([polls[p] for p in measured], [lags[p] for p in measured])


def _cumulative(gaps: Any) -> Any:
    total = 0.0
    for gap in gaps:
        total += gap
        yield total


# -- emulated -----------------------------------------------------------------


def _scaled(policy: PollPolicy, scale: float) -> PollPolicy:
    """The same policy with every time constant divided by ``scale``."""
    if isinstance(policy, FixedPolicy):
        return FixedPolicy(policy.interval / scale, jitter=policy.jitter)
    if isinstance(policy, AdaptivePolicy):
        # interval = spacing * sqrt(width): spacing scales with sqrt(scale).
        return attrs.evolve(
            policy,
            spacing=policy.spacing / math.sqrt(scale),
            floor=policy.floor / scale,
            cap=policy.cap / scale,
            probe_floor=policy.probe_floor / scale,
            # d * P(end within d) = resolution: seconds, like d.
            resolution=policy.resolution / scale,
        )
    raise TypeError(f"cannot scale {policy!r}")


async def _emulated_run(
    base_url: str, policy: PollPolicy, profile: str, n: int, scale: float
) -> Outcome:
    kind, model, _, _ = PROFILES[profile]
    async with AtlasClient(
        _common.KEY, base_url=base_url, poll=_scaled(policy, scale)
    ) as client:
        # The adaptive policy's priors are in Atlas seconds: scale them too. The
        # client has no public knob for priors (nobody needs one outside this).
        assert client._scheduler is not None
        client._scheduler._core.durations = DurationBook(
            {k: (lo / scale, hi / scale) for k, (lo, hi) in KIND_PRIORS.items()}
        )

        async def one(index: int) -> float:
            future = await client.submit(kind, model, prompt=f"policy {index}")
            prediction = await future
            seen = time.time()
            # created_at is the emulator's clock mapped to wall time (ms), and
            # predict_time its latency in Atlas seconds: when it really finished.
            assert prediction.created_at is not None
            predict_time = float(prediction.metrics["predict_time"])
            return seen - prediction.created_at.timestamp() - predict_time / scale

        results = await asyncio.gather(*(one(i) for i in range(n)))
        polls = client.statistics().polls
    lags = [scale * lag for lag in results]
    return Outcome.of([polls / n], lags)


def emulated(n: int) -> dict[str, dict[str, Outcome | None]]:
    """Every (profile, policy) against an emulator process, time-scaled."""
    table: dict[str, dict[str, Outcome | None]] = {}
    for profile, scale in EMULATOR_SCALE.items():
        table[profile] = {}
        for name, policy in POLICIES.items():
            # Fewer predictions for the fastest pollers: keep the offered poll
            # rate within what one emulator core serves with room to spare.
            # (The adaptive policy polls every ~1 s on images, ~4 s on video.)
            interval = policy.interval if isinstance(policy, FixedPolicy) else 2.0
            rows = min(n, int(MAX_OFFERED_POLLS * interval / scale))
            if rows < MIN_EMULATED:
                table[profile][name] = None
                continue
            # A fresh emulator per run, same seed: every policy meets the same
            # n durations (the k-th prediction created gets the k-th latency).
            with _common.emulator(time_scale=scale, seed=7) as server:
                outcome = asyncio.run(
                    _emulated_run(server.base_url, policy, profile, rows, scale)
                )
            table[profile][name] = outcome
            print(f"  emulated {profile:<15} {name:<20} {outcome}", file=sys.stderr)
    return table


# -- report -------------------------------------------------------------------


def _rows(table: dict[str, dict[str, Outcome | None]]) -> list[dict[str, Any]]:
    rows = []
    for profile, by_policy in table.items():
        base = by_policy[BASELINE]
        for name, outcome in by_policy.items():
            if outcome is None:
                rows.append({"profile": profile, "policy": name, "skipped": True})
                continue
            rows.append(
                {
                    "profile": profile,
                    "policy": name,
                    **attrs.asdict(outcome),
                    "requests_vs_fixed_5s": outcome.requests / base.requests
                    if base
                    else math.nan,
                    "lag_vs_fixed_5s": outcome.mean_lag / base.mean_lag
                    if base
                    else math.nan,
                }
            )
    return rows


def _print(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}\n")
    print(
        _common.table(
            [
                "profile",
                "policy",
                "N",
                "requests / prediction",
                "vs fixed 5 s",
                "mean lag s",
                "p95 lag s",
                "lag vs fixed 5 s",
            ],
            [
                [r["profile"], r["policy"], 0, "skipped", "-", "-", "-", "-"]
                if r.get("skipped")
                else [
                    r["profile"],
                    r["policy"],
                    r["completed"],
                    r["requests"],
                    f"{r['requests_vs_fixed_5s']:.2f}x",
                    r["mean_lag"],
                    r["p95_lag"],
                    f"{r['lag_vs_fixed_5s']:.2f}x",
                ]
                for r in rows
            ],
        )
    )


def fixed_frontier(
    profile: str, n: int, seed: int, *, stream: bool
) -> list[tuple[float, Outcome]]:
    """
    Fixed intervals from 0.25 s to 8 s on the run's own arrivals and durations
    (same ``n``, ``seed`` and scenario): the trade-off fixed polling offers.
    """
    intervals = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
    return [
        (t, simulate(FixedPolicy(t), profile, n, stream=stream, seed=seed))
        for t in intervals
    ]


def requests_at_lag(frontier: list[tuple[float, Outcome]], lag: float) -> float:
    """Requests a fixed interval needs for ``lag`` mean lag (linear interpolation)."""
    points = sorted((o.mean_lag, o.requests) for _, o in frontier)
    for (lag0, req0), (lag1, req1) in itertools.pairwise(points):
        if lag0 <= lag <= lag1:
            return req0 + (req1 - req0) * (lag - lag0) / (lag1 - lag0)
    return math.nan


def verdicts(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """The targets: video beats fixed 5 s; image sits on the Pareto front."""
    by = {(r["profile"], r["policy"]): r for r in rows if not r.get("skipped")}
    adaptive_video = by[("video 30-180 s", "adaptive (default)")]
    fixed5_video = by[("video 30-180 s", BASELINE)]
    adaptive_image = by[("image 2-10 s", "adaptive (default)")]
    dominated = any(
        r["requests"] <= adaptive_image["requests"]
        and r["mean_lag"] <= adaptive_image["mean_lag"]
        for (profile, name), r in by.items()
        if profile == "image 2-10 s" and name != "adaptive (default)"
    )
    return {
        "video: fewer requests than fixed 5 s": adaptive_video["requests"]
        < fixed5_video["requests"],
        "video: mean lag no worse than fixed 5 s": adaptive_video["mean_lag"]
        <= fixed5_video["mean_lag"],
        "image: on the Pareto front": not dominated,
    }


def edge(n: int, seed: int, rate: float) -> tuple[dict[str, Any], int]:
    """The edge scenarios (``_edge``): print their tables and verdicts."""
    stream = _edge.stream_vs_frontier(n, seed)
    print(f"\nsimulated, steady stream after warm-up, vs the fixed frontier (N={n})\n")
    print(
        _common.table(
            ["profile", "policy", "requests", "mean lag s", "fixed, same lag",
             "ratio"],
            [
                [r["profile"], r["policy"], r["adaptive_requests"],
                 r["adaptive_mean_lag"],
                 r["fixed_requests_at_that_lag"], f"{r['ratio']:.3f}x"]
                for r in stream
            ],
        )
    )  # fmt: skip
    hooks = _edge.webhooks(n, seed)
    print(f"\nsimulated, webhooks first, delivery delay 0.5-1.5 s (N={n})\n")
    print(
        _common.table(
            ["lost", "polls / prediction", "mean lag s", "p99 lag s", "max lag s",
             "unresolved"],
            [
                [f"{r['loss']:.0%}", r["polls_per_prediction"], r["mean_lag"],
                 r["p99_lag"], r["max_lag"], r["unresolved"]]
                for r in hooks
            ],
        )
    )  # fmt: skip
    limited = _edge.rate_limited(rate, 600.0, seed, 0.2)
    print(f"\nsimulated, rate limit {rate:g} requests/s, a submit always waiting\n")
    print(
        _common.table(
            ["profile", "without budget /s", "polls", "lag s", "with budget /s",
             "polls", "lag s", "gain"],
            [
                [r["profile"], r["without_budget"]["predictions_per_second"],
                 r["without_budget"]["polls_per_prediction"],
                 r["without_budget"]["mean_lag"],
                 r["with_budget"]["predictions_per_second"],
                 r["with_budget"]["polls_per_prediction"],
                 r["with_budget"]["mean_lag"], f"{r['gain']:.2f}x"]
                for r in limited
            ],
        )
    )  # fmt: skip
    none_lost, tenth_lost = hooks[0], hooks[-1]
    # A lost delivery is found by the overdue poll: at the longest duration
    # (10 s at most) plus the learned delay (1.5 s at most, plus max(a
    # quarter, 0.5 s)), so at most that long after the shortest (2 s) ended.
    bound = 10.0 + 1.5 + max(0.25 * 1.5, 0.5) - 2.0
    checks = {
        f"steady stream, {r['profile']}: <= 0.8x fixed": r["ratio"] <= 0.8
        for r in stream
        if r["policy"] == "adaptive"
    }
    checks["webhooks, none lost: <= 1.2 polls per prediction"] = (
        none_lost["polls_per_prediction"] <= 1.2
    )
    checks["webhooks, none lost: p99 lag <= delay + 2 s"] = (
        none_lost["p99_lag"] <= 1.5 + 2.0
    )
    checks["webhooks, 10% lost: every prediction resolves"] = not tenth_lost[
        "unresolved"
    ]
    checks[f"webhooks, 10% lost: lag <= fallback bound ({bound:.2f} s)"] = (
        tenth_lost["max_lag"] <= bound
    )
    for r in limited:
        checks[f"rate limited, {r['profile']}: >= 1.10x predictions/s"] = (
            r["gain"] >= 1.10
        )
    failed = 0
    for check, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {check}")
        failed |= 0 if ok else 1
    data = {
        "steady stream vs fixed frontier": stream,
        "webhooks": hooks,
        "rate limited": limited,
        "targets": checks,
    }
    return data, failed


def main() -> int:
    """Simulate (and optionally emulate) every policy; print, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--emulator", action="store_true")
    parser.add_argument("--emulator-n", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    n = max(10, min(args.n, 20000))  # bounded, whatever is asked
    data: dict[str, Any] = {"n": n, "seed": args.seed}
    exit_code = 0
    for scenario, stream in (("cold batch", False), ("steady stream", True)):
        table: dict[str, dict[str, Outcome | None]] = {
            profile: {
                name: simulate(policy, profile, n, stream=stream, seed=args.seed)
                for name, policy in POLICIES.items()
            }
            for profile in PROFILES
        }
        rows = _rows(table)
        _print(f"simulated, {scenario} (N={n})", rows)
        checks = verdicts(rows)
        for check, ok in checks.items():
            print(f"  {'PASS' if ok else 'FAIL'}  {check}")
            exit_code |= 0 if ok else 1
        frontier_note = {}
        for profile in PROFILES:
            frontier = fixed_frontier(profile, n, args.seed, stream=stream)
            adaptive = table[profile]["adaptive (default)"]
            assert adaptive is not None
            same_lag = requests_at_lag(frontier, adaptive.mean_lag)
            frontier_note[profile] = {
                "fixed_interval_requests_at_adaptive_lag": same_lag,
                "adaptive_requests": adaptive.requests,
                "curve": [(t, attrs.asdict(o)) for t, o in frontier],
            }
            print(
                f"  {profile}: a fixed interval with the adaptive policy's mean lag"
                f" ({adaptive.mean_lag:.2f} s) needs {same_lag:.2f} requests;"
                f" adaptive {adaptive.requests:.2f}"
            )
        data[f"simulated {scenario}"] = {
            "rows": rows,
            "targets": checks,
            "fixed_frontier": frontier_note,
        }
    data["edge"], failed = edge(n, args.seed, args.rate)
    exit_code |= failed
    if args.emulator:
        en = max(4, min(args.emulator_n, 200))
        rows = _rows(emulated(en))
        _print(
            f"emulated, cold batch (N={en}, time scale image"
            f" {EMULATOR_SCALE['image 2-10 s']:g}x, video"
            f" {EMULATOR_SCALE['video 30-180 s']:g}x, Atlas seconds)",
            rows,
        )
        data["emulated cold batch"] = {
            "rows": rows,
            "n": en,
            "time_scale": EMULATOR_SCALE,
            "targets": verdicts(rows),
        }
    path = _common.write_results("policies", data)
    print(f"\nwrote {path}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
