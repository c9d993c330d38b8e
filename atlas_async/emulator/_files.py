"""
Uploaded files: kept on disk, named after what the client sent, typed by name.

Atlas classifies an upload by its file name and downstream models check the
URL's extension (docs/wire.md, W9), so the emulator keeps the extension in the
stored name (``upload-000001-photo.heic``) and answers the type its extension
stands for (`classify`), whatever the multipart part declared; only a name
without a known extension falls back to the declared type.

Files live in a folder: beside the state file when the emulator keeps state
(``<state>.files/``), else a private temporary folder removed when the store
is. A file arrives as a hidden temporary in that folder (`_multipart`) and is
renamed into place, so a half-received upload never has a served name.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable
from pathlib import Path

import attrs

__all__ = ["UPLOAD_TYPES", "FileStore", "Upload", "classify"]

UPLOAD_TYPES: dict[str, str] = {
    # images
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
    "svg": "image/svg+xml",
    # video
    "mp4": "video/mp4",
    "m4v": "video/x-m4v",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    # audio
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    # documents and 3D
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "json": "application/json",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "obj": "model/obj",
    "zip": "application/zip",
}
"""The type an upload's extension stands for (lower case, without the dot)."""

_NAME = re.compile(r"^upload-(\d+)-")


def _remove(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def classify(filename: str, declared: str = "") -> str:
    """
    Return the type of an upload called ``filename``: its extension's
    (`UPLOAD_TYPES`), else ``declared`` (the part's own type), else
    ``application/octet-stream``.
    """
    _, dot, extension = filename.rpartition(".")
    known = UPLOAD_TYPES.get(extension.lower()) if dot else None
    return known or declared or "application/octet-stream"


@attrs.frozen
class Upload:
    """A file stored by ``uploadMedia``: its served name, the client's file
    name, its type, where it lies and how big it is."""

    name: str
    filename: str
    content_type: str
    path: Path
    size: int


class FileStore:
    """
    The upload folder and what is in it.

    Args:
        directory: the folder to keep files in (created when first needed);
            None for a private temporary folder, deleted with the store.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._cleanup: weakref.finalize[[str], FileStore] | None = None
        self.uploads: dict[str, Upload] = {}
        self._numbers = itertools.count(1)

    @property
    def directory(self) -> Path:
        """The folder uploads arrive in and are kept in."""
        if self._directory is None:
            name = tempfile.mkdtemp(prefix="atlas-emulator-")
            # Removed with the store (or at exit), quietly: a temporary folder
            # is the store's own business.
            self._cleanup = weakref.finalize(self, _remove, name)
            self._directory = Path(name)
        return self._directory

    def put(
        self, filename: str, content_type: str, *, path: Path | None, data: bytes
    ) -> Upload:
        """
        Keep one uploaded file under a fresh name: the temporary at ``path``
        is renamed into place, or ``data`` written when there is none.
        """
        # A counter, not the random stream: uploads must not shift prediction ids.
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)
        name = f"upload-{next(self._numbers):06d}-{safe[-80:] or 'file'}"
        target = self.directory / name
        if path is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{name}.part")
            temporary.write_bytes(data)
            path = temporary
        os.replace(path, target)
        upload = Upload(
            name=name,
            filename=filename,
            content_type=content_type,
            path=target,
            size=target.stat().st_size,
        )
        self.uploads[name] = upload
        return upload

    def restore(self, uploads: Iterable[Upload]) -> None:
        """Take back uploads kept by an earlier run (their files still there)."""
        for upload in uploads:
            if upload.path.is_file():
                self.uploads[upload.name] = upload
        numbers = [int(m[1]) for u in self.uploads if (m := _NAME.match(u))]
        self._numbers = itertools.count(max(numbers, default=0) + 1)

    def clear(self) -> None:
        """Forget and delete every upload."""
        for upload in self.uploads.values():
            with contextlib.suppress(OSError):
                upload.path.unlink()
        self.uploads.clear()

    def close(self) -> None:
        """Delete the private temporary folder, if this store made one."""
        if self._cleanup is not None:
            self._cleanup()
