"""
Run every benchmark, one after the other, in about fifty minutes (the
100,000-in-flight memory run, with its three lateness loads, is thirty-five
of them).

Each script runs in its own process with a hard time limit, prints its tables
and writes its JSON to ``benchmarks/results/``; this script prints a summary
of exit codes and times and writes ``benchmarks/results/summary.json``. A
script's exit code is 1 when it measured a target missed.

Usage::

    python benchmarks/run_all.py [--only import,transport,cpu,policies,memory,...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _common

HERE = Path(__file__).resolve().parent
# name -> (script and arguments, time limit in seconds)
BENCHMARKS: dict[str, tuple[list[str], float]] = {
    "emulator": (["bench_emulator.py", "--duration", "3"], 60),
    "import": (["bench_import.py", "--repeats", "15"], 120),
    "transport": (["bench_transport.py", "--duration", "1.5", "--repeats", "3"], 240),
    "cpu": (["bench_cpu.py", "--duration", "6", "--repeats", "5"], 420),
    "policies": (["bench_policies.py", "--n", "1000", "--emulator"], 180),
    "memory": (["bench_memory.py", "--n", "100000", "--duration", "60"], 2700),
    "limits": (["bench_limits.py"], 360),
}


def _verdict(code: int) -> str:
    return {0: "ok", 1: "target missed", -1: "timed out"}.get(code, f"failed ({code})")


def main() -> int:
    """Run the chosen benchmarks; return 1 if any failed or missed a target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    summary: dict[str, dict[str, int | float]] = {}
    for name in chosen:
        script, limit = BENCHMARKS[name]
        print(f"\n=== {name}: {' '.join(script)}", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.run(
                [sys.executable, str(HERE / script[0]), *script[1:]],
                timeout=limit,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1  # subprocess.run killed it
        elapsed = time.monotonic() - started
        summary[name] = {"exit_code": code, "seconds": round(elapsed, 1)}
    print("\n=== summary\n")
    print(
        _common.table(
            ["benchmark", "result", "seconds"],
            [
                [
                    name,
                    _verdict(int(row["exit_code"])),
                    row["seconds"],
                ]
                for name, row in summary.items()
            ],
        )
    )
    _common.RESULTS.mkdir(exist_ok=True)
    (_common.RESULTS / "summary.json").write_text(
        json.dumps(
            {"environment": _common.environment(), "benchmarks": summary}, indent=2
        )
        + "\n"
    )
    return 0 if all(row["exit_code"] == 0 for row in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
