"""
A streaming ``multipart/form-data`` reader: uploads go to disk as they arrive.

Atlas takes uploads far above the 50 MB request-body limit (speech-to-text
audio runs to about 512 MB), so the emulator must not hold an upload in memory.
`FormReceiver` is fed the body chunk by chunk (as the server reads it off the
socket) and writes each file part straight into a hidden temporary file in the
upload folder; only small fields stay in memory. Once the body ends, `finish`
returns the parts; the caller moves a file part's temporary into place or
calls `discard`.

Only what uploads need is read: each part's ``Content-Disposition`` name and
filename and its ``Content-Type``. A malformed body ends the parse early; what
was read by then is returned (an upload without its ``file`` part is a 400).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import attrs

__all__ = ["FormPart", "FormReceiver", "TooLargeError", "boundary_of"]

_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
_MAX_HEADER_BYTES = 16 * 1024
_MAX_FIELD_BYTES = 1024 * 1024


class TooLargeError(Exception):
    """The body went past the receiver's limit (the answer is a 413)."""


@attrs.define(eq=False)
class FormPart:
    """
    One part of a form: a field (``data``) or a file (``path``, on disk).

    Attributes:
        name: the part's form field name.
        filename: the file name the client sent ("" for a plain field).
        content_type: the part's declared ``Content-Type`` ("" if none).
        size: its length in bytes.
        data: a plain field's bytes (empty for a file).
        path: a file part's temporary file, until the caller moves it.
    """

    name: str
    filename: str
    content_type: str
    size: int = 0
    data: bytes = b""
    path: Path | None = None


def _params(header: str) -> dict[str, str]:
    return {
        match[1].lower(): match[2] if match[2] is not None else match[3]
        for match in _PARAM.finditer(header)
    }


def boundary_of(content_type: str) -> bytes | None:
    """Return the boundary of a ``multipart/form-data`` type, else None."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    boundary = _params(content_type).get("boundary")
    return boundary.encode("latin-1") if boundary else None


class FormReceiver:
    """
    Parse one multipart body as it streams in.

    Args:
        boundary: the body's boundary (`boundary_of`).
        directory: returns the folder for file parts (called at the first one).
        limit: the most body bytes accepted; more raises `TooLargeError`.
    """

    def __init__(
        self, boundary: bytes, directory: Callable[[], Path], limit: int
    ) -> None:
        self._delimiter = b"\r\n--" + boundary
        self._directory = directory
        self._limit = limit
        self._received = 0
        # The first boundary has no CRLF before it; pretend it had one.
        self._buffer = bytearray(b"\r\n")
        self._state = "preamble"
        self._parts: list[FormPart] = []
        self._part: FormPart | None = None
        self._file: BinaryIO | None = None
        self._field = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the body."""
        self._received += len(chunk)
        if self._received > self._limit:
            self.discard()
            raise TooLargeError
        if self._state == "done":
            return
        self._buffer += chunk
        while self._step():
            pass

    def finish(self) -> dict[str, FormPart]:
        """End the body; return the complete parts by field name."""
        self._close_part(complete=False)
        self._state = "done"
        return {part.name: part for part in self._parts}

    def discard(self) -> None:
        """Delete every temporary file this receiver wrote."""
        self._close_part(complete=False)
        for part in self._parts:
            if part.path is not None:
                with contextlib.suppress(OSError):
                    part.path.unlink()
        self._parts.clear()
        self._state = "done"

    # -- the state machine ---------------------------------------------------

    def _step(self) -> bool:
        """Advance once; False when more input is needed."""
        buffer, delimiter = self._buffer, self._delimiter
        if self._state == "preamble":
            index = buffer.find(delimiter)
            if index < 0:
                del buffer[: max(0, len(buffer) - len(delimiter) + 1)]
                return False
            del buffer[: index + len(delimiter)]
            self._state = "after-delimiter"
            return True
        if self._state == "after-delimiter":
            if len(buffer) < 2:
                return False
            if buffer[:2] == b"\r\n":
                del buffer[:2]
                self._state = "headers"
                return True
            self._state = "done"  # "--" closes the body; anything else is junk
            return False
        if self._state == "headers":
            index = buffer.find(b"\r\n\r\n")
            if index < 0:
                if len(buffer) > _MAX_HEADER_BYTES:
                    self._state = "done"
                return False
            self._open_part(bytes(buffer[:index]))
            del buffer[: index + 4]
            self._state = "data"
            return True
        if self._state == "data":
            index = buffer.find(delimiter)
            if index < 0:
                keep = len(delimiter) - 1
                if len(buffer) > keep:
                    self._write(bytes(buffer[:-keep]))
                    del buffer[:-keep]
                return False
            self._write(bytes(buffer[:index]))
            del buffer[: index + len(delimiter)]
            self._close_part(complete=True)
            self._state = "after-delimiter"
            return True
        return False

    def _open_part(self, head: bytes) -> None:
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        params = _params(headers.get("content-disposition", ""))
        part = FormPart(
            name=params.get("name", ""),
            filename=params.get("filename", ""),
            content_type=headers.get("content-type", ""),
        )
        if "filename" in params:
            directory = self._directory()
            directory.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=".upload-", dir=directory)
            part.path = Path(name)
            self._file = os.fdopen(handle, "wb")
        self._part = part
        self._field.clear()

    def _write(self, data: bytes) -> None:
        part = self._part
        if part is None or not data:
            return
        part.size += len(data)
        if self._file is not None:
            self._file.write(data)
        elif len(self._field) + len(data) <= _MAX_FIELD_BYTES:
            self._field += data

    def _close_part(self, *, complete: bool) -> None:
        part, self._part = self._part, None
        if self._file is not None:
            self._file.close()
            self._file = None
        if part is None:
            return
        if not complete:  # cut off mid-part: not an upload
            if part.path is not None:
                with contextlib.suppress(OSError):
                    part.path.unlink()
            return
        if part.path is None:
            part.data = bytes(self._field)
        self._parts.append(part)
