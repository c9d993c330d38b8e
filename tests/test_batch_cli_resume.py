"""``atlas-async batch`` interrupted, resumed, extended and retried, through the
installed command (a subprocess with ``--emulator``), as a user runs it.

Each test reproduces one way a batch used to get stuck (issue 16): a run cut
off by ``| head -1`` or Ctrl-C while downloading left items completed without
their files and pointing at the dead emulator's URLs, so every rerun failed
them again; failed items could not be retried; an appended prompt made the
journal "belong to another batch"; a non-UTF-8 line rejected the whole file.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_batch_crash import clean_env, script

pytestmark = pytest.mark.e2e

PROMPTS = [f"prompt {i}: a fox in the style of painter {i}" for i in range(8)]
JOURNAL = ".atlas-journal.emulator.sqlite"


def batch(
    tmp_path: Path, *options: str, file: str = "prompts.txt"
) -> subprocess.CompletedProcess[str]:
    """``atlas-async batch FILE --emulator --out out OPTIONS`` in ``tmp_path``."""
    return subprocess.run(
        [*script(), "batch", file, "--emulator", "--out", "out", *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )


def start(tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*script(), "batch", "prompts.txt", "--emulator", "--out", "out", *options],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )


def parsed(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *results, last = (json.loads(line) for line in stdout.splitlines())
    return results, last["summary"]


def states(tmp_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(tmp_path / "out" / JOURNAL)
    try:
        rows = conn.execute("SELECT state, COUNT(*) FROM items GROUP BY 1")
        return dict(rows.fetchall())
    finally:
        conn.close()


def pngs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "out").glob("*.png"))


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    file = tmp_path / "prompts.txt"
    file.write_text("".join(f"{p}\n" for p in PROMPTS))
    return file


def assert_everything_saved(
    tmp_path: Path, rerun: subprocess.CompletedProcess[str]
) -> None:
    assert rerun.returncode == 0, rerun.stderr
    results, summary = parsed(rerun.stdout)
    assert all(r["ok"] for r in results), results
    assert summary["ok"] == len(PROMPTS)
    assert all(Path(tmp_path, f).is_file() for r in results for f in r["files"])
    assert len(pngs(tmp_path)) == len(PROMPTS)
    assert states(tmp_path) == {"saved": len(PROMPTS)}
    assert "can be resumed" not in rerun.stderr


def test_a_run_cut_off_by_head_exits_141_and_one_rerun_saves_every_file(
    tmp_path: Path, prompts: Path
) -> None:
    """``batch ... | head -1``: exit 141 (not rich's 1), and the same command
    once more ends with every file on disk, none failing on a dead URL."""
    first = start(tmp_path, "--time-scale", "5")
    assert first.stdout is not None
    line = first.stdout.readline()
    first.stdout.close()  # what `head -1` does after its line
    assert first.wait(timeout=60) == 141
    assert line.startswith("ok line")
    assert states(tmp_path).get("saved", 0) < len(PROMPTS)  # it was cut off

    assert_everything_saved(tmp_path, batch(tmp_path, "--json"))


def test_ctrl_c_while_downloading_then_one_rerun_saves_every_file(
    tmp_path: Path, prompts: Path
) -> None:
    """SIGINT while downloads hang leaves items completed without files, whose
    URLs die with that run's emulator: the rerun fetches each prediction
    again (fresh URLs) and downloads it."""
    slow = ("slow_rate=0.5", "slow_seconds=5000", "targets=files")
    first = start(tmp_path, "--json", *(x for f in slow for x in ("--fault", f)))
    assert first.stdout is not None
    first.stdout.readline()  # a fast download came through: completions are on
    time.sleep(1.5)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) == 130
    first.communicate()
    assert states(tmp_path).get("completed", 0) >= 1  # completed, not saved

    assert_everything_saved(tmp_path, batch(tmp_path, "--json"))


def test_status_says_what_a_resume_would_do_and_changes_nothing(
    tmp_path: Path, prompts: Path
) -> None:
    """--status after a cut-off run: every item's step and the counts; the
    journal is the same after it, and no emulator or client is started."""
    first = start(tmp_path, "--time-scale", "5")
    assert first.stdout is not None
    first.stdout.readline()
    first.stdout.close()
    first.wait(timeout=60)
    before = states(tmp_path)

    shown = batch(tmp_path, "--status", "--json")
    assert shown.returncode == 0, shown.stderr
    *items, last = (json.loads(x) for x in shown.stdout.splitlines())
    status = last["status"]
    steps = {i["step"] for i in items}
    assert steps <= {"done", "files missing", "submitted", "pending"}
    assert status["done"] == before.get("saved", 0)
    assert sum(status[s] for s in ("done", "files missing", "submitted", "pending"))
    assert status["total"] == len(PROMPTS)
    assert "emulator on" not in shown.stderr
    assert states(tmp_path) == before

    human = batch(tmp_path, "--status")
    assert f"{len(PROMPTS)} items: {status['done']} done" in human.stdout
    assert "to resume: atlas-async batch prompts.txt --out out --emulator" in (
        human.stdout
    )


def test_outputs_gone_for_good_are_said_once_and_retry_failed_converges(
    tmp_path: Path, prompts: Path
) -> None:
    """With the predictions gone (the emulator's state deleted), a rerun
    says once which items' outputs are gone and the command that makes them
    again; the next plain rerun does not say it again, and that command ends
    with every file on disk."""
    slow = ("slow_rate=1", "slow_seconds=5000", "targets=files")
    first = start(tmp_path, *(x for f in slow for x in ("--fault", f)))
    time.sleep(4)  # every prediction completes; no download can
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=60) == 130
    first.communicate()
    completed = states(tmp_path).get("completed", 0)
    assert completed >= 1
    (tmp_path / "out" / f"{JOURNAL}-emulator").unlink()

    second = batch(tmp_path)
    assert second.returncode == 1
    assert second.stdout.count("OutputsGoneError") == completed
    assert f"the outputs of {completed} items are gone for good" in second.stderr
    command = "atlas-async batch prompts.txt --out out --emulator --retry-failed"
    assert command in second.stderr
    assert "can be resumed" not in second.stderr

    third = batch(tmp_path)
    assert third.returncode == 1
    assert "gone for good" not in third.stderr
    assert f"{completed} failed: running again reports them" in third.stderr

    assert_everything_saved(tmp_path, batch(tmp_path, "--retry-failed", "--json"))


def test_retry_failed_sends_the_failed_items_and_only_those(
    tmp_path: Path, prompts: Path
) -> None:
    """Failed items are reported again by a plain rerun (nothing sent) and
    sent again, alone, with --retry-failed."""
    first = batch(tmp_path, "--json", "--fault", "error_rate=0.5")
    assert first.returncode == 1
    results, _ = parsed(first.stdout)
    failed = sorted(r["line"] for r in results if not r["ok"])
    assert failed  # the seeded emulator fails some of them

    again = batch(tmp_path, "--json")
    results, summary = parsed(again.stdout)
    assert all(r["resumed"] for r in results)
    assert summary["retryable"] == len(failed)

    retried = batch(tmp_path, "--json", "--retry-failed")
    results, summary = parsed(retried.stdout)
    sent = sorted(r["line"] for r in results if not r["resumed"])
    assert sent == failed
    assert retried.returncode == 0, retried.stdout
    assert summary["ok"] == len(PROMPTS)


def test_appended_and_reordered_prompts_keep_the_journal(
    tmp_path: Path, prompts: Path
) -> None:
    """An appended prompt runs alone (it used to be exit 2, "journal belongs to
    another batch"); reordering lines sends nothing; identical lines are one
    item each."""
    assert batch(tmp_path).returncode == 0
    prompts.write_text("".join(f"{p}\n" for p in [*PROMPTS, "an owl", "an owl"]))
    shown = batch(tmp_path, "--status")
    assert f"{len(PROMPTS)} done" in shown.stdout
    assert "2 pending" in shown.stdout

    grown = batch(tmp_path, "--json")
    assert grown.returncode == 0, grown.stderr
    results, _ = parsed(grown.stdout)
    new = sorted(r["line"] for r in results if not r["resumed"])
    assert new == [len(PROMPTS) + 1, len(PROMPTS) + 2]
    assert len({r["prediction_id"] for r in results}) == len(PROMPTS) + 2

    prompts.write_text("".join(f"{p}\n" for p in ["an owl", *reversed(PROMPTS)]))
    moved = batch(tmp_path, "--json")
    results, summary = parsed(moved.stdout)
    assert all(r["resumed"] and r["ok"] for r in results)
    assert summary["total"] == len(PROMPTS) + 1


def test_a_line_that_is_not_utf8_is_one_failed_item(tmp_path: Path) -> None:
    """One Latin-1 line: that line fails with its number, the others run."""
    (tmp_path / "prompts.txt").write_bytes(
        b"a red fox\n" + "caf\u00e9 cr\u00e8me".encode("latin-1") + b"\nan owl\n"
    )
    run = batch(tmp_path, "--json")
    assert run.returncode == 1
    results, summary = parsed(run.stdout)
    by_line = {r["line"]: r for r in results}
    assert by_line[2]["ok"] is False
    assert "not UTF-8" in by_line[2]["error"]["message"]
    assert by_line[1]["ok"]
    assert by_line[3]["ok"]
    assert (summary["ok"], summary["failed"]) == (2, 1)
