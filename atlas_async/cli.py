"""
The ``atlas-async`` command (extra ``cli``: typer and rich).

`main` is the console-script entry point; ``python -m atlas_async.cli`` runs it
too. The typer app, ``app``, is imported on first use: its commands are
``generate``, ``batch``, ``get``, ``wait``, ``upload``, ``models`` and
``emulator``, and the work is in ``atlas_async._cli``.

Exit codes: 0 everything succeeded; 1 some item (or the request) failed; 2 a
usage error (bad option, unreadable or empty file, unwritable output folder,
a journal in use or damaged, no API key, a missing extra); 130 interrupted;
141 stdout closed by its reader.

Error handling is the entry point's job, not each command's: `main` turns every
usage error (a bad option, a value that does not parse, a bad ``--fault``) into
one line on stderr and exit code 2, and Ctrl-C into exit code 130, never a
traceback. Without typer or rich (or, for the emulator, uvicorn) that one line
says what to install: ``pip install 'atlas-async[cli]'``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ._cli import EXIT_USAGE
from ._core.extras import MissingExtraError, installed, require

if TYPE_CHECKING:
    from ._cli.app import app as app
    from ._core.clock import Clock

__all__ = ["CLI_AVAILABLE", "app", "main"]

CLI_AVAILABLE: bool = installed("typer", "rich")
"""False when typer or rich is missing (`main` then prints the install hint)."""

_FEATURE = "the atlas-async command"


def main(argv: list[str] | None = None, *, clock: Clock | None = None) -> int:
    """
    Run the ``atlas-async`` command; return (and, as a script, exit with) its code.

    Usage errors give one line on stderr and code 2; Ctrl-C gives 130.

    Args:
        argv: the arguments, without the program name (None: ``sys.argv``).
        clock: where the commands read the time (default: the real clock).
    """
    try:
        for module in ("typer", "rich"):
            require(module, "cli", feature=_FEATURE)
    except MissingExtraError as exc:
        sys.stderr.write(f"atlas-async: error: {exc}\n")
        return _exit(EXIT_USAGE, argv)
    from ._cli.app import run_app

    # Run this module's `app` as it is now (an application may have added
    # commands to it, a test may have replaced it).
    current = getattr(sys.modules[__name__], "app")  # noqa: B009
    return _exit(run_app(argv, app=current, clock=clock), argv)


def __getattr__(name: str) -> object:
    if name == "app":
        for module in ("typer", "rich"):
            require(module, "cli", feature=_FEATURE)
        from ._cli.app import app

        globals()["app"] = app  # later lookups skip this function
        return app
    raise AttributeError(f"module 'atlas_async.cli' has no attribute {name!r}")


def _exit(code: int, argv: list[str] | None) -> int:
    # As a console script (argv None) the code must reach the shell; called
    # from Python (tests), it is returned instead.
    if argv is None:  # pragma: no cover - tested in a subprocess
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover - tested in a subprocess
    main()
