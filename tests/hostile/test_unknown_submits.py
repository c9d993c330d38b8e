"""
A sent submit whose answer is unusable may have created (and billed) a
prediction: it is `SubmissionUnknownError`, sent once, and a batch journal
records it ``unknown``, never ``failed``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas_async import (
    InvalidRequestError,
    Journal,
    ServerError,
    SubmissionUnknownError,
)
from atlas_async._batch.journal import ItemState

from .answers import nested
from .conftest import IMAGE, KEY, SUBMIT_PATH, client_for
from .server import Handler, HostileServer, echo_key_answer, json_answer, raw_answer

pytestmark = pytest.mark.asyncio

UNUSABLE: dict[str, Handler] = {
    "no-id": json_answer({"code": 200, "data": {"status": "created"}}),
    "data-not-an-object": json_answer({"code": 200, "data": "p1"}),
    "cut-off-json": raw_answer(200, b'{"code": 200, "data": {"id": "p1"'),
    "non-json": raw_answer(200, b"<html>OK</html>", [("Content-Type", "text/html")]),
    "echoes-the-key": echo_key_answer(),
    "too-deep": json_answer(b'{"data":' + nested(10_000) + b"}"),
    "500": json_answer({"code": 500, "msg": "internal error"}, status=500),
    "502": raw_answer(502, b"<html><title>Bad Gateway</title></html>"),
    "504": raw_answer(504, b""),
    "500-inside-200": json_answer({"code": 500, "msg": "internal error"}),
    "500-failed-no-id": json_answer(
        {"code": 500, "message": "boom", "data": {"status": "failed", "error": "x"}},
        status=500,
    ),
}


@pytest.mark.parametrize("case", list(UNUSABLE))
async def test_an_unusable_submit_answer_is_unknown_and_sent_once(
    hostile: HostileServer, transport: str, case: str
) -> None:
    hostile.route("POST", SUBMIT_PATH, UNUSABLE[case])
    async with client_for(hostile, transport) as client:
        with pytest.raises(SubmissionUnknownError) as caught:
            await client.submit("image", IMAGE, prompt="a fox")
    error = caught.value
    assert len(hostile.requests("POST")) == 1
    assert error.model == IMAGE
    assert error.kind is not None
    assert error.kind.value == "image"
    assert KEY not in str(error)


async def test_a_refusal_is_still_a_refusal(hostile: HostileServer) -> None:
    """A 400 says the server did not take it: no doubt, no unknown."""
    hostile.route(
        "POST", SUBMIT_PATH, json_answer({"code": 400, "msg": "bad"}, status=400)
    )
    async with client_for(hostile) as client:
        with pytest.raises(InvalidRequestError):
            await client.submit("image", IMAGE, prompt="a fox")


async def test_a_503_after_its_retries_is_a_refusal(hostile: HostileServer) -> None:
    """503 is the server saying it did not act: retried, then a ServerError."""
    hostile.route(
        "POST", SUBMIT_PATH, json_answer({"code": 503, "msg": "busy"}, status=503)
    )
    async with client_for(hostile, max_retries=1) as client:
        with pytest.raises(ServerError) as caught:
            await client.submit("image", IMAGE, prompt="a fox")
    assert not isinstance(caught.value, SubmissionUnknownError)
    assert len(hostile.requests("POST")) == 2


@pytest.mark.parametrize("case", ["no-id", "non-json", "500", "504"])
async def test_the_batch_journal_records_an_unusable_submit_unknown(
    hostile: HostileServer, tmp_path: Path, case: str
) -> None:
    """Through the public batch API: the item is ``unknown`` in the journal
    and a second run does not send it again."""
    hostile.route("POST", SUBMIT_PATH, UNUSABLE[case])
    path = tmp_path / "run.db"
    requests = [{"kind": "image", "model": IMAGE, "prompt": "a fox"}]
    async with client_for(hostile) as client:
        first = [r async for r in client.generate_many(requests, journal=path)]
        again = [r async for r in client.generate_many(requests, journal=path)]
    assert isinstance(first[0].error, SubmissionUnknownError)
    assert isinstance(again[0].error, SubmissionUnknownError)
    async with Journal(path) as journal:
        assert (await journal.get(0)).state is ItemState.UNKNOWN
    assert len(hostile.requests("POST")) == 1
