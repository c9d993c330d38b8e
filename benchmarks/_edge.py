"""
The scenarios of ``bench_policies.py`` at the edge of what polling can do.

All three run the scheduler's pure core (``PollCore``) on a simulated clock with
zero-latency requests, and count polls and detection lag from the simulated
server's own log (when each prediction really ended):

* `stream_vs_frontier`: a steady stream (Poisson arrivals, about 20 in
  flight) on one model, measured after a warm-up (the first fifth), against the
  fixed-interval frontier computed on the very same arrivals and durations:
  the requests a fixed interval needs for the adaptive policy's mean lag.
* `webhooks`: the same stream submitted with ``webhook_url``; each delivery
  arrives ``delay`` seconds after its prediction ended, a share ``loss`` never
  does (the delay varies between half and one and a half times ``delay``).
  Polls per prediction and detection lag, deliveries ending what they can.
* `rate_limited`: an account limited to ``rate`` requests per second and more
  work than it can pay for (a submit is always waiting). The gate sends waiting
  polls before submits; without the budget every due poll goes in turn, with it
  polls less than ``least`` likely to find their prediction done are held
  (``PollBudget``). Completed predictions per second, after a warm-up.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import _common
import attrs

from atlas_async._core.budget import PollBudget
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import (
    AdaptivePolicy,
    FixedPolicy,
    PollPolicy,
    WebhookPolicy,
)
from atlas_async._core.schedule import PollCore, Resolved

#: Steady-stream profiles: (kind, model, shortest, longest) seconds, uniform.
STREAM_PROFILES: dict[str, tuple[Kind, str, float, float]] = {
    "image-like 2-10 s": (Kind.IMAGE, "google/nano-banana-2/text-to-image", 2.0, 10.0),
    "video-like 6-36 s": (Kind.VIDEO, "bytedance/seedance-2.0/fast", 6.0, 36.0),
}
#: The fixed intervals of the frontier, seconds.
FRONTIER = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5,
            3.0, 4.0, 5.0, 6.0, 8.0)  # fmt: skip
EPOCH = 1_700_000_000.0
WARM = 0.2  # the share of a run left out as warm-up


@attrs.frozen
class Run:
    """One simulated run: per measured prediction, polls (submit excluded) and lag."""

    polls: tuple[int, ...]
    lags: tuple[float, ...]

    @property
    def requests(self) -> float:
        """Requests per prediction, the submit included."""
        return 1.0 + sum(self.polls) / len(self.polls)

    @property
    def polls_per_prediction(self) -> float:
        """Polls per prediction."""
        return sum(self.polls) / len(self.polls)

    @property
    def mean_lag(self) -> float:
        """Mean detection lag, seconds."""
        return sum(self.lags) / len(self.lags)

    def lag(self, q: float) -> float:
        """The ``q`` quantile of the detection lag, seconds."""
        return _common.percentile(self.lags, q)


def workload(
    low: float, high: float, n: int, seed: int
) -> tuple[list[float], list[float]]:
    """Uniform durations in [low, high] and Poisson arrivals, ~20 in flight."""
    rng = random.Random(seed)
    durations = [rng.uniform(low, high) for _ in range(n)]
    gap = (low + high) / 2.0 / 20.0
    arrivals = list(itertools.accumulate(rng.expovariate(1.0 / gap) for _ in range(n)))
    return durations, arrivals


def _snapshot(pid: str, done: bool, created: float, ended: float) -> Prediction:
    if not done:
        return Prediction(id=pid, status=PredictionStatus.PROCESSING)
    # The server's log: created_at and completed_at, as Atlas reports them.
    return Prediction(
        id=pid,
        status=PredictionStatus.COMPLETED,
        outputs=("out",),
        raw={"created_at": EPOCH + created, "completed_at": EPOCH + ended},
    )


def run_stream(
    policy: PollPolicy,
    kind: Kind,
    durations: Sequence[float],
    arrivals: Sequence[float],
    *,
    seed: int,
    delay: float | None = None,
    loss: float = 0.0,
) -> Run:
    """
    Submit at ``arrivals``; each takes its ``durations``. With ``delay``, every
    prediction asks for a webhook, delivered between ``delay / 2`` and ``3 delay
    / 2`` s after it ended unless lost (a share ``loss``). The first `WARM` of
    the run is not measured.
    """
    n = len(durations)
    core = PollCore(random.Random(seed + 1))
    drop = random.Random(seed + 2)
    ended = [a + d for a, d in zip(arrivals, durations, strict=True)]
    deliveries: list[tuple[float, int]] = []
    if delay is not None:
        deliveries = [
            (e + delay * drop.uniform(0.5, 1.5), i)
            for i, e in enumerate(ended)
            if drop.random() >= loss
        ]
        heapq.heapify(deliveries)
    polls = [0] * n
    lags = [math.nan] * n
    following = 0
    while following < n or len(core):
        arrival = arrivals[following] if following < n else math.inf
        delivery = deliveries[0][0] if deliveries else math.inf
        wake = core.next_wakeup()
        if arrival <= min(wake, delivery):
            core.add(f"p{following}", arrival, kind=kind, model="m", policy=policy)
            following += 1
        elif delivery <= wake:
            at, i = heapq.heappop(deliveries)
            pid = f"p{i}"
            if pid in core:
                core.delivered(_snapshot(pid, True, arrivals[i], ended[i]), at)
                lags[i] = at - ended[i]
        else:
            for item in core.due(wake, slack=0.0):
                i = int(item.prediction_id[1:])
                polls[i] += 1
                answer = _snapshot(
                    item.prediction_id, wake >= ended[i], arrivals[i], ended[i]
                )
                if isinstance(core.record(item.prediction_id, answer, wake), Resolved):
                    lags[i] = wake - ended[i]
    measured = range(int(n * WARM), n)
    return Run(tuple(polls[i] for i in measured), tuple(lags[i] for i in measured))


def frontier(kind: Kind, durations: Sequence[float], arrivals: Sequence[float],
             seed: int) -> list[tuple[float, Run]]:  # fmt: skip
    """Every fixed interval of `FRONTIER` on these very durations."""
    return [
        (t, run_stream(FixedPolicy(t), kind, durations, arrivals, seed=seed))
        for t in FRONTIER
    ]


def requests_at_lag(curve: list[tuple[float, Run]], lag: float) -> float:
    """Requests a fixed interval needs for ``lag`` mean lag (linear interpolation)."""
    points = sorted((run.mean_lag, run.requests) for _, run in curve)
    for (lag0, req0), (lag1, req1) in itertools.pairwise(points):
        if lag0 <= lag <= lag1:
            return req0 + (req1 - req0) * (lag - lag0) / (lag1 - lag0)
    return math.nan


def stream_vs_frontier(n: int, seed: int) -> list[dict[str, Any]]:
    """The adaptive policy against the fixed frontier, per stream profile."""
    rows = []
    # The default, and the log-normal plan alone (what it was before it used
    # the learned distribution).
    policies = {
        "adaptive": AdaptivePolicy(),
        "log-normal only": AdaptivePolicy(learned=0),
    }
    for profile, (kind, _, low, high) in STREAM_PROFILES.items():
        durations, arrivals = workload(low, high, n, seed)
        curve = frontier(kind, durations, arrivals, seed)
        for name, policy in policies.items():
            adaptive = run_stream(policy, kind, durations, arrivals, seed=seed)
            fixed = requests_at_lag(curve, adaptive.mean_lag)
            rows.append({
                "profile": profile,
                "policy": name,
                "adaptive_requests": adaptive.requests,
                "adaptive_mean_lag": adaptive.mean_lag,
                "fixed_requests_at_that_lag": fixed,
                "ratio": adaptive.requests / fixed,
                "measured": len(adaptive.lags),
                "curve": [(t, run.requests, run.mean_lag) for t, run in curve],
            })  # fmt: skip
    return rows


def webhooks(n: int, seed: int, delay: float = 1.0) -> list[dict[str, Any]]:
    """Webhooks first, with 0%, 1% and 10% of deliveries lost (image-like)."""
    kind, _, low, high = STREAM_PROFILES["image-like 2-10 s"]
    durations, arrivals = workload(low, high, n, seed)
    rows = []
    for loss in (0.0, 0.01, 0.1):
        run = run_stream(WebhookPolicy(AdaptivePolicy()), kind, durations, arrivals,
                         seed=seed, delay=delay, loss=loss)  # fmt: skip
        unresolved = sum(1 for lag in run.lags if math.isnan(lag))
        rows.append({
            "loss": loss,
            "delivery_delay": delay,
            "polls_per_prediction": run.polls_per_prediction,
            "mean_lag": run.mean_lag,
            "p99_lag": run.lag(0.99),
            "max_lag": max(run.lags),
            "unresolved": unresolved,
            "measured": len(run.lags),
        })  # fmt: skip
    return rows


def _open_system(
    kind: Kind, low: float, high: float, rate: float, seconds: float, seed: int,
    least: float | None,
) -> dict[str, float]:  # fmt: skip
    """One token every 1/rate s: a due poll takes it first, else a submit."""
    rng = random.Random(seed)
    core = PollCore(random.Random(seed + 1))
    budget = PollBudget()
    policy = AdaptivePolicy()
    created: dict[str, float] = {}
    ready: dict[str, float] = {}
    done: list[tuple[float, float]] = []
    polls = 0
    for tick in _ticks(rate, seconds):
        if least is None:
            items = core.due(tick, most=1)
        else:  # a submit always waits: the rate binds
            items = budget.take(core, tick, math.inf, most=1, least=least)
        if not items:
            pid = f"p{len(created)}"
            created[pid], ready[pid] = tick, tick + rng.uniform(low, high)
            core.add(pid, tick, kind=kind, model="m", policy=policy)
            continue
        pid = items[0].prediction_id
        polls += 1
        answer = _snapshot(pid, tick >= ready[pid], created[pid], ready[pid])
        if isinstance(core.record(pid, answer, tick), Resolved):
            done.append((tick, tick - ready[pid]))
    start = seconds * WARM
    measured = [lag for at, lag in done if at >= start]
    return {
        "predictions_per_second": len(measured) / (seconds - start),
        "polls_per_prediction": polls / max(1, len(done)),
        "mean_lag": sum(measured) / len(measured),
    }


def _ticks(rate: float, seconds: float) -> Iterator[float]:
    for k in itertools.count(1):
        tick = k / rate
        if tick > seconds:
            return
        yield tick


def rate_limited(
    rate: float, seconds: float, seed: int, least: float
) -> list[dict[str, Any]]:
    """Predictions per second under ``rate``, without and with the poll budget."""
    rows = []
    for profile, (kind, _, low, high) in STREAM_PROFILES.items():
        plain = _open_system(kind, low, high, rate, seconds, seed, None)
        spent = _open_system(kind, low, high, rate, seconds, seed, least)
        rows.append({
            "profile": profile,
            "rate": rate,
            "without_budget": plain,
            "with_budget": spent,
            "gain": spent["predictions_per_second"] / plain["predictions_per_second"],
        })  # fmt: skip
    return rows
