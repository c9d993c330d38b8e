"""
This checkout against another (``--baseline PATH``, e.g. a ``git worktree`` of
an earlier commit): import time of ``atlas_async`` and client CPU per poll.

Both trees run the same child code, which uses the public API only
(``AtlasClient``, ``FixedPolicy``), against one emulator process of this
checkout (pinned to core 1 when there are two cores). Rounds alternate
baseline, candidate, baseline, ... so drift in the machine's speed hits both;
each figure is the median over the rounds, and the ratio is candidate /
baseline per round, then its median.

* import: wall and CPU seconds of ``python -c "import atlas_async"`` in a fresh
  process (the interpreter's own start-up included, the same on both sides);
* poll: an ``AtlasClient`` with ``FixedPolicy(0.001)`` polls ``--n`` never-
  finishing predictions with 16 workers; CPU microseconds per poll over
  ``--duration`` seconds after a warm-up (``client.statistics().polls``).

Usage::

    git worktree add /tmp/baseline <commit>
    python benchmarks/bench_ab.py --baseline /tmp/baseline [--rounds 7]

Writes ``benchmarks/results/ab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common

HERE = Path(__file__).resolve().parent.parent
MODEL = "google/nano-banana-2/text-to-image"

_POLL_CHILD = """
import asyncio, json, resource, sys, time
import atlas_async as atlas

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

async def main(base_url, transport, n, warmup, duration):
    async with atlas.AtlasClient(
        "bench-key", base_url=base_url, transport=transport,
        poll=atlas.FixedPolicy(0.001), max_concurrent_requests=16,
    ) as client:
        futures = [
            await client.submit_image(sys.argv[6], prompt=f"ab {i}") for i in range(n)
        ]
        await asyncio.sleep(warmup)
        polls, used = client.statistics().polls, cpu()
        started = time.perf_counter()
        await asyncio.sleep(duration)
        elapsed = time.perf_counter() - started
        polls, used = client.statistics().polls - polls, cpu() - used
        for future in futures:
            future.cancel()
    print(json.dumps({"cpu_us_per_poll": 1e6 * used / max(polls, 1),
                      "polls_per_s": polls / elapsed}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]),
                 float(sys.argv[4]), float(sys.argv[5])))
"""


def _env(tree: Path) -> dict[str, str]:
    # The tree first on the path: it wins over the installed (editable) package.
    return dict(os.environ, PYTHONPATH=str(tree))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_time(tree: Path) -> dict[str, float]:
    """Wall and CPU seconds of a fresh ``import atlas_async`` from ``tree``."""
    code = "import atlas_async; print(atlas_async.__file__)"
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(tree),
        cwd=tree,  # `python -c` puts the working directory first on the path
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    if not done.stdout.strip().startswith(str(tree)):
        raise RuntimeError(f"imported {done.stdout.strip()}, not from {tree}")
    return {"wall_s": wall, "cpu_s": _children_cpu() - cpu}


def poll_cpu(tree: Path, base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """CPU per poll of a client from ``tree``, in a fresh process."""
    command = [
        sys.executable,
        "-c",
        _POLL_CHILD,
        base_url,
        args.transport,
        str(args.n),
        str(args.warmup),
        str(args.duration),
        MODEL,
    ]
    if _common.can_pin():
        command = ["taskset", "-c", str(_common.CLIENT_CORE), *command]
    _common.wait_quiet()
    done = subprocess.run(
        command,
        env=_env(tree),
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=args.duration * 10 + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"poll child failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--imports", type=int, default=5, help="per round")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--transport", default="aiohttp")
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "candidate": HERE}
    rows: dict[str, dict[str, list[float]]] = {
        name: {"import_wall_s": [], "import_cpu_s": [], "cpu_us_per_poll": []}
        for name in trees
    }
    with _common.emulator() as server:
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                tree = trees[name]
                imports = [import_time(tree) for _ in range(args.imports)]
                rows[name]["import_wall_s"].append(
                    _common.median([i["wall_s"] for i in imports])
                )
                rows[name]["import_cpu_s"].append(
                    _common.median([i["cpu_s"] for i in imports])
                )
                poll = poll_cpu(tree, server.base_url, args)
                rows[name]["cpu_us_per_poll"].append(poll["cpu_us_per_poll"])
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    summary: dict[str, Any] = {"rounds": args.rounds, "figures": {}}
    table = []
    for figure in ("import_wall_s", "import_cpu_s", "cpu_us_per_poll"):
        before, after = rows["baseline"][figure], rows["candidate"][figure]
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        summary["figures"][figure] = {
            "baseline_median": _common.median(before),
            "candidate_median": _common.median(after),
            "ratio_median": _common.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
        table.append(
            [
                figure,
                f"{_common.median(before):.4g}",
                f"{_common.median(after):.4g}",
                f"{_common.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})",
            ]
        )
    print(_common.table(["figure", "baseline", "candidate", "ratio (min-max)"], table))
    _common.write_results("ab", {**summary, "environment": _common.environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
