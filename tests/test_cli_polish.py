"""The command line as a new user meets it: help, version, start-up, messages.

Help and version run the installed console script; the error tests call
`cli.main` in-process against an ``atlas-async emulator`` subprocess (the same
code path as the script, minus ``sys.exit``). Also here: the enums print and
compare as their values, and the emulator names its extra when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from test_cli import clean_env, entry_point, read_line, usage_error

from atlas_async import Kind, PredictionStatus, cli

COMMANDS = [
    "emulator",
    "generate",
    "batch",
    "get",
    "wait",
    "upload",
    "models",
    "quote",
    "balance",
]
GOOD_KEY = "the-right-key-1"
WRONG_KEY = "a-wrong-key-2"


def script(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*entry_point(), *argv],
        capture_output=True,
        text=True,
        env=clean_env(COLUMNS="100"),
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def locked() -> Iterator[str]:
    """An emulator that accepts only `GOOD_KEY`; its base URL (with /api/v1)."""
    process = subprocess.Popen(
        [*entry_point(), "emulator", "--port", "0", "--api-key", GOOD_KEY],
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
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ATLASCLOUD_API_KEY", "ATLASCLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


class TestHelp:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_each_command_help_names_values_and_shows_defaults(
        self, command: str
    ) -> None:
        """Problem 8: no ``<bool>``/``<str>`` options, ``[default: ...]`` kept."""
        done = script(command, "--help")
        assert done.returncode == 0, done.stderr
        options = done.stdout.split("Options:", 1)[1]
        assert "<bool>" not in done.stdout
        assert not re.search(r"--[\w-]+ <", options), options
        assert "[default:" in options
        assert not re.search(r"\w \.(?!\.)", options)  # no text eaten before "."
        # Arguments are named in capitals, like the values of the options.
        usage = done.stdout.splitlines()[0]
        assert not re.search(r"\{[a-z_]+\}", usage), usage

    def test_the_model_option_says_what_its_default_is(self) -> None:
        """Problem 8: "Model id ." lost its default text; now it is shown."""
        done = script("generate", "--help")
        flat = " ".join(done.stdout.split())
        assert "--model MODEL Model id. [default: (a stock model for the kind)]" in flat
        assert "--timeout SECONDS" in flat
        assert "[default: (per kind); x>=0.001]" in flat

    def test_version_prints_the_installed_version(self) -> None:
        """Problem 8: ``--version`` exists and prints the package's version."""
        from importlib.metadata import version

        done = script("--version")
        assert done.returncode == 0
        assert done.stdout == f"atlas-async {version('atlas-async')}\n"

    def test_help_imports_neither_the_client_nor_the_event_loop(self) -> None:
        """Problem 8: start-up stays small: help loads no command's machinery."""
        code = (
            "import sys\n"
            "from atlas_async import cli\n"
            "for argv in (['--help'], ['batch', '--help'], ['generate', '--help']):\n"
            "    cli.main(argv)\n"
            "heavy = ['atlas_async._cli.run', 'atlas_async._client', 'httpx',\n"
            "         'rich.progress', 'rich.markdown', 'atlas_async._cli.batch']\n"
            "print([m for m in heavy if m in sys.modules])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "[]"


class TestMessages:
    def test_a_wrong_key_says_to_check_the_key(
        self, locked: str, no_env: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problem 9: a 401 names --api-key and ATLASCLOUD_API_KEY."""
        argv = ["get", "abc123", "--base-url", locked, "--api-key", WRONG_KEY]
        assert cli.main(argv) == 1
        line = usage_error(capsys)
        assert "401" in line
        assert "check the API key (--api-key or ATLASCLOUD_API_KEY)" in line
        assert WRONG_KEY not in line

    def test_a_base_url_without_api_v1_says_so(
        self, locked: str, no_env: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problem 9: a 404 from a base URL missing /api/v1 shows the fixed URL."""
        bare = locked.removesuffix("/api/v1")
        argv = ["get", "abc123", "--base-url", bare, "--api-key", GOOD_KEY]
        assert cli.main(argv) == 1
        line = usage_error(capsys)
        assert f"try --base-url (or ATLASCLOUD_BASE_URL) {bare}/api/v1" in line

    def test_an_unknown_id_at_the_right_url_has_no_url_hint(
        self, locked: str, no_env: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A plain 404 (unknown prediction) is not blamed on the URL."""
        argv = ["get", "abc123", "--base-url", locked, "--api-key", GOOD_KEY]
        assert cli.main(argv) == 1
        line = usage_error(capsys)
        assert "404" in line
        assert "base URL" not in line

    def test_an_upload_over_the_limit_is_refused_before_sending(
        self, tmp_path: Path, no_env: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problem 9: 60 MB is refused locally (exit 2), nothing sent."""
        big = tmp_path / "big.bin"
        with big.open("wb") as file:
            file.truncate(60 * 2**20)  # sparse: no 60 MB written either
        # Nothing listens on the discard port: sending would be a network error.
        argv = ["upload", str(big), "--base-url", "http://127.0.0.1:9/api/v1"]
        assert cli.main([*argv, "--api-key", GOOD_KEY]) == 2
        line = usage_error(capsys)
        assert "60.0 MB, over the API's upload limit of 50 MB" in line

    @pytest.mark.parametrize("command", ["batch", "generate", "emulator"])
    def test_a_bad_time_scale_names_the_option(
        self, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problem 9: ``--time-scale -3`` says --time-scale, not time_scale."""
        prompts = tmp_path / "p.txt"
        prompts.write_text("a fox\n")
        first = {"batch": [str(prompts)], "generate": ["a fox"], "emulator": []}
        emulated = [] if command == "emulator" else ["--emulator"]
        argv = [command, *first[command], *emulated, "--time-scale", "-3"]
        assert cli.main([*argv, *(["--out", str(tmp_path)] if emulated else [])]) == 2
        line = usage_error(capsys)
        assert "--time-scale must be positive, got -3.0" in line
        assert "time_scale" not in line

    def test_created_at_in_json_is_iso_8601(
        self, locked: str, no_env: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problem 9: ``created_at`` is ``2026-01-01T00:00:00+00:00``, parseable."""
        import httpx

        answer = httpx.post(
            f"{locked}/model/generateImage",
            json={"model": "google/nano-banana-2/text-to-image", "prompt": "w"},
            headers={"Authorization": f"Bearer {GOOD_KEY}"},
        )
        prediction_id = answer.json()["data"]["id"]
        argv = ["get", prediction_id, "--json", "--base-url", locked]
        assert cli.main([*argv, "--api-key", GOOD_KEY]) == 0
        created = json.loads(capsys.readouterr().out)["created_at"]
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", created
        )
        assert datetime.fromisoformat(created).tzinfo is not None


class TestEnums:
    @pytest.mark.parametrize(
        ("member", "value"),
        [
            (PredictionStatus.COMPLETED, "completed"),
            (PredictionStatus.FAILED, "failed"),
            (Kind.IMAGE, "image"),
            (Kind.VIDEO, "video"),
        ],
    )
    def test_statuses_and_kinds_are_their_strings(
        self, member: PredictionStatus | Kind, value: str
    ) -> None:
        """Problem 6: ``== "completed"`` holds; str() and f-strings give the value."""
        assert member == value
        assert isinstance(member, str)
        assert str(member) == value
        assert f"{member}" == value
        assert f"{member:>10}" == f"{value:>10}"
        assert json.dumps(member) == f'"{value}"'
        assert {value: 1}[member] == 1

    def test_a_kind_still_parses_from_its_value(self) -> None:
        """The str base changes no lookup: "VIDEO" and "video" are Kind.VIDEO."""
        assert Kind("video") is Kind.VIDEO
        assert Kind.coerce("VIDEO") is Kind.VIDEO
        assert PredictionStatus("completed") is PredictionStatus.COMPLETED


class TestEmulatorExtra:
    def test_importing_the_emulator_without_its_extra_names_the_install(
        self,
    ) -> None:
        """Problem 9: one clear ModuleNotFoundError with the pip command."""
        code = (
            "import sys\n"
            "sys.modules['cryptography'] = None\n"
            "try:\n"
            "    import atlas_async.emulator\n"
            "except ModuleNotFoundError as exc:\n"
            "    print(exc.name, '|', exc)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ},
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            "cryptography | atlas_async.emulator needs cryptography, which is not"
            " installed: pip install 'atlas-async[emulator]'"
        )
