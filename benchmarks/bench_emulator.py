"""
How many polls per second the emulator serves on one core.

The emulator runs in its own process (``python -m atlas_async.emulator``),
pinned with ``taskset`` to one core when taskset exists; this process is the
client, pinned to another core, and speaks raw HTTP/1.1 over keep-alive asyncio
streams (about 15-40 us of client CPU a request; docs/performance.md, "What
the HTTP layer costs"), so the server is what saturates. Each worker submits one
long-running prediction, then polls it in a closed loop until the time is up.

Usage::

    python benchmarks/bench_emulator.py [--duration 5] [--concurrency 32]

Prints the polls per second and the server's CPU per poll; exits non-zero if the
emulator stayed under ``--min-rps`` (default 2000).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

KEY = "bench-key"


def _server_cpu(pid: int) -> float:
    """Return the process's user+system CPU seconds from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    head: bytes,
    body: bytes = b"",
) -> tuple[int, bytes]:
    writer.write(head + body)
    raw = await reader.readuntil(b"\r\n\r\n")
    status = int(raw[9:12])
    length = 0
    for line in raw.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def _worker(host: str, port: int, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        body = json.dumps(
            {"model": "bytedance/seedance-2.0/text-to-video", "prompt": "bench"}
        ).encode()
        head = (
            f"POST /api/v1/model/generateVideo HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        status, answer = await _request(reader, writer, head, body)
        if status != 200:
            raise RuntimeError(f"submit failed: {status} {answer[:200]!r}")
        prediction_id = json.loads(answer)["data"]["id"]
        poll = (
            f"GET /api/v1/model/prediction/{prediction_id} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nAuthorization: Bearer {KEY}\r\n\r\n"
        ).encode()
        while time.perf_counter() < deadline:
            status, answer = await _request(reader, writer, poll)
            json.loads(answer)
            counts[status == 200] += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _drive(host: str, port: int, duration: float, concurrency: int) -> list[int]:
    counts = [0, 0]  # [errors, ok]
    deadline = time.perf_counter() + duration
    await asyncio.gather(
        *(_worker(host, port, deadline, counts) for _ in range(concurrency))
    )
    return counts


def main() -> int:
    """Run the benchmark; return 0 when the emulator met ``--min-rps``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--min-rps", type=float, default=2000.0)
    args = parser.parse_args()
    duration = min(args.duration, 10.0)  # bounded, whatever is asked

    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    command = [sys.executable, "-m", "atlas_async.emulator", "--port", "0"]
    if pin:
        command = ["taskset", "-c", "1", *command]
        os.sched_setaffinity(0, {0})
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        base = line.rsplit(" ", 1)[1].strip()
        host, port = base.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        cpu_before = _server_cpu(server.pid)
        started = time.perf_counter()
        errors, ok = asyncio.run(_drive(host, int(port), duration, args.concurrency))
        elapsed = time.perf_counter() - started
        cpu = _server_cpu(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=10)
    rps = ok / elapsed
    print(
        f"emulator: {rps:,.0f} polls/s over {elapsed:.1f} s "
        f"({ok:,} ok, {errors} errors, {args.concurrency} connections, "
        f"server pinned: {pin}); server CPU {1e6 * cpu / max(ok, 1):.0f} us/poll, "
        f"{100 * cpu / elapsed:.0f}% of a core"
    )
    return 0 if rps >= args.min_rps and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
