"""
The ``atlas-async`` command (extra ``cli``: typer and rich).

One `typer.Typer` app, ``app``; each command is a plain function registered
with ``@app.command()``, so later commands (generate, batch, get, wait, upload,
models) join the same app. `main` is the console-script entry point.

Error handling is the entry point's job, not each command's: `main` runs the
app in click's non-standalone mode and turns every usage error (a bad option,
a value that does not parse, a bad ``--fault``) into one line on stderr and exit
code 2, and Ctrl-C into exit code 130, never a traceback. Commands signal a bad
option by raising `typer.BadParameter` (or any ``click.UsageError``).

When typer or rich are missing, importing this module still works (options are
written ``Annotated[...]`` and annotations are strings until typer reads them),
``app`` is a stand-in, and `main` prints the ``pip install`` hint.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, cast

if TYPE_CHECKING:
    import typer

    from .emulator import RunningEmulator
else:
    try:
        import typer
    except ImportError:  # pragma: no cover - tested in a subprocess
        typer = None

CLI_AVAILABLE: bool = typer is not None
"""False when typer is not installed (``main`` then prints the install hint)."""
__all__ = ["CLI_AVAILABLE", "app", "main"]

INSTALL_HINT = (
    "atlas-async: the command line needs extras: pip install 'atlas-async[cli]'"
)


class _MissingTyper:
    """Stands in for ``typer.Typer`` when typer is not installed."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return lambda function: function

    callback = command


def _option(*args: Any, **kwargs: Any) -> Any:
    return typer.Option(*args, **kwargs) if CLI_AVAILABLE else None


app: typer.Typer = (
    typer.Typer(
        name="atlas-async",
        help="Atlas Cloud generation from the command line, and a local emulator.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    if CLI_AVAILABLE
    else cast("typer.Typer", _MissingTyper())
)


@app.callback()
def _root() -> None:
    """Atlas Cloud generation from the command line, and a local emulator."""


@app.command()
def emulator(
    host: Annotated[str, _option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, _option(min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = 8787,
    time_scale: Annotated[
        float, _option(help="Run this many times faster than Atlas (e.g. 100).")
    ] = 1.0,
    seed: Annotated[int, _option(help="Seed for ids, latencies and faults.")] = 0,
    api_key: Annotated[
        list[str] | None,
        _option("--api-key", help="Accept only this key (repeatable)."),
    ] = None,
    no_balance_key: Annotated[
        list[str] | None,
        _option("--no-balance-key", help="Answer 402 to this key's submits."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        _option(
            "--fault",
            metavar="NAME=VALUE",
            help="Inject a fault, e.g. error_rate=0.1, rps=50, drop_rate=0.05.",
        ),
    ] = None,
    latency: Annotated[
        list[str] | None,
        _option(
            "--latency",
            metavar="NAME=MIN,MAX",
            help="Latency in Atlas seconds per class (image, video, ...) or model.",
        ),
    ] = None,
) -> None:
    """Serve a local Atlas Cloud until Ctrl-C."""
    from rich.console import Console

    from .emulator import config_from_options, run_emulator

    try:
        config = config_from_options(
            seed=seed,
            time_scale=time_scale,
            api_keys=api_key or (),
            no_balance_keys=no_balance_key or (),
            faults=fault or (),
            latency=latency or (),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console(soft_wrap=True, highlight=False)

    def ready(running: RunningEmulator) -> None:
        base = running.base_url
        console.print(f"Atlas emulator listening on [bold]{base}[/bold]")
        body = '{"model":"google/nano-banana-2/text-to-image","prompt":"a red fox"}'
        console.print(
            f"Try: curl -H 'Authorization: Bearer test' "
            f"-H 'Content-Type: application/json' -d '{body}' "
            f"{base}/model/generateImage",
            markup=False,
        )
        console.print("Press Ctrl-C to stop.")
        sys.stdout.flush()

    try:
        run_emulator(host, port, config, on_ready=ready)
    except OSError as exc:
        sys.stderr.write(f"atlas-async: error: {exc}\n")
        raise typer.Exit(1) from None
    console.print("Emulator stopped.")


def main(argv: list[str] | None = None) -> int:
    """
    Run the ``atlas-async`` command; return (and, as a script, exit with) its code.

    Usage errors give one line on stderr and code 2; Ctrl-C gives 130.
    """
    if not CLI_AVAILABLE:  # pragma: no cover - tested in a subprocess
        sys.stderr.write(INSTALL_HINT + "\n")
        return _exit(1, argv)
    # typer may vendor its own click: take the classes from typer itself.
    mro = typer.BadParameter.__mro__
    usage_error: type[Exception] = next(c for c in mro if c.__name__ == "UsageError")
    click_exception: type[Exception] = next(
        c for c in mro if c.__name__ == "ClickException"
    )
    no_args: type[Exception] | tuple[()] = getattr(
        sys.modules[usage_error.__module__], "NoArgsIsHelpError", ()
    )
    try:
        result = app(args=argv, prog_name="atlas-async", standalone_mode=False)
    except no_args as exc:  # bare `atlas-async`: typer has printed the help
        if _message(exc):
            sys.stderr.write(_message(exc) + "\n")
        return _exit(2, argv)
    except usage_error as exc:
        sys.stderr.write(f"atlas-async: error: {_message(exc)}\n")
        return _exit(2, argv)
    except typer.Abort:
        return _exit(130, argv)
    except click_exception as exc:
        sys.stderr.write(f"atlas-async: error: {_message(exc)}\n")
        return _exit(int(getattr(exc, "exit_code", 1)), argv)
    return _exit(result if isinstance(result, int) else 0, argv)


def _message(exc: Exception) -> str:
    format_message = getattr(exc, "format_message", None)
    return str(format_message()) if callable(format_message) else str(exc)


def _exit(code: int, argv: list[str] | None) -> int:
    # As a console script (argv None) the code must reach the shell; called
    # from Python (tests), it is returned instead.
    if argv is None:  # pragma: no cover - tested in a subprocess
        sys.exit(code)
    return code
