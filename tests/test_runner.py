"""The Scheduler under asyncio, with scripted create/fetch fakes and a FakeClock."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from atlas_async import as_completed
from atlas_async._core.errors import (
    AtlasError,
    AuthenticationError,
    ClientClosedError,
    ClientStateError,
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    PredictionCancelledError,
    PredictionFailedError,
    PredictionTimeoutError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import ExponentialPolicy, FixedPolicy
from atlas_async._net.gate import RequestGate
from atlas_async._ops.operations import PollMemo
from atlas_async._ops.scheduler import Scheduler
from atlas_async.testing import FakeClock, FakeSource, snapshot

pytestmark = pytest.mark.asyncio

S = PredictionStatus
Answer = Prediction | AtlasError | PredictionStatus


def snap(pid: str, status: PredictionStatus = S.PROCESSING) -> Prediction:
    """A snapshot; completed ones carry an output."""
    return snapshot(pid, status)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> FakeSource:
    return FakeSource(clock)


@asynccontextmanager
async def running(api: FakeSource, **options: Any) -> AsyncIterator[Scheduler]:
    """A running scheduler on the fake API, with autojump, closed on exit."""
    options.setdefault("poll", FixedPolicy(2.0))
    gate = RequestGate(
        options.get("max_concurrent_requests", 16),
        options.pop("requests_per_second", None),
        api.clock,
    )
    sched = Scheduler(api, gate=gate, clock=api.clock, rng=random.Random(7), **options)
    api.gate = gate
    async with api.clock.autojump(), anyio.create_task_group() as tg:
        await tg.start(sched.run)
        try:
            yield sched
        finally:
            await sched.aclose()


async def submit(sched: Scheduler, pid: str, **options: Any) -> Any:
    """Submit a prediction the fake will call ``pid``."""
    options.setdefault("timeout", None)
    return await sched.submit(Kind.IMAGE, "m", {"id": pid}, **options)


class TestSubmit:
    async def test_submit_resolves_with_the_completed_prediction(
        self, api: FakeSource
    ) -> None:
        """A submitted prediction is polled until completed, then awaited."""
        api.script("a", S.PROCESSING, S.PROCESSING, S.COMPLETED)
        async with running(api) as sched:
            future = await submit(sched, "a")
            assert future.status is S.PROCESSING
            prediction = await future
        assert prediction.outputs == ("https://cdn.test/a.png",)
        assert api.fetch_times("a") == [2.0, 4.0, 6.0]
        stats = sched.statistics()
        assert (stats.submitted, stats.completed, stats.polls, stats.in_flight) == (
            1,
            1,
            3,
            0,
        )
        assert stats.requests_sent == 4

    async def test_adaptive_poll_times_are_pinned_for_a_seed(
        self, api: FakeSource
    ) -> None:
        """A video on the default policy and seed 7 polls exactly at these times:
        an early probe (3.75 s: the model is new to the client), then its plan."""
        api.script("v", *[S.PROCESSING] * 4, S.COMPLETED)
        async with running(api, poll=None) as sched:
            future = await sched.submit(Kind.VIDEO, "m", {"id": "v"}, timeout=900)
            await future
        assert api.fetch_times("v") == [3.75, 29.0285, 32.8878, 37.1621, 40.9563]

    async def test_a_fast_first_completion_brings_its_siblings_polls_forward(
        self, api: FakeSource
    ) -> None:
        """Videos of a model new to the client that finish in seconds: once the
        first completes, its waiting siblings are polled at once, not at the
        video prior's ~30 s."""
        for pid in ("a", "b", "c", "d"):
            api.script(pid, S.COMPLETED)
        async with running(api, poll=None) as sched:
            futures = [
                await sched.submit(Kind.VIDEO, "fast", {"id": pid}, timeout=900)
                for pid in ("a", "b", "c", "d")
            ]
            for future in futures:
                await future
            finished = api.clock.now()
        assert finished < 10.0

    async def test_policy_per_kind_and_per_submit(self, api: FakeSource) -> None:
        """A per-kind mapping picks the policy; a submit's own policy wins."""
        poll = {"image": FixedPolicy(1.0), Kind.VIDEO: FixedPolicy(3.0)}
        async with running(api, poll=poll) as sched:
            image = await submit(sched, "i")
            video = await sched.submit(Kind.VIDEO, "m", {"id": "v"}, timeout=None)
            own = await submit(
                sched, "o", policy=ExponentialPolicy(first=5.0, jitter=0)
            )
            await image
            await video
            await own
        assert (api.fetch_times("i"), api.fetch_times("v")) == ([1.0, 2.0], [3.0, 6.0])
        assert api.fetch_times("o") == [5.0, 12.5]

    async def test_create_error_propagates_and_registers_nothing(
        self, api: FakeSource
    ) -> None:
        """A submit that fails raises to its caller and leaves nothing pending."""
        api.create_answer = InvalidRequestError("bad", status_code=400)
        async with running(api, max_in_flight=1) as sched:
            with pytest.raises(InvalidRequestError):
                await submit(sched, "a")
            assert sched.statistics().in_flight == 0
            api.create_answer = S.PROCESSING
            await (await submit(sched, "b"))  # the in-flight slot was released
        assert api.fetches[0][1] == "b"

    async def test_failed_prediction_raises_prediction_failed(
        self, api: FakeSource
    ) -> None:
        """A server-side failure makes the future raise PredictionFailedError."""
        api.script("a", S.PROCESSING, S.FAILED)
        async with running(api) as sched:
            future = await submit(sched, "a")
            with pytest.raises(PredictionFailedError) as caught:
                await future
        assert caught.value.prediction_id == "a"
        assert sched.statistics().failed == 1

    async def test_synchronous_answer_resolves_without_polling(
        self, api: FakeSource
    ) -> None:
        """A submit answered with a finished prediction needs no poll."""
        api.create_answer = S.COMPLETED
        async with running(api) as sched:
            future = await submit(sched, "a")
            assert future.done()
            assert (await future).status is S.COMPLETED
        assert api.fetches == []

    async def test_duplicate_id_shares_the_future(self, api: FakeSource) -> None:
        """If the server repeats an id, the second submit gets the same future."""
        async with running(api) as sched:
            first = await submit(sched, "a")
            assert await submit(sched, "a") is first

    async def test_invalid_timeout_is_refused(self, api: FakeSource) -> None:
        """A zero or negative timeout is a configuration error."""
        async with running(api) as sched:
            with pytest.raises(ConfigurationError):
                await submit(sched, "a", timeout=0)

    async def test_invalid_limits_are_refused(self, api: FakeSource) -> None:
        """Limits below one are refused at construction."""
        with pytest.raises(ConfigurationError):
            Scheduler(api, max_in_flight=0)


class TestDeadlines:
    async def test_deadline_raises_timeout_with_id_and_last_status(
        self, api: FakeSource
    ) -> None:
        """Past its deadline a future raises PredictionTimeoutError with the status."""
        api.script("a", S.QUEUED, S.PROCESSING)
        async with running(api) as sched:
            future = await submit(sched, "a", timeout=5)
            with pytest.raises(PredictionTimeoutError) as caught:
                await future
            assert api.clock.now() == 5.0
        error = caught.value
        assert (error.prediction_id, error.last_status, error.timeout) == (
            "a",
            S.PROCESSING,
            5.0,
        )
        assert isinstance(error, TimeoutError)
        assert "(last status: processing)" in str(error)
        assert sched.statistics().timed_out == 1

    async def test_deadline_passes_while_a_poll_hangs(self, api: FakeSource) -> None:
        """A poll stuck in flight does not hold the deadline back."""
        api.latency = 100.0
        async with running(api) as sched:
            api.latency = 0.0
            future = await submit(sched, "a", timeout=3)
            api.latency = 100.0
            with pytest.raises(PredictionTimeoutError) as caught:
                await future
            assert api.clock.now() == 3.0
        assert caught.value.last_status is None
        assert "none seen" in str(caught.value)


class TestCancel:
    async def test_cancel_stops_polling(self, api: FakeSource) -> None:
        """After cancel() no more polls happen and awaiters get the error."""
        async with running(api) as sched:
            api.default = (S.PROCESSING,)
            future = await submit(sched, "a")
            await api.clock.sleep(5.0)
            assert future.cancel()
            with pytest.raises(PredictionCancelledError):
                await future
            await api.clock.sleep(20.0)
        assert api.fetch_times("a") == [2.0, 4.0]
        assert sched.statistics().cancelled == 1

    async def test_cancel_interrupts_a_poll_in_flight(self, api: FakeSource) -> None:
        """Cancelling during a slow poll abandons the poll at once."""
        api.latency = 0.0
        async with running(api) as sched:
            future = await submit(sched, "a")
            api.latency = 50.0
            await api.clock.sleep(3.0)
            assert sched.statistics().concurrent_requests == 1
            future.cancel()
            await anyio.wait_all_tasks_blocked()
            assert sched.statistics().concurrent_requests == 0

    async def test_cancel_while_queued_skips_the_poll(self, api: FakeSource) -> None:
        """A prediction cancelled while waiting for a worker is never fetched."""
        async with running(api, max_concurrent_requests=1) as sched:
            await submit(sched, "a")
            b = await submit(sched, "b")
            api.latency = 1.0
            assert sched.statistics().queued_polls == 0
            await api.clock.sleep(2.5)  # both due at 2 s; "a" holds the only worker
            assert sched.statistics().queued_polls == 1
            b.cancel()
            await api.clock.sleep(5.0)
        assert api.fetch_times("b") == []

    async def test_cancel_after_completion_is_refused(self, api: FakeSource) -> None:
        """A finished future cannot be cancelled."""
        async with running(api) as sched:
            future = await submit(sched, "a")
            await future
            assert not future.cancel()


class TestRateLimit:
    async def test_429_slows_the_budget_and_successes_restore_it(
        self, api: FakeSource
    ) -> None:
        """A poll's 429 cuts the shared rate; later successes bring it back."""
        api.script(
            "a", RateLimitError("slow", status_code=429), S.PROCESSING, S.COMPLETED
        )
        async with running(api, requests_per_second=2.0) as sched:
            future = await submit(sched, "a")
            await api.clock.sleep(2.5)
            stats = sched.statistics()
            assert stats.rate_limited == stats.rate_refusals == 1
            assert stats.requests_per_second is not None
            assert stats.requests_per_second < 2.0
            await future
            await (await submit(sched, "b"))
            recovered = sched.statistics().requests_per_second
            assert recovered is not None
            assert recovered <= 2.0  # the known rate stays the ceiling
        assert sched.statistics().retries == 1

    async def test_retry_after_holds_back_every_request(self, api: FakeSource) -> None:
        """A Retry-After of 10 s on one poll delays the next request of any kind."""
        api.script(
            "a", RateLimitError("slow", status_code=429, retry_after=10.0), S.COMPLETED
        )
        api.script("b", S.COMPLETED)
        async with running(api) as sched:
            a = await submit(sched, "a")
            await api.clock.sleep(2.5)
            b = await submit(sched, "b")  # its create waits out the block too
            assert api.clock.now() == 12.0
            await a
            await b
        assert api.fetch_times("a") == [2.0, 12.0]
        # Its plan's first poll (14 s) comes while a's poll waits for the rate:
        # the poll budget holds it until it is likelier to find b done.
        assert 14.0 < api.fetch_times("b")[0] <= 16.0


class TestNotFound:
    async def test_404_within_the_grace_window_is_retried(
        self, api: FakeSource
    ) -> None:
        """A fresh prediction that 404s a few times still resolves."""
        missing = NotFoundError("not found", status_code=404)
        api.script("a", missing, missing, S.COMPLETED)
        async with running(api) as sched:
            assert (await (await submit(sched, "a"))).status is S.COMPLETED

    async def test_404_after_the_grace_window_fails(self, api: FakeSource) -> None:
        """A prediction still 404 after the grace window fails with NotFoundError."""
        api.script("a", NotFoundError("not found", status_code=404))
        async with running(api, not_found_grace=10.0) as sched:
            with pytest.raises(NotFoundError) as caught:
                await (await submit(sched, "a"))
            assert 10.0 <= api.clock.now() < 40.0
        assert caught.value.prediction_id == "a"

    async def test_permanent_poll_error_fails_the_prediction(
        self, api: FakeSource
    ) -> None:
        """A 401 while polling fails that prediction only."""
        api.script("a", AuthenticationError("no", status_code=401))
        async with running(api) as sched:
            failing = await submit(sched, "a")
            fine = await submit(sched, "b")
            with pytest.raises(AuthenticationError):
                await failing
            assert (await fine).status is S.COMPLETED


class TestLimits:
    async def test_max_in_flight_makes_submit_wait(self, api: FakeSource) -> None:
        """The third submit waits until one of two pending predictions finishes."""
        api.script("a", S.COMPLETED)
        api.script("b", *[S.PROCESSING] * 5, S.COMPLETED)
        async with running(api, max_in_flight=2) as sched:
            await submit(sched, "a")
            await submit(sched, "b")
            await submit(sched, "c")
            assert api.created[2] == (2.0, "c")

    async def test_max_concurrent_requests_bounds_create_and_fetch(
        self, api: FakeSource
    ) -> None:
        """With 3 slots, 12 submits and their polls never run more than 3 at once."""
        api.latency = 0.5
        async with running(api, max_concurrent_requests=3) as sched:
            async with anyio.create_task_group() as tg:
                for i in range(12):
                    tg.start_soon(submit, sched, f"p{i}")
            await anyio.lowlevel.checkpoint()
            while sched.statistics().in_flight:
                await api.clock.sleep(1.0)
        assert api.max_concurrent == 3
        assert sched.statistics().completed == 12


class TestAwaiters:
    async def test_many_awaiters_share_one_outcome(self, api: FakeSource) -> None:
        """Ten tasks awaiting one future all get the same prediction."""
        results: list[Prediction] = []
        async with running(api) as sched:
            future = await submit(sched, "a")

            async def waiter() -> None:
                results.append(await future)

            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(waiter)
        assert len(results) == 10
        assert all(r is results[0] for r in results)

    async def test_each_future_is_resolved_exactly_once(self, api: FakeSource) -> None:
        """A late answer after a timeout never changes the outcome."""
        api.latency = 0.0
        async with running(api) as sched:
            future = await submit(sched, "a", timeout=3)
            api.latency = 2.0  # the poll at 2 s answers at 4 s, after the deadline
            with pytest.raises(PredictionTimeoutError):
                await future
            await api.clock.sleep(5.0)
            assert isinstance(future.exception(), PredictionTimeoutError)
        stats = sched.statistics()
        assert (stats.timed_out, stats.completed) == (1, 0)

    async def test_as_completed_yields_in_completion_order(
        self, api: FakeSource
    ) -> None:
        """as_completed gives futures in the order they finished."""
        api.script("slow", S.PROCESSING, S.PROCESSING, S.COMPLETED)
        api.script("fast", S.COMPLETED)
        async with running(api) as sched:
            futures = [await submit(sched, "slow"), await submit(sched, "fast")]
            order = [f.id async for f in as_completed(futures)]
        assert order == ["fast", "slow"]


class TestAttach:
    async def test_attach_polls_at_once_and_resolves(self, api: FakeSource) -> None:
        """An attached id is polled at once; attaching again gives the same future."""
        api.script("x", S.PROCESSING, S.COMPLETED)
        async with running(api) as sched:
            await api.clock.sleep(1.0)
            future = sched.attach("x", kind="video", timeout=60)
            assert sched.attach("x") is future
            assert future.status is S.UNKNOWN
            await future
        assert api.fetch_times("x") == [1.0, 3.0]
        assert sched.statistics().attached == 1
        assert sched.durations.get(Kind.VIDEO, None).count == 0


class TestLifecycle:
    async def test_close_fails_pending_futures_and_leaves_no_task(
        self, api: FakeSource
    ) -> None:
        """Closing with pending futures fails them with ClientClosedError."""
        api.default = (S.PROCESSING,)
        async with running(api) as sched:
            futures = [await submit(sched, f"p{i}") for i in range(3)]
            await api.clock.sleep(3.0)
            before = len(anyio.get_running_tasks())
            await sched.aclose()
            await sched.aclose()  # idempotent
            assert len(anyio.get_running_tasks()) < before
        for future in futures:
            with pytest.raises(ClientClosedError) as caught:
                await future
            assert caught.value.prediction_id == future.id
        with pytest.raises(ClientClosedError):
            await submit(sched, "late")

    async def test_use_before_run_is_refused(self, api: FakeSource) -> None:
        """Submitting to a scheduler that is not running raises ClientStateError."""
        sched = Scheduler(api)
        with pytest.raises(ClientStateError, match="async with"):
            sched.attach("x")
        await sched.aclose()

    async def test_run_twice_is_refused(self, api: FakeSource) -> None:
        """A scheduler runs once."""
        async with running(api) as sched:
            pass
        with pytest.raises(ClientStateError, match="once"):
            await sched.run()

    async def test_closing_during_a_submit_names_the_new_prediction(
        self, api: FakeSource
    ) -> None:
        """If the client closes while create is in flight, the error carries the id."""
        api.latency = 5.0
        async with running(api) as sched, anyio.create_task_group() as tg:

            async def close_soon() -> None:
                await api.clock.sleep(1.0)
                await sched.aclose()

            tg.start_soon(close_soon)
            with pytest.raises(ClientClosedError) as caught:
                await submit(sched, "a")
        assert caught.value.prediction_id == "a"

    async def test_unexpected_exception_fails_only_its_prediction(
        self, api: FakeSource
    ) -> None:
        """A bug in fetch fails the prediction being polled, chained from the
        bug; it is neither swallowed nor allowed to tear the scheduler down."""

        class Broken(FakeSource):
            async def fetch(
                self, prediction_id: str, memo: PollMemo | None = None
            ) -> Prediction:
                if prediction_id == "a":
                    raise KeyError("bug")
                return await super().fetch(prediction_id)

        api = Broken(api.clock)
        async with running(api) as sched:
            broken = await submit(sched, "a")
            fine = await submit(sched, "b")
            with pytest.raises(UnexpectedResponseError) as caught:
                await broken
            assert (await fine).status is S.COMPLETED
        assert isinstance(caught.value.__cause__, KeyError)
        assert caught.value.prediction_id == "a"

    async def test_log_records_carry_the_prediction_id(
        self, api: FakeSource, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Records about a prediction name it in the message and in extra."""
        api.script("a", ServerError("down", status_code=503), S.COMPLETED)
        with caplog.at_level(logging.DEBUG, logger="atlas_async"):
            async with running(api) as sched:
                await (await submit(sched, "a"))
        about = [r for r in caplog.records if getattr(r, "prediction_id", None) == "a"]
        assert len(about) >= 3
        assert all("a" in r.getMessage() for r in about)
        assert repr(sched).startswith("<Scheduler closed")


class TestDeliver:
    """`Scheduler.deliver`: the hybrid wait's webhook side, polling as the fallback."""

    async def test_a_delivery_resolves_at_once_without_another_poll(
        self, api: FakeSource
    ) -> None:
        """A terminal delivery ends the future at the current time and stops polling."""
        async with running(api, poll=FixedPolicy(60.0)) as sched:
            future = await submit(sched, "a")
            await api.clock.sleep(5.0)
            assert sched.deliver(snap("a", S.COMPLETED))
            assert future.done()
            prediction = await future
            assert api.clock.now() == 5.0
            await api.clock.sleep(600.0)  # no poll is left for it in the heap
        assert prediction.outputs == ("https://cdn.test/a.png",)
        assert api.fetch_times("a") == []
        stats = sched.statistics()
        assert (stats.delivered, stats.completed, stats.polls, stats.in_flight) == (
            1,
            1,
            0,
            0,
        )

    @pytest.mark.parametrize(
        "delivered",
        [
            pytest.param(
                Prediction(id="a", status=S.FAILED, error="boom"), id="failed"
            ),
            pytest.param(Prediction(id="a", status=S.COMPLETED), id="no-outputs"),
        ],
    )
    async def test_a_failed_delivery_fails_the_future_as_a_poll_would(
        self, api: FakeSource, delivered: Prediction
    ) -> None:
        """A failure (or an empty success) goes through the scheduler's failure map."""
        async with running(api, poll=FixedPolicy(60.0)) as sched:
            future = await submit(sched, "a")
            assert sched.deliver(delivered)
            with pytest.raises(PredictionFailedError) as caught:
                await future
        assert caught.value.prediction_id == "a"
        assert future.latest is delivered
        assert (sched.statistics().failed, sched.statistics().delivered) == (1, 1)

    async def test_a_redelivery_or_an_unknown_id_is_a_no_op(
        self, api: FakeSource
    ) -> None:
        """Only the first delivery counts; ids not pending here are ignored."""
        async with running(api, poll=FixedPolicy(60.0)) as sched:
            future = await submit(sched, "a")
            first = snap("a", S.COMPLETED)
            assert sched.deliver(first)
            assert not sched.deliver(first)
            assert not sched.deliver(Prediction(id="a", status=S.FAILED))
            assert not sched.deliver(snap("elsewhere", S.COMPLETED))
            assert await future is first
        assert sched.statistics().delivered == 1

    async def test_a_non_terminal_delivery_updates_the_status_and_polling_goes_on(
        self, api: FakeSource
    ) -> None:
        """A running snapshot moves ``latest``; the next poll still ends the wait."""
        api.script("a", S.COMPLETED)
        async with running(api, poll=FixedPolicy(60.0)) as sched:
            future = await submit(sched, "a")
            assert not sched.deliver(snap("a", S.QUEUED))
            assert future.status is S.QUEUED
            await future
        assert api.fetch_times("a") == [60.0]
        assert sched.statistics().delivered == 0

    async def test_polling_resolves_the_prediction_when_no_delivery_comes(
        self, api: FakeSource
    ) -> None:
        """Without a webhook the slow fallback poll ends the wait, and a late
        delivery is a no-op."""
        api.script("a", S.PROCESSING, S.COMPLETED)
        async with running(api, poll=FixedPolicy(60.0)) as sched:
            future = await submit(sched, "a")
            await future
            assert api.clock.now() == 120.0
            assert not sched.deliver(snap("a", S.COMPLETED))
        assert sched.statistics().delivered == 0

    async def test_a_delivery_abandons_a_poll_in_flight(self, api: FakeSource) -> None:
        """A delivery during a slow poll ends the wait; the poll's answer is dropped."""
        api.default = (S.FAILED,)
        async with running(api, poll=FixedPolicy(60.0)) as sched:
            future = await submit(sched, "a")
            api.latency = 50.0
            await api.clock.sleep(70.0)  # the poll started at 60 s and hangs
            assert sched.statistics().concurrent_requests == 1
            assert sched.deliver(snap("a", S.COMPLETED))
            await anyio.wait_all_tasks_blocked()
            assert sched.statistics().concurrent_requests == 0
            assert (await future).status is S.COMPLETED
        assert api.fetch_times("a") == [60.0]

    async def test_a_delivery_frees_the_in_flight_slot(self, api: FakeSource) -> None:
        """With max_in_flight=1, the next submit goes through once a delivery ends
        the first prediction."""
        async with running(api, poll=FixedPolicy(60.0), max_in_flight=1) as sched:
            await submit(sched, "a")
            sched.deliver(snap("a", S.COMPLETED))
            await submit(sched, "b")
            assert api.clock.now() == 0.0

    async def test_a_delivery_after_close_is_refused(self, api: FakeSource) -> None:
        """Once the scheduler closed, a delivery changes nothing."""
        async with running(api, poll=FixedPolicy(60.0)) as sched:
            future = await submit(sched, "a")
        assert not sched.deliver(snap("a", S.COMPLETED))
        with pytest.raises(ClientClosedError):
            await future


class TestScale:
    async def test_ten_thousand_predictions_all_resolve(self, api: FakeSource) -> None:
        """10,000 predictions on a FakeClock all complete, each exactly once."""
        done: list[str] = []
        async with running(
            api, max_in_flight=10_000, max_concurrent_requests=32
        ) as sched:
            futures = [await submit(sched, f"p{i}") for i in range(10_000)]
            for future in futures:
                future.add_done_callback(lambda f: done.append(f.id))
            async for _ in as_completed(futures):
                pass
        assert len(done) == len(set(done)) == 10_000
        stats = sched.statistics()
        assert (stats.completed, stats.in_flight, stats.polls) == (10_000, 0, 20_000)
