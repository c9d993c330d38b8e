"""
What the commands show while they wait: on stderr, and only on a terminal.

Theory of operation
-------------------
``generate`` shows `show_wait`: the prediction's id as soon as it is submitted
(always, on stderr: it is what ``atlas-async wait ID`` needs after a Ctrl-C),
then, on a terminal, a spinner with the status and the elapsed time.

``batch`` shows one `BatchDisplay`: a rich ``Progress`` on stderr with the
done/total bar, the rate, the time remaining (`remaining_seconds`) and what the
flow control is doing (429 refusals, submits waiting for a model's window).
Everything else written while it is live, the per-item lines and the log, is
printed above it through its console, so a line never lands in the middle of
the bar. That sharing happens only when stdout is the same terminal as stderr
(the bar is then drawn through stdout, which is that terminal): piped stdout
(``| head``, ``--json > file``) is never touched, and an item line reaches it
byte for byte. When stderr is not a terminal there is no bar and no escape
sequence: a plain ``atlas-async: 40/100 done ...`` line at each tenth.

The display reads the time from the command's clock, and learns how long each
model's predictions take from the results (``_core.durations``, the scheduler's
own learning, fed with what the server reported).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from .._core.clock import Clock
from .._core.durations import DurationBook, reported_duration
from .._core.errors import AtlasError
from .._core.models import Kind
from .._core.statistics import ClientStatistics, ModelFigures
from .consoles import PipeConsole

if TYPE_CHECKING:
    from .._batch.types import BatchProgress, BatchResult, GenerationRequest
    from .._ops.futures import PredictionFuture

__all__ = [
    "BatchDisplay",
    "flow_summary",
    "remaining_seconds",
    "same_terminal",
    "show_wait",
    "shown_duration",
    "waiting_for_slots",
]

# Completions of this run after which its throughput alone predicts the rest;
# before, the learned durations weigh in (the first results are the fast ones).
_TRUSTED_FINISHES = 10
_STEPS = 10  # plain progress lines per batch when stderr is not a terminal


def same_terminal() -> bool:
    """True when stdout and stderr are one terminal (an interactive shell)."""
    try:
        if not (sys.stdout.isatty() and sys.stderr.isatty()):
            return False
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino, out.st_rdev) == (
        err.st_dev,
        err.st_ino,
        err.st_rdev,
    )


def remaining_seconds(
    *,
    remaining: int,
    in_flight: int,
    slots: int,
    finished: int,
    elapsed: float,
    typical: float | None,
) -> float | None:
    """
    Seconds until a batch is done, or None while nothing tells.

    Two estimates, blended: the current throughput (``finished`` items in
    ``elapsed`` seconds of this run), and the learned ``typical`` duration of
    a prediction run ``slots`` at a time (the items in flight half done). The
    throughput takes over as finishes accumulate: the first to finish are the
    quick ones, so alone it is optimistic early on.

    Args:
        remaining: items without an outcome yet.
        in_flight: of those, items submitted and not done.
        slots: predictions in progress at once (the concurrency, or less).
        finished: items that ended in this run (not replayed from a journal).
        elapsed: seconds since this run started.
        typical: a prediction's typical duration in seconds, if known.
    """
    if remaining <= 0:
        return 0.0
    by_rate = remaining * elapsed / finished if finished > 0 and elapsed > 0 else None
    by_duration = None
    if typical is not None and typical > 0:
        waves = math.ceil(max(0, remaining - in_flight) / max(1, slots))
        by_duration = typical * (waves + (0.5 if in_flight else 0.0))
    if by_rate is None or by_duration is None:
        return by_rate if by_duration is None else by_duration
    weight = min(1.0, finished / _TRUSTED_FINISHES)
    return weight * by_rate + (1.0 - weight) * by_duration


def shown_duration(seconds: float | None) -> str:
    """``"1:02:03"``, ``"4:05"``, or ``"-:--"`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-:--"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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


def flow_summary(statistics: ClientStatistics) -> str:
    """What the flow control did: 429 refusals, time waited, waits now; or ``""``."""
    parts = []
    if statistics.rate_refusals or statistics.window_refusals:
        parts.append(
            f"  429s: {statistics.rate_refusals} rate,"
            f" {statistics.window_refusals} window"
        )
    if statistics.waited_for_slots >= 1:
        parts.append(f"  waited {shown_duration(statistics.waited_for_slots)}")
    return "".join(parts) + waiting_for_slots(statistics.models)


class _RateColumn(ProgressColumn):
    """Items per second (or minute) over this run, replays left out."""

    def __init__(self, display: BatchDisplay) -> None:
        super().__init__()
        self.display = display

    def render(self, task: Task) -> Text:
        rate = self.display.rate()
        if rate is None:
            return Text("-/s", style="progress.data.speed")
        shown = f"{rate:.1f}/s" if rate >= 1 else f"{rate * 60:.1f}/min"
        return Text(shown, style="progress.data.speed")


class _RemainingColumn(ProgressColumn):
    """The time remaining, from `remaining_seconds`."""

    def __init__(self, display: BatchDisplay) -> None:
        super().__init__()
        self.display = display

    def render(self, task: Task) -> Text:
        left = shown_duration(self.display.remaining())
        return Text(f"{left} left", style="progress.remaining")


class BatchDisplay:
    """
    The live display of one ``batch`` run (see the module).

    Use as a context manager around the run; call `show` from ``on_progress``
    and `finished` with each result.

    Args:
        requests: the batch's requests (their kinds and models pick the
            learned durations).
        clock: the command's clock.
        slots: predictions in progress at once.
        extra: items outside the requests that count as done (lines of the
            file that could not be read).
    """

    def __init__(
        self,
        requests: Iterable[GenerationRequest],
        *,
        clock: Clock,
        slots: int,
        extra: int = 0,
    ) -> None:
        self.clock = clock
        self.slots = max(1, slots)
        self.extra = extra
        self.mix: Counter[tuple[Kind, str]] = Counter(
            (r.kind, r.model) for r in requests
        )
        self.total = sum(self.mix.values()) + extra
        self.durations = DurationBook()
        self.started = clock.now()
        self.finished_here = 0
        self.latest: BatchProgress | None = None
        # Read by rich's refresh thread: a float computed on the event loop's
        # thread, never the book itself (its lookups reorder it).
        self.typical_seconds = self.typical()
        self.terminal = sys.stderr.isatty()
        self.step = 0
        # One terminal for both streams: the bar and the item lines share one
        # console (on stdout), so every line is printed above the bar. rich's
        # stdout redirection alone cannot do it: a Console writing to a
        # redirected stdout unwraps the redirection and writes through the bar.
        shared = self.terminal and same_terminal()
        # PipeConsole: a reader that goes away ends the command with 141.
        self.console = PipeConsole(stderr=not shared, soft_wrap=False)
        self.out = self.console if shared else PipeConsole()
        """Where the per-item lines go (stdout)."""
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("generating"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            _RateColumn(self),
            _RemainingColumn(self),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=self.console,
            transient=True,
            disable=not self.terminal,
            get_time=clock.now,
            # Other writes to stdout (--json lines) go above the bar only when
            # stdout is this terminal; piped stdout must stay untouched.
            redirect_stdout=shared,
            redirect_stderr=self.terminal,
        )
        self.task = self.progress.add_task("batch", total=self.total, detail="")

    def __enter__(self) -> BatchDisplay:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.progress.__exit__(kind, error, traceback)

    def typical(self) -> float | None:
        """The learned typical duration of a prediction of this batch's mix."""
        count = sum(self.mix.values())
        if not count:
            return None
        weighted = sum(
            n * self.durations.get(kind, model).typical
            for (kind, model), n in self.mix.items()
        )
        return weighted / count

    def rate(self) -> float | None:
        """Items per second that ended in this run, or None before the first."""
        elapsed = self.clock.now() - self.started
        if not self.finished_here or elapsed <= 0:
            return None
        return self.finished_here / elapsed

    def remaining(self) -> float | None:
        """Seconds until the batch is done (see `remaining_seconds`)."""
        latest = self.latest
        if latest is None:
            return None
        return remaining_seconds(
            remaining=latest.total - latest.done,
            in_flight=latest.in_flight,
            slots=self.slots,
            finished=self.finished_here,
            elapsed=self.clock.now() - self.started,
            typical=self.typical_seconds,
        )

    def finished(self, result: BatchResult) -> None:
        """Count a result; learn its model's duration from what the server said."""
        if result.resumed:
            return
        self.finished_here += 1
        prediction = result.prediction
        if prediction is not None and prediction.status.is_success:
            elapsed = self.clock.now() - self.started
            took = reported_duration(prediction, 0.0, elapsed)
            if took is not None:
                request = result.request
                self.durations.observe(request.kind, request.model, took)
                self.typical_seconds = self.typical()

    def show(
        self,
        progress: BatchProgress,
        statistics: ClientStatistics | None,
        *,
        spend: str = "",
    ) -> None:
        """
        Move the display to ``progress`` (``statistics``: the client's now;
        ``spend``: what the batch has cost so far, as text, or ``""``).
        """
        self.latest = progress
        failed = progress.failed + self.extra
        detail = f"ok {progress.ok}  failed {failed}  running {progress.in_flight}"
        detail += spend
        if statistics is not None:
            detail += flow_summary(statistics)
        done = progress.done + self.extra
        self.progress.update(self.task, completed=done, detail=detail)
        if not self.terminal:
            self._plain(done, detail)

    def _plain(self, done: int, detail: str) -> None:
        # A log gets a line at each tenth of the way, not one per change.
        step = done * _STEPS // max(1, self.total)
        if step <= self.step or self.total < _STEPS:
            return
        self.step = step
        rate = self.rate()
        speed = "" if rate is None else f", {rate:.1f}/s"
        left = shown_duration(self.remaining())
        sys.stderr.write(
            f"atlas-async: {done}/{self.total} done{speed}, {left} left;"
            f" {detail.strip()}\n"
        )


@contextlib.contextmanager
def _spinner(future: PredictionFuture, clock: Clock) -> Iterator[Progress | None]:
    console = PipeConsole(stderr=True, soft_wrap=False)
    if not console.is_terminal:
        yield None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        get_time=clock.now,
        redirect_stdout=False,  # stdout may be a pipe: never route it here
    )
    with progress:
        yield progress


async def show_wait(
    future: PredictionFuture, clock: Clock, *, submitted: bool = True
) -> None:
    """
    Say ``future``'s id on stderr (when it was just ``submitted``); on a
    terminal, spin with its status and the elapsed time until it ends. Returns
    when it ends; never raises its error (``await future`` does).
    """
    if submitted:
        sys.stderr.write(f"atlas-async: submitted {future.id}\n")
        sys.stderr.flush()
    with _spinner(future, clock) as progress:
        if progress is None:
            return
        task = progress.add_task(f"{future.id} {future.status}")
        with contextlib.suppress(AtlasError):  # `await future` raises it
            async for snapshot in future.updates():
                progress.update(task, description=f"{future.id} {snapshot.status}")
