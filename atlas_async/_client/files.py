"""`FileCalls`: uploads, the model catalog and downloads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core.errors import (
    ArgumentTypeError,
)
from .._core.models import ModelInfo, Prediction, UploadedMedia
from .._core.validate import (
    check_filename,
    check_instance,
    check_path,
    describe,
)
from .._ops.operations import Operations
from .._ops.upload import FileInput
from .checks import (
    check_download_options,
)

__all__ = ["FileCalls"]


class FileCalls:
    """The file and catalog calls of `AtlasClient` (see there)."""

    if TYPE_CHECKING:  # provided by AtlasClient

        def _running_operations(self) -> Operations: ...

    async def upload_media(
        self, file: FileInput, *, filename: str | None = None
    ) -> UploadedMedia:
        """
        Upload a local file; pass the returned ``url`` as a model input.

        ``file`` is a path, the bytes themselves, or a binary stream (opened with
        ``"rb"``). The content type is guessed from the filename, then from the
        first bytes. The upload is sent as multipart field ``file``.

        Example::

            media = await client.upload_media("cat.png")
            future = await client.submit_video(model, image=media.url)

        Args:
            file: what to upload.
            filename: the name the server sees; default the path's or stream's
                name, else ``upload`` plus an extension matching the content.

        Raises:
            ConfigurationError: the path does not exist or cannot be read, or the
                stream is not binary.
            ArgumentTypeError: ``file`` or ``filename`` of the wrong type.
            InvalidArgumentError: a ``filename`` with a control character, or
                empty or too long.
            APIError: the server refused it (e.g. 413 above 50 MB).
        """
        operations = self._running_operations()
        if isinstance(file, (str, os.PathLike)):
            check_path(file, "file")
        elif not isinstance(file, (bytes, bytearray, memoryview)) and not callable(
            getattr(file, "read", None)
        ):
            raise ArgumentTypeError(
                "file must be a path, bytes or a binary stream, not"
                f" {type(file).__name__} ({describe(file)})",
                argument="file",
            )
        return await operations.upload(file, check_filename(filename))

    async def list_models(self) -> list[ModelInfo]:
        """
        Return the model catalog. Needs no API key; sends none.

        Example::

            models = await client.list_models()
            videos = [m.model for m in models if m.kind is Kind.VIDEO]
        """
        return await self._running_operations().list_models()

    async def download(
        self,
        prediction: Prediction,
        directory: str | os.PathLike[str],
        **options: Any,
    ) -> list[Path]:
        """
        Save every output of a completed prediction into ``directory``.

        URLs are streamed, ``data:`` URIs and base64 decoded, plain-text outputs
        (transcripts, lyrics) saved as ``.txt``; each file is written atomically
        as ``<id>-<n>.<ext>`` and never replaces a different file. The API key
        goes only to the API's own origin, never to a CDN.

        Example::

            prediction = await client.generate_image(model, prompt="a red fox")
            paths = await client.download(prediction, "out/")

        Args:
            options: ``max_concurrency``, ``max_bytes``, ``retries``,
                ``overwrite``, ``name_prefix`` (see ``docs/batch.md``, Downloads).

        Raises:
            DownloadError: an output could not be fetched or written, is over
                ``max_bytes``, or its file name holds a different file.
            ConfigurationError: the directory cannot be created or written.
            ArgumentTypeError: ``prediction`` is not a `Prediction`, a path or
                option of the wrong type, or an unknown option.
            InvalidArgumentError: an option out of range.
        """
        operations = self._running_operations()
        check_instance(prediction, Prediction, "prediction", "a Prediction")
        check_path(directory, "directory")
        check_download_options(options)
        return await operations.download(prediction, directory, **options)
