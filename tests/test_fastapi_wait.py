"""The example app's ``/wait`` for an id its worker has not seen.

Another worker (or another process) submitted it, or nobody did: one GET tells
the two apart, so an unknown id is 404 at once instead of a 202 "unknown" after
the whole timeout, and a prediction that already ended answers at once.
"""

from __future__ import annotations

import anyio
import pytest
from test_fastapi import MODEL, SLOW, client_options, example_stack

from atlas_async import AtlasClient, Kind

pytestmark = pytest.mark.asyncio

# Longer than any of these answers may take; the old behaviour took all of it.
WAIT = 20.0


async def test_an_unknown_id_is_404_at_once() -> None:
    """Problem 5: ``/predictions/<unknown>/wait`` answers 404, not 202 later."""
    async with example_stack(webhooks=False) as stack:
        with anyio.fail_after(WAIT / 2):
            answer = await stack.http.get(
                "/predictions/nope/wait", params={"timeout": WAIT}
            )
        assert answer.status_code == 404
        assert answer.json()["error"] == "NotFoundError"
        assert stack.client.statistics().in_flight == 0  # nothing left polling


async def test_a_prediction_that_ended_elsewhere_answers_at_once() -> None:
    """Submitted by another client and done: 200 with the outputs, one GET."""
    async with example_stack(webhooks=False) as stack:
        other_options = client_options(stack.emulator, stack.clock)
        async with AtlasClient(**other_options) as other:
            future = await other.submit(Kind.IMAGE, MODEL, params={"prompt": "a"})
            prediction_id = future.id
        stack.clock.advance(5.0)  # past the model's 4 s
        before = stack.polls()
        with anyio.fail_after(WAIT / 2):
            answer = await stack.http.get(
                f"/predictions/{prediction_id}/wait", params={"timeout": WAIT}
            )
        assert answer.status_code == 200
        assert answer.json()["status"] == "completed"
        assert stack.polls() - before == 1


async def test_a_running_prediction_from_elsewhere_is_still_waited_for() -> None:
    """Known to Atlas, not finished: the wait goes on to its timeout (202)."""
    async with example_stack(webhooks=False) as stack:
        async with AtlasClient(**client_options(stack.emulator, stack.clock)) as other:
            future = await other.submit(Kind.IMAGE, SLOW, params={"prompt": "a"})
            prediction_id = future.id
        answer = await stack.http.get(
            f"/predictions/{prediction_id}/wait", params={"timeout": 0.05}
        )
        assert answer.status_code == 202
        assert answer.json() == {"id": prediction_id, "status": "processing"}
