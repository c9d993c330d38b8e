"""
What building one `Prediction` costs: the snapshot made for every poll answer.

Two paths, each timed over ``--n`` fresh answers (decoded by ``json.loads``
beforehand, in chunks, so every answer has its own key strings, as on the wire):

* ``decode``: ``_wire.convert.structure_prediction(data)``, what the client
  does with each poll answer's ``data`` (cattrs validation, the model hook,
  the snapshot);
* ``construct``: ``Prediction(...)`` alone, from the values that hook passes.

Each answer is a typical poll's ``data``: a prediction still processing (most
answers) or a completed one with an output, alternating.

``--baseline PATH`` compares with another copy of the package (a directory
holding ``atlas_async/``, e.g. ``git archive HEAD atlas_async | tar -x -C
/tmp/base``): rounds alternate between the two, each in a fresh process, and
the ratio is this tree's median over the baseline's (lower is faster).

Usage::

    python benchmarks/bench_snapshot.py [--n 100000] [--rounds 7] [--baseline DIR]

Writes ``benchmarks/results/snapshot.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import _common

HERE = Path(__file__).resolve().parent
CHUNK = 10_000  # answers decoded at once: fresh strings, bounded memory
PATHS = ("decode", "construct")


def _answer(i: int) -> str:
    """The ``data`` of one poll answer, as JSON text."""
    pid = f"{i:032x}"
    data: dict[str, Any] = {
        "id": pid,
        "model": "google/nano-banana-2/text-to-image",
        "status": "processing",
        "outputs": None,
        "urls": {"get": f"https://api.atlascloud.ai/api/v1/model/prediction/{pid}"},
        "has_nsfw_contents": [],
        "created_at": "2026-03-01T12:00:00.123456Z",
        "error": "",
        "executionTime": 0,
    }
    if i % 2:
        data |= {
            "status": "completed",
            "outputs": [f"https://cdn.atlascloud.ai/outputs/{pid}/0.png"],
            "has_nsfw_contents": [False],
            "metrics": {"predict_time": 4.2},
        }
    return json.dumps(data)


def _arguments(data: dict[str, Any]) -> dict[str, Any]:
    """What the model hook passes `Prediction` for ``data`` (already parsed)."""
    from atlas_async._core.models import PredictionStatus

    return {
        "id": data["id"],
        "status": PredictionStatus(data["status"]),
        "status_raw": data["status"],
        "model": data["model"],
        "outputs": tuple(data["outputs"] or ()),
        "error": data["error"] or None,
        "created_at": datetime.fromisoformat(data["created_at"]),
        "has_nsfw_contents": tuple(data["has_nsfw_contents"]),
        "urls": dict(data["urls"]),
        "metrics": dict(data.get("metrics", {})),
        "raw": data,
    }


def _worker(n: int) -> dict[str, Any]:
    """Time both paths in this process; the package is whatever imports."""
    import atlas_async
    from atlas_async._core.models import Prediction
    from atlas_async._wire.convert import structure_prediction

    texts = [_answer(i) for i in range(CHUNK)]
    seconds = dict.fromkeys(PATHS, 0.0)
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        answers = [json.loads(text) for text in texts[:count]]
        gc.collect()
        began = time.process_time()
        for data in answers:
            structure_prediction(data, fallback_id=None, body=data)
        seconds["decode"] += time.process_time() - began

        arguments = [_arguments(json.loads(text)) for text in texts[:count]]
        gc.collect()
        began = time.process_time()
        for kwargs in arguments:
            Prediction(**kwargs)
        seconds["construct"] += time.process_time() - began
    return {
        "package": str(Path(atlas_async.__file__).parent),
        **{f"{path}_us": seconds[path] / n * 1e6 for path in PATHS},
    }


def _round(package: Path | None, n: int) -> dict[str, Any]:
    env = dict(os.environ)
    if package is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(package), *filter(None, [env.get("PYTHONPATH")])]
        )
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", "--n", str(n)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode:
        raise SystemExit(
            f"the worker for {package or 'this tree'} failed:\n{out.stderr}"
        )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> int:
    """Parse the options, run the rounds, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.n)))
        return 0

    sides = {"this tree": None} | (
        {"baseline": args.baseline.resolve()} if args.baseline else {}
    )
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for _ in range(args.rounds):
        for side, package in sides.items():  # alternate: drift hits both alike
            runs[side].append(_round(package, args.n))
    medians = {
        side: {path: _common.median([r[f"{path}_us"] for r in rs]) for path in PATHS}
        for side, rs in runs.items()
    }
    rows = [
        [side, runs[side][0]["package"], *(round(medians[side][p], 3) for p in PATHS)]
        for side in sides
    ]
    ratios: dict[str, float] = {}
    if args.baseline:
        ratios = {p: medians["this tree"][p] / medians["baseline"][p] for p in PATHS}
        rows.append(
            ["ratio", "this tree / baseline", *(round(ratios[p], 3) for p in PATHS)]
        )
    print(f"{args.n} snapshots per round, median of {args.rounds} rounds (µs each)\n")
    print(_common.table(["side", "package", *(f"{p} µs" for p in PATHS)], rows))
    _common.write_results(
        "snapshot",
        {
            "n": args.n,
            "rounds": args.rounds,
            "runs": runs,
            "medians": medians,
            "ratios": ratios,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
