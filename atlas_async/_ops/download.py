"""
Saving a prediction's outputs to disk, safely.

Theory of operation
-------------------
An output is one of four things, told apart by its first characters: an
http(s) URL (``//host/...`` means https), a ``data:`` URI, raw base64
(``enable_base64_output``: the base64 alphabet only, and either the magic bytes
of a known format or at least 256 characters), or plain text (an ASR
transcript, lyrics), which is saved as UTF-8 ``.txt``. A URL of another scheme
(``file://``, ``ftp://``) is refused, never read.

Every output becomes one file named ``<stem>-<index><ext>`` in the target
directory. The stem is our own: the ``name_prefix`` or the prediction id, kept
as it is when it is already a plain lower-case name (``[a-z0-9][a-z0-9._-]*``,
at most 100 characters), else reduced to ``[A-Za-z0-9._-]`` and followed by
``~`` and 12 hex digits of its SHA-256, so ids that reduce alike (``a/b``,
``a_b``, ``a b``, ``a+b``, ``A_B``) still get different files, on case-blind
file systems too. Only the extension comes from outside (the Content-Type, else
the URL's suffix if it is a known media suffix, else magic bytes for inline
data, else ``.bin``), always from a fixed list: no name can leave the directory
or look like a script, whatever the server sends.

A file is written to a hidden temporary in the same directory
(``.<name>.part-<random>``, created with ``O_EXCL``), fsynced, then hard-linked
onto its final name, which fails if the name exists: nothing is ever replaced
behind the caller's back. A name that already holds the same bytes is a re-run
and is returned as saved; one with other bytes (or a link, or a directory) is a
`DownloadError`, unless ``overwrite=True`` (then ``os.replace``). The final
name only ever holds a complete file; the directory is fsynced so the new name
survives a crash, and any error or cancellation deletes the temporary.

Inline data is decoded in slices straight into that temporary, so a 300 MB data
URI costs a few MiB, not gigabytes; its decoded size is computed from the text
before anything is decoded and refused at once past ``max_bytes``. Base64 must
be valid throughout (standard or url-safe alphabet, padding only at the end,
ASCII whitespace ignored); a ``data:`` URI without ``;base64`` must be of a
textual type (percent-encoded text), since percent-encoded "images" are garbage.

Downloads run concurrently (``max_concurrency``); 5xx, 429 and network errors
are retried ``retries`` times by the SDK's one retry loop (``_net.retrying``):
jittered exponential backoff on the injected `Clock`, never shorter than a
``Retry-After`` the output host sends (up to a minute). Other answers (404:
the output URL may have expired) fail at once. Size is capped both by
Content-Length and by counting streamed bytes.

The ``Authorization`` header is sent only to ``api_origin``: every other request
has it removed (and the client's ``auth`` disabled), and redirects are followed
by hand, never with credentials, so the key never reaches a CDN. A redirect to
another scheme, to a URL with ``user:password@``, to an unparseable URL or back
to a URL already visited is a `DownloadError`, as is anything the HTTP library
itself raises on such a request.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import anyio
import anyio.to_thread
import attrs
import httpx

from .._core.clock import Clock
from .._core.errors import AtlasError, ConfigurationError, DownloadError
from .._core.models import Prediction
from .._core.retry import BackoffPolicy, Retry
from .._core.safety import redact_text
from .._net.clock import AnyioClock
from .._net.deadline import Deadline
from .._net.retrying import RetryableError, retrying
from .._wire.errors import parse_retry_after
from .outputs import (
    _HEAD,
    _MAX_DATA_HEADER,
    _MAX_URL,
    _MEDIA_TYPE,
    _OTHER_URL,
    _base64_extent,
    _base64_size,
    _commit,
    _create,
    _decode_base64,
    _decode_percent,
    _encode_text,
    _extension,
    _is_textual,
    _looks_like_base64,
    _safe_stem,
    _same_file,
)

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MAX_BYTES",
    "download_outputs",
    "prepare_directory",
]

DEFAULT_MAX_BYTES = 2 * 1024**3
"""The default size cap per output: 2 GiB (long 4K videos stay well under)."""
DEFAULT_DOWNLOAD_TIMEOUT = 1800.0
"""Seconds one attempt at one output may take, whole (a few hundred MB at a
slow 1 MB/s fit)."""

_CHUNK = 64 * 1024
_MAX_REDIRECTS = 10
# 0.5 s, 1 s, 2 s, ... up to 30 s, minus up to half at random; Retry-After is a
# floor up to a minute.
_BACKOFF = BackoffPolicy(
    initial=0.5, factor=2.0, cap=30.0, jitter=0.5, retry_after_cap=60.0
)
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


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


def _refusal(url: str) -> str | None:
    """Why ``url`` must not be fetched, or None when it may."""
    if _origin(url) is None:
        return "not an http(s) URL"
    # Credentials in a URL are the sender's, never ours to send on; and some
    # HTTP libraries raise a bare ValueError on them next to our own headers.
    if httpx.URL(url).userinfo:
        return "it carries a user name or password"
    return None


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
    overwrite: bool
    timeout: float
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

    def check_size(self, index: int, size: int) -> None:
        if self.max_bytes is not None and size > self.max_bytes:
            raise self.too_large(index)

    async def save(self, index: int, output: str) -> Path:
        if not isinstance(output, str):
            raise self.error(f"output {index} is not a string", index)
        head = output[:_HEAD]
        start = len(head) - len(head.lstrip())
        lead = head[start : start + 8].lower()
        if lead.startswith(("http://", "https://", "//")):
            if len(output) > _MAX_URL:
                raise self.error(f"output {index} is a URL too long to fetch", index)
            url = output.strip()
            return await self.fetch(index, "https:" + url if lead[1] == "/" else url)
        if lead.startswith("data:"):
            return await self.save_data_uri(index, output, start + 5)
        if len(output) <= _MAX_URL and _OTHER_URL.fullmatch(output.strip()):
            raise self.error(
                f"refusing to fetch output {index}: not an http(s) URL", index
            )
        if _looks_like_base64(head, len(output)):
            return await self.save_base64(index, None, output, 0)
        # W5: a transcript or lyrics: the text itself, saved as it is.
        self.check_size(index, len(output))  # every character is one byte or more
        return await self.write(index, ".txt", self.inline(index, _encode_text(output)))

    async def save_data_uri(self, index: int, output: str, start: int) -> Path:
        comma = output.find(",", start, start + _MAX_DATA_HEADER)
        if comma < 0:
            raise self.error(f"output {index} is a malformed data URI", index)
        media_type, *flags = output[start:comma].split(";")
        media_type = media_type.strip()
        if media_type and not _MEDIA_TYPE.fullmatch(media_type):
            raise self.error(
                f"output {index} is a malformed data URI (media type)", index
            )
        if comma + 1 >= len(output) or not output[comma + 1 : comma + 65].strip():
            raise self.error(f"output {index} is empty", index)
        if "base64" in (f.strip().lower() for f in flags):
            return await self.save_base64(index, media_type, output, comma + 1)
        if not _is_textual(media_type):
            raise self.error(
                f"output {index} is a data URI of {media_type} that is not base64",
                index,
            )
        # Each %XX escape is three characters for one byte: the least it can be.
        escapes = output.count("%", comma + 1)
        self.check_size(index, len(output) - comma - 1 - 2 * escapes)
        chunks = self.inline(index, _decode_percent(output, comma + 1))
        # RFC 2397: no media type means text/plain.
        ext = _extension(media_type or "text/plain", None)
        return await self.write(index, ext, chunks)

    async def save_base64(
        self, index: int, media_type: str | None, text: str, start: int
    ) -> Path:
        try:
            end, padding = _base64_extent(text, start)
        except ValueError:
            raise self.invalid(index) from None
        # Before a single byte is decoded; the exact size (a pass over the
        # text) only when the quick upper bound is over the cap.
        if self.max_bytes is not None and (end - start) * 3 // 4 > self.max_bytes:
            self.check_size(index, _base64_size(text, start, end))
        decoded = _decode_base64(text, start, end, padding)
        try:
            first = next(decoded, b"")
        except ValueError:
            raise self.invalid(index) from None
        if not first:
            raise self.error(f"output {index} is empty", index)
        ext = _extension(media_type, None, first)
        return await self.write(index, ext, self.inline(index, decoded, first))

    def invalid(self, index: int) -> DownloadError:
        return self.error(
            f"output {index} is not an http(s) URL, a data URI or valid base64", index
        )

    async def inline(
        self, index: int, chunks: Iterator[bytes], first: bytes = b""
    ) -> AsyncIterator[bytes]:
        if first:
            yield first
        try:
            for chunk in chunks:
                yield chunk
        except ValueError:  # invalid data after a valid start: nothing is kept
            raise self.invalid(index) from None

    async def fetch(self, index: int, url: str) -> Path:
        attempts = 0

        async def once() -> Path:
            nonlocal attempts
            attempts += 1
            deadline = Deadline(self.timeout)
            with deadline:
                return await self.fetch_once(index, url)
            # Cancelled by the deadline: the partial file is already removed.
            raise _again(f"no whole answer within {self.timeout:g} s")

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

    def library_error(self, index: int, url: str, exc: Exception) -> DownloadError:
        # The HTTP library refused the request itself (aiohttp raises ValueError
        # on some URLs): a typed error, never the library's own exception.
        return self.error(
            f"could not fetch output {index} from {_display(url)}: "
            f"{type(exc).__name__}: {redact_text(str(exc))}",
            index,
            url=_display(url),
        )

    async def fetch_once(self, index: int, url: str) -> Path:
        visited: set[str] = set()
        for hop in range(_MAX_REDIRECTS + 1):
            why = _refusal(url)
            if why is not None:
                raise self.error(
                    f"refusing to fetch {_display(url)}: {why}",
                    index,
                    url=_display(url),
                )
            if url in visited:
                raise self.error(
                    f"redirect loop for output {index} at {_display(url)}",
                    index,
                    url=_display(url),
                )
            visited.add(url)
            # Credentials only on the first hop, and only to the API's own origin.
            authorized = hop == 0 and _origin(url) == self.api_origin
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
            except Exception as exc:  # the library refused it: a typed error instead
                raise self.library_error(index, url, exc) from exc
            try:
                location = response.headers.get("Location")
                if response.is_redirect and location:
                    try:
                        url = urljoin(url, location)
                    except ValueError:
                        raise self.error(
                            f"output {index}: {_display(url)} redirects to an "
                            "invalid URL",
                            index,
                            url=_display(url),
                        ) from None
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
        if length.isdigit():
            self.check_size(index, int(length))
        ext = _extension(response.headers.get("Content-Type"), url)
        try:
            return await self.write(index, ext, response.aiter_bytes(_CHUNK))
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _again(
                f"{type(exc).__name__} while reading: {exc}", cause=exc
            ) from exc
        except AtlasError:
            raise
        except Exception as exc:  # the library refused it: a typed error instead
            raise self.library_error(index, url, exc) from exc

    async def write(self, index: int, ext: str, chunks: AsyncIterator[bytes]) -> Path:
        final = self.directory / f"{self.stem}-{index}{ext}"
        temp = self.directory / f".{final.name}.part-{secrets.token_hex(4)}"
        handle: IO[bytes] | None = None
        try:
            handle = await anyio.to_thread.run_sync(_create, temp)
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                self.check_size(index, size)
                await anyio.to_thread.run_sync(handle.write, chunk)
            placed = await anyio.to_thread.run_sync(
                _commit, handle, temp, final, self.overwrite
            )
            if not placed and not await anyio.to_thread.run_sync(
                _same_file, temp, final
            ):
                raise self.error(
                    f"refusing to overwrite {final}: it holds something else "
                    "(move it away, or pass overwrite=True)",
                    index,
                )
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


async def download_outputs(
    prediction: Prediction,
    directory: str | os.PathLike[str],
    *,
    http: httpx.AsyncClient,
    api_origin: str | None = None,
    max_concurrency: int = 4,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    retries: int = 3,
    overwrite: bool = False,
    timeout: float | None = DEFAULT_DOWNLOAD_TIMEOUT,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    name_prefix: str | None = None,
) -> list[Path]:
    """
    Save every output of ``prediction`` into ``directory``; return the paths.

    Files are named ``<stem>-<index><ext>`` (stem: ``name_prefix`` or the
    prediction id; see the module docstring for how odd ids stay distinct). An
    existing file of that name is kept: returned when it holds the same bytes,
    a `DownloadError` otherwise, unless ``overwrite``.

    Args:
        prediction: the completed prediction; its outputs are URLs, data URIs,
            raw base64 or plain text (saved as ``.txt``).
        directory: created if missing.
        http: the client to fetch with (its ``Authorization`` is kept only for
            ``api_origin``).
        api_origin: the API's origin (or base URL); None sends no credentials.
        max_concurrency: outputs fetched at once.
        max_bytes: the size cap per output; None for no cap.
        retries: extra attempts per output after a 5xx, 429 or network error.
        overwrite: replace (atomically) a file of the same name that holds
            other bytes, instead of refusing.
        timeout: seconds one attempt at one output may take, from the request
            to the last byte (redirects included), so a host that trickles
            bytes cannot hold a download open; a slow attempt is tried again
            like a network error. None for no limit.
        clock: where backoff sleeps (a `FakeClock` in tests).
        rng: the jitter source.
        name_prefix: the file-name stem to use instead of the prediction id.

    Returns:
        The absolute paths, in output order.

    Raises:
        DownloadError: an output could not be fetched, decoded or written, is
            over ``max_bytes``, or its name holds another file.
        ConfigurationError: bad arguments, or the directory is not writable.
    """
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigurationError("timeout must be a finite number > 0, or None")
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
        overwrite=overwrite,
        timeout=math.inf if timeout is None else timeout,
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
