"""
Draw the figures of docs/performance.md from the JSON the benchmarks wrote.

    python benchmarks/run_all.py          # writes benchmarks/results/*.json
    python benchmarks/plot.py             # writes docs/images/*.png

Needs matplotlib (``pip install matplotlib``); nothing else in the project does.
Each figure names the result file it comes from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
IMAGES = HERE.parent / "docs" / "images"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return data


def policies(plt: Any) -> Path:
    """Polls per prediction against mean detection lag, per policy and profile."""
    result = _load("policies")["simulated cold batch"]
    profiles = sorted({row["profile"] for row in result["rows"]})
    figure, axes = plt.subplots(1, len(profiles), figsize=(11, 4.2))
    for ax, profile in zip(axes, profiles, strict=True):
        curve = result["fixed_frontier"][profile]["curve"]
        ax.plot(
            [point["mean_lag"] for _, point in curve],
            [point["requests"] for _, point in curve],
            color="0.7",
            linestyle="--",
            marker=".",
            label="fixed interval (any)",
        )
        for row in result["rows"]:
            if row["profile"] != profile:
                continue
            adaptive = row["policy"].startswith("adaptive")
            ax.scatter(
                row["mean_lag"],
                row["requests"],
                s=90 if adaptive else 45,
                marker="*" if adaptive else "o",
                zorder=3,
                label=row["policy"],
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("mean detection lag (s)")
        ax.set_ylabel("polls per completed prediction")
        ax.set_title(profile)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(
        "Poll policies: fewer requests and less lag is down and left "
        "(benchmarks/results/policies.json)",
        fontsize=10,
    )
    figure.tight_layout()
    return _save(plt, figure, "policies.png")


def transports(plt: Any) -> Path:
    """CPU per request by transport and concurrency; SDK against the bare loop."""
    transport = _load("transport")["summary"]
    cpu = _load("cpu")["summary"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = sorted({row["transport"] for row in transport})
    levels = sorted({row["concurrency"] for row in transport})
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = {
            row["concurrency"]: row["cpu_us_per_request"]
            for row in transport
            if row["transport"] == name
        }
        left.bar(
            [x + i * width for x in range(len(levels))],
            [values.get(level, 0.0) for level in levels],
            width=width,
            label=name,
        )
    left.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(levels))])
    left.set_xticklabels([f"c={level}" for level in levels])
    left.set_ylabel("client CPU per request (µs)")
    left.set_title("httpx transports (results/transport.json)")
    left.legend()
    labels = [row["transport"] for row in cpu]
    xs = range(len(labels))
    right.bar(
        [x - 0.2 for x in xs],
        [row["bare_cpu_us_per_poll"] for row in cpu],
        width=0.4,
        label="bare loop",
    )
    right.bar(
        [x + 0.2 for x in xs],
        [row["sdk_cpu_us_per_poll"] for row in cpu],
        width=0.4,
        label="atlas_async",
    )
    for x, row in zip(xs, cpu, strict=True):
        right.annotate(
            f"{row['ratio']:.2f}x",
            (x + 0.2, row["sdk_cpu_us_per_poll"]),
            ha="center",
            va="bottom",
        )
    right.set_xticks(list(xs))
    right.set_xticklabels(labels)
    right.set_ylabel("client CPU per poll (µs)")
    right.set_title("SDK vs bare loop (results/cpu.json)")
    right.legend()
    figure.tight_layout()
    return _save(plt, figure, "transport.png")


def memory(plt: Any) -> Path:
    """Bytes per prediction and poll lateness at the run's size in flight."""
    result = _load("memory")
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    traced = result["tracemalloc"]
    parts = {
        "atlas_async + asyncio": traced["sdk_bytes_per_prediction"],
        "HTTP library": traced["http_library_bytes_per_prediction"],
        "RSS (all)": result["rss"]["rss_bytes_per_prediction"],
    }
    left.bar(list(parts), list(parts.values()), color=["C0", "C1", "C2"])
    left.axhline(2048, color="red", linestyle="--", label="target 2 KB")
    left.set_ylabel(f"bytes per prediction (n={traced['n']:,})")
    left.set_title("memory (results/memory.json)")
    left.legend()
    scenarios = [key for key in result if key.startswith("lateness-")]
    xs = range(len(scenarios))
    right.bar(
        [x - 0.2 for x in xs],
        [result[key]["late_p50_ms"] for key in scenarios],
        width=0.4,
        label="p50",
    )
    right.bar(
        [x + 0.2 for x in xs],
        [result[key]["late_p99_ms"] for key in scenarios],
        width=0.4,
        label="p99",
    )
    right.axhline(2, color="red", linestyle="--", label="target p99 2 ms")
    right.set_xticks(list(xs))
    right.set_xticklabels([key.removeprefix("lateness-") for key in scenarios])
    right.set_ylabel("poll lateness (ms)")
    right.set_title("timer lateness (results/memory.json)")
    right.legend()
    figure.tight_layout()
    return _save(plt, figure, "memory.png")


def _save(plt: Any, figure: Any, name: str) -> Path:
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / name
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main() -> int:
    """Draw every figure whose results exist; say which are missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("benchmarks/plot.py needs matplotlib: pip install matplotlib")
        return 2
    status = 0
    for draw, needs in (
        (policies, "policies"),
        (transports, "cpu"),
        (memory, "memory"),
    ):
        if not (RESULTS / f"{needs}.json").exists():
            print(f"skipped {draw.__name__}: run benchmarks/bench_{needs}.py first")
            status = 1
            continue
        print(f"wrote {draw(plt).relative_to(HERE.parent)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
