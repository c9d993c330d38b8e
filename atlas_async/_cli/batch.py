"""
``atlas-async batch``: a file of requests in, files and one line per result out.

Theory of operation
-------------------
Every check that can fail without spending anything runs first, in this order,
each a usage error (exit 2): the key (unless ``--emulator``), the file (read and
parsed; a malformed line is *not* fatal, it becomes a failed item with its line
number), the output folder (created, must be writable), the journal (opened,
locked, and ``begin``-checked: another batch's journal is refused). Only then
does the client start and `generate_many` run, with the journal already open.

The journal lives beside the outputs by default (``OUT/.atlas-journal.sqlite``;
``.atlas-journal.emulator.sqlite`` for ``--emulator`` runs, so an emulator run
is never replayed as a real one). An ``--emulator`` run keeps the emulator's
state beside its journal (the journal's name plus ``-emulator``), so the
emulator of a rerun has the predictions and files of the one before. Running
the same command again resumes: what completed is reported from the journal,
what was submitted is attached (with ``--emulator`` and no emulator state kept,
sent again: the emulator that had it stopped with its run). While
we hold the journal's lock no other run writes to the folder through it, so
the hidden ``.part-`` temporaries a killed run may have left are deleted.

Output: one line per item on stdout (human, or ``--json``: one object per line,
then a ``{"summary": ...}`` line); the progress bar goes to stderr, and only
when stderr is a terminal, so piped output is never garbled.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio.to_thread
import attrs
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from .._batch.input import ParsedRequests, RequestProblem, load_requests
from .._batch.journal import ItemState, Journal
from .._batch.types import BatchProgress, BatchResult
from .._client import AtlasClient
from .._core.clock import Clock
from .._core.config import API_KEY_ENV
from .._core.errors import JournalError
from .._core.statistics import ModelFigures
from .._ops.download import prepare_directory
from .cost import SpendTally, money_text
from .run import (
    EXIT_FAILED,
    EXIT_OK,
    Connection,
    json_line,
    shown_path,
    with_client,
)

__all__ = ["BatchOptions", "run_batch"]

JOURNAL_NAME = ".atlas-journal.sqlite"
EMULATOR_JOURNAL_NAME = ".atlas-journal.emulator.sqlite"
EMULATOR_STATE_SUFFIX = "-emulator"  # the emulator's state, beside the journal
_UNKNOWN = ItemState.UNKNOWN
_GONE = "the emulator of the previous run stopped before this item finished"
_TEMPORARY = re.compile(r"\..+\.part-[0-9a-f]+")  # _download's hidden temporaries
# Errors after which the item is still resumable (submitted, pending, or
# completed without its files): running the same command again picks it up.
_RESUMABLE = {
    "PredictionTimeoutError",
    "BatchTimeoutError",
    "InsufficientBalanceError",
    "AuthenticationError",
    "TransportError",
    "RateLimitError",
    "ServerError",
    "ClientClosedError",
    "DownloadError",
}


@attrs.frozen(kw_only=True)
class BatchOptions:
    """The ``batch`` command's options, as parsed."""

    file: Path
    out: Path
    journal: Path | None = None
    model: str | None = None
    kind: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    resubmit_unknown: bool = False
    history_lag: float | None = None
    as_json: bool = False
    budget: Decimal | None = None
    check_balance: bool = True


def _remove_temporaries(directory: Path) -> int:
    removed = 0
    for path in directory.iterdir():
        if _TEMPORARY.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def waiting_for_slots(models: Mapping[str, ModelFigures]) -> str:
    """
    ``"  waiting for a slot on m (5/5)"`` for each model whose submits wait for
    its window, or ``""``.
    """
    waiting = [
        f"  waiting for a slot on {model} ({figures.in_flight}/{figures.window})"
        for model, figures in sorted(models.items())
        if figures.queued and figures.window is not None
    ]
    return "".join(waiting)


class _Reporter:
    """Prints results (stdout) and progress (stderr) for one batch run."""

    def __init__(
        self, parsed: ParsedRequests, options: BatchOptions, clock: Clock
    ) -> None:
        self.parsed = parsed
        self.clock = clock
        self.as_json = options.as_json
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.started = clock.now()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
            disable=not self.err.is_terminal,
            # Route our stdout lines above the bar only when they share the
            # terminal; piped stdout must stay untouched.
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=self.err.is_terminal,
        )
        self.task = self.progress.add_task("batch", total=parsed.total, detail="")
        self.spend = SpendTally(options.budget)
        self.client: AtlasClient | None = None

    def note(self, message: str) -> None:
        """A status line for humans, on stderr."""
        self.err.print(f"atlas-async: {message}", markup=False)

    def update(self, progress: BatchProgress) -> None:
        """The ``on_progress`` callback: move the bar."""
        problems = len(self.parsed.problems)
        failed = progress.failed + problems
        detail = f"ok {progress.ok}  failed {failed}  running {progress.in_flight}"
        detail += self.spend.detail(progress)
        if self.client is not None:
            detail += waiting_for_slots(self.client.statistics().models)
        self.progress.update(
            self.task, completed=progress.done + problems, detail=detail
        )

    def problem(self, problem: RequestProblem) -> None:
        """Report a line that could not become a request."""
        self.counts["failed"] += 1
        self.errors["ConfigurationError"] += 1
        if self.as_json:
            json_line(
                {
                    "index": None,
                    "line": problem.line,
                    "ok": False,
                    "error": {"type": "ConfigurationError", "message": problem.message},
                }
            )
            return
        self.out.print(f"[red]failed[/] line {problem.line}: {escape(problem.message)}")

    def result(self, result: BatchResult) -> None:
        """Report one item's outcome."""
        line = self.parsed.lines[result.index]
        self.spend.add(result)
        if not result.not_submitted:  # counted by the tally: not a failure
            self.counts["ok" if result.ok else "failed"] += 1
        self.counts["resumed"] += result.resumed
        self.counts["files"] += len(result.files)
        error = result.error
        if error is not None and not result.not_submitted:
            self.errors[type(error).__name__] += 1
        if self.as_json:
            json_line(_result_json(result, line))
            return
        prompt = str(result.request.params.get("prompt", result.request.model))
        shown = escape(prompt if len(prompt) <= 40 else prompt[:39] + "…")
        journal = " [dim](from the journal)[/]" if result.resumed else ""
        if error is None:
            files = " ".join(shown_path(f) for f in result.files) or "(no outputs)"
            self.out.print(
                f"[green]ok[/] line {line} {shown}: {escape(files)}{journal}"
            )
        elif result.not_submitted:
            self.out.print(f"[yellow]not submitted[/] line {line} {shown}: budget")
        else:
            why = escape(f"{type(error).__name__}: {error}")
            self.out.print(f"[red]failed[/] line {line} {shown}: {why}{journal}")

    def summary(self, out: Path, journal: Path | None) -> int:
        """Print the summary; return the exit code."""
        counts, total = self.counts, self.parsed.total
        elapsed = self.clock.now() - self.started
        unknown = self.errors["SubmissionUnknownError"]
        resumable = sum(n for name, n in self.errors.items() if name in _RESUMABLE)
        if self.as_json:
            json_line(
                {
                    "summary": {
                        "total": total,
                        "ok": counts["ok"],
                        "failed": counts["failed"],
                        "resumed": counts["resumed"],
                        "unknown": unknown,
                        "files": counts["files"],
                        "errors": dict(self.errors),
                        "elapsed_seconds": round(elapsed, 3),
                        "out": str(out),
                        "journal": None if journal is None else str(journal),
                        **self.spend.json(),
                    }
                }
            )
        else:
            self.out.print(
                f"{counts['ok']} of {total} ok, {counts['failed']} failed"
                f" ({counts['resumed']} from the journal) in {elapsed:.1f} s;"
                f" {counts['files']} files in {escape(shown_path(out))};"
                f" {self.spend.line()}",
                highlight=False,
            )
            if unknown:
                self.note(
                    f"{unknown} submits got no answer and may exist (and bill): "
                    "check the Atlas console, or run again with --resubmit-unknown"
                )
            if resumable:
                self.note(f"{resumable} can be resumed: run the same command again")
        return self.spend.exit_code(EXIT_OK if counts["failed"] == 0 else EXIT_FAILED)


def _result_json(result: BatchResult, line: int) -> dict[str, Any]:
    request, prediction, error = result.request, result.prediction, result.error
    return {
        "index": result.index,
        "line": line,
        "ok": result.ok,
        "kind": request.kind.value,
        "model": request.model,
        "prompt": request.params.get("prompt"),
        "prediction_id": prediction.id
        if prediction is not None
        else None
        if error is None
        else error.prediction_id,
        "status": None if prediction is None else prediction.status.value,
        "outputs": [] if prediction is None else list(prediction.outputs),
        "files": [str(f) for f in result.files],
        "resumed": result.resumed,
        "not_submitted": result.not_submitted,
        "cost": money_text(result.cost),
        "error": None
        if error is None
        else {"type": type(error).__name__, "message": str(error)},
    }


async def _begin(
    journal: Journal,
    parsed: ParsedRequests,
    reporter: _Reporter,
    *,
    emulator: bool,
    kept: bool = False,
) -> None:
    try:
        entries = await journal.begin(parsed.requests)
    except JournalError as exc:
        raise JournalError(
            f"{exc} (--journal PATH picks another file; delete {journal.path} "
            "to start over)"
        ) from None
    states = Counter(entry.state for entry in entries)
    # With the emulator's state kept, its predictions outlive it: attach them.
    resent = (_UNKNOWN,) if kept else (ItemState.SUBMITTED, _UNKNOWN)
    orphans = [e for e in entries if e.state in resent]
    if emulator and orphans:
        # The emulator that had these died with the previous run, and nothing
        # it made was billed: send them again to this run's emulator.
        for entry in orphans:
            if entry.state is ItemState.SUBMITTED:
                await journal.mark_failed(entry.index, "EmulatorStopped", _GONE)
            await journal.reset_to_pending(entry.index)
        reporter.note(
            f"{len(orphans)} items were in progress on the previous run's emulator,"
            " which stopped with it: sending them again"
        )
    if states[ItemState.PENDING] != len(entries):
        reporter.note(
            f"resuming {journal.path}: {states[ItemState.COMPLETED]} completed, "
            f"{states[ItemState.FAILED]} failed, "
            f"{states[ItemState.SUBMITTED]} submitted, "
            f"{states[ItemState.UNKNOWN]} unknown, "
            f"{states[ItemState.PENDING]} to send"
        )


async def run_batch(conn: Connection, options: BatchOptions) -> int:
    """Run the ``batch`` command; return its exit code (see the module)."""
    conn.require_key()
    parsed = load_requests(options.file, kind=options.kind, model=options.model)
    out = await anyio.to_thread.run_sync(prepare_directory, options.out)
    name = JOURNAL_NAME if conn.emulator is None else EMULATOR_JOURNAL_NAME
    journal_path = options.journal or out / name
    kept = False
    if conn.emulator is not None:
        state = journal_path.with_name(journal_path.name + EMULATOR_STATE_SUFFIX)
        kept = state.exists()
        conn = attrs.evolve(conn, emulator=attrs.evolve(conn.emulator, state=state))
    reporter = _Reporter(parsed, options, conn.clock)
    # The key a client would use (option, else environment): kept out of the file.
    secret = conn.api_key or os.environ.get(API_KEY_ENV, "").strip() or None
    journal = Journal(journal_path, clock=conn.clock, secret=secret)
    async with journal:
        if parsed.requests:
            await _begin(
                journal,
                parsed,
                reporter,
                emulator=conn.emulator is not None,
                kept=kept,
            )
        removed = await anyio.to_thread.run_sync(_remove_temporaries, out)
        if removed:
            reporter.note(f"removed {removed} partial downloads of an earlier run")
        with reporter.progress:
            for problem in parsed.problems:
                reporter.problem(problem)
            if parsed.requests:

                async def call(client: AtlasClient) -> None:
                    reporter.client = client
                    async for result in client.generate_many(
                        parsed.requests,
                        journal=journal,
                        max_in_flight=options.concurrency,
                        on_progress=reporter.update,
                        download_to=out,
                        timeout=options.timeout,
                        resubmit_unknown=options.resubmit_unknown,
                        budget=options.budget,
                        check_balance=options.check_balance,
                    ):
                        reporter.result(result)

                # As many requests at once as predictions in progress (up to
                # 64): a batch's submits and polls are what it waits on.
                requests = min(options.concurrency or 64, 64)
                extra: dict[str, Any] = {"max_concurrent_requests": requests}
                if options.history_lag is not None:
                    extra["history_lag"] = options.history_lag
                await with_client(conn, call, **extra)
    return reporter.summary(out, journal_path)
