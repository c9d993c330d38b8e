"""What the commands show on a real terminal (a pty read through a VT100 emulator).

`generate` says the prediction's id as soon as it exists and spins while it
waits; Ctrl-C says how to follow the prediction up. `batch` keeps one live
display with the rate and the time remaining, its item lines above it, never
through it; piped stdout stays machine-clean, and a stderr that is not a
terminal gets plain lines. The console script runs in a subprocess each time.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _terminal import Terminal
from test_cli import clean_env, entry_point, read_line

from atlas_async import (
    BatchProgress,
    BatchResult,
    GenerationRequest,
    Prediction,
    PredictionStatus,
)
from atlas_async._cli.live import BatchDisplay, remaining_seconds, shown_duration
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.e2e

PROMPTS = Path(__file__).parent.parent / "examples" / "prompts.txt"
ITEMS = 22  # lines of examples/prompts.txt
BATCH = [*entry_point(), "batch", str(PROMPTS), "--emulator"]


@pytest.fixture
def slow_server() -> Iterator[str]:
    """An ``atlas-async emulator`` at Atlas's own pace (an image takes seconds)."""
    process = subprocess.Popen(
        [*entry_point(), "emulator", "--port", "0", "--time-scale", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        line = read_line(process, r"listening on http://", timeout=30)
        found = re.search(r"(http://\S+/api/v1)", line)
        assert found is not None
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


class TestGenerate:
    def test_the_id_comes_first_then_a_spinner_with_status_and_time(
        self, tmp_path: Path
    ) -> None:
        """Problem 2: the id on submit, a spinner while waiting, gone at the end."""
        argv = [*entry_point(), "generate", "a red fox", "--emulator"]
        terminal = Terminal(
            [*argv, "--time-scale", "4", "--out", str(tmp_path / "out")],
            env=clean_env(),
        )
        code, _ = terminal.finish()
        assert code == 0, terminal.text()
        found = re.search(rb"atlas-async: submitted (\w+)", terminal.text())
        assert found is not None, terminal.text()
        prediction_id = found[1].decode()
        # The spinner line: the id, a status, the elapsed time.
        spinning = rb"%s (created|queued|starting|processing) 0:00:0\d" % found[1]
        assert re.search(spinning, terminal.text()), terminal.text()
        screen = terminal.screen()
        assert f"atlas-async: submitted {prediction_id}" in screen
        assert "".join(screen).endswith(f"{prediction_id}-0.png")  # may wrap
        assert not any("0:00:0" in line for line in screen)  # transient

    def test_ctrl_c_says_how_to_follow_the_prediction_up(
        self, slow_server: str, tmp_path: Path
    ) -> None:
        """Problem 2: Ctrl-C names `atlas-async wait ID`, and that command works."""
        env = clean_env(ATLASCLOUD_BASE_URL=slow_server, ATLASCLOUD_API_KEY="k")
        terminal = Terminal(
            [*entry_point(), "generate", "a fox", "--out", str(tmp_path / "out")],
            env=env,
        )
        found = terminal.wait_for(rb"atlas-async: submitted (\w+)")
        prediction_id = found[1].decode()
        terminal.interrupt()
        code, _ = terminal.finish()
        assert code == 130
        said = terminal.text().decode()
        assert f"atlas-async wait {prediction_id}" in said
        assert "journal" not in said
        assert "Traceback" not in said
        followed = subprocess.run(
            [*entry_point(), "wait", prediction_id, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert followed.returncode == 0, followed.stderr
        assert json.loads(followed.stdout)["status"] == "completed"


class TestBatchDisplay:
    def test_item_lines_print_above_the_bar_never_through_it(
        self, tmp_path: Path
    ) -> None:
        """Problem 4: the screen ends with clean lines; the bar showed rate and ETA."""
        terminal = Terminal(
            [*BATCH, "--time-scale", "5", "--out", "out"],
            env=clean_env(),
            cwd=str(tmp_path),  # short paths: an item line fits a screen line
        )
        code, _ = terminal.finish()
        assert code == 0, terminal.text()
        screen = terminal.screen()
        items = [line for line in screen if line.startswith("ok line ")]
        assert len(items) == ITEMS, screen
        for line in screen:
            assert re.fullmatch(
                r"atlas-async: emulator on \S+ \(time scale 5\)"
                r"|ok line \d+ .*\.png"
                rf"|{ITEMS} of {ITEMS} ok, 0 failed .*",
                line,
            ), line
        # While it ran: done/total, a rate, the time remaining, the elapsed time.
        bar = rb"generating .*\d+/22 +[\d.]+/(s|min) +\d+:\d\d left +0:00:\d\d"
        assert re.search(bar, terminal.text()), terminal.text()

    def test_json_on_a_pipe_stays_clean_while_the_terminal_shows_the_bar(
        self, tmp_path: Path
    ) -> None:
        """Problem 4: --json to a pipe is one JSON object a line, nothing else."""
        terminal = Terminal(
            [*BATCH, "--json", "--time-scale", "5", "--out", str(tmp_path / "out")],
            env=clean_env(),
            stdout_piped=True,
        )
        code, piped = terminal.finish()
        assert code == 0
        lines = piped.decode().splitlines()
        objects = [json.loads(line) for line in lines]
        assert len(objects) == ITEMS + 1
        assert objects[-1]["summary"]["ok"] == ITEMS
        assert b"\x1b" not in piped
        assert b"generating" in terminal.text()

    def test_without_a_terminal_progress_is_plain_lines(self, tmp_path: Path) -> None:
        """Problem 4: stderr to a file gets a line per tenth, no escape codes."""
        done = subprocess.run(
            [*BATCH, "--time-scale", "20", "--out", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stderr + done.stdout
        steps = re.findall(r"atlas-async: (\d+)/22 done", done.stderr)
        assert len(steps) >= 5, done.stderr
        assert [int(n) for n in steps] == sorted(int(n) for n in steps)
        assert steps[-1] == "22"


class TestRemaining:
    def test_early_on_the_learned_durations_weigh_in(self) -> None:
        """No finish yet: waves of `slots` predictions of the typical duration."""
        left = remaining_seconds(
            remaining=100, in_flight=10, slots=10, finished=0, elapsed=5, typical=6
        )
        assert left == pytest.approx(6 * (9 + 0.5))

    def test_the_throughput_takes_over_once_enough_finished(self) -> None:
        """Ten finishes of this run: the rate alone decides."""
        left = remaining_seconds(
            remaining=50, in_flight=10, slots=10, finished=10, elapsed=20, typical=6
        )
        assert left == pytest.approx(50 * 20 / 10)

    def test_in_between_both_count(self) -> None:
        """Five finishes: halfway between the two estimates."""
        left = remaining_seconds(
            remaining=20, in_flight=0, slots=10, finished=5, elapsed=10, typical=4
        )
        assert left == pytest.approx(0.5 * 40 + 0.5 * 8)

    def test_nothing_known_is_none_and_nothing_left_is_zero(self) -> None:
        """No rate, no duration: unknown. Nothing remaining: zero."""
        assert (
            remaining_seconds(
                remaining=3, in_flight=0, slots=1, finished=0, elapsed=0, typical=None
            )
            is None
        )
        assert (
            remaining_seconds(
                remaining=0, in_flight=0, slots=1, finished=0, elapsed=0, typical=None
            )
            == 0
        )

    def test_durations_read_as_clock_time(self) -> None:
        """Minutes and seconds, hours when needed, a dash when unknown."""
        assert shown_duration(65) == "1:05"
        assert shown_duration(3725) == "1:02:05"
        assert shown_duration(None) == "-:--"


class TestBatchDisplayLearning:
    def test_the_durations_the_server_reports_move_the_estimate(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A completion reporting 30 s pulls the typical duration up from the prior."""
        clock = FakeClock()
        request = GenerationRequest("image", "m/slow", {"prompt": "p"})
        display = BatchDisplay([request] * 20, clock=clock, slots=4)
        prior = display.typical_seconds
        assert prior is not None
        assert prior < 10  # an image's prior: seconds
        clock.advance(40.0)
        done = Prediction(
            id="p1",
            status=PredictionStatus.COMPLETED,
            outputs=("u",),
            metrics={"predict_time": 30.0},
        )
        display.finished(BatchResult(0, request, prediction=done))
        assert display.typical_seconds is not None
        assert display.typical_seconds > prior
        display.show(BatchProgress(total=20, done=1, ok=1, in_flight=4), None)
        err = capsys.readouterr().err  # not a terminal here: a plain line
        assert err == ""  # 1 of 20 is not yet a tenth
        display.show(BatchProgress(total=20, done=2, ok=2, in_flight=4), None)
        line = capsys.readouterr().err
        assert line.startswith("atlas-async: 2/20 done, 0.0/s, ")
        assert line.endswith("left; ok 2  failed 0  running 4\n")

    def test_replayed_results_teach_nothing_and_count_no_rate(self) -> None:
        """A result from the journal took no time in this run."""
        clock = FakeClock()
        request = GenerationRequest("image", "m", {"prompt": "p"})
        display = BatchDisplay([request], clock=clock, slots=1)
        clock.advance(5.0)
        done = Prediction(id="p1", status=PredictionStatus.COMPLETED, outputs=("u",))
        display.finished(BatchResult(0, request, prediction=done, resumed=True))
        assert display.rate() is None
