"""
The ``atlas-async`` typer app: each command declares its options and hands over.

Imported only by `atlas_async.cli.main` (and ``cli.app``) once typer and rich
are known to be installed. The work is in `batch` (the batch command), `calls`
(the one-request commands) and `run` (client or emulator, event loop, errors
and exit codes); `run_app` is what ``main`` calls.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import attrs
import typer

from .._core.extras import MissingExtraError, require
from . import EXIT_INTERRUPTED, EXIT_USAGE
from .options import (
    ApiKey,
    AsJson,
    BaseUrl,
    Fault,
    KindOpt,
    ModelOpt,
    OutOpt,
    PredictionId,
    Seed,
    TimeoutOpt,
    TimeScale,
    UseEmulator,
)

# The client, the event loop and rich are imported by the command that runs,
# never at import: `atlas-async --help` starts in a fraction of the time.
if TYPE_CHECKING:
    from .._core.clock import Clock
    from ..emulator import RunningEmulator
    from .run import Connection

__all__ = ["app", "run_app"]

app = typer.Typer(
    name="atlas-async",
    help="Atlas Cloud generation from the command line, and a local emulator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's own help: it keeps "[default: ...]" (rich markup would eat the
    # brackets) and spares the start-up rich's help renderer costs.
    rich_markup_mode=None,
)
"""The ``atlas-async`` command as a `typer.Typer` app."""


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"atlas-async {version('atlas-async')}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    coordinator: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Share the account's limits with its other processes through"
            " this Redis (redis://host:6379/0; ATLAS_ASYNC_COORDINATOR).",
        ),
    ] = None,
) -> None:
    """Atlas Cloud generation from the command line, and a local emulator."""
    if coordinator:
        # Every command's client reads it there, like the key and base URL.
        os.environ["ATLAS_ASYNC_COORDINATOR"] = coordinator


@app.command()
def emulator(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            metavar="PORT",
            help="Port to listen on (0: any free port).",
        ),
    ] = 8787,
    time_scale: Annotated[
        float,
        typer.Option(
            metavar="FACTOR", help="Run this many times faster than Atlas (e.g. 100)."
        ),
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(metavar="N", help="Seed for ids, latencies and faults.")
    ] = 0,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key", metavar="KEY", help="Accept only this key (repeatable)."
        ),
    ] = None,
    no_balance_key: Annotated[
        list[str] | None,
        typer.Option(
            "--no-balance-key",
            metavar="KEY",
            help="Answer 402 to this key's submits (repeatable).",
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME=VALUE",
            help="Inject a fault, e.g. error_rate=0.1, rps=50, drop_rate=0.05.",
        ),
    ] = None,
    latency: Annotated[
        list[str] | None,
        typer.Option(
            "--latency",
            metavar="NAME=MIN,MAX",
            help="Latency in Atlas seconds per class (image, video, ...) or model.",
        ),
    ] = None,
    balance: Annotated[
        float | None,
        typer.Option(
            metavar="USD",
            show_default="1000000",
            help="What every key's account starts with.",
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Keep predictions, uploads and balances in FILE (SQLite), so a"
            " restarted emulator finds them.",
        ),
    ] = None,
    webhook_signature: Annotated[
        str,
        typer.Option(
            metavar="WHERE",
            help="Where webhooks carry the Ed25519 signature: ed25519 (the"
            " -Ed25519 header), bare (X-AtlasCloud-Webhook-Signature) or both.",
        ),
    ] = "ed25519",
) -> None:
    """Serve a local Atlas Cloud until Ctrl-C."""
    require("uvicorn", "emulator", feature="atlas-async emulator")
    if webhook_signature not in ("ed25519", "both", "bare"):
        raise typer.BadParameter(
            f"must be ed25519, both or bare, not {webhook_signature!r}",
            param_hint="'--webhook-signature'",
        )
    from rich.console import Console

    from ..emulator import config_from_options, run_emulator

    try:
        config = config_from_options(
            seed=seed,
            time_scale=time_scale,
            api_keys=api_key or (),
            no_balance_keys=no_balance_key or (),
            faults=fault or (),
            latency=latency or (),
            balance=balance,
            state=state,
            webhook_signature=webhook_signature,
        )
    except ValueError as exc:
        from .hints import option_names

        raise typer.BadParameter(option_names(str(exc))) from None
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
    from .run import connection

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
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="What to generate.")],
    model: ModelOpt = None,
    kind: KindOpt = "image",
    out: OutOpt = "out",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", metavar="NAME=VALUE", help="A model parameter (repeatable)."
        ),
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
    from .calls import run_generate

    return _run(
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
        str,
        typer.Argument(
            metavar="FILE", help="JSON Lines of requests, or one prompt per line."
        ),
    ],
    model: ModelOpt = None,
    kind: KindOpt = "image",
    out: OutOpt = "out",
    journal: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            show_default="DIR/.atlas-journal.sqlite",
            help="Journal file that makes the run resumable.",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, metavar="N", help="Predictions in progress at once.")
    ] = 64,
    timeout: TimeoutOpt = None,
    resubmit_unknown: Annotated[
        bool,
        typer.Option(
            "--resubmit-unknown",
            help="Send again submits an earlier run got no answer to (may bill twice).",
        ),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Send again the items that failed in earlier runs (only those).",
        ),
    ] = False,
    status: Annotated[
        bool,
        typer.Option(
            "--status",
            help="Show what running the batch again would do, item by item,"
            " and send nothing.",
        ),
    ] = False,
    history_lag: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            metavar="SECONDS",
            show_default="60; 1 with --emulator",
            help="Seconds the account's history may lag behind a prediction's"
            " creation, when submits that got no answer are looked up there.",
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            metavar="AMOUNT",
            help="Spend at most AMOUNT (USD at the catalog's prices): items past"
            " it are not submitted (exit 3); a rerun with a larger budget sends"
            " them.",
        ),
    ] = None,
    no_balance_check: Annotated[
        bool,
        typer.Option(
            "--no-balance-check",
            help="Submit even when the batch's quote exceeds the balance.",
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
    from .batch import BatchOptions, run_batch
    from .cost import parse_budget

    options = BatchOptions(
        file=Path(file),
        out=Path(out),
        journal=None if journal is None else Path(journal),
        model=model,
        kind=kind,
        concurrency=concurrency,
        timeout=timeout,
        resubmit_unknown=resubmit_unknown,
        retry_failed=retry_failed,
        history_lag=history_lag,
        as_json=as_json,
        check_balance=not no_balance_check,
        emulator=emulator,
        base_url=base_url,
    )
    if status:
        from .status import show_status

        return _run(
            lambda: show_status(
                _connect(api_key, base_url, emulator, time_scale, seed, fault),
                options,
            )
        )
    return _run(
        lambda: run_batch(
            _connect(api_key, base_url, emulator, time_scale, seed, fault),
            attrs.evolve(options, budget=parse_budget(budget)),
        ),
        interrupted="the journal keeps the batch's progress: run the same command"
        " again to resume",
    )


@app.command()
def get(
    prediction_id: PredictionId,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Print a prediction's current state (one request, no waiting)."""
    from .calls import run_get

    return _run(
        lambda: run_get(
            _connect(api_key, base_url, emulator, 20.0, 0, None),
            prediction_id,
            as_json=as_json,
        )
    )


@app.command()
def wait(
    prediction_id: PredictionId,
    kind: KindOpt = "image",
    timeout: TimeoutOpt = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Wait for a prediction to finish and print it (exit 1 if it failed)."""
    from .calls import run_wait

    return _run(
        lambda: run_wait(
            _connect(api_key, base_url, emulator, 20.0, 0, None),
            prediction_id,
            kind=kind,
            timeout=timeout,
            as_json=as_json,
        )
    )


@app.command()
def upload(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The file to upload (max 50 MB).")
    ],
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Upload a local file; print the URL to pass as a model input."""
    from .calls import run_upload

    return _run(
        lambda: run_upload(
            _connect(api_key, base_url, emulator, 20.0, 0, None),
            Path(file),
            as_json=as_json,
        )
    )


@app.command()
def models(
    kind: Annotated[
        str | None,
        typer.Option(
            metavar="KIND", show_default="all", help="Only image, video or audio."
        ),
    ] = None,
    as_json: AsJson = False,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """List the models in the catalog (no API key needed)."""
    from .calls import run_models

    return _run(
        lambda: run_models(
            _connect(None, base_url, emulator, 20.0, 0, None),
            kind=kind,
            as_json=as_json,
        )
    )


@app.command()
def quote(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="JSON Lines of requests, or one prompt per line."
        ),
    ],
    model: ModelOpt = None,
    kind: KindOpt = "image",
    as_json: AsJson = False,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Print what FILE would cost at the catalog's prices (sends nothing)."""
    from .cost import run_quote

    return _run(
        lambda: run_quote(
            _connect(None, base_url, emulator, 20.0, 0, None),
            Path(file),
            kind=kind,
            model=model,
            as_json=as_json,
        )
    )


@app.command()
def balance(
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
    emulator: UseEmulator = False,
) -> int:
    """Print the account's balance."""
    from .cost import run_balance

    return _run(
        lambda: run_balance(
            _connect(api_key, base_url, emulator, 20.0, 0, None), as_json=as_json
        )
    )


def _run(main: Callable[[], Awaitable[int]], *, interrupted: str = "") -> int:
    from .run import run

    return run(main, interrupted=interrupted)


def run_app(
    argv: list[str] | None,
    *,
    app: Callable[..., Any] = app,
    clock: Clock | None = None,
) -> int:
    """
    Run ``app`` (default: `app`) on ``argv`` (None: ``sys.argv``); return the
    exit code.

    Usage errors give one line on stderr and code 2; Ctrl-C gives 130. The
    commands read the time from ``clock`` (default: the real one).
    """
    # typer vendors its own click: take the classes from typer itself.
    mro = typer.BadParameter.__mro__
    usage_error: type[Exception] = next(c for c in mro if c.__name__ == "UsageError")
    click_exception: type[Exception] = next(
        c for c in mro if c.__name__ == "ClickException"
    )
    no_args: type[Exception] | tuple[()] = getattr(
        sys.modules[usage_error.__module__], "NoArgsIsHelpError", ()
    )
    try:
        if clock is None:
            result = app(args=argv, prog_name="atlas-async", standalone_mode=False)
        else:
            from .run import use_clock

            with use_clock(clock):
                result = app(args=argv, prog_name="atlas-async", standalone_mode=False)
    except no_args as exc:  # bare `atlas-async`: typer has printed the help
        if _message(exc):
            sys.stderr.write(_message(exc) + "\n")
        return EXIT_USAGE
    except (usage_error, MissingExtraError) as exc:
        sys.stderr.write(f"atlas-async: error: {_message(exc)}\n")
        return EXIT_USAGE
    except typer.Abort:
        return EXIT_INTERRUPTED
    except click_exception as exc:
        sys.stderr.write(f"atlas-async: error: {_message(exc)}\n")
        return int(getattr(exc, "exit_code", 1))
    return result if isinstance(result, int) else 0


def _message(exc: Exception) -> str:
    format_message = getattr(exc, "format_message", None)
    return str(format_message()) if callable(format_message) else str(exc)
