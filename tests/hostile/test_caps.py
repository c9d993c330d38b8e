"""
Bounded bodies: an API answer is read up to ``max_answer_bytes`` counting the
bytes *after* ``Content-Encoding`` is undone, and refused past it, for that one
request, without reading (or inflating) the rest.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib

import pytest

from atlas_async import (
    ConfigurationError,
    SubmissionUnknownError,
    UnexpectedResponseError,
)

from .answers import poll_body
from .conftest import IMAGE, POLL_PATH, SUBMIT_PATH, client_for
from .server import (
    HostileServer,
    MiB,
    bomb_answer,
    huge_answer,
    json_answer,
    raw_answer,
)

pytestmark = pytest.mark.asyncio

#: What a client may read past its cap before it hangs up: the socket buffers
#: of both ends on loopback (a few MiB each) and the transport's read chunk.
SLACK = 32 * MiB


class TestHugeAnswers:
    @pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
    async def test_a_400_mb_answer_is_refused_after_reading_about_the_cap(
        self, hostile: HostileServer, transport: str, chunked: bool
    ) -> None:
        """400 MB (announced or not) costs one typed error naming the cap, and
        the client hangs up after reading about the cap, not 400 MB."""
        hostile.route("GET", POLL_PATH, huge_answer(400 * MiB, chunked=chunked))
        async with client_for(hostile, transport) as client:
            with pytest.raises(UnexpectedResponseError) as caught:
                await client.get_prediction("p1")
        await hostile.settled()
        assert "max_answer_bytes" in str(caught.value)
        assert "8 MiB" in str(caught.value)
        [conn] = hostile.connections  # refused, not retried
        assert conn.hung_up
        assert conn.bytes_sent < 8 * MiB + SLACK

    async def test_the_cap_is_an_option(self, hostile: HostileServer) -> None:
        """A 3 MiB poll answer is read whole by default, refused under a 1 MiB cap."""
        body = poll_body(padding="x" * (3 * MiB))
        hostile.route("GET", POLL_PATH, json_answer(body))
        async with client_for(hostile) as client:
            prediction = await client.get_prediction("p1")
        assert prediction.outputs == ("https://cdn.test/p1.png",)
        async with client_for(hostile, max_answer_bytes=1 * MiB) as client:
            with pytest.raises(UnexpectedResponseError, match="1 MiB"):
                await client.get_prediction("p1")

    @pytest.mark.parametrize("value", [0, -1, True, 1.5, "8MiB", None])
    async def test_a_bad_cap_is_refused_before_anything_is_sent(
        self, value: object
    ) -> None:
        """max_answer_bytes is an int >= 1; anything else is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="max_answer_bytes"):
            client_for(HostileServer(), max_answer_bytes=value)

    async def test_a_submit_answered_past_the_cap_is_unknown_and_sent_once(
        self, hostile: HostileServer, transport: str
    ) -> None:
        """The submit was sent: an answer too large to read may hide a new
        prediction, so it is unknown, never re-sent."""
        hostile.route("POST", SUBMIT_PATH, huge_answer(100 * MiB, chunked=True))
        async with client_for(hostile, transport) as client:
            with pytest.raises(SubmissionUnknownError, match="max_answer_bytes"):
                await client.submit("image", IMAGE, prompt="a fox")
        assert len(hostile.requests("POST")) == 1


class TestBombs:
    @pytest.mark.parametrize("encoding", ["gzip", "deflate"])
    async def test_a_compression_bomb_is_refused_counting_decoded_bytes(
        self, hostile: HostileServer, transport: str, encoding: str
    ) -> None:
        """1 MB of gzip (deflate) that inflates to 1 GiB: refused at the cap,
        with at most a few times the cap ever allocated."""
        hostile.route("GET", POLL_PATH, bomb_answer(encoding, 1024 * MiB))
        async with client_for(hostile, transport) as client:
            tracemalloc.start()
            try:
                with pytest.raises(UnexpectedResponseError) as caught:
                    await client.get_prediction("p1")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert "max_answer_bytes" in str(caught.value)
        assert peak < 40 * MiB
        assert len(hostile.connections) == 1

    async def test_a_brotli_bomb_is_refused_counting_decoded_bytes(
        self, hostile: HostileServer, transport: str
    ) -> None:
        """Content-Encoding br is inflated in bounded steps too."""
        pytest.importorskip("brotli")
        hostile.route("GET", POLL_PATH, bomb_answer("br", 512 * MiB))
        async with client_for(hostile, transport) as client:
            tracemalloc.start()
            try:
                with pytest.raises(UnexpectedResponseError) as caught:
                    await client.get_prediction("p1")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert "max_answer_bytes" in str(caught.value)
        assert peak < 40 * MiB

    @pytest.mark.parametrize(
        "encoding", ["gzip", "deflate", "raw-deflate", "br", "gzip, gzip"]
    )
    async def test_a_compressed_answer_within_the_cap_is_read(
        self, hostile: HostileServer, transport: str, encoding: str
    ) -> None:
        """Counting decoded bytes changes nothing for an honest compressed answer
        (deflate comes zlib-wrapped, or raw as some servers send it)."""
        body = json.dumps(poll_body(padding="y" * (2 * MiB))).encode()
        for coding in reversed([c.strip() for c in encoding.split(",")]):
            if coding == "gzip":
                body = gzip.compress(body)
            elif coding == "deflate":
                body = zlib.compress(body)
            elif coding == "raw-deflate":
                raw = zlib.compressobj(6, zlib.DEFLATED, -15)
                body = raw.compress(body) + raw.flush()
            else:
                body = pytest.importorskip("brotli").compress(body)
        encoding = encoding.replace("raw-deflate", "deflate")
        hostile.route(
            "GET",
            POLL_PATH,
            raw_answer(
                200,
                body,
                [("Content-Type", "application/json"), ("Content-Encoding", encoding)],
            ),
        )
        async with client_for(hostile, transport) as client:
            prediction = await client.get_prediction("p1")
        assert prediction.outputs == ("https://cdn.test/p1.png",)

    async def test_a_corrupt_compressed_answer_is_a_typed_error(
        self, hostile: HostileServer, transport: str
    ) -> None:
        """gzip that does not inflate is an AtlasError, not zlib's or httpx's."""
        hostile.route(
            "GET",
            POLL_PATH,
            raw_answer(
                200,
                b"\x1f\x8b\x08\x00garbage-garbage",
                [("Content-Encoding", "gzip")],
            ),
        )
        async with client_for(hostile, transport, max_retries=0) as client:
            with pytest.raises(UnexpectedResponseError, match="gzip"):
                await client.get_prediction("p1")
