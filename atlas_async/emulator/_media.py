"""
Real media files, made from nothing but the standard library.

Every output is a pure function of a *key* (the prediction's model, prompt, seed
and output index), so the same prediction always serves the same bytes, and two
prompts give two different files:

* `png`: an RGB PNG (signature, IHDR, one zlib IDAT, IEND) written with ``zlib``
  and ``struct``: a diagonal gradient between two colours taken from the key's
  SHA-256, crossed by stripes whose spacing also comes from the key. The size
  follows the request's ``size`` (``W*H``) scaled down to fit in
  `MAX_IMAGE_SIDE` pixels, 64x64 by default.
* `wav`: one second of 8 kHz, 16-bit mono PCM written with the ``wave`` module:
  a sine tone whose pitch (220-880 Hz) comes from the key.
* videos: see `atlas_async.emulator._mp4`.
"""

from __future__ import annotations

import array
import hashlib
import io
import math
import re
import struct
import sys
import wave
import zlib

__all__ = ["MAX_IMAGE_SIDE", "digest", "image_size", "png", "wav"]

MAX_IMAGE_SIDE = 128
_DEFAULT_SIDE = 64
_SIZE = re.compile(r"^\s*(\d+)\s*\*\s*(\d+)\s*$")


def digest(*parts: object) -> bytes:
    """Return the SHA-256 of ``parts`` joined unambiguously: the media's seed."""
    joined = "\x1f".join(str(part) for part in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).digest()


def image_size(size: object) -> tuple[int, int]:
    """
    Return the (width, height) to draw for a request's ``size`` field.

    ``"W*H"`` keeps its aspect ratio, scaled down to fit `MAX_IMAGE_SIDE`;
    anything else (absent, ``"1:1"``, ...) gives the 64x64 default.
    """
    match = _SIZE.match(size) if isinstance(size, str) else None
    if match is None:
        return (_DEFAULT_SIDE, _DEFAULT_SIDE)
    width, height = max(1, int(match[1])), max(1, int(match[2]))
    scale = min(1.0, MAX_IMAGE_SIDE / max(width, height))
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def png(key: bytes, width: int = _DEFAULT_SIDE, height: int = _DEFAULT_SIDE) -> bytes:
    """
    Return an RGB PNG of ``width`` x ``height`` drawn from ``key``.

    Args:
        key: any bytes (use `digest`); different keys give different pixels.
        width: pixels, at least 1.
        height: pixels, at least 1.
    """
    first, second = key[0:3], key[3:6]
    stripe = 4 + key[6] % 12
    span = max(1, width + height - 2)
    rows = []
    for y in range(height):
        row = bytearray(1 + 3 * width)  # filter byte 0 (None), then RGB triplets
        for x in range(width):
            t = (x + y) / span
            bright = 40 if ((x + 2 * y) // stripe) % 2 else 0
            offset = 1 + 3 * x
            for c in range(3):
                value = first[c] + (second[c] - first[c]) * t + bright
                row[offset + c] = min(255, int(value))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(b"".join(rows), 6)),
            _chunk(b"IEND", b""),
        )
    )


def wav(key: bytes, seconds: float = 1.0, rate: int = 8000) -> bytes:
    """Return a mono 16-bit PCM WAV: a sine tone whose pitch comes from ``key``."""
    frequency = 220.0 + (int.from_bytes(key[:2], "big") % 661)
    count = max(1, int(seconds * rate))
    step = 2.0 * math.pi * frequency / rate
    samples = array.array("h", (int(12000 * math.sin(step * i)) for i in range(count)))
    if sys.byteorder == "big":  # pragma: no cover - WAV samples are little-endian
        samples.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()
