"""
The ``atlas-async`` command (extra ``cli``: typer and rich).

One `typer.Typer` app, ``app``; each command is a plain function registered
with ``@app.command()``: ``generate``, ``batch``, ``get``, ``wait``, ``upload``,
``models`` and ``emulator``. `main` is the console-script entry point; ``python
-m atlas_async.cli`` runs it too. The functions here only declare options and
hand over: the work is in ``_cli_batch`` (batch), ``_cli_calls`` (the others)
and ``_cli_run`` (client or emulator, event loop, errors and exit codes).

Exit codes: 0 everything succeeded; 1 some item (or the request) failed; 2 a
usage error (bad option, unreadable or empty file, unwritable output folder,
another batch's journal, no API key); 130 interrupted.

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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from ._cli.options import (
    ApiKey,
    AsJson,
    BaseUrl,
    Fault,
    KindOpt,
    ModelOpt,
    Seed,
    TimeoutOpt,
    TimeScale,
    UseEmulator,
    argument as _argument,
    option as _option,
)
from ._cli.run import Connection, connection, run

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


def _connect(
    api_key: str | None,
    base_url: str | None,
    emulator: bool,
    time_scale: float,
    seed: int,
    fault: list[str] | None,
) -> Connection:
    return connection(
        api_key=api_key,
        base_url=base_url,
        emulator=emulator,
        time_scale=time_scale,
        seed=seed,
        faults=fault or (),
    )


@app.command()
def generate(
    prompt: Annotated[str, _argument(help="What to generate.")],
    model: ModelOpt = None,
    kind: KindOpt = "image",
    out: Annotated[str, _option(help="Folder for the outputs.")] = "out",
    param: Annotated[
        list[str] | None,
        _option(metavar="NAME=VALUE", help="A model parameter (repeatable)."),
    ] = None,
    timeout: TimeoutOpt = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
    time_scale: TimeScale = 20.0,
    seed: Seed = 0,
    fault: Fault = None,
) -> int:
    """Generate one prompt, wait for it, save the outputs, print their paths."""
    from ._cli.calls import run_generate

    return run(
        lambda: run_generate(
            _connect(api_key, base_url, emulator, time_scale, seed, fault),
            prompt,
            kind=kind,
            model=model,
            out=Path(out),
            timeout=timeout,
            params=param or (),
            as_json=as_json,
        )
    )


@app.command()
def batch(
    file: Annotated[
        str, _argument(help="JSON Lines of requests, or one prompt per line.")
    ],
    model: ModelOpt = None,
    kind: KindOpt = "image",
    out: Annotated[str, _option(help="Folder for the outputs.")] = "out",
    journal: Annotated[
        str | None,
        _option(
            help="Journal file that makes the run resumable"
            " [default: OUT/.atlas-journal.sqlite]."
        ),
    ] = None,
    concurrency: Annotated[
        int, _option(min=1, help="Predictions in progress at once.")
    ] = 64,
    timeout: TimeoutOpt = None,
    resubmit_unknown: Annotated[
        bool,
        _option(
            "--resubmit-unknown",
            help="Send again submits an earlier run got no answer to (may bill twice).",
        ),
    ] = False,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
    time_scale: TimeScale = 20.0,
    seed: Seed = 0,
    fault: Fault = None,
) -> int:
    """Generate every request of FILE, resumably, saving outputs to --out."""
    from ._cli.batch import BatchOptions, run_batch

    options = BatchOptions(
        file=Path(file),
        out=Path(out),
        journal=None if journal is None else Path(journal),
        model=model,
        kind=kind,
        concurrency=concurrency,
        timeout=timeout,
        resubmit_unknown=resubmit_unknown,
        as_json=as_json,
    )
    return run(
        lambda: run_batch(
            _connect(api_key, base_url, emulator, time_scale, seed, fault), options
        )
    )


@app.command()
def get(
    prediction_id: Annotated[str, _argument(metavar="ID", help="Prediction id.")],
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Print a prediction's current state (one request, no waiting)."""
    from ._cli.calls import run_get

    conn = _connect(api_key, base_url, emulator, 20.0, 0, None)
    return run(lambda: run_get(conn, prediction_id, as_json=as_json))


@app.command()
def wait(
    prediction_id: Annotated[str, _argument(metavar="ID", help="Prediction id.")],
    kind: KindOpt = "image",
    timeout: TimeoutOpt = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Wait for a prediction to finish and print it (exit 1 if it failed)."""
    from ._cli.calls import run_wait

    conn = _connect(api_key, base_url, emulator, 20.0, 0, None)
    return run(
        lambda: run_wait(
            conn, prediction_id, kind=kind, timeout=timeout, as_json=as_json
        )
    )


@app.command()
def upload(
    file: Annotated[str, _argument(help="The file to upload (max 50 MB).")],
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Upload a local file; print the URL to pass as a model input."""
    from ._cli.calls import run_upload

    conn = _connect(api_key, base_url, emulator, 20.0, 0, None)
    return run(lambda: run_upload(conn, Path(file), as_json=as_json))


@app.command()
def models(
    kind: Annotated[str | None, _option(help="Only image, video or audio.")] = None,
    as_json: AsJson = False,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """List the models in the catalog (no API key needed)."""
    from ._cli.calls import run_models

    conn = _connect(None, base_url, emulator, 20.0, 0, None)
    return run(lambda: run_models(conn, kind=kind, as_json=as_json))


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


if __name__ == "__main__":  # pragma: no cover - tested in a subprocess
    main()
