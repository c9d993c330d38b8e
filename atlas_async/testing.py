"""
Helpers for testing code that uses atlas_async, public and documented in
``docs/testing.md``.

`FakeClock` replaces the real clock: time moves only when a test says so
(`FakeClock.advance`) or, inside `FakeClock.autojump`, whenever every task is
blocked, jumping straight to the next sleeper's deadline. Prior art: trio's
``MockClock(autojump_threshold=0)``; this one works under asyncio and trio
alike through anyio.

The module is also a pytest plugin. Register it in a ``conftest.py`` with
``pytest_plugins = ["atlas_async.testing"]`` to get these fixtures:

* ``fake_clock``: a fresh `FakeClock`;
* ``atlas_emulator_config``: the ``EmulatorConfig`` the emulator fixtures use
  (defaults; override this fixture in your ``conftest.py`` to add faults);
* ``atlas_emulator``: an in-process ``atlas_async.emulator.Emulator`` whose
  time is ``fake_clock`` (use its ``transport`` and ``base_url``);
* ``atlas_emulator_server``: an emulator on a loopback socket, real time, for
  the duration of one test (async, asyncio only; needs pytest-asyncio).

Importing this module needs neither pytest nor the emulator extra: the fixtures
are defined only when pytest is importable, and each imports the emulator only
when a test asks for it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import attrs

from ._core.errors import AtlasError, RateLimitError
from ._core.models import Kind, Prediction, PredictionStatus
from ._core.windows import Cause, RequestKind
from ._ops.operations import PollMemo

if TYPE_CHECKING:
    from .emulator import Emulator, EmulatorConfig, RunningEmulator

__all__ = ["FakeClock", "FakeSource", "snapshot"]


@attrs.define(eq=False)
class _Sleeper:
    deadline: float
    seq: int
    event: anyio.Event
    active: bool = True

    def __lt__(self, other: _Sleeper) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class FakeClock:
    """
    A clock that moves only when told to; use it as ``AtlasClient(clock=...)``.

    Example::

        clock = FakeClock()
        async with clock.autojump(), AtlasClient(clock=clock, ...) as client:
            prediction = await client.generate_image(model, prompt="a fox")
        # finished in microseconds, whatever the poll intervals were

    Args:
        start: the initial reading of `now`.
        wall: the initial reading of `wall` (seconds since the Unix epoch); it
            moves with `now`. The default is 2026-01-01T00:00:00Z.
    """

    def __init__(self, start: float = 0.0, *, wall: float = 1_767_225_600.0) -> None:
        self._now = float(start)
        self._wall_offset = float(wall) - self._now
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self._changed: anyio.Event | None = None

    def now(self) -> float:
        """Return the fake time in seconds."""
        return self._now

    def wall(self) -> float:
        """Return the fake Unix time: ``wall`` at start, moving with `now`."""
        return self._now + self._wall_offset

    async def sleep_until(self, deadline: float) -> None:
        """Wait until the fake time reaches ``deadline``."""
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper(deadline, next(self._seq), anyio.Event())
        heapq.heappush(self._sleepers, sleeper)
        if self._changed is not None:
            self._changed.set()
        try:
            await sleeper.event.wait()
        finally:
            sleeper.active = False

    async def sleep(self, delay: float) -> None:
        """Wait ``delay`` fake seconds."""
        await self.sleep_until(self._now + delay)

    def next_deadline(self) -> float:
        """Return the earliest deadline anyone sleeps until, or ``inf``."""
        self._drop_inactive()
        return self._sleepers[0].deadline if self._sleepers else float("inf")

    def advance(self, delay: float) -> None:
        """
        Move time forward by ``delay`` seconds and wake every sleeper now due.

        Raises:
            ValueError: if ``delay`` is negative (time never goes back).
        """
        if delay < 0:
            raise ValueError(f"time cannot go backwards (advance({delay!r}))")
        self._now += delay
        while self._sleepers and self._sleepers[0].deadline <= self._now:
            heapq.heappop(self._sleepers).event.set()

    def jump_to(self, deadline: float) -> None:
        """Move time forward to ``deadline`` (no-op if it has passed)."""
        self.advance(max(0.0, deadline - self._now))

    def _drop_inactive(self) -> None:
        while self._sleepers and not self._sleepers[0].active:
            heapq.heappop(self._sleepers)

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[FakeClock]:
        """
        Jump to the next deadline whenever every other task is blocked.

        Use it around the code under test; it stops when the block exits. Only
        tasks blocked on something other than the clock count as busy, so a real
        socket wait counts as blocked: keep autojump for in-process transports.
        """
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._autojump_loop)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _autojump_loop(self) -> None:
        while True:
            await _wait_all_tasks_blocked()
            self._drop_inactive()
            if self._sleepers:
                self.jump_to(self._sleepers[0].deadline)
                continue
            self._changed = anyio.Event()
            await self._changed.wait()
            self._changed = None

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g})"


async def _wait_all_tasks_blocked() -> None:
    """
    Return once every other task waits on something; fast under asyncio.

    anyio's asyncio version sleeps a real 0.1 s each time it finds a runnable
    task, which turns a test with many short hops into seconds of wall time.
    Here a runnable task costs one loop turn (``sleep(0)``); after many turns in
    a row (a task doing real work, e.g. in a thread) it backs off to 1 ms.
    trio's own implementation is already exact, so it is used as is.
    """
    import sniffio

    if sniffio.current_async_library() != "asyncio":
        await anyio.wait_all_tasks_blocked()
        return
    import asyncio

    this_task = asyncio.current_task()
    await asyncio.sleep(0)
    spins = 0
    while True:
        for task in asyncio.all_tasks():
            if task is this_task:
                continue
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is None or waiter.done():
                spins += 1
                await asyncio.sleep(0 if spins < 100 else 0.001)
                break
        else:
            return


def snapshot(
    prediction_id: str,
    status: PredictionStatus | str = PredictionStatus.PROCESSING,
    *,
    model: str | None = "m",
) -> Prediction:
    """
    A `Prediction` snapshot for tests; a completed one carries one output URL.

    Example::

        snapshot("p1", "completed").outputs == ("https://cdn.test/p1.png",)
    """
    status = PredictionStatus(status)
    outputs = (f"https://cdn.test/{prediction_id}.png",) if status.is_success else ()
    return Prediction(
        id=prediction_id,
        status=status,
        status_raw=status.value,
        outputs=outputs,
        model=model,
    )


class _Gate(Protocol):
    def slot(
        self, kind: RequestKind = RequestKind.OTHER
    ) -> AbstractAsyncContextManager[None]: ...

    def record(
        self,
        status_code: int | None,
        retry_after: float | None,
        kind: RequestKind = RequestKind.OTHER,
        message: str | None = None,
    ) -> object: ...


#: What a scripted answer may be: a snapshot, an error to raise, or a status
#: (turned into a snapshot of the polled id).
Answer = Prediction | AtlasError | PredictionStatus


class FakeSource:
    """
    A scripted `PredictionSource` (``create``, ``fetch``) for scheduler tests.

    Each call passes the ``gate`` like the HTTP session does (a slot around the
    call, then ``record`` with its status), waits ``latency`` on the clock, and
    answers from a script; it records what it saw.

    Example::

        source = FakeSource(clock)
        source.script("p0", PredictionStatus.PROCESSING, PredictionStatus.COMPLETED)
        scheduler = Scheduler(source, clock=clock, ...)

    Attributes:
        gate: the admission to pass (None: none), e.g. the client's gate.
        default: the answers of an id with no script.
        create_answer: what ``create`` answers (ids are ``p0``, ``p1``, ...
            unless the params carry an ``id``).
        latency: fake seconds each call takes, holding its slot.
        created: ``(time, id)`` of each create.
        fetches: ``(time, id)`` of each fetch.
        max_concurrent: the most calls seen holding a slot at once.
        in_flight_limit: per model, how many of its predictions may be
            unfinished at once; a submit past it is refused with a 429 saying
            so, as Atlas does.
        peak_running: per model, the most predictions unfinished at once.
        refused: submits refused for a model's limit.
    """

    def __init__(self, clock: FakeClock, *, gate: _Gate | None = None) -> None:
        self.clock = clock
        self.gate = gate
        self.scripts: dict[str, list[Answer]] = {}
        self.default: Sequence[Answer] = (
            PredictionStatus.PROCESSING,
            PredictionStatus.COMPLETED,
        )
        self.created: list[tuple[float, str]] = []
        self.fetches: list[tuple[float, str]] = []
        self.create_answer: Answer = PredictionStatus.PROCESSING
        self.latency = 0.0
        self.concurrent = 0
        self.max_concurrent = 0
        self.in_flight_limit: dict[str, int] = {}
        self.peak_running: dict[str, int] = {}
        self.refused = 0
        self._running: dict[str, set[str]] = {}
        self._model_of: dict[str, str] = {}
        self._next = 0

    def script(self, prediction_id: str, *answers: Answer) -> None:
        """Answer polls of ``prediction_id`` in order; the last answer repeats."""
        self.scripts[prediction_id] = list(answers)

    def fetch_times(self, prediction_id: str) -> list[float]:
        """When ``prediction_id`` was fetched (rounded to 0.1 ms)."""
        return [round(t, 4) for t, p in self.fetches if p == prediction_id]

    async def create(
        self, kind: Kind, model: str, params: Mapping[str, Any]
    ) -> Prediction:
        """Create the next prediction; answers ``create_answer``."""
        running = self._running.setdefault(model, set())
        limit = self.in_flight_limit.get(model)
        if limit is not None and len(running) >= limit:
            self.refused += 1
            refusal = RateLimitError(
                "too many concurrent tasks for this model", status_code=429
            )
            return await self._call("", refusal, RequestKind.SUBMIT)
        prediction_id = str(params.get("id", f"p{self._next}"))
        self._next += 1
        self.created.append((self.clock.now(), prediction_id))
        running.add(prediction_id)
        self._model_of[prediction_id] = model
        self.peak_running[model] = max(self.peak_running.get(model, 0), len(running))
        return await self._call(prediction_id, self.create_answer, RequestKind.SUBMIT)

    async def fetch(
        self, prediction_id: str, memo: PollMemo | None = None
    ) -> Prediction:
        """Poll once: the next scripted answer for the id."""
        self.fetches.append((self.clock.now(), prediction_id))
        script = self.scripts.setdefault(prediction_id, list(self.default))
        answer = script.pop(0) if len(script) > 1 else script[0]
        prediction = await self._call(prediction_id, answer, RequestKind.POLL)
        if prediction.status.is_terminal:
            model = self._model_of.get(prediction_id)
            if model is not None:
                self._running[model].discard(prediction_id)
        return prediction

    async def _call(
        self, prediction_id: str, answer: Answer, kind: RequestKind
    ) -> Prediction:
        gate = self.gate
        async with gate.slot(kind) if gate is not None else _no_slot():
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
            try:
                if self.latency:
                    await self.clock.sleep(self.latency)
            finally:
                self.concurrent -= 1
        if isinstance(answer, AtlasError):
            if gate is not None:
                status = getattr(answer, "status_code", None)
                retry_after = getattr(answer, "retry_after", None)
                cause = gate.record(status, retry_after, kind, answer.message)
                if isinstance(answer, RateLimitError) and isinstance(cause, Cause):
                    answer.refused_by = cause.value
            raise answer
        if gate is not None:
            gate.record(200, None, kind)
        if isinstance(answer, Prediction):
            return answer
        return snapshot(prediction_id, answer)

    def __repr__(self) -> str:
        return f"<FakeSource created={len(self.created)} fetches={len(self.fetches)}>"


@asynccontextmanager
async def _no_slot() -> AsyncIterator[None]:
    yield


try:
    import pytest
except ImportError:  # pragma: no cover - FakeClock alone needs no pytest
    pass
else:

    @pytest.fixture
    def fake_clock() -> FakeClock:
        """A fresh `FakeClock` starting at 0."""
        return FakeClock()

    @pytest.fixture
    def atlas_emulator_config() -> EmulatorConfig:
        """The emulator fixtures' configuration; override it to add faults."""
        from .emulator import EmulatorConfig

        return EmulatorConfig()

    @pytest.fixture
    def atlas_emulator(
        atlas_emulator_config: EmulatorConfig, fake_clock: FakeClock
    ) -> Emulator:
        """
        An in-process emulator on ``fake_clock``: nothing completes until the
        test advances the clock (or runs inside ``fake_clock.autojump()``).
        """
        from .emulator import Emulator

        return Emulator(
            atlas_emulator_config, clock=fake_clock.now, sleep=fake_clock.sleep
        )

    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - only the socket fixture needs it
        pass
    else:

        @pytest_asyncio.fixture
        async def atlas_emulator_server(
            atlas_emulator_config: EmulatorConfig,
        ) -> AsyncIterator[RunningEmulator]:
            """An emulator serving on a loopback socket in real time (asyncio)."""
            from .emulator import serve

            async with serve(atlas_emulator_config) as running:
                yield running
