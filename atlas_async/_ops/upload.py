"""
What `AtlasClient.upload_media` sends: the bytes of a path, a buffer or a binary
stream, a filename, and a content type.

The content type comes from the filename when it has a known extension, else from
the first bytes (PNG, JPEG, GIF, WebP, WAV, MP4, WebM, MP3, Ogg, FLAC), else
``application/octet-stream``. Reading a path or a stream never blocks the event
loop: paths go through ``anyio.Path``, streams through a worker thread.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import IO

import anyio
import anyio.to_thread

from .._core.errors import ConfigurationError

__all__ = ["FileInput", "read_upload"]

FileInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""What `AtlasClient.upload_media` accepts: a path, the bytes, or a binary stream."""


async def read_upload(file: FileInput, filename: str | None) -> tuple[bytes, str, str]:
    """
    Return the bytes to upload, the filename to send, and its content type.

    Raises:
        ConfigurationError: the path cannot be read, the stream is not binary,
            or ``file`` is none of the accepted types.
    """
    data, name = await _read_file(file)
    upload_name, content_type = _name_and_type(filename or name, data)
    return data, upload_name, content_type


async def _read_file(file: FileInput) -> tuple[bytes, str | None]:
    """Return the bytes to upload and the name they came with, if any."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        return bytes(file), None
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        try:
            return await anyio.Path(path).read_bytes(), path.name
        except OSError as exc:
            raise ConfigurationError(
                f"cannot upload {str(path)!r}: {exc.strerror or exc}"
            ) from exc
    read = getattr(file, "read", None)
    if read is None:
        raise ConfigurationError(
            "upload_media takes a path, bytes or a binary stream, not"
            f" {type(file).__name__}"
        )
    # A file object's read() blocks: keep it off the event loop.
    data = await anyio.to_thread.run_sync(read)
    if not isinstance(data, (bytes, bytearray)):
        raise ConfigurationError(
            "upload_media needs a binary stream: open the file with 'rb'"
        )
    name = getattr(file, "name", None)
    return bytes(data), os.path.basename(name) if isinstance(name, str) else None


# Leading bytes of common media formats, for uploads that come without a name:
# (offset, signature, content type, extension).
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (0, b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (0, b"GIF8", "image/gif", ".gif"),
    (8, b"WEBP", "image/webp", ".webp"),
    (8, b"WAVE", "audio/wav", ".wav"),
    (4, b"ftyp", "video/mp4", ".mp4"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm", ".webm"),
    (0, b"ID3", "audio/mpeg", ".mp3"),
    (0, b"OggS", "audio/ogg", ".ogg"),
    (0, b"fLaC", "audio/flac", ".flac"),
)


def _name_and_type(name: str | None, data: bytes) -> tuple[str, str]:
    """The filename to send and its content type: by name, else by content."""
    base = os.path.basename(name) if name else ""
    guessed = mimetypes.guess_type(base)[0] if base else None
    if guessed:
        return base, guessed
    for offset, magic, content_type, extension in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return base or "upload" + extension, content_type
    return base or "upload", "application/octet-stream"
