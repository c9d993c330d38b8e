"""A missing optional dependency names the extra that installs it, in one line.

In-process tests hide a library with ``sys.modules[name] = None`` (importing it
then fails as if it were not installed); the ones about a fresh interpreter run
in a subprocess.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

import atlas_async
from atlas_async import cli
from atlas_async._core.extras import (
    MissingExtraError,
    install_hint,
    installed,
    missing_extra,
    require,
)


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make importing each of ``modules`` fail, as if it were not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestRequire:
    def test_an_installed_module_is_returned(self) -> None:
        """require imports the module and returns it."""
        assert require("json", "cli") is json

    def test_a_missing_module_names_its_extra(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The error says what needs the module and the pip command for the extra."""
        hide(monkeypatch, "rich")
        with pytest.raises(MissingExtraError) as caught:
            require("rich", "cli", feature="the progress bar")
        error = caught.value
        assert str(error) == (
            "the progress bar needs rich, which is not installed: "
            "pip install 'atlas-async[cli]'"
        )
        assert (error.extra, error.module, error.name) == ("cli", "rich", "rich")
        assert isinstance(error.__cause__, ModuleNotFoundError)

    def test_the_error_is_an_import_error_and_a_configuration_error(self) -> None:
        """`except ImportError` and `except atlas_async.AtlasError` both catch it."""
        error = missing_extra("uvicorn", "emulator")
        assert isinstance(error, ImportError)
        assert isinstance(error, atlas_async.ConfigurationError)
        assert str(error).endswith("pip install 'atlas-async[emulator]'")

    def test_the_error_survives_pickling(self) -> None:
        """Sent across processes, it keeps its message and its extra."""
        error = pickle.loads(pickle.dumps(missing_extra("typer", "cli", feature="x")))
        assert isinstance(error, MissingExtraError)
        assert (str(error), error.extra, error.module) == (
            "x needs typer, which is not installed: pip install 'atlas-async[cli]'",
            "cli",
            "typer",
        )

    def test_installed_is_false_for_a_hidden_or_unknown_module(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """installed() answers without importing; every module must be there."""
        hide(monkeypatch, "rich")
        assert installed("json", "attrs")
        assert not installed("json", "rich")
        assert not installed("no_such_module_here")
        assert not installed("no_such_package_here.sub")

    def test_install_hint_quotes_the_extra(self) -> None:
        """The hint is a command a shell accepts as it is."""
        assert install_hint("fastapi") == "pip install 'atlas-async[fastapi]'"


class TestCommandLine:
    @pytest.mark.parametrize("library", ["typer", "rich"])
    def test_without_a_cli_library_the_script_prints_one_line_and_exits_2(
        self, library: str
    ) -> None:
        """No traceback: one line naming the library and the extra, exit code 2."""
        result = run_python(
            f"import sys; sys.modules[{library!r}] = None\n"
            "from atlas_async import cli\n"
            "assert not cli.CLI_AVAILABLE\n"
            "sys.exit(cli.main())\n"
        )
        assert result.returncode == 2
        assert result.stderr == (
            f"atlas-async: error: the atlas-async command needs {library}, which "
            "is not installed: pip install 'atlas-async[cli]'\n"
        )

    def test_without_typer_the_app_names_the_extra(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """cli.app cannot exist without typer: asking for it says what to install."""
        hide(monkeypatch, "typer")
        monkeypatch.delitem(vars(cli), "app", raising=False)
        with pytest.raises(MissingExtraError, match=r"atlas-async\[cli\]"):
            _ = cli.app

    def test_the_emulator_command_without_uvicorn_exits_2(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`atlas-async emulator` without the emulator extra: one line, exit 2."""
        # The emulator package too: this process has it loaded already.
        hide(monkeypatch, "uvicorn", "atlas_async.emulator")
        assert cli.main(["emulator", "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert err == (
            "atlas-async: error: atlas-async emulator needs uvicorn, which is not "
            "installed: pip install 'atlas-async[emulator]'\n"
        )

    @pytest.mark.parametrize(
        "argv",
        [
            pytest.param(["generate", "a fox", "--emulator"], id="generate"),
            pytest.param(["models", "--emulator"], id="models"),
        ],
    )
    def test_the_emulator_option_without_uvicorn_exits_2(
        self,
        argv: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--emulator without the emulator extra: one line naming it, exit 2."""
        hide(monkeypatch, "uvicorn", "atlas_async.emulator")
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.splitlines() == [
            "atlas-async: error: --emulator needs uvicorn, which is not installed: "
            "pip install 'atlas-async[emulator]'"
        ]


class TestTransport:
    @pytest.mark.parametrize("library", ["aiohttp", "httpx_aiohttp"])
    def test_the_aiohttp_transport_without_its_extra_names_it(
        self, library: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """transport='aiohttp' without the extra fails when the client is built."""
        hide(monkeypatch, library)
        with pytest.raises(MissingExtraError) as caught:
            atlas_async.AtlasClient("sk-test-key-0123", transport="aiohttp")
        assert str(caught.value) == (
            "transport='aiohttp' needs aiohttp, which is not installed: "
            "pip install 'atlas-async[aiohttp]'"
        )


def test_the_emulator_without_uvicorn_names_its_extra() -> None:
    """The emulator (which may not import the SDK) says which extra to install."""
    done = run_python(
        "import sys\n"
        "sys.modules['uvicorn'] = None\n"
        "try:\n"
        "    import atlas_async.emulator\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    assert "pip install 'atlas-async[emulator]'" in done.stdout
