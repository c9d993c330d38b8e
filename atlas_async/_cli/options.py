"""
The options the ``atlas-async`` commands share, declared once.

They are ``Annotated`` aliases that `app` imports, so each command's signature
stays one line per option. Needs typer: only `app` imports this module.

Every option names its value (``--model MODEL``, ``--timeout SECONDS``) and an
option whose default is not a plain value says it with ``show_default="..."``,
so the help reads ``[default: ...]`` like the others.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "ApiKey",
    "AsJson",
    "BaseUrl",
    "Fault",
    "KindOpt",
    "ModelOpt",
    "OutOpt",
    "PredictionId",
    "Seed",
    "TimeScale",
    "TimeoutOpt",
    "UseEmulator",
]


# Options shared by the commands that talk to Atlas (or the emulator).
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="ATLASCLOUD_API_KEY",
        metavar="KEY",
        show_default="$ATLASCLOUD_API_KEY",
        show_envvar=False,
        help="Atlas Cloud API key.",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="ATLASCLOUD_BASE_URL",
        metavar="URL",
        show_default="$ATLASCLOUD_BASE_URL, else Atlas Cloud",
        show_envvar=False,
        help="API base URL, ending in /api/v1.",
    ),
]
UseEmulator = Annotated[
    bool,
    typer.Option(
        "--emulator",
        help="Run against the built-in emulator on loopback: no key, no cost.",
    ),
]
TimeScale = Annotated[
    float,
    typer.Option(
        "--time-scale",
        metavar="FACTOR",
        help="With --emulator: run this many times faster than Atlas.",
    ),
]
Seed = Annotated[
    int,
    typer.Option(
        "--seed", metavar="N", help="With --emulator: seed for ids and outcomes."
    ),
]
Fault = Annotated[
    list[str] | None,
    typer.Option(
        "--fault",
        metavar="NAME=VALUE",
        help="With --emulator: inject a fault, e.g. error_rate=0.2 (repeatable).",
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per line, for scripts.")
]
KindOpt = Annotated[
    str, typer.Option("--kind", metavar="KIND", help="image, video or audio.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="MODEL",
        show_default="a stock model for the kind",
        help="Model id.",
    ),
]
OutOpt = Annotated[
    str, typer.Option("--out", metavar="DIR", help="Folder for the outputs.")
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0.001,
        metavar="SECONDS",
        show_default="per kind",
        help="Seconds to wait per prediction.",
    ),
]
PredictionId = Annotated[str, typer.Argument(metavar="ID", help="Prediction id.")]
