"""
``atlas-async batch FILE --status``: what running the batch again would do,
item by item, without sending anything or starting a client.

It reads the prompts file and the journal (never creating either the journal
or the output folder) and places each request on its journal item the way a
run would (`Journal.preview`), then names the step a resume takes with it:
done, files missing (fetched again and downloaded), submitted (followed),
unknown (looked up in the account's history), failed (reported; sent again
with ``--retry-failed``), pending (sent). The journal is locked while it is
read, so a status taken while a run holds it is refused like a second run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio.to_thread
from rich.markup import escape

from .._batch.input import load_requests
from .._batch.journal import Journal, JournalEntry
from .._batch.placement import Step, step_of
from .batch import (
    EMULATOR_STATE_SUFFIX,
    BatchOptions,
    again_command,
    journal_name,
)
from .consoles import PipeConsole
from .run import EXIT_OK, Connection, json_line, shown_path

__all__ = ["show_status"]

_ORDER = (Step.DONE, Step.FETCH, Step.ATTACH, Step.SETTLE, Step.FAILED, Step.SEND)


async def _placed(
    path: Path, requests: Any
) -> tuple[list[JournalEntry | None], int] | None:
    """Each request's item and the number of items none claims; None when
    there is no journal yet (it is not created)."""
    if not await anyio.to_thread.run_sync(path.exists):
        return None
    async with Journal(path) as journal:
        placement = await journal.preview(requests)
    return list(placement.items), len(placement.leftover)


async def show_status(conn: Connection, options: BatchOptions) -> int:
    """Print what a resume of this batch would do; return the exit code."""
    parsed = load_requests(options.file, kind=options.kind, model=options.model)
    path = options.journal or options.out / journal_name(conn)
    placed = await _placed(path, parsed.requests)
    items, leftover = placed or ([None] * len(parsed.requests), 0)
    # With --emulator and no emulator state kept, what was on the server died
    # with the previous run's emulator: a run sends it again.
    state = path.with_name(path.name + EMULATOR_STATE_SUFFIX)
    lost = options.emulator and not await anyio.to_thread.run_sync(state.exists)

    def files_present(entry: JournalEntry | None) -> bool:
        return entry is None or all(f.is_file() for f in entry.files)

    present = await anyio.to_thread.run_sync(
        lambda: [files_present(entry) for entry in items]
    )
    steps: list[Step] = []
    for entry, here in zip(items, present, strict=True):
        step = step_of(entry, downloads=True, files_present=here)
        if lost and step in (Step.ATTACH, Step.SETTLE):
            step = Step.SEND
        if options.retry_failed and step is Step.FAILED:
            step = Step.SEND
        steps.append(step)
    counts = Counter(steps)
    if options.as_json:
        for index, (entry, step) in enumerate(zip(items, steps, strict=True)):
            json_line(_item_json(index, parsed.lines[index], entry, step))
        json_line(
            {
                "status": {
                    "journal": str(path),
                    "total": parsed.total,
                    **{step.value: counts[step] for step in _ORDER},
                    "bad_lines": len(parsed.problems),
                    "not_in_file": leftover,
                }
            }
        )
        return EXIT_OK
    out = PipeConsole()
    for index, (entry, step) in enumerate(zip(items, steps, strict=True)):
        if step is not Step.DONE:
            out.print(_item_line(parsed.lines[index], entry, step, parsed, index))
    for problem in parsed.problems:
        out.print(f"{'bad line':<13} line {problem.line}: {escape(problem.message)}")
    told = ", ".join(f"{counts[step]} {step.value}" for step in _ORDER)
    bad = len(parsed.problems)
    extra = f"; {bad} bad line{'s' * (bad != 1)}" if bad else ""
    if leftover:
        extra += f"; {leftover} journal items not in this file (kept)"
    out.print(f"{parsed.total} items: {told}{extra}")
    shown = escape(shown_path(path))
    out.print(f"journal: {shown}" if placed else f"journal: {shown} (none yet)")
    _next(out, options, counts, started=placed is not None)
    return EXIT_OK


def _next(
    out: PipeConsole, options: BatchOptions, counts: Counter[Step], *, started: bool
) -> None:
    work = counts[Step.FETCH] + counts[Step.ATTACH] + counts[Step.SEND]
    if work or counts[Step.SETTLE]:
        verb = "to resume" if started else "to run"
        out.print(f"{verb}: {escape(again_command(options))}")
    if counts[Step.FAILED]:
        retry = again_command(options, "--retry-failed")
        out.print(f"to send the failed items again: {escape(retry)}")


def _item_line(
    line: int, entry: JournalEntry | None, step: Step, parsed: Any, index: int
) -> str:
    prompt = str(parsed.requests[index].params.get("prompt", ""))
    shown = escape(prompt if len(prompt) <= 40 else prompt[:39] + "…")
    detail = ""
    if entry is not None and entry.prediction_id:
        detail = f" (prediction {escape(entry.prediction_id)})"
    if step is Step.FAILED and entry is not None:
        detail += f": {escape(f'{entry.error_type}: {entry.error_message}')}"
    return f"{step.value:<13} line {line} {shown}{detail}"


def _item_json(
    index: int, line: int, entry: JournalEntry | None, step: Step
) -> dict[str, Any]:
    return {
        "index": index,
        "line": line,
        "step": step.value,
        "state": None if entry is None else entry.state.value,
        "prediction_id": None if entry is None else entry.prediction_id,
        "error": None
        if entry is None or entry.error_type is None
        else {"type": entry.error_type, "message": entry.error_message},
    }
