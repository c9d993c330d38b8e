"""
rich consoles that let a closed pipe end the command the documented way.

rich's `Console` answers a `BrokenPipeError` (``atlas-async batch ... | head``)
by raising ``SystemExit(1)``, which skips our error handling and exits 1. The
console here raises the `BrokenPipeError` instead, so `run` turns it into the
SIGPIPE convention, exit 141 (docs/cli.md), like every other write to stdout.
"""

from __future__ import annotations

import errno
from typing import Any

from rich.console import Console

__all__ = ["PipeConsole"]


class PipeConsole(Console):
    """A `Console` whose closed pipe is a `BrokenPipeError` (exit 141)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("highlight", False)
        options.setdefault("soft_wrap", True)
        super().__init__(**options)

    def on_broken_pipe(self) -> None:
        """Stop printing, and let the command end as for any closed stdout."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")
