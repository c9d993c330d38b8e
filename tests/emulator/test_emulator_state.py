"""``EmulatorConfig.state`` / ``--state FILE``: a restarted emulator finds the
predictions, outputs, uploads and balances of the one before."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from atlas_async import cli
from atlas_async.emulator import Emulator, EmulatorConfig, serve
from atlas_async.testing import FakeClock

IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
EPOCH = 1_700_000_000.0
BALANCE = "http://127.0.0.1/public/v1/balance"


def config(state: Path, **fields: Any) -> EmulatorConfig:
    latency = {IMAGE: (4.0, 4.0), VIDEO: (60.0, 60.0)}
    return EmulatorConfig(state=state, epoch=EPOCH, model_latency=latency, **fields)


def contents(folder: Path, pattern: str) -> bytes:
    """The bytes of every file in ``folder`` matching ``pattern``."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob(pattern)))


@contextmanager
def opened(cfg: EmulatorConfig) -> Iterator[tuple[Emulator, FakeClock]]:
    clock = FakeClock()
    emulator = Emulator(cfg, clock=clock.now, sleep=clock.sleep)
    try:
        yield emulator, clock
    finally:
        emulator.close()


@pytest.mark.asyncio
class TestRestart:
    async def test_a_restarted_emulator_answers_as_the_first_did(
        self, tmp_path: Path
    ) -> None:
        """Completed, failed and running predictions, their files, uploads,
        history and balance all survive a restart; a running one still ends
        when it was due."""
        state = tmp_path / "emu.sqlite"
        with opened(config(state, balance=10.0)) as (first, clock):
            async with first.client() as http:

                async def submit(path: str, **body: Any) -> str:
                    answer = await http.post(path, json=body)
                    assert answer.status_code == 200, answer.text
                    return str(answer.json()["data"]["id"])

                done = await submit("/model/generateImage", model=IMAGE, prompt="a")
                failed = await submit(
                    "/model/generateImage", model=IMAGE, prompt="[emulator:fail]"
                )
                running = await submit("/model/generateVideo", model=VIDEO, prompt="b")
                upload = await http.post(
                    "/model/uploadMedia", files={"file": ("in.png", b"\x89PNG!")}
                )
                clock.advance(10.0)
                before = {
                    pid: (await http.get(f"/model/prediction/{pid}")).json()
                    for pid in (done, failed)
                }
                image = await http.get(before[done]["data"]["outputs"][0])
                history = (await http.get("/model/history")).json()
                balance = (await http.get(BALANCE)).json()
        upload_url = upload.json()["data"]["download_url"]

        with opened(config(state, balance=10.0)) as (second, clock):
            clock.advance(10.0)  # the same moment, on a new clock
            async with second.client() as http:
                for pid, answer in before.items():
                    assert (await http.get(f"/model/prediction/{pid}")).json() == answer
                assert (await http.get(before[done]["data"]["outputs"][0])).content == (
                    image.content
                )
                assert (await http.get(upload_url)).content == b"\x89PNG!"
                assert (await http.get("/model/history")).json() == history
                again = (await http.get(BALANCE)).json()
                assert again["available"] == balance["available"]
                assert again["available"]["value"] == "9.670000"  # 0.03 + 5 s x 0.06
                status = (await http.get(f"/model/prediction/{running}")).json()
                assert status["data"]["status"] == "processing"
                clock.advance(50.0)
                status = (await http.get(f"/model/prediction/{running}")).json()
                assert status["data"]["status"] == "completed"
                fresh = await http.post(
                    "/model/generateImage", json={"model": IMAGE, "prompt": "c"}
                )
                assert fresh.json()["data"]["id"] not in {done, failed, running}
                after = (await http.get(BALANCE)).json()
        assert after["cash"]["value"] == "9.670000"
        assert after["frozen"]["value"] == "0.030000"

    async def test_the_state_file_holds_no_api_key(self, tmp_path: Path) -> None:
        """Predictions are filed under a digest of the key, never the key."""
        state = tmp_path / "emu.sqlite"
        with opened(config(state)) as (emulator, _):
            async with emulator.client("sk-very-secret") as http:
                await http.post(
                    "/model/generateImage", json={"model": IMAGE, "prompt": "x"}
                )
        raw = contents(tmp_path, "emu.sqlite*")
        assert raw  # the WAL may still hold the row; either way, no key
        assert b"sk-very-secret" not in raw

    async def test_reset_with_state_empties_the_file(self, tmp_path: Path) -> None:
        """reset(state=True) forgets predictions and uploads on disk too."""
        state = tmp_path / "emu.sqlite"
        with opened(config(state)) as (emulator, _):
            async with emulator.client() as http:
                answer = await http.post(
                    "/model/generateImage", json={"model": IMAGE, "prompt": "x"}
                )
                await http.post(
                    "/model/uploadMedia", files={"file": ("a.png", b"\x89PNG")}
                )
            emulator.reset(state=True)
        with opened(config(state)) as (emulator, _):
            assert emulator.prediction(answer.json()["data"]["id"]) is None
            assert emulator.uploads == {}
        assert list((tmp_path / "emu.sqlite.files").iterdir()) == []

    async def test_a_state_file_of_a_newer_layout_is_refused(
        self, tmp_path: Path
    ) -> None:
        """A file written by a newer emulator is not misread."""
        state = tmp_path / "emu.sqlite"
        with opened(config(state)):
            pass
        with sqlite3.connect(state) as db:
            db.execute("UPDATE meta SET value = '99' WHERE name = 'version'")
        db.close()
        with pytest.raises(ValueError, match="newer layout"):
            Emulator(config(state))

    @pytest.mark.e2e
    async def test_a_restart_over_sockets_serves_the_earlier_outputs(
        self, tmp_path: Path
    ) -> None:
        """Served again on another port, the emulator answers the old ids with
        URLs of its new address."""
        cfg = EmulatorConfig(state=tmp_path / "s.sqlite", time_scale=1000)
        auth = {"Authorization": "Bearer k"}
        async with serve(cfg) as emu, httpx.AsyncClient(headers=auth) as http:
            answer = await http.post(
                f"{emu.base_url}/model/generateImage",
                json={"model": IMAGE, "prompt": "a fox"},
            )
            prediction_id = answer.json()["data"]["id"]
        async with serve(cfg) as emu, httpx.AsyncClient(headers=auth) as http:
            data = await http.get(f"{emu.base_url}/model/result/{prediction_id}")
            outputs = data.json()["data"]["outputs"]
            assert outputs[0].startswith(emu.origin)
            image = await http.get(outputs[0])
        assert image.content.startswith(b"\x89PNG")


@pytest.mark.e2e
def test_a_killed_emulator_process_loses_nothing_it_answered(tmp_path: Path) -> None:
    """SIGKILL right after a submit's answer: the next process finds it (each
    write is its own committed transaction)."""
    state = tmp_path / "s.sqlite"

    def start() -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas_async.emulator",
                "--port",
                "0",
                "--time-scale",
                "1000",
                "--state",
                str(state),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        return process, process.stdout.readline().rsplit(" ", 1)[1].strip()

    auth = {"Authorization": "Bearer k"}
    process, base_url = start()
    try:
        with httpx.Client(headers=auth) as http:
            answer = http.post(
                f"{base_url}/model/generateImage", json={"model": IMAGE, "prompt": "x"}
            )
            prediction_id = answer.json()["data"]["id"]
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=20)
        process, base_url = start()
        with httpx.Client(headers=auth) as http:
            again = http.get(f"{base_url}/model/prediction/{prediction_id}")
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test fails
            process.kill()
            process.wait()
    assert again.status_code == 200
    assert again.json()["data"]["id"] == prediction_id


def test_a_resumed_emulator_batch_attaches_the_previous_runs_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``atlas-async batch --emulator`` keeps the emulator's state beside its
    journal: a rerun attaches the predictions the first run left running
    (same ids, nothing sent again) and downloads their files."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\na cat\n")
    out = tmp_path / "o"
    # Images take 0.4-2 s at this scale: a 0.1 s deadline leaves both running.
    argv = ["batch", str(prompts), "--emulator", "--time-scale", "5", "--json"]
    argv += ["--out", str(out)]
    assert cli.main([*argv, "--timeout", "0.1"]) == 1
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["error"]["type"] for r in first[:-1]] == ["PredictionTimeoutError"] * 2
    state = out / ".atlas-journal.emulator.sqlite-emulator"
    assert state.exists()

    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    second = [json.loads(line) for line in captured.out.splitlines()]
    # Results come in the order they finish: compare them item by item.
    assert {r["index"]: r["prediction_id"] for r in second[:-1]} == {
        r["index"]: r["prediction_id"] for r in first[:-1]
    }
    assert all(r["ok"] and Path(r["files"][0]).exists() for r in second[:-1])
    assert "sending them again" not in captured.err
    with opened(EmulatorConfig(state=state)) as (emulator, _):
        ids = {r["prediction_id"] for r in first[:-1]}
        assert all(emulator.prediction(pid) is not None for pid in ids)
        assert emulator.stats.snapshot().predictions_created == 0
