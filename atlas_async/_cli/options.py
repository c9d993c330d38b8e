"""
The options the ``atlas-async`` commands share, declared once.

They are ``Annotated`` aliases that `cli` imports, so each command's signature
stays one line per option. Without typer installed, `option` and `argument`
return None and the aliases still import (the CLI then only prints the install
hint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

if TYPE_CHECKING:
    import typer
else:
    try:
        import typer
    except ImportError:  # pragma: no cover - tested in a subprocess
        typer = None

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
    "argument",
    "option",
]


def option(*args: Any, **kwargs: Any) -> Any:
    """``typer.Option``, or None without typer."""
    return typer.Option(*args, **kwargs) if typer is not None else None


def argument(*args: Any, **kwargs: Any) -> Any:
    """``typer.Argument``, or None without typer."""
    return typer.Argument(*args, **kwargs) if typer is not None else None


# Options shared by the commands that talk to Atlas (or the emulator).
ApiKey = Annotated[
    str | None,
    option(
        "--api-key",
        envvar="ATLASCLOUD_API_KEY",
        show_default=False,
        help="Atlas Cloud API key [default: $ATLASCLOUD_API_KEY].",
    ),
]
BaseUrl = Annotated[
    str | None,
    option(
        "--base-url",
        envvar="ATLASCLOUD_BASE_URL",
        help="API base URL [default: $ATLASCLOUD_BASE_URL, else Atlas Cloud].",
    ),
]
UseEmulator = Annotated[
    bool,
    option(
        "--emulator",
        help="Run against the built-in emulator on loopback: no key, no cost.",
    ),
]
TimeScale = Annotated[
    float, option(help="With --emulator: run this many times faster than Atlas.")
]
Seed = Annotated[int, option(help="With --emulator: seed for ids and outcomes.")]
Fault = Annotated[
    list[str] | None,
    option(
        "--fault",
        metavar="NAME=VALUE",
        help="With --emulator: inject a fault, e.g. error_rate=0.2 (repeatable).",
    ),
]
AsJson = Annotated[
    bool, option("--json", help="Print one JSON object per line, for scripts.")
]
KindOpt = Annotated[str, option(help="image, video or audio.")]
ModelOpt = Annotated[
    str | None, option(help="Model id [default: a stock model for the kind].")
]
TimeoutOpt = Annotated[
    float | None,
    option(min=0.001, help="Seconds to wait per prediction [default: per kind]."),
]
