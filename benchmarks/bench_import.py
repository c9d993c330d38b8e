"""
Import time: ``import atlas_async`` against ``import httpx``, in one run.

Each measurement is a fresh interpreter that times its own import with
``time.perf_counter`` around it, so interpreter start-up is left out. Rounds
alternate the subjects (every other round in the other order) and each figure
is the median over the rounds; the ratio is atlas_async / httpx per round, then
its median. Also reported, the
same way: ``import atlas_async.cli`` and the first things a user touches
(``AtlasClient`` built, not entered).

Target: ``import atlas_async`` at most 1.3x ``import httpx``.

Usage::

    python benchmarks/bench_import.py [--repeats 15]

Writes ``benchmarks/results/import.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import _common

SUBJECTS = {
    "httpx": "import httpx",
    "atlas_async": "import atlas_async",
    "atlas_async + client": (
        "import atlas_async; atlas_async.AtlasClient('k' * 20, base_url="
        "'http://127.0.0.1:9/api/v1')"
    ),
    "atlas_async.cli": "import atlas_async.cli",
}


def _wall_us(code: str) -> float:
    """Microseconds ``code`` takes after start-up, by the clock in-process."""
    timed = (
        f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    )
    done = subprocess.run(
        [sys.executable, "-c", timed], capture_output=True, text=True, check=True
    )
    return 1e6 * float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    """Alternate the imports, print the medians and the ratio, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    repeats = max(3, min(args.repeats, 50))
    names = list(SUBJECTS)
    rounds: list[dict[str, float]] = []
    for index in range(repeats):
        order = names if index % 2 == 0 else names[::-1]
        row: dict[str, float] = {}
        for name in order:
            row[name] = _wall_us(SUBJECTS[name])
        rounds.append(row)
    medians = {
        name: _common.median([row[name] for row in rounds]) / 1000 for name in names
    }
    ratios = [row["atlas_async"] / row["httpx"] for row in rounds]
    ratio = _common.median(ratios)
    print(
        _common.table(
            ["import", "median ms", "vs import httpx"],
            [
                [
                    name,
                    medians[name],
                    f"{_common.median([r[name] / r['httpx'] for r in rounds]):.2f}x",
                ]
                for name in names
            ],
        )
    )
    target = ratio <= 1.3
    print(
        f"  {'PASS' if target else 'FAIL'}  import atlas_async <= 1.3x import httpx"
        f" (median of {repeats} alternating rounds: {ratio:.2f}x)"
    )
    result: dict[str, Any] = {
        "rounds": rounds,
        "median_ms": medians,
        "ratio": ratio,
        "target_met": target,
    }
    print(f"wrote {_common.write_results('import', result)}")
    return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
