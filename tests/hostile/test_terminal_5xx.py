"""
A final answer is final, whatever its HTTP status: a 5xx whose body says the
prediction is failed (canceled, cancelled, error, timeout) ends it at once as
`PredictionFailedError`, with the body's error text, or the outer message when
that is empty. ``error`` may be an object: its text is read by one function.
"""

from __future__ import annotations

from typing import Any

import pytest

from atlas_async import (
    InvalidRequestError,
    PredictionFailedError,
    PredictionStatus,
    ServerError,
)
from atlas_async._wire.answer import Answer
from atlas_async._wire.errors import error_text
from atlas_async._wire.parse import read_prediction
from atlas_async._wire.webhook import read_delivery

from .answers import OK_SUBMIT
from .conftest import IMAGE, POLL_PATH, SUBMIT_PATH, client_for
from .server import HostileServer, json_answer


def verdict(
    status: str = "failed",
    error: object = "nsfw content detected",
    message: str = "prediction failed",
) -> dict[str, Any]:
    return {
        "code": 500,
        "message": message,
        "data": {"id": "p1", "status": status, "error": error},
    }


class TestPolls:
    @pytest.mark.parametrize(
        "status", ["failed", "canceled", "cancelled", "error", "timeout", "FAILED"]
    )
    @pytest.mark.parametrize("http_status", [500, 502, 503])
    @pytest.mark.asyncio
    async def test_a_terminal_verdict_in_a_5xx_ends_the_prediction_at_once(
        self, hostile: HostileServer, transport: str, status: str, http_status: int
    ) -> None:
        hostile.route("POST", SUBMIT_PATH, json_answer(OK_SUBMIT))
        hostile.route(
            "GET", POLL_PATH, json_answer(verdict(status), status=http_status)
        )
        async with client_for(hostile, transport) as client:
            future = await client.submit("image", IMAGE, prompt="a fox")
            with pytest.raises(PredictionFailedError) as caught:
                await future
        assert caught.value.error == "nsfw content detected"
        assert caught.value.prediction_id == "p1"
        assert len(hostile.requests("GET")) == 1  # a decision, not retried

    @pytest.mark.parametrize("empty", ["", None, {}])
    @pytest.mark.asyncio
    async def test_the_outer_message_is_the_reason_when_the_error_is_empty(
        self, hostile: HostileServer, empty: object
    ) -> None:
        hostile.route("POST", SUBMIT_PATH, json_answer(OK_SUBMIT))
        hostile.route(
            "GET",
            POLL_PATH,
            json_answer(verdict(error=empty, message="quota of GPU time"), status=500),
        )
        async with client_for(hostile) as client:
            future = await client.submit("image", IMAGE, prompt="a fox")
            with pytest.raises(PredictionFailedError) as caught:
                await future
        assert caught.value.error == "quota of GPU time"
        assert "quota of GPU time" in str(caught.value)

    @pytest.mark.asyncio
    async def test_get_prediction_returns_the_verdict_without_retrying(
        self, hostile: HostileServer
    ) -> None:
        hostile.route("GET", POLL_PATH, json_answer(verdict(), status=500))
        async with client_for(hostile) as client:
            prediction = await client.get_prediction("p1")
        assert prediction.status is PredictionStatus.FAILED
        assert prediction.error == "nsfw content detected"
        assert len(hostile.requests("GET")) == 1

    @pytest.mark.asyncio
    async def test_a_5xx_without_a_verdict_is_still_retried(
        self, hostile: HostileServer
    ) -> None:
        body = {
            "code": 500,
            "message": "oops",
            "data": {"id": "p1", "status": "processing"},
        }
        hostile.route("GET", POLL_PATH, json_answer(body, status=500))
        async with client_for(hostile, max_retries=2) as client:
            with pytest.raises(ServerError):
                await client.get_prediction("p1")
        assert len(hostile.requests("GET")) == 3


class TestErrorText:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            ("plain", "plain"),
            ({"message": "m", "msg": "x"}, "m"),
            ({"msg": "from msg"}, "from msg"),
            ({"error": "from error"}, "from error"),
            ({"detail": "from detail"}, "from detail"),
            ({"reason": "from reason"}, "from reason"),
            ({"error": {"detail": "nested"}}, "nested"),
            ({"message": "", "reason": "second"}, "second"),
            ({"code": 7, "type": "gpu"}, '{"code":7,"type":"gpu"}'),
            (["a", "b"], '["a","b"]'),
            (1039, "1039"),
            ("", None),
            ("   ", None),
            (None, None),
            ({}, None),
            (False, None),
        ],
    )
    def test_error_is_read_from_a_string_or_an_object(
        self, value: object, text: str | None
    ) -> None:
        assert error_text(value) == text

    def test_a_poll_reads_an_error_object(self) -> None:
        body = (
            b'{"code": 200, "data": {"id": "p1", "status": "failed",'
            b' "error": {"detail": "bad prompt"}}}'
        )
        prediction = read_prediction(Answer.read(200, {}, body), now=0.0)
        assert prediction.error == "bad prompt"

    def test_a_webhook_reads_an_error_object(self) -> None:
        delivery = read_delivery(
            {
                "session_id": "p1",
                "event_type": "image.task.terminal",
                "status": "ERROR",
                "payload": {"id": "p1", "status": "failed"},
                "error": {"reason": "worker lost"},
            }
        )
        assert delivery.error == "worker lost"
        assert delivery.prediction.error == "worker lost"

    @pytest.mark.asyncio
    async def test_an_error_answer_reads_an_error_object(
        self, hostile: HostileServer
    ) -> None:
        hostile.route(
            "POST",
            SUBMIT_PATH,
            json_answer({"error": {"detail": "prompt too long"}}, status=400),
        )
        async with client_for(hostile) as client:
            with pytest.raises(InvalidRequestError, match="prompt too long"):
                await client.submit("image", IMAGE, prompt="a fox")
