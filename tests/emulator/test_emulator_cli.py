"""The `atlas-async emulator` command: a real subprocess, and main() in-process."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

import atlas_async.emulator
from atlas_async import cli
from atlas_async.emulator import EmulatorConfig, RunningEmulator

IMAGE = "google/nano-banana-2/text-to-image"


def _entry_point() -> list[str]:
    script = Path(sys.executable).with_name("atlas-async")
    if script.exists():
        return [str(script)]
    found = shutil.which("atlas-async")  # pragma: no cover - venv layouts vary
    return (
        [found]
        if found
        else [sys.executable, "-c", "from atlas_async.cli import main; main()"]
    )


class _Lines:
    """
    Every line the process writes to stdout, read by a thread into a queue.

    A selector over a buffered text pipe can miss a second line that arrived in
    the same read (it sits in Python's buffer, not the pipe), so the test would
    wait for a line that already came; a reader thread sees every line.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._seen: list[str] = []
        self._thread = threading.Thread(
            target=self._pump, args=(process.stdout,), daemon=True
        )
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> str:
        """Return the next line matching ``pattern`` (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self._seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s")

    def rest(self, timeout: float) -> str:
        """Everything written after the last line read, once stdout closes."""
        self._thread.join(timeout)
        lines = []
        while (line := self._queue.get_nowait()) is not None:
            lines.append(line)
        return "".join(lines)


@pytest.mark.e2e
def test_cli_serves_a_generation_and_exits_0_on_ctrl_c() -> None:
    """The entry point prints its URL, serves a PNG, and exits 0 on SIGINT."""
    process = subprocess.Popen(
        [
            *_entry_point(),
            "emulator",
            "--port",
            "0",
            "--time-scale",
            "1000",
            "--seed",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _Lines(process)
        line = lines.wait_for(r"listening on http://", timeout=20)
        base_url = re.search(r"(http://\S+/api/v1)", line)[1]  # type: ignore[index]
        assert "curl" in lines.wait_for(r"^Try: curl", timeout=20)
        with httpx.Client(
            base_url=base_url, headers={"Authorization": "Bearer t"}
        ) as http:
            submitted = http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "a red fox"}
            )
            poll_url = submitted.json()["data"]["urls"]["get"]
            deadline = time.monotonic() + 10  # at 1000x an image takes <= 10 ms
            while (data := http.get(poll_url).json()["data"])["status"] != "completed":
                assert time.monotonic() < deadline, data
            assert http.get(data["outputs"][0]).content.startswith(b"\x89PNG")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
        stdout = lines.rest(timeout=20)
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test fails
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "Emulator stopped." in stdout


@pytest.mark.e2e
def test_cli_bad_option_is_one_line_and_exit_2() -> None:
    """A bad --fault exits 2 with a single error line and no traceback."""
    result = subprocess.run(
        [*_entry_point(), "emulator", "--fault", "bogus=1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("atlas-async: error:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["emulator", "--fault", "bogus=1"], id="unknown-fault"),
        pytest.param(["emulator", "--port", "abc"], id="port-not-a-number"),
        pytest.param(["emulator", "--time-scale", "0"], id="zero-time-scale"),
        pytest.param(["emulator", "--latency", "image=3"], id="bad-latency"),
        pytest.param(["emulator", "--nope"], id="unknown-option"),
        pytest.param(["frobnicate"], id="unknown-command"),
    ],
)
def test_main_turns_usage_errors_into_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every usage error is one 'atlas-async: error:' line and code 2."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("atlas-async: error:")
    assert err.count("\n") == 1


def test_main_without_arguments_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    """A bare `atlas-async` shows the usage and exits 2."""
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert "emulator" in captured.out + captured.err


def test_main_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints the commands and exits 0."""
    assert cli.main(["--help"]) == 0
    assert "emulator" in capsys.readouterr().out


@pytest.mark.e2e
def test_emulator_command_serves_until_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command builds the config, prints the URL and curl hint, exits 0."""
    real = atlas_async.emulator.run_emulator

    def run(host: str, port: int, config: EmulatorConfig, *, on_ready: object) -> None:
        assert (config.seed, config.api_keys) == (7, frozenset({"k"}))
        assert config.no_balance_keys == {"broke"}

        def ready(running: RunningEmulator) -> None:
            on_ready(running)  # type: ignore[operator]
            os.kill(os.getpid(), signal.SIGINT)  # run_emulator's handler stops it

        real(host, port, config, on_ready=ready)

    monkeypatch.setattr(atlas_async.emulator, "run_emulator", run)
    argv = ["emulator", "--port", "0", "--seed", "7", "--api-key", "k"]
    argv += ["--no-balance-key", "broke", "--latency", "image=0,0"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "listening on http://127.0.0.1:" in out
    assert "Try: curl -H 'Authorization: Bearer test'" in out


def test_emulator_command_reports_a_busy_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An address that cannot be bound is one error line and exit code 1."""

    def run(*args: object, **kwargs: object) -> None:
        raise OSError("the emulator could not listen on 127.0.0.1:1")

    monkeypatch.setattr(atlas_async.emulator, "run_emulator", run)
    assert cli.main(["emulator"]) == 1
    assert capsys.readouterr().err == (
        "atlas-async: error: the emulator could not listen on 127.0.0.1:1\n"
    )


def test_main_exits_with_the_code_when_run_as_a_script() -> None:
    """Called without argv (as the console script), main() exits with the code."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[1:] = ['--help']; "
            "from atlas_async.cli import main; main()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "emulator" in result.stdout


def _without_typer(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing typer fails."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['typer'] = None\n" + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_typer_prints_the_install_hint() -> None:
    """Without typer, importing the CLI works and main() prints the pip hint as
    one usage error (exit 2), never a traceback."""
    result = _without_typer(
        "from atlas_async import cli\n"
        "assert not cli.CLI_AVAILABLE\n"
        "sys.exit(cli.main([]))\n"
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'atlas-async[cli]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_typer_the_app_is_an_import_error_naming_the_extra() -> None:
    """Without typer, ``cli.app`` raises an ImportError that says what to install."""
    result = _without_typer(
        "from atlas_async import cli\n"
        "try:\n"
        "    cli.app\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'atlas-async[cli]'" in result.stdout


@pytest.mark.parametrize(
    ("exception", "code", "message"),
    [
        pytest.param("abort", 130, "", id="abort"),
        pytest.param("click", 1, "atlas-async: error: boom\n", id="click-exception"),
    ],
)
def test_main_maps_aborts_and_click_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exception: str,
    code: int,
    message: str,
) -> None:
    """An abort exits 130; any other click error is one line with its code."""
    import typer

    click_exception = next(
        c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
    )

    def app(**kwargs: object) -> None:
        raise typer.Abort() if exception == "abort" else click_exception("boom")

    monkeypatch.setattr(cli, "app", app)
    assert cli.main(["emulator"]) == code
    assert capsys.readouterr().err == message
