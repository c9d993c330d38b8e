"""PredictionFuture and as_completed, driven by hand (no scheduler)."""

from __future__ import annotations

import sys

import anyio
import pytest

from atlas_async._core.errors import (
    ClientStateError,
    PredictionCancelledError,
    PredictionFailedError,
)
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._ops.futures import PredictionFuture, as_completed

pytestmark = pytest.mark.asyncio

S = PredictionStatus


def snap(status: PredictionStatus, pid: str = "p1", raw: str = "") -> Prediction:
    """A snapshot with one output when completed."""
    outputs = ("https://cdn/x.png",) if status is S.COMPLETED else ()
    return Prediction(id=pid, status=status, status_raw=raw, outputs=outputs)


def failure(pid: str = "p1") -> PredictionFailedError:
    """A server-side failure."""
    return PredictionFailedError("failed", prediction_id=pid)


class TestState:
    async def test_pending_future_reports_its_identity(self) -> None:
        """A new future has its id, kind and model, status UNKNOWN, not done."""
        future, _resolver = PredictionFuture.pair("p1", kind=Kind.VIDEO, model="m")
        assert (future.id, future.kind, future.model) == ("p1", Kind.VIDEO, "m")
        assert future.status is S.UNKNOWN
        assert future.latest is None
        assert not future.done()
        assert "pending" in repr(future)

    async def test_model_falls_back_to_the_servers(self) -> None:
        """Without a model given, the latest snapshot's model is reported."""
        assert PredictionFuture("p0", kind=Kind.IMAGE).model is None
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        resolver.update(Prediction(id="p1", status=S.QUEUED, model="srv/m"))
        assert future.model == "srv/m"
        assert future.status is S.QUEUED

    async def test_result_and_exception_refuse_a_pending_future(self) -> None:
        """result() and exception() never block: pending raises ClientStateError."""
        future, _resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        with pytest.raises(ClientStateError, match="not done"):
            future.result()
        with pytest.raises(RuntimeError, match="not done"):
            future.exception()

    async def test_resolved_future_returns_its_result(self) -> None:
        """A resolved future gives its prediction without waiting."""
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        done = snap(S.COMPLETED)
        assert resolver.resolve(done)
        assert future.result() is done
        assert future.exception() is None
        assert future.latest is done
        assert await future is done
        assert "completed" in repr(future)

    async def test_failed_future_raises_its_error(self) -> None:
        """A failed future raises from result() and await, and returns it."""
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        error = failure()
        resolver.fail(error)
        assert future.exception() is error
        with pytest.raises(PredictionFailedError):
            future.result()
        with pytest.raises(PredictionFailedError):
            await future
        assert "PredictionFailedError" in repr(future)


class TestExactlyOnce:
    @pytest.mark.parametrize("first", ["resolve", "fail", "cancel"])
    async def test_later_resolutions_are_ignored(self, first: str) -> None:
        """Whatever settles a future first wins; everything after is ignored."""
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        if first == "resolve":
            assert resolver.resolve(snap(S.COMPLETED))
        elif first == "fail":
            assert resolver.fail(failure())
        else:
            assert future.cancel()
        outcome = (future.latest, future.exception())
        assert not resolver.resolve(snap(S.COMPLETED, pid="other"))
        assert not resolver.fail(failure("other"))
        assert not resolver.update(snap(S.PROCESSING))
        assert not future.cancel()
        assert (future.latest, future.exception()) == outcome

    async def test_cancel_calls_the_canceller_once(self) -> None:
        """cancel() tells the scheduler once, and raises for awaiters."""
        calls: list[PredictionFuture] = []
        future, _resolver = PredictionFuture.pair(
            "p1", kind=Kind.IMAGE, canceller=calls.append
        )
        assert future.cancel()
        assert not future.cancel()
        assert calls == [future]
        assert future.cancelled()
        with pytest.raises(PredictionCancelledError):
            await future


class TestWaiting:
    async def test_many_awaiters_get_the_same_result(self) -> None:
        """Every task awaiting one future gets the same prediction."""
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        results: list[Prediction] = []

        async def waiter() -> None:
            results.append(await future)

        done = snap(S.COMPLETED)
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            resolver.update(snap(S.PROCESSING))
            await anyio.wait_all_tasks_blocked()
            resolver.resolve(done)
        assert results == [done] * 5

    async def test_updates_yield_each_status_change_then_end(self) -> None:
        """updates() yields one snapshot per status change, ending at the terminal."""
        future, resolver = PredictionFuture.pair(
            "p1", kind=Kind.IMAGE, latest=snap(S.CREATED)
        )
        seen: list[PredictionStatus] = []

        async def consume() -> None:
            async for snapshot in future.updates():
                seen.append(snapshot.status)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for status in (S.CREATED, S.PROCESSING, S.PROCESSING):
                await anyio.wait_all_tasks_blocked()
                resolver.update(snap(status))
            await anyio.wait_all_tasks_blocked()
            resolver.resolve(snap(S.COMPLETED))
        assert seen == [S.CREATED, S.PROCESSING, S.COMPLETED]

    async def test_updates_distinguish_unknown_raw_statuses(self) -> None:
        """Two different unknown wire statuses are two changes."""
        future, resolver = PredictionFuture.pair(
            "p1", kind=Kind.IMAGE, latest=snap(S.UNKNOWN, raw="a")
        )
        seen: list[str] = []

        async def consume() -> None:
            async for snapshot in future.updates():
                seen.append(snapshot.status_raw or snapshot.status.value)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            resolver.update(snap(S.UNKNOWN, raw="b"))
            await anyio.wait_all_tasks_blocked()
            resolver.resolve(snap(S.COMPLETED))
        assert seen == ["a", "b", "completed"]

    async def test_updates_raise_when_ending_without_a_terminal_snapshot(self) -> None:
        """A future cancelled mid-way makes updates() raise after the last change."""
        future, _resolver = PredictionFuture.pair(
            "p1", kind=Kind.IMAGE, latest=snap(S.PROCESSING)
        )
        future.cancel()
        seen: list[Prediction] = []
        with pytest.raises(PredictionCancelledError):
            await _collect(future, seen)
        assert [s.status for s in seen] == [S.PROCESSING]

    async def test_updates_end_normally_after_a_terminal_failure(self) -> None:
        """A server failure ends updates() at the FAILED snapshot, no raise."""
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        resolver.update(snap(S.FAILED))
        resolver.fail(failure())
        assert [s.status for s in await _collect(future)] == [S.FAILED]


async def _collect(
    future: PredictionFuture, into: list[Prediction] | None = None
) -> list[Prediction]:
    """Collect every snapshot updates() yields (into ``into`` if given)."""
    seen = [] if into is None else into
    async for snapshot in future.updates():
        seen.append(snapshot)
    return seen


class TestCallbacks:
    async def test_done_callbacks_run_once_on_completion(self) -> None:
        """Callbacks fire once when done, and at once if already done."""
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        calls: list[str] = []
        future.add_done_callback(lambda f: calls.append("a"))
        resolver.resolve(snap(S.COMPLETED))
        resolver.fail(failure())
        future.add_done_callback(lambda f: calls.append("b"))
        assert calls == ["a", "b"]

    async def test_removed_callback_does_not_run(self) -> None:
        """remove_done_callback returns how many registrations it dropped."""
        future, resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE)
        calls: list[PredictionFuture] = []
        assert future.remove_done_callback(calls.append) == 0
        future.add_done_callback(calls.append)
        future.add_done_callback(calls.append)
        assert future.remove_done_callback(calls.append) == 2
        resolver.resolve(snap(S.COMPLETED))
        assert calls == []


class TestAsCompleted:
    async def test_futures_come_in_completion_order(self) -> None:
        """as_completed yields each future once, in the order they finish."""
        pairs = [PredictionFuture.pair(f"p{i}", kind=Kind.IMAGE) for i in range(3)]
        futures = [future for future, _ in pairs]
        resolvers = [resolver for _, resolver in pairs]
        resolvers[1].resolve(snap(S.COMPLETED, "p1"))
        order: list[str] = []

        async def consume() -> None:
            async for future in as_completed([*futures, futures[0]]):
                order.append(future.id)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            resolvers[2].fail(failure("p2"))
            await anyio.wait_all_tasks_blocked()
            resolvers[0].resolve(snap(S.COMPLETED, "p0"))
        assert order == ["p1", "p2", "p0"]

    async def test_abandoned_iteration_unregisters(self) -> None:
        """aclose() stops listening; later completions go nowhere."""
        pairs = [PredictionFuture.pair(f"p{i}", kind=Kind.IMAGE) for i in range(2)]
        futures = [future for future, _ in pairs]
        resolvers = [resolver for _, resolver in pairs]
        iterator = as_completed(futures)
        assert iterator.__aiter__() is iterator
        await iterator.aclose()
        resolvers[0].resolve(snap(S.COMPLETED, "p0"))
        with pytest.raises(StopAsyncIteration):
            await iterator.__anext__()


class TestMemory:
    async def test_a_pending_future_is_small(self) -> None:
        """A pending future has no __dict__ and stays well under 200 bytes."""
        future, _resolver = PredictionFuture.pair("p1", kind=Kind.IMAGE, model="m")
        assert not hasattr(future, "__dict__")
        assert sys.getsizeof(future) < 200
