"""
Saving a prediction's outputs to disk, safely.

Theory of operation
-------------------
Every output (an http(s) URL, a ``data:`` URI, or raw base64) becomes one file
named ``<stem>-<index><ext>`` in the target directory. The stem is our own: the
``name_prefix`` or the prediction id, reduced to ``[A-Za-z0-9._-]``, without a
leading dot and at most 100 characters. Only the extension comes from outside
(the Content-Type, else the URL's suffix if it is a known media suffix, else
magic bytes for inline data, else ``.bin``), always from a fixed list: no name
can leave the directory or look like a script, whatever the server sends.

A file is written to a hidden temporary in the same directory
(``.<name>.part-<random>``), fsynced, then ``os.replace``-d onto its final name,
so the final name only ever holds a complete file; the directory is fsynced so
the rename survives a crash. Any error or cancellation deletes the temporary.
Names are deterministic, so a re-run overwrites atomically; the batch journal,
not the file system, is what tells a re-run which outputs are already saved.

Downloads run concurrently (``max_concurrency``); 5xx, 429 and network errors
are retried ``retries`` times by the SDK's one retry loop (``_net.retrying``):
jittered exponential backoff on the injected `Clock`, never shorter than a
``Retry-After`` the output host sends (up to a minute). Other answers (404:
the output URL may have expired) fail at once. Size is capped both by
Content-Length and by counting streamed bytes.

The ``Authorization`` header is sent only to ``api_origin``: every other request
has it removed (and the client's ``auth`` disabled), and redirects are followed
by hand, never with credentials, so the key never reaches a CDN.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import random
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import anyio
import anyio.to_thread
import attrs
import httpx

from .._core.clock import Clock
from .._core.errors import ConfigurationError, DownloadError
from .._core.models import Prediction
from .._core.retry import BackoffPolicy, Retry
from .._net.clock import AnyioClock
from .._net.retrying import RetryableError, retrying
from .._wire.errors import parse_retry_after

__all__ = ["DEFAULT_MAX_BYTES", "download_outputs", "prepare_directory"]

DEFAULT_MAX_BYTES = 2 * 1024**3
"""The default size cap per output: 2 GiB (long 4K videos stay well under)."""

_CHUNK = 64 * 1024
_MAX_REDIRECTS = 10
# 0.5 s, 1 s, 2 s, ... up to 30 s, minus up to half at random; Retry-After is a
# floor up to a minute.
_BACKOFF = BackoffPolicy(
    initial=0.5, factor=2.0, cap=30.0, jitter=0.5, retry_after_cap=60.0
)
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_STEM_LIMIT = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
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


class _TryAgainError(Exception):
    """Why one attempt failed in a way worth another try."""

    def __init__(self, why: str, status_code: int | None = None) -> None:
        super().__init__(why)
        self.status_code = status_code


def _again(
    why: str,
    status_code: int | None = None,
    retry_after: float | None = None,
    cause: BaseException | None = None,
) -> RetryableError:
    reason = _TryAgainError(why, status_code)
    reason.__cause__ = cause  # what the DownloadError is raised from, at the end
    return RetryableError(reason, retry_after)


def _display(url: str) -> str:
    # No query (signed URLs carry tokens there) and no user:password@.
    try:
        parts = urlsplit(url)
    except ValueError:
        return "an invalid URL"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _origin(url: str) -> tuple[str, str, int] | None:
    """Return (scheme, host, port) of an http(s) URL with a host, else None."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    if default is None or not parsed.host:
        return None
    return parsed.scheme, parsed.host.lower(), parsed.port or default


def _safe_stem(raw: str) -> str:
    """Reduce ``raw`` to a file-name stem that cannot leave a directory."""
    stem = _UNSAFE.sub("_", raw).lstrip("._-")[:_STEM_LIMIT]
    return stem or "output"


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


def _b64decode(text: str) -> bytes:
    cleaned = "".join(text.split()).translate(str.maketrans("-_", "+/"))
    cleaned += "=" * (-len(cleaned) % 4)  # servers sometimes drop the padding
    return base64.b64decode(cleaned, validate=True)


def prepare_directory(directory: Path) -> Path:
    """
    Create ``directory`` if needed and check it is writable; return it absolute.

    Raises:
        ConfigurationError: it cannot be created or written.
    """
    target = directory.absolute()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the download directory {target}: {exc.strerror or exc}"
        ) from None
    if not os.access(target, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"the download directory {target} is not writable: choose another one"
        )
    return target


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on Windows, where it is moot.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@attrs.define(kw_only=True)
class _Downloader:
    """One prediction's download: the settings, and one method per step."""

    prediction: Prediction
    directory: Path
    stem: str
    http: httpx.AsyncClient
    api_origin: tuple[str, str, int] | None
    max_bytes: int | None
    retries: int
    clock: Clock
    rng: random.Random

    def error(self, message: str, index: int, **extra: Any) -> DownloadError:
        return DownloadError(
            message, prediction_id=self.prediction.id, output_index=index, **extra
        )

    def too_large(self, index: int) -> DownloadError:
        return self.error(
            f"output {index} is larger than {self.max_bytes} bytes", index
        )

    async def save(self, index: int, output: str) -> Path:
        if output[:8].lower().startswith(("http://", "https://")):
            return await self.fetch(index, output)
        media_type, data = self.decode(index, output)
        ext = _extension(media_type, None, data)
        return await self.write(index, ext, _once(data))

    def decode(self, index: int, output: str) -> tuple[str | None, bytes]:
        media_type, payload, encoded = None, output, True
        if output[:5].lower() == "data:":
            header, comma, payload = output[5:].partition(",")
            if not comma:
                raise self.error(f"output {index} is a malformed data URI", index)
            media_type, *flags = header.split(";")
            encoded = "base64" in (f.strip().lower() for f in flags)
        if not payload.strip():
            raise self.error(f"output {index} is empty", index)
        try:
            data = _b64decode(payload) if encoded else unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            raise self.error(
                f"output {index} is not an http(s) URL, a data URI or valid base64",
                index,
            ) from None
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise self.too_large(index)
        return media_type or None, data

    async def fetch(self, index: int, url: str) -> Path:
        attempts = 0

        async def once() -> Path:
            nonlocal attempts
            attempts += 1
            return await self.fetch_once(index, url)

        retry = Retry(attempts=self.retries + 1, backoff=_BACKOFF)
        try:
            return await retrying(once, retry=retry, clock=self.clock, rng=self.rng)
        except _TryAgainError as exc:
            raise self.error(
                f"could not download output {index} from {_display(url)} "
                f"after {attempts} attempt(s): {exc}",
                index,
                url=_display(url),
                status_code=exc.status_code,
            ) from exc.__cause__

    async def fetch_once(self, index: int, url: str) -> Path:
        for hop in range(_MAX_REDIRECTS + 1):
            origin = _origin(url)
            if origin is None:
                raise self.error(
                    f"refusing to fetch {_display(url)}: not an http(s) URL", index
                )
            # Credentials only on the first hop, and only to the API's own origin.
            authorized = hop == 0 and origin == self.api_origin
            request = self.http.build_request("GET", url)
            if not authorized:
                request.headers.pop("Authorization", None)
            try:
                if authorized:
                    response = await self.http.send(
                        request, stream=True, follow_redirects=False
                    )
                else:  # auth=None also turns off an `auth=` set on the client
                    response = await self.http.send(
                        request, stream=True, follow_redirects=False, auth=None
                    )
            except httpx.TransportError as exc:
                raise _again(f"{type(exc).__name__}: {exc}", cause=exc) from exc
            try:
                location = response.headers.get("Location")
                if response.is_redirect and location:
                    url = urljoin(url, location)
                    continue
                return await self.receive(index, url, response)
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
        raise self.error(f"too many redirects for output {index}", index)

    async def receive(self, index: int, url: str, response: httpx.Response) -> Path:
        status = response.status_code
        if status in _RETRY_STATUS:
            wait = parse_retry_after(response.headers, None, now=self.clock.wall())
            raise _again(f"HTTP {status}", status, wait)
        if not response.is_success:
            hint = ": the output URL may have expired" if status in (403, 404) else ""
            raise self.error(
                f"output {index} at {_display(url)} answered HTTP {status}{hint}",
                index,
                url=_display(url),
                status_code=status,
            )
        length = response.headers.get("Content-Length", "")
        limit = self.max_bytes
        if limit is not None and length.isdigit() and int(length) > limit:
            raise self.too_large(index)
        ext = _extension(response.headers.get("Content-Type"), url)
        try:
            return await self.write(index, ext, response.aiter_bytes(_CHUNK))
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _again(
                f"{type(exc).__name__} while reading: {exc}", cause=exc
            ) from exc

    async def write(self, index: int, ext: str, chunks: AsyncIterator[bytes]) -> Path:
        final = self.directory / f"{self.stem}-{index}{ext}"
        temp = self.directory / f".{final.name}.part-{secrets.token_hex(4)}"
        handle: IO[bytes] | None = None
        try:
            handle = await anyio.to_thread.run_sync(_create, temp)
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if self.max_bytes is not None and size > self.max_bytes:
                    raise self.too_large(index)
                await anyio.to_thread.run_sync(handle.write, chunk)
            await anyio.to_thread.run_sync(_commit, handle, temp, final)
            return final
        except OSError as exc:
            if isinstance(exc, PermissionError):
                raise ConfigurationError(
                    f"cannot write to the download directory {self.directory}: "
                    f"{exc.strerror or exc}"
                ) from None
            raise self.error(f"could not write {final}: {exc}", index) from exc
        finally:
            # Synchronous on purpose: it must run even inside a cancelled scope.
            if handle is not None:
                handle.close()
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _create(path: Path) -> IO[bytes]:
    return path.open("xb")  # "x": never reuse someone else's file


def _commit(handle: IO[bytes], temp: Path, final: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(temp, final)
    _fsync_directory(final.parent)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def download_outputs(
    prediction: Prediction,
    directory: str | os.PathLike[str],
    *,
    http: httpx.AsyncClient,
    api_origin: str | None = None,
    max_concurrency: int = 4,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    retries: int = 3,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    name_prefix: str | None = None,
) -> list[Path]:
    """
    Save every output of ``prediction`` into ``directory``; return the paths.

    Files are named ``<stem>-<index><ext>`` (stem: ``name_prefix`` or the
    prediction id, sanitised) and replace any file of that name atomically.

    Args:
        prediction: the completed prediction; its outputs are URLs, data URIs
            or raw base64.
        directory: created if missing.
        http: the client to fetch with (its ``Authorization`` is kept only for
            ``api_origin``).
        api_origin: the API's origin (or base URL); None sends no credentials.
        max_concurrency: outputs fetched at once.
        max_bytes: the size cap per output; None for no cap.
        retries: extra attempts per output after a 5xx, 429 or network error.
        clock: where backoff sleeps (a `FakeClock` in tests).
        rng: the jitter source.
        name_prefix: the file-name stem to use instead of the prediction id.

    Returns:
        The absolute paths, in output order.

    Raises:
        DownloadError: an output could not be fetched, decoded or written.
        ConfigurationError: bad arguments, or the directory is not writable.
    """
    if max_concurrency < 1 or retries < 0 or (max_bytes is not None and max_bytes < 1):
        raise ConfigurationError(
            "max_concurrency and max_bytes must be at least 1, retries at least 0"
        )
    target = await anyio.to_thread.run_sync(prepare_directory, Path(directory))
    downloader = _Downloader(
        prediction=prediction,
        directory=target,
        stem=_safe_stem(prediction.id if name_prefix is None else name_prefix),
        http=http,
        api_origin=_origin(api_origin) if api_origin else None,
        max_bytes=max_bytes,
        retries=retries,
        clock=clock or AnyioClock(),
        rng=rng or random.Random(),
    )
    return await _gather(downloader, prediction.outputs, max_concurrency)


async def _gather(
    downloader: _Downloader, outputs: Sequence[str], max_concurrency: int
) -> list[Path]:
    paths: list[Path | None] = [None] * len(outputs)
    errors: list[Exception] = []
    limiter = anyio.CapacityLimiter(max_concurrency)

    async def one(index: int, output: str) -> None:
        async with limiter:
            try:
                paths[index] = await downloader.save(index, output)
            except Exception as exc:  # noqa: BLE001  re-raised below, unwrapped
                errors.append(exc)
                tg.cancel_scope.cancel()  # siblings stop and clean their temporaries

    async with anyio.create_task_group() as tg:
        for index, output in enumerate(outputs):
            tg.start_soon(one, index, output)
    if errors:
        # The first real error, not an ExceptionGroup: callers catch DownloadError.
        raise errors[0]
    return [p for p in paths if p is not None]
