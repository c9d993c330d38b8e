"""
What a hostile server costs the client: memory and bytes under huge answers
and compression bombs, time under a trickle.

The hostile server of the tests (``tests/hostile/server.py``: raw asyncio
sockets) runs in its own process and reports, per connection, the bytes it
managed to send before the client hung up. Each measurement is a fresh client
process (``AtlasClient`` on the transport named) that first polls one honest
answer (warm-up: imports, pool, first allocations), then reads its resident
set (``VmRSS``), asks for the hostile answer once, and reads its peak resident
set (``getrusage``'s ``ru_maxrss``). *RSS growth* is the peak minus the RSS
before: everything the hostile answer made the process hold at its worst.

Cases (the defaults: ``max_answer_bytes`` 8 MiB):

* ``huge``: a 400 MB body with a ``Content-Length`` (refused from the header);
* ``huge-chunked``: 400 MB with no length, so the cap is what stops it;
* ``gzip-bomb``, ``deflate-bomb``: about 9 MB that inflate to 9 GiB;
* ``br-bomb``: 1 GiB of zeros as brotli (only with ``brotli`` installed);
* ``trickle``: one byte every 0.2 s under ``Timeouts(total=2)``.

Target: RSS growth under 100 MB in every case, and every case a typed error.
``--baseline`` adds rows for a plain ``httpx.AsyncClient().get()`` on the
400 MB answer and on a 1 GiB gzip bomb: what the answer costs unbounded.

Usage::

    python benchmarks/bench_hostile.py [--cases huge,gzip-bomb] [--baseline]

Writes ``benchmarks/results/hostile.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import queue
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _common

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hostile.server import (  # the tests' server, on the path just set
    GiB,
    HostileServer,
    MiB,
    bomb_answer,
    huge_answer,
    json_answer,
    trickle_answer,
)

TRANSPORTS = ("httpx", "aiohttp")
CASES = ("huge", "huge-chunked", "gzip-bomb", "deflate-bomb", "br-bomb", "trickle")
TARGET_MB = 100.0
TOTAL = 2.0  # the trickle case's Timeouts(total=...)
PREFIX = "/api/v1/model/prediction/"


def _brotli() -> bool:
    return importlib.util.find_spec("brotli") is not None


# -- the server process ------------------------------------------------------------


async def _serve() -> None:
    server = HostileServer()
    ok = {"code": 200, "data": {"id": "ok", "status": "processing"}}
    server.route("GET", PREFIX + "ok", json_answer(ok))
    server.route("GET", PREFIX + "huge", huge_answer(400 * MiB))
    server.route("GET", PREFIX + "huge-chunked", huge_answer(400 * MiB, chunked=True))
    server.route("GET", PREFIX + "gzip-bomb", bomb_answer("gzip", 9 * GiB))
    server.route("GET", PREFIX + "deflate-bomb", bomb_answer("deflate", 9 * GiB))
    server.route("GET", PREFIX + "gzip-bomb-1g", bomb_answer("gzip", 1 * GiB))
    if _brotli():
        server.route("GET", PREFIX + "br-bomb", bomb_answer("br", 1 * GiB))
    slow = json.dumps({**ok, "padding": "z" * 1000}).encode()
    server.route("GET", PREFIX + "trickle", trickle_answer(slow, interval=0.2))
    async with server:
        print(json.dumps({"port": server.port}), flush=True)
        reported = 0
        while True:
            await asyncio.sleep(0.05)
            for conn in server.connections[reported:]:
                if not conn.done:
                    break
                request = conn.request
                path = request.path if request is not None else ""
                print(
                    json.dumps(
                        {
                            "path": path,
                            "bytes_sent": conn.bytes_sent,
                            "hung_up": conn.hung_up,
                        }
                    ),
                    flush=True,
                )
                reported += 1


# -- one client process --------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def _client(base_url: str, transport: str, case: str) -> dict[str, Any]:
    import httpx

    from atlas_async import AtlasClient, AtlasError, Timeouts

    if transport == "plain":
        async with httpx.AsyncClient() as http:
            await http.get(base_url + PREFIX + "ok")
            before, peak_before = _rss(), _peak()
            started = time.monotonic()
            try:
                response = await http.get(base_url + PREFIX + case)
                error = f"none: read {len(response.content) / MiB:.0f} MiB"
            except httpx.HTTPError as exc:  # the bomb's checksum, once inflated
                error = f"{type(exc).__name__} at the end"
            seconds = time.monotonic() - started
    else:
        timeout = Timeouts(total=TOTAL) if case == "trickle" else None
        async with AtlasClient(
            "bench-key",
            base_url=base_url + "/api/v1",
            transport=transport,  # type: ignore[arg-type]
            timeout=timeout,
            max_retries=0,
        ) as client:
            await client.get_prediction("ok")
            before, peak_before = _rss(), _peak()
            started = time.monotonic()
            try:
                await client.get_prediction(case)
                error = "none"
            except AtlasError as exc:
                error = f"{type(exc).__name__}: {exc.message[:90]}"
            seconds = time.monotonic() - started
    peak = _peak()
    return {
        "rss_before": before,
        "peak_before": peak_before,
        "peak_after": peak,
        "growth_mb": (peak - before) / 1e6,
        "error": error,
        "seconds": seconds,
    }


# -- the driver --------------------------------------------------------------------


def _lines(stream: Any, into: queue.Queue[dict[str, Any]]) -> None:
    for line in stream:
        into.put(json.loads(line))


def main() -> int:
    """Measure every case on both transports; 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve())
        return 0
    if args.client:
        base_url, transport, case = args.client
        print(json.dumps(asyncio.run(_client(base_url, transport, case))))
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if "br-bomb" in cases and not _brotli():
        cases.remove("br-bomb")
        print("br-bomb skipped: brotli is not installed", file=sys.stderr)
    runs = [(transport, case) for case in cases for transport in TRANSPORTS]
    if args.baseline:
        runs += [("plain", "huge"), ("plain", "gzip-bomb-1g")]

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        reports: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(
            target=_lines, args=(server.stdout, reports), daemon=True
        ).start()
        base_url = f"http://127.0.0.1:{port}"
        results = []
        for transport, case in runs:
            result = _common.run_json(
                [sys.executable, __file__, "--client", base_url, transport, case],
                timeout=600,
            )
            sent = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    report = reports.get(timeout=1)
                except queue.Empty:
                    continue
                if report["path"] == PREFIX + case:
                    sent = report["bytes_sent"]
                    break
            results.append(
                {"transport": transport, "case": case, "sent": sent, **result}
            )
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(
        _common.table(
            ["case", "transport", "RSS growth (MB)", "server sent (MB)", "s", "error"],
            [
                (
                    r["case"],
                    r["transport"],
                    f"{r['growth_mb']:.1f}",
                    f"{r['sent'] / 1e6:.1f}",
                    f"{r['seconds']:.2f}",
                    r["error"],
                )
                for r in results
            ],
        )
    )
    bounded = [r for r in results if r["transport"] != "plain"]
    missed = [r for r in bounded if r["growth_mb"] >= TARGET_MB or r["error"] == "none"]
    path = _common.write_results(
        "hostile", {"target_mb": TARGET_MB, "results": results}
    )
    print(f"\nwrote {path}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
