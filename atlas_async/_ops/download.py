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

import base64
import contextlib
import errno
import filecmp
import hashlib
import math
import os
import random
import re
import secrets
import stat
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

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
            async with deadline:
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
