"""
Timer lateness over HTTP on asyncio's own event loop against uvloop, in
alternating rounds against one emulator.

Each round runs ``bench_memory.py``'s lateness child twice, once per loop,
the order swapped every round (a fresh client process each, pinned to core 0;
the emulator on core 1, its predictions never finishing): ``--n``
predictions in flight, polls falling due at ``--rate`` a second, lateness
measured from the second round of polls on, in a ``--duration`` s window.
The medians over rounds are what to compare; one run says little on a shared
machine, where the p99 moves by 2x from one minute to the next.

uvloop is not a dependency of the SDK: ``pip install uvloop`` first.

Usage::

    python benchmarks/bench_loops.py [--n 5000] [--rate 2000] [--duration 15]
        [--rounds 3]

Writes ``benchmarks/results/loops.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import _common

LOOPS = ("asyncio", "uvloop")
SCRIPT = Path(__file__).with_name("bench_memory.py")


def _round(
    server: _common.Server, args: argparse.Namespace, loop: str
) -> dict[str, Any]:
    command = [sys.executable, str(SCRIPT), "--child", "lateness-http"]
    command += ["--base-url", server.base_url, "--n", str(args.n)]
    command += ["--duration", str(args.duration), "--rate", str(args.rate)]
    command += ["--loop", loop]
    if _common.can_pin():
        command = ["taskset", "-c", str(_common.CLIENT_CORE), *command]
    return _common.run_measured(command, timeout=1800, server_pid=server.pid)


def main() -> int:
    """Run the rounds, print each and the medians, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if importlib.util.find_spec("uvloop") is None:
        print("uvloop is not installed: pip install uvloop", file=sys.stderr)
        return 2
    args.n = max(1_000, min(args.n, 200_000))
    args.rate = max(100.0, min(args.rate, 20_000.0))
    args.duration = max(5.0, min(args.duration, 300.0))
    args.rounds = max(1, min(args.rounds, 20))
    runs: dict[str, list[dict[str, Any]]] = {loop: [] for loop in LOOPS}
    with _common.emulator(latency=["image=36000,36000"]) as server:
        for index in range(args.rounds):
            order = LOOPS if index % 2 == 0 else LOOPS[::-1]
            for loop in order:
                run = _round(server, args, loop)
                runs[loop].append(run)
                print(
                    f"  round {index + 1} {loop}: p99 {run['late_p99_ms']:.2f} ms,"
                    f" {100 * run['late_over_2ms_share']:.2f}% over 2 ms,"
                    f" CPU {100 * run['cpu_share']:.0f}%,"
                    f" stolen {100 * (run['steal_share'] or 0.0):.2f}%",
                    file=sys.stderr,
                )
    keys = ("late_p50_ms", "late_p99_ms", "late_over_2ms_share", "cpu_share")
    medians = {
        loop: {key: _common.median([run[key] for run in runs[loop]]) for key in keys}
        for loop in LOOPS
    }
    print(
        f"\ntimer lateness, {args.n:,} in flight, {args.rate:,.0f} polls due/s,"
        f" medians of {args.rounds} alternating rounds of {args.duration:g} s\n"
    )
    print(
        _common.table(
            ["loop", "p50 ms", "p99 ms", "> 2 ms late", "client CPU"],
            [
                [
                    loop,
                    row["late_p50_ms"],
                    row["late_p99_ms"],
                    f"{100 * row['late_over_2ms_share']:.2f}%",
                    f"{100 * row['cpu_share']:.0f}%",
                ]
                for loop, row in medians.items()
            ],
        )
    )
    path = _common.write_results(
        "loops", {"runs": runs, "medians": medians, "args": vars(args)}
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
