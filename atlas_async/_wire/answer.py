"""
`Answer`: one HTTP answer, its body decoded once; `BodyReader`: how its bytes
are collected, bounded.

The session builds an `Answer` as soon as a body is read; the error check and
every parser then work on the decoded value, so no answer is ever decoded twice.

Theory of operation (the body)
------------------------------
`BodyReader` is fed the body's bytes *as they came off the wire* (before any
``Content-Encoding`` is undone) and undoes ``gzip``, ``deflate`` and ``br``
itself, in steps of at most `STEP` output bytes, counting the decoded bytes
against a cap. Past the cap it raises `BodyRefusedError` at once, so neither a
huge body nor a compression bomb (9 MB of gzip inflate to 9 GB) ever costs more
than about the cap in memory: the HTTP libraries' own decoders inflate a whole
network chunk at once (64 KiB of a bomb is 64 MB). An encoding it cannot
decode in bounded steps (``br`` without ``brotli>=1.2``, ``zstd``) is refused
rather than passed on as garbage; `ACCEPT_ENCODING` never asks for one.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

from .errors import Decoded, decode_body

__all__ = [
    "ACCEPT_ENCODING",
    "STEP",
    "Answer",
    "BodyRefusedError",
    "BodyReader",
    "format_bytes",
]

#: The most output one decoding step produces: the bound on what a bomb can
#: allocate beyond the cap.
STEP = 256 * 1024


class Answer(NamedTuple):
    """
    A whole answer: status, headers, the body bytes and their one decoding.

    Example::

        answer = Answer.read(200, {"content-type": "application/json"}, b'{"a": 1}')
        assert answer.decoded.value == {"a": 1} and answer.decoded.is_json

    Attributes:
        status_code: the HTTP status.
        headers: the response headers (case-insensitive lookups when the
            session's; any mapping works for the parsers).
        body: the body bytes, as received.
        decoded: the body as JSON when it is JSON, else its text.
        elapsed: seconds the attempt took, on the client's clock.
        error_checked: the session has already classified this answer as no
            error (an error answer never leaves the session), so parsers do not
            classify it again.
        fingerprint: ``hash(body)`` for a poll's answer (0 otherwise): the next
            poll of the same prediction compares with it.
        unchanged: the body is byte for byte the one the caller said it had
            seen (a 2xx answer, never decoded: ``decoded`` is empty).
    """

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    decoded: Decoded
    elapsed: float = 0.0
    error_checked: bool = False
    fingerprint: int = 0
    unchanged: bool = False

    def __repr__(self) -> str:
        # Never the headers nor the body: either may carry what logs must not.
        return f"Answer(status_code={self.status_code}, elapsed={self.elapsed:.3f})"

    @classmethod
    def read(
        cls,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        elapsed: float = 0.0,
        error_checked: bool = False,
        fingerprint: int = 0,
    ) -> Answer:
        """Decode ``body`` once and keep both forms."""
        decoded = decode_body(body)
        return cls(
            status_code, headers, body, decoded, elapsed, error_checked, fingerprint
        )

    @classmethod
    def same_as_seen(
        cls,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        elapsed: float,
        fingerprint: int,
    ) -> Answer:
        """A 2xx answer identical to one already read: nothing is decoded."""
        return cls(
            status_code, headers, body, _UNDECODED, elapsed, True, fingerprint, True
        )


_UNDECODED = Decoded(None, is_json=False, problem="not decoded: unchanged")


class BodyRefusedError(Exception):
    """
    An answer's body cannot be read within the rules: past the cap, or in an
    encoding that does not decode. The session turns it into a typed error.

    Attributes:
        reason: what went wrong, in words for an error message.
        too_large: the cap was passed (else the encoding is at fault).
    """

    def __init__(self, reason: str, *, too_large: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large
        #: The answer's HTTP status, once the session knows it.
        self.status_code: int | None = None


def format_bytes(size: int) -> str:
    """``8 MiB``, ``1.5 MiB``, ``512 KiB`` or ``100 bytes``, for messages."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


class _Decoder(Protocol):
    name: str

    def decode(self, data: bytes) -> Iterator[bytes]:
        """Output for ``data``, in pieces of at most `STEP` bytes."""
        ...

    def flush(self) -> Iterator[bytes]:
        """What is left once the input has ended."""
        ...


class _Zlib:
    """gzip (``wbits`` 31), zlib-wrapped deflate (15) or raw deflate (-15)."""

    __slots__ = ("_inflate", "name")

    def __init__(self, name: str, wbits: int) -> None:
        self.name = name
        self._inflate: Any = zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> Iterator[bytes]:
        inflate = self._inflate
        out = inflate.decompress(data, STEP)
        yield out
        # A full step may leave output inside zlib even with no input left.
        while inflate.unconsumed_tail or len(out) == STEP:
            out = inflate.decompress(inflate.unconsumed_tail, STEP)
            if not out and not inflate.unconsumed_tail:
                break
            yield out

    def flush(self) -> Iterator[bytes]:
        yield from self.decode(b"")
        yield self._inflate.flush()


class _Deflate:
    """``deflate``: zlib-wrapped as the standard says, or raw as some servers send."""

    __slots__ = ("_head", "_inner", "name")

    def __init__(self) -> None:
        self.name = "deflate"
        self._head = b""
        self._inner: _Zlib | None = None

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inner is None:
            self._head += data
            if len(self._head) < 2:
                return
            first, second = self._head[0], self._head[1]
            wrapped = first & 0x0F == 8 and (first * 256 + second) % 31 == 0
            self._inner = _Zlib("deflate", 15 if wrapped else -15)
            data, self._head = self._head, b""
        yield from self._inner.decode(data)

    def flush(self) -> Iterator[bytes]:
        if self._inner is not None:
            yield from self._inner.flush()


class _Brotli:
    """``br``, with brotli's bounded output (``output_buffer_limit``, 1.2+)."""

    __slots__ = ("_inflate", "name")

    def __init__(self, module: Any) -> None:
        self.name = "br"
        self._inflate = module.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        inflate = self._inflate
        out = inflate.process(data, output_buffer_limit=STEP)
        # Output held back by the limit comes with empty input, until none is
        # left (can_accept_more_data() alone does not say that there is none).
        while out:
            yield out
            out = inflate.process(b"", output_buffer_limit=STEP)

    def flush(self) -> Iterator[bytes]:
        yield from self.decode(b"")


def _bounded_brotli() -> Any:
    """The brotli module when it can decode in bounded steps, else None."""
    try:
        brotli = importlib.import_module("brotli")  # an optional dependency
    except ImportError:
        return None
    decompressor = getattr(brotli, "Decompressor", None)
    if decompressor is None or not hasattr(decompressor, "can_accept_more_data"):
        return None  # before 1.2: no output limit, a bomb would inflate whole
    return brotli


_BROTLI = _bounded_brotli()
# What a decoder raises for bytes that do not decode.
_CORRUPT: tuple[type[Exception], ...] = (zlib.error,) + (
    (_BROTLI.error,) if _BROTLI is not None and hasattr(_BROTLI, "error") else ()
)
_IDENTITY = frozenset({"", "identity"})
# Compressions there is no bounded decoder for: refused, never passed on as if
# they were the body.
_UNDECODABLE = frozenset({"br", "zstd", "compress", "x-compress"})

#: What the SDK's requests accept: only encodings `BodyReader` decodes bounded.
ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI is not None else "gzip, deflate"


def _decoder(coding: str) -> _Decoder | None:
    if coding in ("gzip", "x-gzip"):
        return _Zlib("gzip", zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Deflate()
    if coding == "br" and _BROTLI is not None:
        return _Brotli(_BROTLI)
    if coding in _UNDECODABLE:
        raise BodyRefusedError(
            f"the answer's Content-Encoding {coding!r} cannot be decoded here",
            too_large=False,
        )
    # An unknown label ("UTF-8" from a confused proxy): the bytes as they are,
    # still counted against the cap, as httpx would take them.
    return None


class BodyReader:
    """
    Collects one answer's body up to ``limit`` decoded bytes.

    Example::

        reader = BodyReader(response.headers.get("content-encoding"), limit=8 << 20)
        async for chunk in response.aiter_raw():
            reader.feed(chunk)          # BodyRefusedError past the cap
        body = reader.finish()

    Args:
        content_encoding: the ``Content-Encoding`` header, if any; codings are
            undone last to first, as listed.
        limit: the most decoded bytes allowed (>= 1).

    Raises:
        BodyRefusedError: past the cap, or an encoding that cannot be decoded (also
            from the constructor, for an encoding refused outright).
    """

    __slots__ = ("_chunks", "_decoders", "_limit", "_sizes", "size")

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        decoders: list[_Decoder] = []
        if content_encoding:  # most answers have none: no list to build
            codings = [coding.strip().lower() for coding in content_encoding.split(",")]
            decoders = [
                decoder
                for coding in reversed(codings)
                if coding not in _IDENTITY
                if (decoder := _decoder(coding)) is not None
            ]
        self._decoders = decoders
        self._limit = limit
        self._chunks: list[bytes] = []
        # Bytes each decoding stage has produced: an intermediate stage of a
        # doubly encoded answer is bounded too (twice the cap).
        self._sizes = [0] * len(decoders)
        self.size = 0

    @property
    def identity(self) -> bool:
        """True when the bytes are taken as they come (no encoding to undo)."""
        return not self._decoders

    def announce(self, content_length: str | None) -> None:
        """Refuse at once a body whose ``Content-Length`` is past the cap."""
        if (
            not self._decoders
            and content_length is not None
            and content_length.isdigit()
            and int(content_length) > self._limit
        ):
            self._too_large()

    def feed(self, data: bytes) -> None:
        """Add the next bytes off the wire."""
        if not self._decoders:
            self._collect(data)
        elif data:
            self._push(0, data)

    def finish(self) -> bytes:
        """The whole decoded body, once the wire's bytes have ended."""
        for index, decoder in enumerate(self._decoders):
            for piece in self._guarded(decoder, decoder.flush()):
                self._pass(index, piece)
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _push(self, index: int, data: bytes) -> None:
        decoder = self._decoders[index]
        for piece in self._guarded(decoder, decoder.decode(data)):
            self._pass(index, piece)

    def _pass(self, index: int, piece: bytes) -> None:
        if not piece:
            return
        if index + 1 == len(self._decoders):
            self._collect(piece)
            return
        self._sizes[index] += len(piece)
        if self._sizes[index] > 2 * self._limit:
            self._too_large()
        self._push(index + 1, piece)

    def _collect(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self._limit:
            self._too_large()
        if piece:
            self._chunks.append(piece)

    def _too_large(self) -> None:
        self._chunks.clear()
        raise BodyRefusedError(
            f"the answer is larger than max_answer_bytes ({format_bytes(self._limit)})",
            too_large=True,
        )

    @staticmethod
    def _guarded(decoder: _Decoder, pieces: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from pieces
        except _CORRUPT as exc:
            raise BodyRefusedError(
                f"the answer's {decoder.name} encoding is corrupt ({exc})",
                too_large=False,
            ) from None
