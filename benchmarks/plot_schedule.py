"""
Draw docs/images/poll_schedule.png: one prediction's poll times against the
duration density its model learned.

    python benchmarks/plot_schedule.py

Each panel teaches a `DurationModel` 64 durations (evenly spread quantiles of
the named distribution, so the figure is the same on every run), plans one
prediction with the default `AdaptivePolicy` (jitter off) and marks every poll
until the longest duration seen. Needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atlas_async._core.durations import DurationModel
from atlas_async._core.policies import AdaptivePolicy

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
SAMPLES = 64


def _uniform(low: float, high: float) -> Callable[[float], float]:
    return lambda q: low + q * (high - low)


def _peaked(q: float) -> float:
    """Log-normal around 20 s (sigma 0.25): most end in 15-27 s."""
    return 20.0 * math.exp(0.25 * statistics.NormalDist().inv_cdf(q))


PANELS: list[tuple[str, Callable[[float], float]]] = [
    ("image-like: uniform 2-10 s", _uniform(2.0, 10.0)),
    ("video-like: uniform 6-36 s", _uniform(6.0, 36.0)),
    ("peaked: log-normal around 20 s", _peaked),
]


def poll_times(durations: list[float]) -> list[float]:
    """The default policy's polls (jitter off) for a model that saw ``durations``."""
    model = DurationModel.from_range(min(durations), max(durations))
    for seconds in durations:
        model.observe(seconds)
    plan = AdaptivePolicy(jitter=0.0).plan(model)
    rng = random.Random(0)
    t = plan.delay(0.0, 0, rng)
    times = [t]
    while t < max(durations):
        t += plan.delay(t, len(times), rng)
        times.append(t)
    return times


def draw(plt: Any) -> Path:
    """The three panels, one above the other."""
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(9, 7.5))
    for ax, (title, quantile) in zip(axes, PANELS, strict=True):
        durations = [quantile((i + 0.5) / SAMPLES) for i in range(SAMPLES)]
        ax.hist(durations, bins=16, density=True, color="0.8", label="durations seen")
        times = poll_times(durations)
        for k, t in enumerate(times):
            ax.axvline(t, color="tab:blue", linewidth=1.0,
                       label="polls" if k == 0 else None)  # fmt: skip
        ax.set_title(f"{title}: {len(times)} polls up to the longest")
        ax.set_xlabel("seconds since submission")
        ax.set_ylabel("density")
        ax.legend(loc="upper right")
    figure.suptitle(
        "AdaptivePolicy: poll times against the learned duration density"
        " (benchmarks/plot_schedule.py)"
    )
    figure.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / "poll_schedule.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main() -> int:
    """Write the figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("needs matplotlib: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    print(f"wrote {draw(plt)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
