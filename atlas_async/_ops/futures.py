"""
`PredictionFuture`: the awaitable handle on one prediction, and `as_completed`.

Theory of operation
-------------------
A future is a small slotted record with two sides, made together by
`PredictionFuture.pair` (like asyncio's ``Future`` and its ``set_result``): the
reading side everyone awaits, and a `PredictionResolver` that its owner (the
scheduler, or a test) writes with: `update` with each new snapshot, then exactly
one of `resolve` / `fail` (or the user's `cancel`). Only the first resolution
counts; later ones are ignored and return False, so a late poll answer can never
overwrite a timeout or a cancellation.

Waiting costs nothing until someone waits: the one `anyio.Event` is created by
the first waiter and replaced after every change, and it serves `await future`
and `updates()` alike. That keeps a pending future at a few hundred bytes, and it
works under asyncio and trio because it uses only anyio primitives.

Done-callbacks run synchronously, inside the scheduler, when the future
resolves; they must not raise (an exception propagates and closes the client,
like any other bug).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any

import anyio

from .._core.errors import (
    AtlasError,
    ClientStateError,
    PredictionCancelledError,
)
from .._core.models import Kind, Prediction, PredictionStatus

__all__ = ["PredictionFuture", "PredictionResolver", "as_completed"]

DoneCallback = Callable[["PredictionFuture"], object]


class PredictionFuture:
    """
    A prediction that is (or was) being polled; await it for the result.

    Several tasks may await one future; each gets the same outcome. It is
    resolved exactly once: the completed `Prediction`, or an error.

    Example::

        future = await client.submit_image(model, prompt="a red fox")
        async for snapshot in future.updates():
            print(snapshot.status)
        prediction = await future          # or raises PredictionFailedError, ...

    ``result()`` and ``exception()`` never block; on a pending future they raise
    `ClientStateError` (a `RuntimeError`), as asyncio's raise
    ``InvalidStateError``. ``cancel()`` stops polling locally: the job on the
    server goes on, and awaiting raises `PredictionCancelledError`.
    """

    __slots__ = (
        "_callbacks",
        "_canceller",
        "_changed",
        "_done",
        "_error",
        "_id",
        "_kind",
        "_latest",
        "_model",
        "_result",
    )

    def __init__(
        self,
        prediction_id: str,
        *,
        kind: Kind,
        model: str | None = None,
        latest: Prediction | None = None,
        canceller: Callable[[PredictionFuture], object] | None = None,
    ) -> None:
        self._id = prediction_id
        self._kind = kind
        self._model = model
        self._latest = latest
        self._canceller = canceller
        self._result: Prediction | None = None
        self._error: AtlasError | None = None
        self._done = False
        self._changed: anyio.Event | None = None
        self._callbacks: list[DoneCallback] | None = None

    @classmethod
    def pair(
        cls,
        prediction_id: str,
        *,
        kind: Kind = Kind.IMAGE,
        model: str | None = None,
        latest: Prediction | None = None,
        canceller: Callable[[PredictionFuture], object] | None = None,
    ) -> tuple[PredictionFuture, PredictionResolver]:
        """
        A new pending future and the resolver that settles it.

        Example::

            future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
            resolver.update(running)           # future.latest, updates()
            resolver.resolve(completed)        # await future -> completed

        Args:
            canceller: called with the future when the user cancels it.
        """
        future = cls(
            prediction_id, kind=kind, model=model, latest=latest, canceller=canceller
        )
        return future, PredictionResolver(future)

    @property
    def id(self) -> str:
        """The prediction id."""
        return self._id

    @property
    def kind(self) -> Kind:
        """The prediction's kind."""
        return self._kind

    @property
    def model(self) -> str | None:
        """The model id given at submission, else the one the server reported."""
        if self._model is None and self._latest is not None:
            return self._latest.model
        return self._model

    @property
    def latest(self) -> Prediction | None:
        """The latest snapshot seen, or None before the first."""
        return self._latest

    @property
    def status(self) -> PredictionStatus:
        """The latest status seen; UNKNOWN before the first snapshot."""
        latest = self._latest
        return PredictionStatus.UNKNOWN if latest is None else latest.status

    def done(self) -> bool:
        """True once the future has its outcome (result, error or cancellation)."""
        return self._done

    def cancelled(self) -> bool:
        """True if the future was cancelled locally."""
        return isinstance(self._error, PredictionCancelledError)

    def result(self) -> Prediction:
        """
        Return the completed prediction, without waiting.

        Raises:
            ClientStateError: if the future is not done yet.
            AtlasError: the error it ended with (failed, timed out, cancelled).
        """
        if not self._done:
            raise ClientStateError(
                f"prediction {self._id} is not done yet: await it first"
            )
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def exception(self) -> AtlasError | None:
        """
        Return the error the future ended with, or None if it succeeded.

        Raises:
            ClientStateError: if the future is not done yet.
        """
        if not self._done:
            raise ClientStateError(
                f"prediction {self._id} is not done yet: await it first"
            )
        return self._error

    def cancel(self) -> bool:
        """
        Stop polling this prediction; awaiters get `PredictionCancelledError`.

        The job on the server is not touched (the API has no cancel). Returns
        False if the future was already done.
        """
        error = PredictionCancelledError(
            f"prediction {self._id} was cancelled locally",
            prediction_id=self._id,
            prediction=self._latest,
        )
        canceller = self._canceller
        if not self._fail(error):
            return False
        if canceller is not None:
            canceller(self)
        return True

    def __await__(self) -> Generator[Any, None, Prediction]:
        return self.wait().__await__()

    async def wait(self) -> Prediction:
        """Wait for the outcome; the same as ``await future``."""
        while not self._done:
            await self._wait_changed()
        return self.result()

    async def updates(self) -> AsyncIterator[Prediction]:
        """
        Yield a snapshot for each status change, ending with the terminal one.

        Statuses that come and go between two reads of a slow consumer are
        skipped; the latest is never. If the future ends without a terminal
        snapshot (timeout, cancellation, an error polling it) the iterator raises
        that error; otherwise it ends normally and ``await future`` gives the
        outcome.
        """
        seen: tuple[PredictionStatus, str] | None = None
        while True:
            snapshot = self._latest
            if snapshot is not None and (snapshot.status, snapshot.status_raw) != seen:
                seen = (snapshot.status, snapshot.status_raw)
                yield snapshot
                continue
            if self._done:
                terminal = snapshot is not None and snapshot.status.is_terminal
                if self._error is not None and not terminal:
                    raise self._error
                return
            await self._wait_changed()

    def add_done_callback(self, callback: DoneCallback) -> None:
        """Call ``callback(future)`` when it is done (now, if it already is)."""
        if self._done:
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    def remove_done_callback(self, callback: DoneCallback) -> int:
        """Remove every registration of ``callback``; return how many there were."""
        if not self._callbacks:
            return 0
        kept = [c for c in self._callbacks if c != callback]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    # The resolver's side. Each returns False when the future was already done.

    def _update(self, prediction: Prediction) -> bool:
        if self._done:
            return False
        self._latest = prediction
        self._notify()
        return True

    def _resolve(self, prediction: Prediction) -> bool:
        if self._done:
            return False
        self._latest = prediction
        self._result = prediction
        self._finish()
        return True

    def _fail(self, error: AtlasError) -> bool:
        if self._done:
            return False
        self._error = error
        self._finish()
        return True

    def _finish(self) -> None:
        self._done = True
        self._canceller = None  # drop the reference to the scheduler
        self._notify()
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback(self)

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def _wait_changed(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def __repr__(self) -> str:
        state = "pending"
        if self._done:
            state = "completed" if self._error is None else type(self._error).__name__
        return (
            f"<PredictionFuture {self._id} {self._kind.value} "
            f"status={self.status.value} {state}>"
        )


class PredictionResolver:
    """
    The writing side of one `PredictionFuture` (see `PredictionFuture.pair`).

    Each method returns False, and changes nothing, once the future is done.
    """

    __slots__ = ("future", "holds_slot", "seen")

    def __init__(self, future: PredictionFuture) -> None:
        self.future = future
        #: It holds one of the scheduler's in-flight places (a submit, not an
        #: attach): ending it frees the place and its model's window slot.
        self.holds_slot = False
        #: The fingerprint of the last poll answer read into ``latest``
        #: (`PollMemo`): the next identical answer is not decoded again.
        self.seen = 0

    @property
    def latest(self) -> Prediction | None:
        """The future's latest snapshot (`PredictionFuture.latest`)."""
        return self.future.latest

    def update(self, prediction: Prediction) -> bool:
        """Publish a newer snapshot (``future.latest``, ``future.updates()``)."""
        return self.future._update(prediction)

    def resolve(self, prediction: Prediction) -> bool:
        """End the future with its completed prediction."""
        return self.future._resolve(prediction)

    def fail(self, error: AtlasError) -> bool:
        """End the future with ``error`` (what awaiting it raises)."""
        return self.future._fail(error)

    def __repr__(self) -> str:
        return f"<PredictionResolver of {self.future!r}>"


class _AsCompleted:
    """The async iterator behind `as_completed` (a class, so no async generator
    is left for the event loop to finalize when a caller stops early)."""

    __slots__ = ("_futures", "_ready", "_remaining", "_wake")

    def __init__(self, futures: Iterable[PredictionFuture]) -> None:
        self._futures = list(dict.fromkeys(futures))
        self._ready: deque[PredictionFuture] = deque()
        self._wake: anyio.Event | None = None
        self._remaining = len(self._futures)
        for future in self._futures:
            future.add_done_callback(self._on_done)

    def _on_done(self, future: PredictionFuture) -> None:
        self._ready.append(future)
        if self._wake is not None:
            self._wake.set()

    def __aiter__(self) -> _AsCompleted:
        return self

    async def __anext__(self) -> PredictionFuture:
        if self._remaining == 0:
            raise StopAsyncIteration
        while not self._ready:
            self._wake = anyio.Event()
            await self._wake.wait()
            self._wake = None
        self._remaining -= 1
        return self._ready.popleft()

    async def aclose(self) -> None:
        """Stop listening to the futures that are not done yet."""
        for future in self._futures:
            future.remove_done_callback(self._on_done)
        self._remaining = 0


def as_completed(futures: Iterable[PredictionFuture]) -> _AsCompleted:
    """
    Iterate over ``futures`` in the order they finish, each once.

    A future that failed is yielded too; ``await`` it (or call ``result()``) to get
    its outcome. Example::

        async for future in as_completed(futures):
            try:
                prediction = future.result()
            except atlas.PredictionError as exc:
                ...
    """
    return _AsCompleted(futures)
