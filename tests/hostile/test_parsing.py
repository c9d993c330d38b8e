"""
Bounded parsing: JSON nested past `MAX_JSON_DEPTH` (or otherwise pathological)
fails its own request with `UnexpectedResponseError`; never `RecursionError`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from atlas_async import ServerError, UnexpectedResponseError
from atlas_async._wire.answer import Answer
from atlas_async._wire.errors import MAX_JSON_DEPTH, decode_body

from .answers import nested, poll_body
from .conftest import POLL_PATH, client_for
from .server import HostileServer, json_answer


def deep_object(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


class TestDecode:
    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
    def test_nesting_past_the_limit_is_not_json(self, depth: int) -> None:
        """Too deep: kept as text with the reason, never a RecursionError."""
        decoded = decode_body(b'{"data":' + nested(depth) + b"}")
        assert not decoded.is_json
        assert decoded.problem is not None
        assert "nested deeper than" in decoded.problem

    def test_nesting_at_the_limit_is_json(self) -> None:
        """The whole document may be MAX_JSON_DEPTH containers deep."""
        body = json.dumps(deep_object(MAX_JSON_DEPTH - 1)).encode()
        decoded = decode_body(body)
        assert decoded.is_json
        assert decoded.problem is None

    def test_many_brackets_side_by_side_are_not_deep(self) -> None:
        """Width is not depth: 100,000 sibling arrays are fine."""
        body = b"[" + b",".join([b"[]"] * 100_000) + b"]"
        assert decode_body(body).is_json

    def test_brackets_inside_strings_do_not_count(self) -> None:
        body = json.dumps({"text": "[" * 10_000}).encode()
        assert decode_body(body).is_json

    @pytest.mark.parametrize(
        "body",
        [
            b'{"n": ' + b"9" * 5_000 + b"}",  # past Python's int digits limit
            b'{"n": NaN}',
            b'{"n": -Infinity}',
            b"\xff\xfe\x00garbage",
        ],
        ids=["huge-int", "nan", "infinity", "bad-utf8"],
    )
    def test_pathological_values_are_not_json(self, body: bytes) -> None:
        """Non-standard or unreadable values leave the body as text."""
        assert not decode_body(body).is_json

    def test_an_answer_too_deep_has_its_reason(self) -> None:
        answer = Answer.read(200, {}, nested(5_000))
        assert not answer.decoded.is_json


class TestOverHttp:
    @pytest.mark.asyncio
    async def test_a_deeply_nested_poll_answer_fails_that_request(
        self, hostile: HostileServer, transport: str
    ) -> None:
        """100,000 nested arrays: UnexpectedResponseError saying why."""
        hostile.route(
            "GET", POLL_PATH, json_answer(b'{"data":' + nested(100_000) + b"}")
        )
        async with client_for(hostile, transport) as client:
            with pytest.raises(UnexpectedResponseError, match="nested deeper"):
                await client.get_prediction("p1")

    @pytest.mark.asyncio
    async def test_nesting_within_the_limit_reaches_the_caller(
        self, hostile: HostileServer
    ) -> None:
        """A poll answer nested just under the limit is read, kept and shown."""
        inner = deep_object(MAX_JSON_DEPTH - 4)
        hostile.route("GET", POLL_PATH, json_answer(poll_body(input=inner)))
        async with client_for(hostile) as client:
            prediction = await client.get_prediction("p1")
        assert prediction.outputs == ("https://cdn.test/p1.png",)
        assert repr(prediction)

    @pytest.mark.asyncio
    async def test_a_deeply_nested_error_answer_is_still_its_status(
        self, hostile: HostileServer
    ) -> None:
        """A 500 whose body is too deep is a ServerError, as its status says."""
        hostile.route(
            "GET",
            POLL_PATH,
            json_answer(b'{"msg":' + nested(50_000) + b"}", status=500),
        )
        async with client_for(hostile, max_retries=0) as client:
            with pytest.raises(ServerError):
                await client.get_prediction("p1")
