"""A batch killed with SIGKILL mid-run, then run again: nothing lost, nothing twice.

Three real processes: the emulator (``python -m atlas_async.emulator``), and
``atlas-async batch`` twice against it over loopback, with one journal. The
first run is killed once some results are out and every submit has its id;
the second finishes the batch by attaching to what was submitted.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

PROMPTS = 30
# Images take 2-10 Atlas seconds: 1-5 s of real time at this scale, so the
# first run is still busy when it is killed and the second takes a few seconds.
TIME_SCALE = "2"


def script() -> list[str]:
    found = Path(sys.executable).with_name("atlas-async")
    return [str(found)] if found.exists() else [sys.executable, "-m", "atlas_async.cli"]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ATLASCLOUD_")}


def lines(process: subprocess.Popen[str], deadline: float) -> Iterator[str]:
    """Yield stdout lines as they come, until EOF or the deadline."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    while (left := deadline - time.monotonic()) > 0:
        if selector.select(timeout=left):
            line = process.stdout.readline()
            if not line:
                return
            yield line
    raise AssertionError("the process did not answer in time")


@contextmanager
def emulator_process(*options: str) -> Iterator[str]:
    """The emulator in its own process with ``options``; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "atlas_async.emulator", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        for line in lines(process, time.monotonic() + 30):
            found = re.search(r"listening on (http://\S+/api/v1)", line)
            if found:
                yield found[1]
                break
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture
def emulator() -> Iterator[str]:
    """The emulator in its own process; yields its base URL."""
    with emulator_process("--time-scale", TIME_SCALE, "--seed", "11") as url:
        yield url


def stats(base_url: str) -> dict[str, Any]:
    origin = base_url.removesuffix("/api/v1")
    answer: dict[str, Any] = httpx.get(f"{origin}/_emulator/stats").json()
    return answer


def journal_states(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT state, COUNT(*) FROM items GROUP BY 1").fetchall()
    conn.close()
    return dict(rows)


def test_a_killed_batch_resumes_with_every_prompt_completed_once(
    emulator: str, tmp_path: Path
) -> None:
    """SIGKILL mid-run, same command again: 30 outputs, 30 creations, 0 duplicates."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "".join(f"prompt {i}: a fox, take {i}\n" for i in range(PROMPTS))
    )
    out, journal = tmp_path / "out", tmp_path / "run.journal"
    command = [
        *script(),
        "batch",
        str(prompts),
        "--base-url",
        emulator,
        "--api-key",
        "test-key",
        "--out",
        str(out),
        "--journal",
        str(journal),
        "--json",
    ]

    first = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        for seen, _ in enumerate(lines(first, time.monotonic() + 30), start=1):
            # Kill once results are coming and every submit has been answered
            # (an item killed mid-POST would rightly come back as "unknown").
            if seen >= 3 and stats(emulator)["predictions_created"] == PROMPTS:
                break
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:  # pragma: no cover - only if an assert failed
            first.kill()
            first.wait()
        assert first.stdout is not None
        first.stdout.close()
    assert first.returncode == -signal.SIGKILL

    before = journal_states(journal)
    finished = before.get("completed", 0) + before.get("saved", 0)
    assert finished >= 3
    assert before.get("submitted", 0) >= 1
    assert before.get("submitting", 0) == 0

    second = subprocess.run(
        command, capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert second.returncode == 0, second.stderr
    *results, summary = (json.loads(x) for x in second.stdout.splitlines())
    assert len(results) == PROMPTS
    assert all(r["ok"] for r in results)
    assert summary["summary"]["resumed"] >= finished

    assert journal_states(journal) == {"saved": PROMPTS}
    ids = {r["prediction_id"] for r in results}
    assert len(ids) == PROMPTS
    final = stats(emulator)
    assert final["predictions_created"] == PROMPTS
    assert final["duplicate_submissions"] == 0

    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if ".part-" in n]
    outputs = sum(len(r["outputs"]) for r in results)
    assert len(names) == outputs == PROMPTS
    assert sorted(Path(f).name for r in results for f in r["files"]) == names


MODELS = (
    "google/nano-banana-2/text-to-image",
    "bytedance/seedream-v4",
    "bytedance/seedream-v5.0-lite",
    "black-forest-labs/flux-schnell",
    "wavespeed-ai/flux-schnell",
    "openai/gpt-image-2/text-to-image",
    "z-image/turbo",
)


@pytest.fixture
def slow_submits() -> Iterator[str]:
    """The emulator answering every submit 4 s after creating it: a kill in
    those seconds leaves submits that reached the server and got no answer."""
    with emulator_process(
        *("--time-scale", "20", "--seed", "5"),
        *("--fault", "slow_rate=1", "--fault", "slow_seconds=4"),
        *("--fault", "targets=submit"),
    ) as url:
        yield url


def test_a_batch_killed_while_submits_are_out_settles_them_from_history(
    slow_submits: str, tmp_path: Path
) -> None:
    """SIGKILL while 20+ submits are out: the rerun attaches every one of them
    from the account's history; every prompt done once, none unknown, no flag."""
    jobs = 35
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"model": MODELS[i % len(MODELS)], "prompt": f"fox {i}"}) + "\n"
            for i in range(jobs)
        )
    )
    out, journal = tmp_path / "out", tmp_path / "run.journal"
    command = [
        *script(),
        "batch",
        str(requests),
        *("--base-url", slow_submits, "--api-key", "test-key"),
        # The emulator writes history as it creates, on this machine's clock.
        *("--history-lag", "1"),
        *("--out", str(out), "--journal", str(journal), "--json"),
    ]
    first = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while stats(slow_submits)["predictions_created"] < 20:
            assert time.monotonic() < deadline, "the submits did not go out"
            assert first.poll() is None
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:  # pragma: no cover - only if an assert failed
            first.kill()
            first.wait()

    before = journal_states(journal)
    # Killed with no answer to any submit: each one sent is 'submitting'.
    created = stats(slow_submits)["predictions_created"]
    assert before.get("submitting", 0) >= 20
    assert before.get("submitting", 0) >= created

    second = subprocess.run(
        command, capture_output=True, text=True, env=clean_env(), timeout=120
    )
    assert second.returncode == 0, second.stdout[-3000:]
    *results, _summary = (json.loads(x) for x in second.stdout.splitlines())
    assert len(results) == jobs
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    assert journal_states(journal) == {"saved": jobs}
    assert len({r["prediction_id"] for r in results}) == jobs
    final = stats(slow_submits)
    assert final["predictions_created"] == jobs
    assert final["duplicate_submissions"] == 0
