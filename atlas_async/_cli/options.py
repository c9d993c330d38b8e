"""
The options the ``atlas-async`` commands share, declared once.

They are ``Annotated`` aliases that `app` imports, so each command's signature
stays one line per option. Needs typer: only `app` imports this module.
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
        show_default=False,
        help="Atlas Cloud API key [default: $ATLASCLOUD_API_KEY].",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="ATLASCLOUD_BASE_URL",
        help="API base URL [default: $ATLASCLOUD_BASE_URL, else Atlas Cloud].",
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
    float, typer.Option(help="With --emulator: run this many times faster than Atlas.")
]
Seed = Annotated[int, typer.Option(help="With --emulator: seed for ids and outcomes.")]
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
KindOpt = Annotated[str, typer.Option(help="image, video or audio.")]
ModelOpt = Annotated[
    str | None, typer.Option(help="Model id [default: a stock model for the kind].")
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(min=0.001, help="Seconds to wait per prediction [default: per kind]."),
]
