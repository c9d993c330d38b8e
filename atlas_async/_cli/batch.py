"""
``atlas-async batch``: a file of requests in, files and one line per result out.

Theory of operation
-------------------
Every check that can fail without spending anything runs first, in this order,
each a usage error (exit 2): the key (unless ``--emulator``), the file (read and
parsed; a malformed line is *not* fatal, it becomes a failed item with its line
number), the output folder (created, must be writable), the journal (opened,
locked, and ``begin``: each line finds its item by content, so added lines are
new items and moved ones keep theirs; ``--retry-failed`` then resets the
failed ones to pending). Only then does the client start and `generate_many`
run, with the journal already open.

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
when stderr is a terminal, so piped output is never garbled. The advice after
the summary is read from the journal once the run is over (`remaining_steps`:
what a rerun would still do), never from this run's error types, so advice
that was followed is not given again: a rerun converges. A stdout closed by its
reader ends the command with 141 (`PipeConsole`); the journal keeps what the
run learned, and a rerun fetches what it had not saved.
"""

from __future__ import annotations

import os
import re
import shlex
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio.to_thread
import attrs
from rich.markup import escape

from .._batch.input import ParsedRequests, RequestProblem, load_requests
from .._batch.journal import ItemState, Journal, JournalEntry
from .._batch.placement import Step, step_of
from .._batch.types import BatchProgress, BatchResult
from .._client import AtlasClient
from .._core.clock import Clock
from .._core.config import API_KEY_ENV
from .._core.errors import JournalError, OutputsGoneError
from .._ops.download import prepare_directory
from .consoles import PipeConsole
from .cost import SpendTally, money_text
from .live import BatchDisplay
from .run import (
    EXIT_FAILED,
    EXIT_OK,
    Connection,
    json_line,
    shown_path,
    with_client,
)

__all__ = [
    "BatchOptions",
    "again_command",
    "journal_name",
    "remaining_steps",
    "run_batch",
]

JOURNAL_NAME = ".atlas-journal.sqlite"
EMULATOR_JOURNAL_NAME = ".atlas-journal.emulator.sqlite"
EMULATOR_STATE_SUFFIX = "-emulator"  # the emulator's state, beside the journal
_UNKNOWN = ItemState.UNKNOWN
_GONE = "the emulator of the previous run stopped before this item finished"
_TEMPORARY = re.compile(r"\..+\.part-[0-9a-f]+")  # _download's hidden temporaries


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
    retry_failed: bool = False
    history_lag: float | None = None
    as_json: bool = False
    budget: Decimal | None = None
    check_balance: bool = True
    emulator: bool = False  # for the commands we suggest
    base_url: str | None = None  # likewise


def again_command(options: BatchOptions, *flags: str) -> str:
    """The command that runs this same batch again, with ``flags`` added: what
    we suggest, so it names the options that decide the items (never a key)."""
    words = ["atlas-async", "batch", str(options.file), "--out", str(options.out)]
    if options.journal is not None:
        words += ["--journal", str(options.journal)]
    if options.model is not None:
        words += ["--model", options.model]
    if options.kind not in (None, "image"):
        words += ["--kind", str(options.kind)]
    if options.emulator:
        words.append("--emulator")
    elif options.base_url is not None:
        words += ["--base-url", options.base_url]
    return shlex.join([*words, *flags])


async def remaining_steps(
    journal: Journal, total: int, *, downloads: bool = True
) -> list[tuple[JournalEntry, Step]]:
    """Each of the batch's first ``total`` items and what a resume would do
    with it (a saved item whose files left the disk is fetched again)."""
    entries = [e for e in await journal.items() if e.index < total]
    present = await anyio.to_thread.run_sync(
        lambda: [all(f.is_file() for f in e.files) for e in entries]
    )
    return [
        (e, step_of(e, downloads=downloads, files_present=p))
        for e, p in zip(entries, present, strict=True)
    ]


def _remove_temporaries(directory: Path) -> int:
    removed = 0
    for path in directory.iterdir():
        if _TEMPORARY.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class _Reporter:
    """Prints results (stdout) and progress (stderr) for one batch run."""

    def __init__(
        self, parsed: ParsedRequests, options: BatchOptions, clock: Clock
    ) -> None:
        self.parsed = parsed
        self.clock = clock
        self.as_json = options.as_json
        self.err = PipeConsole(stderr=True)
        self.options = options
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.failed_before: set[int] = set()  # failed when the run began
        self.gone: list[int] = []  # lines whose outputs this run found gone
        self.held: set[int] = set()  # kept back by the budget: not "resumable"
        self.started = clock.now()
        self.progress = BatchDisplay(  # the live display (see `live`)
            parsed.requests,
            clock=clock,
            slots=options.concurrency or 64,
            extra=len(parsed.problems),
        )
        self.out = self.progress.out  # stdout, above the display when shared
        self.spend = SpendTally(options.budget)
        self.client: AtlasClient | None = None

    def note(self, message: str) -> None:
        """A status line for humans, on stderr."""
        self.err.print(f"atlas-async: {message}", markup=False)

    def update(self, progress: BatchProgress) -> None:
        """The ``on_progress`` callback: move the display."""
        client = self.client
        statistics = None if client is None else client.statistics()
        self.progress.show(progress, statistics, spend=self.spend.detail(progress))

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
        self.progress.finished(result)
        self.spend.add(result)
        if result.not_submitted:
            self.held.add(result.index)
        if not result.not_submitted:  # counted by the tally: not a failure
            self.counts["ok" if result.ok else "failed"] += 1
        self.counts["resumed"] += result.resumed
        self.counts["files"] += len(result.files)
        error = result.error
        if error is not None and not result.not_submitted:
            self.errors[type(error).__name__] += 1
        fresh = result.index not in self.failed_before
        if isinstance(error, OutputsGoneError) and fresh:
            self.gone.append(line)
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

    def summary(
        self, out: Path, journal: Path | None, after: list[tuple[JournalEntry, Step]]
    ) -> int:
        """Print the summary and what to do next (from ``after``: what a resume
        would do with each item, so no advice repeats once followed); return
        the exit code."""
        counts, total = self.counts, self.parsed.total
        elapsed = self.clock.now() - self.started
        # Items the budget kept back wait for a larger budget (the spend line
        # says so), not for the same command again.
        steps = Counter(step for e, step in after if e.index not in self.held)
        resumable = steps[Step.SEND] + steps[Step.ATTACH] + steps[Step.FETCH]
        unknown, failed = steps[Step.SETTLE], steps[Step.FAILED]
        if self.as_json:
            json_line(
                {
                    "summary": {
                        "total": total,
                        "ok": counts["ok"],
                        "failed": counts["failed"],
                        "resumed": counts["resumed"],
                        "unknown": unknown,
                        "resumable": resumable,
                        "retryable": failed,
                        "outputs_gone": len(self.gone),
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
            self._advise(resumable, unknown, failed)
        return self.spend.exit_code(EXIT_OK if counts["failed"] == 0 else EXIT_FAILED)

    def _advise(self, resumable: int, unknown: int, failed: int) -> None:
        if unknown:
            self.note(
                f"{unknown} submits got no answer and may exist (and bill): "
                "check the Atlas console, or run again with --resubmit-unknown"
            )
        if resumable:
            self.note(f"{resumable} can be resumed: run the same command again")
        if self.gone:
            lines = ", ".join(map(str, sorted(self.gone)[:20]))
            others = failed - len(self.gone)
            also = f" (and the {others} other failed items)" if others > 0 else ""
            self.note(
                f"the outputs of {len(self.gone)} items are gone for good (expired"
                f" or deleted; lines {lines}): a rerun will not bring them back;"
                f" this makes them again{also}:"
                f" {again_command(self.options, '--retry-failed')}"
            )
        elif failed:
            self.note(
                f"{failed} failed: running again reports them from the journal;"
                " add --retry-failed to send them again"
            )


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
    options: BatchOptions,
    *,
    kept: bool = False,
) -> None:
    try:
        placement = await journal.preview(parsed.requests)
        entries = await journal.begin(parsed.requests)
    except JournalError as exc:
        raise JournalError(
            f"{exc} (--journal PATH picks another file; delete {journal.path} "
            "to start over)"
        ) from None
    new = sum(item is None for item in placement.items)
    # With the emulator's state kept, its predictions outlive it: attach them.
    resent = (_UNKNOWN,) if kept else (ItemState.SUBMITTED, _UNKNOWN)
    orphans = [e for e in entries if e.state in resent]
    if options.emulator and orphans:
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
    steps = Counter(step for _, step in await remaining_steps(journal, len(entries)))
    failed = [e.index for e in entries if e.state is ItemState.FAILED]
    if new != len(entries):
        retried = f" (--retry-failed: sending {len(failed)} again)" if failed else ""
        reporter.note(
            f"resuming {journal.path}: {steps[Step.DONE]} done,"
            f" {steps[Step.FETCH]} with files missing (fetched again),"
            f" {steps[Step.ATTACH]} submitted, {steps[Step.SETTLE]} unknown,"
            f" {steps[Step.FAILED]} failed"
            f"{retried if options.retry_failed else ''},"
            f" {steps[Step.SEND] - new} to send, {new} new"
        )
    if options.retry_failed:
        for index in failed:
            await journal.reset_to_pending(index)
    else:
        reporter.failed_before.update(failed)


async def run_batch(conn: Connection, options: BatchOptions) -> int:
    """Run the ``batch`` command; return its exit code (see the module)."""
    conn.require_key()
    parsed = load_requests(options.file, kind=options.kind, model=options.model)
    out = await anyio.to_thread.run_sync(prepare_directory, options.out)
    journal_path = options.journal or out / journal_name(conn)
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
            await _begin(journal, parsed, reporter, options, kept=kept)
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
        after = await remaining_steps(journal, len(parsed.requests))
    return reporter.summary(out, journal_path, after)


def journal_name(conn: Connection) -> str:
    """The journal's file name in the output folder, for this connection."""
    return JOURNAL_NAME if conn.emulator is None else EMULATOR_JOURNAL_NAME
