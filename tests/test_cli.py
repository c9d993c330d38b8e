"""The atlas-async commands: batch, generate, get, wait, upload, models.

Most tests call `cli.main(argv)` in-process (the same code path the console
script runs, minus ``sys.exit``) with ``--emulator`` or against an emulator
started with ``atlas-async emulator``; the `TestEntryPoint` tests run the
installed script itself in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atlas_async import cli
from atlas_async._batch.input import load_requests
from atlas_async._batch.journal import Journal
from atlas_async._cli import run as _cli_run
from atlas_async._cli.calls import parse_params
from atlas_async._core.errors import ConfigurationError, NotFoundError

IMAGE = "google/nano-banana-2/text-to-image"
PNG = b"\x89PNG\r\n\x1a\n"
# Fast and deterministic for every in-process emulator run.
EMU = ["--emulator", "--time-scale", "200", "--seed", "1"]


def entry_point() -> list[str]:
    """The installed console script (or its module, if the venv has no script)."""
    script = Path(sys.executable).with_name("atlas-async")
    if script.exists():
        return [str(script)]
    found = shutil.which("atlas-async")  # pragma: no cover - venv layouts vary
    return [found] if found else [sys.executable, "-m", "atlas_async.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASCLOUD_")}
    return {**env, **extra}


def read_line(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """Read stdout lines until one matches ``pattern`` (bounded by ``timeout``)."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(timeout=max(0.0, deadline - time.monotonic())):
            line = process.stdout.readline()
            if re.search(pattern, line):
                return line
            if not line:
                break
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """An emulator started with `atlas-async emulator --port 0`; its base URL."""
    process = subprocess.Popen(
        [*entry_point(), "emulator", "--port", "0", "--time-scale", "200"],
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


@pytest.fixture
def remote(server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the in-process CLI at the emulator server through the environment."""
    monkeypatch.setenv("ATLASCLOUD_BASE_URL", server)
    monkeypatch.setenv("ATLASCLOUD_API_KEY", "test-key")
    return server


def submit(base_url: str, path: str, body: dict[str, object]) -> str:
    response = httpx.post(
        f"{base_url}{path}", json=body, headers={"Authorization": "Bearer k"}
    )
    response.raise_for_status()
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    file = tmp_path / "prompts.txt"
    file.write_text("# three foxes\na red fox\n\na fox in snow\na fox at night\n")
    return file


def usage_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line on stderr (and nothing that looks like a crash)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("atlas-async: error: ")]
    assert len(lines) == 1, err
    return lines[0]


class StepClock:
    """A clock that reads ``start`` once, then ``then`` ever after."""

    def __init__(self, *, start: float, then: float) -> None:
        self.readings = iter([start])
        self.then = then

    def now(self) -> float:
        return next(self.readings, self.then)

    def wall(self) -> float:
        return 1_767_225_600.0

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("the command line never sleeps on its clock")


def pngs(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.png"))


class TestBatch:
    def test_batch_against_the_emulator_writes_pngs_and_exits_0(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every prompt becomes a PNG in --out; one line per item, then a summary."""
        out = tmp_path / "out"
        code = cli.main(["batch", str(prompts), *EMU, "--out", str(out)])
        stdout = capsys.readouterr().out
        assert code == 0
        files = pngs(out)
        assert len(files) == 3
        assert all(f.read_bytes().startswith(PNG) for f in files)
        assert stdout.count("ok line") == 3
        assert "3 of 3 ok, 0 failed" in stdout
        assert (out / ".atlas-journal.emulator.sqlite").exists()

    def test_json_prints_one_object_per_result_and_a_summary(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json lines parse; each result names its line, files and prediction."""
        out = tmp_path / "out"
        code = cli.main(["batch", str(prompts), *EMU, "--out", str(out), "--json"])
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert code == 0
        *results, summary = lines
        assert sorted(r["line"] for r in results) == [2, 4, 5]
        assert all(r["ok"] and r["status"] == "completed" for r in results)
        assert all(Path(r["files"][0]).exists() for r in results)
        assert summary["summary"]["ok"] == 3
        assert summary["summary"]["failed"] == 0

    def test_the_elapsed_time_comes_from_the_injected_clock(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The summary's elapsed seconds are read from main's clock, not the OS."""
        out = tmp_path / "out"
        argv = ["batch", str(prompts), *EMU, "--out", str(out), "--json"]
        code = cli.main(argv, clock=StepClock(start=100.0, then=102.5))
        summary = json.loads(capsys.readouterr().out.splitlines()[-1])["summary"]
        assert code == 0
        assert summary["elapsed_seconds"] == 2.5

    def test_a_rerun_resumes_from_the_journal(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The same command again reports every item from the journal."""
        argv = ["batch", str(prompts), *EMU, "--out", str(tmp_path / "o"), "--json"]
        assert cli.main(argv) == 0
        capsys.readouterr()
        assert cli.main(argv) == 0
        captured = capsys.readouterr()
        *results, summary = (json.loads(x) for x in captured.out.splitlines())
        assert all(r["resumed"] for r in results)
        assert summary["summary"]["resumed"] == 3
        assert "resuming" in captured.err

    def test_an_emulator_rerun_sends_again_what_the_old_emulator_had(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Items submitted to a previous run's (stopped) emulator are sent again."""
        journal = tmp_path / "run.db"
        parsed = load_requests(prompts)

        async def interrupted_run() -> None:
            async with Journal(journal) as opened:
                await opened.begin(parsed.requests)
                for index in (0, 1):
                    await opened.mark_submitting(index)
                await opened.mark_submitted(0, "id-of-a-stopped-emulator")
                await opened.mark_unknown(1, "no answer")

        asyncio.run(interrupted_run())
        argv = ["batch", str(prompts), *EMU, "--journal", str(journal)]
        code = cli.main([*argv, "--out", str(tmp_path / "o")])
        captured = capsys.readouterr()
        assert code == 0
        assert "3 of 3 ok" in captured.out
        assert "2 items were in progress on the previous run's emulator" in captured.err

    def test_some_failures_exit_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An item the emulator fails is reported, the others complete, exit 1."""
        file = tmp_path / "p.txt"
        file.write_text("a fox\n[emulator:fail] a doomed fox\n")
        code = cli.main(["batch", str(file), *EMU, "--out", str(tmp_path / "o")])
        out = capsys.readouterr().out
        assert code == 1
        assert "failed line 2" in out
        assert "PredictionFailedError" in out
        assert "1 of 2 ok, 1 failed" in out

    def test_a_malformed_jsonl_line_is_reported_with_its_number(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad line fails alone, by line number; the valid lines still run."""
        file = tmp_path / "r.jsonl"
        file.write_text(
            '{"prompt": "a fox"}\n{oops\n'
            '{"kind": "video", "prompt": "waves", "duration": 5}\n'
        )
        code = cli.main(["batch", str(file), *EMU, "--out", str(tmp_path / "o")])
        out = capsys.readouterr().out
        assert code == 1
        assert "failed line 2: not valid JSON" in out
        assert "2 of 3 ok, 1 failed" in out
        assert len(list((tmp_path / "o").glob("*.mp4"))) == 1

    def test_an_unknown_model_is_a_failed_item(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--model that the API refuses makes every item fail with the 400."""
        file = tmp_path / "p.txt"
        file.write_text("a fox\n")
        argv = ["batch", str(file), *EMU, "--out", str(tmp_path / "o")]
        code = cli.main([*argv, "--model", "acme/nope", "--json"])
        result, summary = (json.loads(x) for x in capsys.readouterr().out.splitlines())
        assert code == 1
        assert result["error"]["type"] == "InvalidRequestError"
        assert summary["summary"]["errors"] == {"InvalidRequestError": 1}

    def test_a_killed_runs_temporaries_are_removed(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Hidden .part- files an earlier run left behind are deleted."""
        out = tmp_path / "o"
        out.mkdir()
        (out / ".00001-abc-0.png.part-1a2b3c4d").write_bytes(b"half")
        assert cli.main(["batch", str(prompts), *EMU, "--out", str(out)]) == 0
        assert not list(out.glob(".*.part-*"))
        assert "removed 1 partial download" in capsys.readouterr().err


class TestUsageErrors:
    def test_no_api_key_without_emulator_says_how_to_set_one(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 2 with one line naming ATLASCLOUD_API_KEY and --emulator."""
        code = cli.main(["batch", str(prompts), "--out", str(tmp_path / "o")])
        line = usage_error(capsys)
        assert code == 2
        assert "ATLASCLOUD_API_KEY" in line
        assert "--emulator" in line
        assert not (tmp_path / "o").exists()  # nothing created before the check

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            pytest.param(None, "No such file", id="missing"),
            pytest.param("", "no requests", id="empty"),
            pytest.param("# just a comment\n", "no requests", id="comments"),
        ],
    )
    def test_an_unusable_file_exits_2(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        content: str | None,
        message: str,
    ) -> None:
        """A missing, empty or comment-only file is one line and exit 2."""
        file = tmp_path / "prompts.txt"
        if content is not None:
            file.write_text(content)
        code = cli.main(["batch", str(file), *EMU, "--out", str(tmp_path / "o")])
        assert code == 2
        assert message in usage_error(capsys)

    def test_an_unwritable_output_folder_exits_2(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--out below a regular file cannot be created: exit 2, one line."""
        code = cli.main(["batch", str(prompts), *EMU, "--out", str(prompts / "o")])
        assert code == 2
        assert "Not a directory" in usage_error(capsys)

    def test_other_prompts_on_the_same_journal_run_alone(
        self, prompts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A journal is keyed by content: other prompts are new items (the
        earlier ones stay in the journal), not a refused batch."""
        journal = str(tmp_path / "run.db")
        argv = [*EMU, "--out", str(tmp_path / "o"), "--journal", journal]
        assert cli.main(["batch", str(prompts), *argv]) == 0
        other = tmp_path / "other.txt"
        other.write_text("a different fox\n")
        capsys.readouterr()
        assert cli.main(["batch", str(other), *argv, "--json"]) == 0
        *results, summary = map(json.loads, capsys.readouterr().out.splitlines())
        assert [(r["line"], r["ok"], r["resumed"]) for r in results] == [
            (1, True, False)
        ]
        assert summary["summary"]["total"] == 1

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            pytest.param(["--fault", "bogus=1"], "unknown fault", id="fault"),
            pytest.param(
                ["--time-scale", "0"], "--time-scale must be positive", id="time-scale"
            ),
            pytest.param(["--concurrency", "0"], "--concurrency", id="concurrency"),
            pytest.param(["--kind", "gif"], "unknown kind", id="kind"),
        ],
    )
    def test_a_bad_option_exits_2(
        self,
        prompts: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        message: str,
    ) -> None:
        """Bad option values are one line and exit 2."""
        out = ["--out", str(tmp_path / "o")]
        code = cli.main(["batch", str(prompts), "--emulator", *out, *argv])
        assert code == 2
        assert message in usage_error(capsys)


class TestCommands:
    def test_generate_with_the_emulator_prints_the_saved_paths(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """generate waits, downloads every output and prints one path per line."""
        out = tmp_path / "g"
        argv = ["generate", "a red fox", *EMU, "--out", str(out)]
        code = cli.main([*argv, "--param", "num_images=2"])
        paths = capsys.readouterr().out.split()
        assert code == 0
        assert len(paths) == 2
        assert all(Path(p).read_bytes().startswith(PNG) for p in paths)

    def test_generate_json_and_a_failure(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json gives the prediction and files; a failed one is exit 1."""
        out = ["--out", str(tmp_path / "g"), *EMU]
        assert cli.main(["generate", "an owl", "--json", *out]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["status"] == "completed"
        assert len(answer["files"]) == 1
        assert cli.main(["generate", "[emulator:fail] owl", *out]) == 1
        assert "failed" in usage_error(capsys)

    def test_generate_against_a_server_prints_the_path(
        self, remote: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """generate through ATLASCLOUD_BASE_URL prints the saved path."""
        assert cli.main(["generate", "a heron", "--out", str(tmp_path / "g")]) == 0
        (path,) = capsys.readouterr().out.split()
        assert Path(path).read_bytes().startswith(PNG)

    def test_get_and_wait_report_a_prediction(
        self, remote: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """get prints the current state; wait follows it to completion."""
        pid = submit(remote, "/model/generateImage", {"model": IMAGE, "prompt": "w"})
        assert cli.main(["get", pid]) == 0
        assert pid in capsys.readouterr().out
        assert cli.main(["wait", pid, "--kind", "image", "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["status"] == "completed"
        assert answer["outputs"][0].endswith(".png")
        assert cli.main(["get", pid, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["id"] == pid

    def test_get_an_unknown_id_exits_1(
        self, remote: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 404 is one error line and exit 1."""
        assert cli.main(["get", "no-such-id"]) == 1
        assert "not found" in usage_error(capsys)

    def test_wait_for_a_failing_prediction_exits_1(
        self, remote: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A prediction that fails on the server makes wait exit 1."""
        pid = submit(
            remote,
            "/model/generateImage",
            {"model": IMAGE, "prompt": "[emulator:fail]"},
        )
        assert cli.main(["wait", pid]) == 1
        assert "failed" in usage_error(capsys)

    def test_upload_prints_the_url(
        self, remote: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """upload prints the URL; --json adds name and size; a missing file is 2."""
        file = tmp_path / "cat.png"
        file.write_bytes(PNG + b"\x00" * 32)
        assert cli.main(["upload", str(file)]) == 0
        assert capsys.readouterr().out.strip().startswith("http://")
        assert cli.main(["upload", str(file), "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["size"] == 40
        assert cli.main(["upload", str(tmp_path / "missing.png")]) == 2
        usage_error(capsys)

    def test_models_lists_the_catalog_without_a_key(
        self, server: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """models needs no key; --kind filters; --json is one object per model."""
        assert cli.main(["models", "--base-url", server, "--kind", "video"]) == 0
        table = capsys.readouterr().out
        assert "bytedance/seedance-2.0/text-to-video" in table
        assert IMAGE not in table
        assert cli.main(["models", "--base-url", server, "--json"]) == 0
        rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert {r["kind"] for r in rows} >= {"image", "video", "audio"}


class TestHelpers:
    def test_params_parse_json_values_or_keep_strings(self) -> None:
        """NAME=VALUE: JSON when it parses, else the raw string; no '=' is refused."""
        assert parse_params(["n=2", "size=1024*1024", "x=null"]) == {
            "n": 2,
            "size": "1024*1024",
            "x": None,
        }
        with pytest.raises(ConfigurationError, match="NAME=VALUE"):
            parse_params(["oops"])

    @pytest.mark.parametrize(
        ("error", "code"),
        [
            pytest.param(KeyboardInterrupt(), 130, id="ctrl-c"),
            pytest.param(BrokenPipeError(), 141, id="broken-pipe"),
            pytest.param(NotFoundError("gone"), 1, id="api-error"),
            pytest.param(PermissionError(13, "denied", "f.txt"), 2, id="os-error"),
        ],
    )
    def test_run_turns_errors_into_exit_codes(
        self,
        error: BaseException,
        code: int,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Each kind of error maps to its documented exit code, without a traceback."""
        monkeypatch.setattr(os, "dup2", lambda *args: None)  # keep pytest's stdout

        async def main() -> int:
            raise error

        assert _cli_run.run(main) == code
        assert "Traceback" not in capsys.readouterr().err

    def test_a_bug_keeps_its_traceback(self) -> None:
        """An unexpected exception is not disguised as a usage error."""

        async def main() -> int:
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            _cli_run.run(main)


class TestEntryPoint:
    def test_the_script_runs_a_batch_with_json_output(
        self, prompts: Path, tmp_path: Path
    ) -> None:
        """The installed script: --json lines on stdout, PNGs on disk, exit 0."""
        out = tmp_path / "out"
        done = subprocess.run(
            [*entry_point(), "batch", str(prompts), *EMU, "--out", str(out), "--json"],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout.splitlines()[-1])["summary"]
        assert summary["ok"] == 3
        assert len(pngs(out)) == 3

    def test_python_dash_m_reports_a_missing_key_in_one_line(
        self, prompts: Path, tmp_path: Path
    ) -> None:
        """`python -m atlas_async.cli` without a key: exit 2, one line, no traceback."""
        done = subprocess.run(
            [sys.executable, "-m", "atlas_async.cli", "batch", str(prompts)],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [
            f"atlas-async: error: {_cli_run.NO_KEY}"
        ]

    def test_the_script_exits_1_when_an_item_fails(self, tmp_path: Path) -> None:
        """A failed item gives exit 1 through the real entry point."""
        file = tmp_path / "p.txt"
        file.write_text("a fox\n[emulator:fail] a doomed fox\n")
        done = subprocess.run(
            [*entry_point(), "batch", str(file), *EMU, "--out", str(tmp_path / "o")],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr


def test_the_emulator_command_takes_state_balance_and_signature_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The options `python -m atlas_async.emulator` has are on the CLI too, and
    a bad signature place is one line, exit 2, before anything is served."""
    code = cli.main(["emulator", "--webhook-signature", "nope", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "must be ed25519, both or bare" in err
    assert "Traceback" not in err
    assert cli.main(["emulator", "--help"]) == 0
    shown = capsys.readouterr().out
    for option in ("--state", "--balance", "--webhook-signature"):
        assert option in shown
