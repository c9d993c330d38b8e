"""
What an output is and where it lands: the names (never colliding, never
leaving their folder), the extension from the media type, the URL or the first
bytes, the bounded decoding of base64 and percent-encoded data, and the files
written exclusively, then linked or renamed into place complete.

Part of `download`; kept apart so each module stays readable.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import filecmp
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import unquote_to_bytes, urlsplit

_STEM_LIMIT = 100
_DIGEST = 12  # hex digits of SHA-256 after "~": 48 bits
_VERBATIM = re.compile(r"[a-z0-9][a-z0-9._-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Inline data is decoded this many characters at a time: memory stays at a few
# MiB whatever the size of the output.
_WINDOW = 256 * 1024
_HEAD = 4096  # how much of an output is looked at to tell what it is
_MAX_URL = 64 * 1024
_MAX_DATA_HEADER = 1024  # "data:<media type>;base64," longer than this: malformed
_RAW_BASE64_MIN = 256  # no transcript is 256 characters of base64 alphabet only
_WHITESPACE = " \t\r\n\f\v"
_NO_WHITESPACE = str.maketrans("", "", _WHITESPACE)
_TO_STANDARD_BASE64 = str.maketrans("-_", "+/", _WHITESPACE)
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/]*")
_BASE64_HEAD = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+")
_OTHER_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
# os.link's failures that mean "this file system has no hard links".
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.EOPNOTSUPP}
    | {getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
)
# Content-Type -> extension; an explicit table because the stdlib's mimetypes
# reads the platform's tables, so its answers differ between machines.
# fmt: off
_TYPES = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg",
    "image/webp": ".webp", "image/gif": ".gif", "image/avif": ".avif",
    "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov",
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mp4": ".m4a",
    "audio/ogg": ".ogg", "audio/flac": ".flac", "model/gltf-binary": ".glb",
    "application/json": ".json", "text/plain": ".txt",
}
# fmt: on
# URL suffixes we accept when the Content-Type says nothing useful: media only,
# so a hostile URL cannot pick ".sh" or ".bashrc".
_SUFFIXES = {*_TYPES.values(), ".jpeg", ".m4v", ".obj", ".usdz", ".fbx", ".mkv"}
_MAGIC = (
    (0, b"\x89PNG\r\n\x1a\n", ".png"),
    (0, b"\xff\xd8\xff", ".jpg"),
    (0, b"GIF8", ".gif"),
    (8, b"WEBP", ".webp"),
    (8, b"WAVE", ".wav"),
    (4, b"ftyp", ".mp4"),
    (0, b"ID3", ".mp3"),
    (0, b"OggS", ".ogg"),
    (0, b"fLaC", ".flac"),
    (0, b"glTF", ".glb"),
)


def _safe_stem(raw: str) -> str:
    """
    Return a file-name stem for ``raw`` that cannot leave a directory and that
    no other ``raw`` shares: ``raw`` itself when it is a plain lower-case name,
    else its reduction to safe characters, ``~`` and a digest of ``raw``.
    """
    if len(raw) <= _STEM_LIMIT and _VERBATIM.fullmatch(raw):
        return raw
    readable = _UNSAFE.sub("_", raw).lstrip("._-")[: _STEM_LIMIT - _DIGEST - 1]
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    # "~" is outside the verbatim alphabet: a digested stem never equals a kept one.
    return f"{readable or 'output'}~{digest[:_DIGEST]}"


def _extension(media_type: str | None, url: str | None, data: bytes = b"") -> str:
    if media_type:
        found = _TYPES.get(media_type.split(";")[0].strip().lower())
        if found:
            return found
    if url:
        suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
        if suffix in _SUFFIXES:
            return ".jpg" if suffix == ".jpeg" else suffix
    for offset, magic, ext in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return ext
    return ".bin"


def _is_textual(media_type: str) -> bool:
    media_type = media_type.lower()
    return (
        not media_type
        or media_type.startswith("text/")
        or media_type in ("application/json", "application/xml")
        or media_type.endswith(("+json", "+xml"))
    )


def _looks_like_base64(head: str, length: int) -> bool:
    """
    True when an output starting with ``head`` (``length`` characters in all)
    is raw base64 (``enable_base64_output``) rather than text.
    """
    compact = head.translate(_NO_WHITESPACE)
    if not _BASE64_HEAD.fullmatch(compact):
        return False
    if length >= _RAW_BASE64_MIN:
        return True
    sample = compact.rstrip("=")[:16].translate(_TO_STANDARD_BASE64)
    if len(sample) % 4 == 1:
        return False
    start = base64.b64decode(sample + "=" * (-len(sample) % 4))
    return _extension(None, None, start) != ".bin"


def _base64_extent(text: str, start: int) -> tuple[int, int]:
    """
    Return where the base64 data in ``text[start:]`` ends, before its padding
    and trailing whitespace, and how much padding there was.

    Raises:
        ValueError: more padding than base64 ever has.
    """
    end = len(text)
    while end > start:  # trailing padding and whitespace, a slice at a time
        tail = text[max(start, end - _HEAD) : end]
        kept = tail.rstrip(_WHITESPACE + "=")
        end -= len(tail) - len(kept)
        if kept:
            break
    padding = text.count("=", end)
    if padding > 2:
        raise ValueError("not base64: too much padding")
    return end, padding


def _base64_size(text: str, start: int, end: int) -> int:
    """The exact size ``text[start:end]`` decodes to: one pass, no decoding."""
    chars = end - start - sum(text.count(c, start, end) for c in _WHITESPACE)
    return chars * 3 // 4


def _decode_base64(text: str, start: int, end: int, padding: int) -> Iterator[bytes]:
    """
    Decode ``text[start:end]`` (its ``padding`` already cut off) slice by slice.

    Raises:
        ValueError: a character outside the alphabet, or a length or padding
            that base64 cannot have (found at the end: the caller discards
            what was written).
    """
    carry, total = "", 0
    for at in range(start, end, _WINDOW):
        window = text[at : min(at + _WINDOW, end)].translate(_TO_STANDARD_BASE64)
        if not _BASE64_BODY.fullmatch(window):
            raise ValueError("not base64: a character outside its alphabet")
        total += len(window)
        piece = carry + window
        last = at + _WINDOW >= end
        keep = len(piece) if last else len(piece) - len(piece) % 4
        body, carry = piece[:keep], piece[keep:]
        if body and len(body) % 4 != 1:
            yield base64.b64decode(body + "=" * (-len(body) % 4))
    if total % 4 == 1 or (padding and (total + padding) % 4):
        raise ValueError("not base64: wrong length or padding")


def _decode_percent(text: str, start: int) -> Iterator[bytes]:
    """Percent-decode ``text[start:]`` slice by slice, never splitting an escape."""
    at, end = start, len(text)
    while at < end:
        stop = min(at + _WINDOW, end)
        if stop < end:
            escape = text.rfind("%", stop - 2, stop)
            stop = escape if escape > at else stop
        yield unquote_to_bytes(text[at:stop])
        at = stop


def _encode_text(text: str) -> Iterator[bytes]:
    for at in range(0, len(text), _WINDOW):
        # A lone surrogate (JSON allows "\ud800") cannot be UTF-8: "?" instead.
        yield text[at : at + _WINDOW].encode("utf-8", "replace")


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on Windows, where it is moot.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create(path: Path) -> IO[bytes]:
    return path.open("xb")  # "x" (O_EXCL): never reuse someone else's file


def _commit(handle: IO[bytes], temp: Path, final: Path, overwrite: bool) -> bool:
    """Give the complete ``temp`` its ``final`` name; False if the name is taken."""
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    if overwrite:
        os.replace(temp, final)
    elif not _link(temp, final):
        return False
    _fsync_directory(final.parent)
    return True


def _link(temp: Path, final: Path) -> bool:
    # A hard link never replaces an existing name (nor follows a link there).
    try:
        os.link(temp, final)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # No hard links on this file system: claim the name with O_EXCL, then
        # replace only that empty claim of our own.
        try:
            os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        os.replace(temp, final)
    return True


def _same_file(temp: Path, final: Path) -> bool:
    """True when ``final`` is a regular file (no link) with ``temp``'s bytes."""
    try:
        if not stat.S_ISREG(os.lstat(final).st_mode):
            return False
        return filecmp.cmp(temp, final, shallow=False)
    except OSError:
        return False
