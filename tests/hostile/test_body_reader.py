"""
`BodyReader`, the pure part of bounded bodies: fed the bytes off the wire, it
undoes Content-Encoding in bounded steps and counts decoded bytes against a cap.
"""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from atlas_async._wire.answer import STEP, BodyReader, BodyRefusedError

from .answers import poll_body


def read_all(reader: BodyReader, wire: bytes) -> bytes:
    reader.feed(wire)
    return reader.finish()


class TestBodyReader:
    """The pure reader under the session: fed raw bytes, bounded, exact."""

    BODY = json.dumps(poll_body(padding="q" * 300_000)).encode()

    @pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
    @pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity", "UTF-8"])
    def test_any_split_of_the_wire_bytes_gives_the_body(
        self, encoding: str, size: int
    ) -> None:
        """Chunk boundaries anywhere (a one-byte zlib header included) change
        nothing; an unknown label is taken as no encoding, like httpx does."""
        if encoding == "gzip":
            wire = gzip.compress(self.BODY)
        elif encoding == "deflate":
            wire = zlib.compress(self.BODY)
        else:
            wire = self.BODY
        reader = BodyReader(encoding, limit=len(self.BODY))
        for start in range(0, len(wire), size):
            reader.feed(wire[start : start + size])
        assert reader.finish() == self.BODY

    def test_one_byte_past_the_cap_is_refused(self) -> None:
        reader = BodyReader("gzip", limit=len(self.BODY) - 1)
        with pytest.raises(BodyRefusedError) as caught:
            read_all(reader, gzip.compress(self.BODY))
        assert caught.value.too_large

    def test_an_announced_length_past_the_cap_is_refused_unread(self) -> None:
        reader = BodyReader(None, limit=100)
        reader.announce("100")
        with pytest.raises(BodyRefusedError, match="100 bytes"):
            reader.announce("101")

    @pytest.mark.parametrize("encoding", ["zstd", "compress", "gzip, zstd"])
    def test_an_encoding_without_a_bounded_decoder_is_refused(
        self, encoding: str
    ) -> None:
        with pytest.raises(BodyRefusedError, match="cannot be decoded") as caught:
            BodyReader(encoding, limit=100)
        assert not caught.value.too_large

    def test_a_bomb_costs_at_most_a_step_past_the_cap(self) -> None:
        """10 MiB of zeros in 10 KB of gzip, under a 1 MiB cap: what was kept
        when it stopped is the cap, give or take one step."""
        reader = BodyReader("gzip", limit=1 << 20)
        with pytest.raises(BodyRefusedError):
            reader.feed(gzip.compress(b"\0" * (10 << 20)))
        assert reader.size <= (1 << 20) + STEP
