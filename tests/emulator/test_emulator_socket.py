"""The emulator over real loopback sockets: serve(), the fixture, and its processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

import atlas_async.emulator.__main__ as emulator_main
from atlas_async.emulator import (
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
    serve,
)
from atlas_async.testing import FakeClock

pytestmark = [pytest.mark.e2e]

IMAGE = "google/nano-banana-2/text-to-image"
AUTH = {"Authorization": "Bearer k"}


@pytest.mark.asyncio
async def test_serve_runs_a_full_generation_over_a_socket() -> None:
    """Submit, poll to completed and download the PNG over loopback."""
    clock = FakeClock()
    async with serve(EmulatorConfig(), clock=clock.now) as emu:
        assert emu.base_url == f"http://127.0.0.1:{emu.port}/api/v1"
        assert emu.port > 0
        async with httpx.AsyncClient(base_url=emu.base_url, headers=AUTH) as http:
            response = await http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "a fox"}
            )
            poll_url = response.json()["data"]["urls"]["get"]
            assert poll_url.startswith(emu.base_url)
            clock.advance(10.0)
            data = (await http.get(poll_url)).json()["data"]
            assert data["status"] == "completed"
            image = await http.get(data["outputs"][0])
            assert image.content.startswith(b"\x89PNG")
        assert emu.stats.snapshot().polls == 1


@pytest.mark.asyncio
async def test_serve_leaves_no_task_behind() -> None:
    """Leaving serve() stops uvicorn and awaits it: no task survives."""
    before = asyncio.all_tasks()
    async with serve() as emu, httpx.AsyncClient() as http:
        assert (await http.get(f"{emu.base_url}/models")).status_code == 200
    assert asyncio.all_tasks() == before


@pytest.mark.asyncio
async def test_serve_on_a_busy_port_raises_oserror() -> None:
    """A port that cannot be bound raises OSError, not SystemExit."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match="could not listen"):
            async with serve(port=port):
                pass  # pragma: no cover


@pytest.mark.asyncio
async def test_stats_endpoint_answers_loopback_clients(
    atlas_emulator_server: RunningEmulator,
) -> None:
    """The socket fixture serves /_emulator/stats to a loopback client."""
    async with httpx.AsyncClient() as http:
        await http.get(f"{atlas_emulator_server.base_url}/models")
        response = await http.get(f"{atlas_emulator_server.origin}/_emulator/stats")
    assert response.json()["requests"] == 1
    assert atlas_emulator_server.stats.snapshot().requests == 1


def _interrupt_when_ready(running: RunningEmulator) -> None:
    # Runs inside the emulator's loop, so it must not wait on the server; and
    # run_emulator installed its own SIGINT handler, so this stops it cleanly.
    assert running.port > 0
    os.kill(os.getpid(), signal.SIGINT)


def test_run_emulator_stops_cleanly_on_sigint() -> None:
    """run_emulator serves until SIGINT, then returns normally."""
    seen: list[RunningEmulator] = []

    def ready(running: RunningEmulator) -> None:
        seen.append(running)
        os.kill(os.getpid(), signal.SIGINT)

    run_emulator("127.0.0.1", 0, EmulatorConfig(), on_ready=ready)
    assert seen[0].port > 0


def test_module_main_parses_options_and_serves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m atlas_async.emulator prints its URL and exits 0 on SIGINT."""
    real = emulator_main.run_emulator

    def run(host: str, port: int, config: EmulatorConfig, *, on_ready: object) -> None:
        assert config.faults.error_rate == 0.1
        assert config.time_scale == 50

        def ready(running: RunningEmulator) -> None:
            on_ready(running)  # type: ignore[operator]
            _interrupt_when_ready(running)

        real(host, port, config, on_ready=ready)

    monkeypatch.setattr(emulator_main, "run_emulator", run)
    code = emulator_main.main(
        ["--port", "0", "--time-scale", "50", "--fault", "error_rate=0.1"]
    )
    assert code == 0
    assert "Atlas emulator listening on http://127.0.0.1:" in capsys.readouterr().out


def test_module_main_reports_a_busy_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A busy port is one error line and exit code 1."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = emulator_main.main(["--port", str(busy.getsockname()[1])])
    assert code == 1
    assert capsys.readouterr().err.startswith("error: the emulator could not listen")


def test_module_main_rejects_a_bad_fault(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --fault exits 2 through argparse, naming the fault."""
    with pytest.raises(SystemExit) as caught:
        emulator_main.main(["--fault", "nope=1"])
    assert caught.value.code == 2
    assert "unknown fault 'nope=1'" in capsys.readouterr().err


def test_module_runs_as_a_separate_process() -> None:
    """`python -m atlas_async.emulator --port 0` serves and stops on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "atlas_async.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.rsplit(" ", 1)[1].strip()
        with httpx.Client() as http:
            assert http.get(f"{base_url}/models").status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test fails
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_listener_disables_nagle() -> None:
    """The listener sets TCP_NODELAY, so keep-alive answers are not held ~40 ms."""
    from atlas_async.emulator._uvicorn import _bind

    listener = _bind("127.0.0.1", 0)
    try:
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        listener.close()
