"""
Nothing but an `AtlasError` (or cancellation) escapes one prediction's handling
into the scheduler: a bug while handling one prediction fails that prediction,
never the client or its other predictions.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

from atlas_async import (
    AtlasError,
    PredictionStatus,
    UnexpectedResponseError,
)
from atlas_async._core.models import Kind, Prediction
from atlas_async._core.policies import FixedPolicy
from atlas_async._ops.operations import PollMemo
from atlas_async._ops.scheduler import Scheduler
from atlas_async.testing import FakeClock, FakeSource

from .answers import OK_SUBMIT, nested, poll_body
from .conftest import IMAGE, POLL_PATH, SUBMIT_PATH, client_for
from .server import HostileServer, json_answer, sequence

pytestmark = pytest.mark.asyncio


class BuggySource(FakeSource):
    """A source whose poll of one id raises what no poll should."""

    def __init__(self, clock: FakeClock, bug: BaseException) -> None:
        super().__init__(clock)
        self.bug = bug

    async def fetch(
        self, prediction_id: str, memo: PollMemo | None = None
    ) -> Prediction:
        if prediction_id == "p0":
            raise self.bug
        return await super().fetch(prediction_id)


@pytest.mark.parametrize(
    "bug",
    [RecursionError("maximum recursion depth"), KeyError("id"), AttributeError("x")],
    ids=["recursion", "key", "attribute"],
)
async def test_a_bug_in_one_poll_fails_that_prediction_only(
    bug: BaseException,
) -> None:
    """p0's poll raises a non-AtlasError: p0 fails with an AtlasError chained
    from it; p1 completes; the scheduler goes on taking submits."""
    clock = FakeClock()
    source = BuggySource(clock, bug)
    scheduler = Scheduler(
        source, clock=clock, rng=random.Random(1), poll=FixedPolicy(1.0)
    )
    async with clock.autojump(), anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        bad = await scheduler.submit(Kind.IMAGE, IMAGE, {}, timeout=600)
        good = await scheduler.submit(Kind.IMAGE, IMAGE, {}, timeout=600)
        with pytest.raises(AtlasError) as caught:
            await bad
        done = await good
        later = await scheduler.submit(Kind.IMAGE, IMAGE, {}, timeout=600)
        assert (await later).status is PredictionStatus.COMPLETED
        await scheduler.aclose()
    assert caught.value.__cause__ is bug
    assert caught.value.prediction_id == "p0"
    assert "p0" in str(caught.value)
    assert done.status is PredictionStatus.COMPLETED


async def test_a_deeply_nested_poll_answer_never_closes_the_client(
    hostile: HostileServer, transport: str
) -> None:
    """The failure that once closed the client: one prediction's poll answer
    nested 100,000 deep. Only that prediction fails; the other completes."""
    hostile.route(
        "POST",
        SUBMIT_PATH,
        sequence(
            json_answer(OK_SUBMIT),
            json_answer({**OK_SUBMIT, "data": {"id": "p2", "status": "created"}}),
        ),
    )
    hostile.route("GET", "/api/v1/model/prediction/p1", json_answer(nested(100_000)))
    hostile.route("GET", POLL_PATH, json_answer(poll_body("p2")))
    options: dict[str, Any] = {"max_retries": 0}
    async with client_for(hostile, transport, **options) as client:
        first = await client.submit("image", IMAGE, prompt="deep")
        second = await client.submit("image", IMAGE, prompt="fine")
        done = await second
        with pytest.raises(UnexpectedResponseError):
            await first
        assert client.statistics().in_flight == 0
    assert done.id == "p2"
