"""
Helpers shared by the benchmark scripts: the emulator in its own process,
CPU pinning, CPU clocks, percentiles, tables and the JSON results.

Every benchmark runs the emulator as a separate process
(``python -m atlas_async.emulator``) pinned to core 1 and itself on core 0,
when the machine has two cores and ``taskset`` exists, so the server's work
never lands on the client's CPU clock (as in docs/performance.md, "What the
HTTP layer costs").
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import attrs

RESULTS = Path(__file__).resolve().parent / "results"
KEY = "bench-key"
SERVER_CORE, CLIENT_CORE = 1, 0


def can_pin() -> bool:
    """True when there are two cores to keep client and server apart."""
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pin_self() -> bool:
    """Pin this process to the client core; return whether it was pinned."""
    if not can_pin():
        return False
    os.sched_setaffinity(0, {CLIENT_CORE})
    return True


def cpu_seconds() -> float:
    """This process's user + system CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_ticks() -> tuple[int, int] | None:
    """
    The whole machine's CPU ticks so far, (stolen, all), from /proc/stat, or
    None off Linux. Stolen ticks are time the hypervisor gave another guest
    while ours wanted to run: a late timer no code of ours could have helped.
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(field) for field in stat.readline().split()[1:]]
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice, which
    # user and nice already count]
    return fields[7], sum(fields[:8])


def steal_share(
    before: tuple[int, int] | None, after: tuple[int, int] | None
) -> float | None:
    """The share of the machine's CPU time stolen between two `machine_ticks`."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def process_cpu(pid: int) -> float:
    """Another process's user + system CPU seconds, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return percentile(values, 0.5)


@attrs.frozen
class Server:
    """An emulator process: where it listens and its pid (for its CPU clock)."""

    base_url: str
    pid: int

    @property
    def origin(self) -> str:
        """``http://host:port``."""
        return self.base_url.rsplit("/api/v1", 1)[0]


@contextlib.contextmanager
def emulator(
    *,
    time_scale: float = 1.0,
    seed: int = 0,
    faults: Sequence[str] = (),
    latency: Sequence[str] = (),
) -> Iterator[Server]:
    """
    Run ``python -m atlas_async.emulator`` on a free port (pinned to core 1).

    Stops it (SIGTERM, then SIGKILL after 10 s) when the block ends.
    """
    command = [
        sys.executable,
        "-m",
        "atlas_async.emulator",
        "--port",
        "0",
        "--time-scale",
        f"{time_scale:g}",
        "--seed",
        str(seed),
    ]
    for fault in faults:
        command += ["--fault", fault]
    for row in latency:
        command += ["--latency", row]
    if can_pin():
        command = ["taskset", "-c", str(SERVER_CORE), *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield Server(base_url=line.rsplit(" ", 1)[1].strip(), pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(*, threshold: float = 0.2, max_wait: float = 10.0) -> float:
    """
    Wait (at most ``max_wait`` s) until other processes use < ``threshold`` cores.

    Other work on a 2-core machine inflates the CPU time a benchmark measures
    (shared caches, migrations); return the load last seen, in cores.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before, started = busy_seconds(), time.monotonic()
        time.sleep(0.5)
        load = (busy_seconds() - before) / (time.monotonic() - started)
        if load < threshold or time.monotonic() > deadline:
            return load


def run_measured(
    command: Sequence[str], *, timeout: float, server_pid: int | None = None
) -> dict[str, Any]:
    """
    `run_json` after `wait_quiet`, adding ``foreign_cores``: how many cores
    other processes (neither the child nor the server) kept busy meanwhile.
    """
    wait_quiet()
    server = process_cpu(server_pid) if server_pid else 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, started = busy_seconds(), time.monotonic()
    result = run_json(command, timeout=timeout)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    if server_pid:
        ours += process_cpu(server_pid) - server
    result["foreign_cores"] = max(0.0, (busy_seconds() - busy - ours) / wall)
    return result


def quiet(runs: Sequence[dict[str, Any]], limit: float = 0.25) -> list[dict[str, Any]]:
    """The runs other processes disturbed least (all of them if none was quiet)."""
    calm = [r for r in runs if r.get("foreign_cores", 0.0) <= limit]
    return calm or list(runs)


def run_json(
    command: Sequence[str], *, timeout: float, show_stderr: bool = False
) -> dict[str, Any]:
    """
    Run a child benchmark process and return the JSON its last line prints.

    The child's stderr is kept for the error message, or shown with
    ``show_stderr`` (profiles).
    """
    done = subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=None if show_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n"
            f"{(done.stderr or '')[-2000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def environment() -> dict[str, Any]:
    """What the numbers depend on: interpreter, packages, cores, load."""
    packages: dict[str, str | None] = {}
    for name in ("httpx", "httpcore", "aiohttp", "httpx-aiohttp", "anyio", "uvicorn"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "pinned": can_pin(),
        "loadavg": os.getloadavg(),
        "packages": packages,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the environment attached."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "environment": environment(), **data}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (what docs/performance.md quotes)."""
    cells = [[_cell(value) for value in row] for row in rows]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)
