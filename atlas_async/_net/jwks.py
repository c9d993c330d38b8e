"""
Webhook signing keys: base64url, JWKS parsing and fetching, and `JWKSCache`.

Machinery behind `atlas_async.webhooks`, which re-exports every public name
here (`JWKSCache`, `fetch_jwks`, `parse_jwks`, `WebhookVerificationError`), so
users never import this module.

Theory of operation
-------------------
Atlas publishes its Ed25519 webhook keys as a JWKS document. `parse_jwks` turns
one into ``{kid: Ed25519PublicKey}``, skipping keys of other types; `fetch_jwks`
GETs it, refusing plain http to a remote host (keys swapped in transit would
make any forged delivery verify); `JWKSCache` keeps the latest set and refetches
on an unknown key id (a rotation) or after ``max_age`` (a revocation), at most
once per ``min_refresh_interval`` and with one fetch shared by concurrent
misses. A failed refresh keeps the known keys; an unknown key id then fails as
``jwks_unavailable``, the one retryable `WebhookVerificationError`.

`WebhookVerificationError` lives here because both halves raise it: the key set
(``malformed_jwks``, ``jwks_unavailable``) and the delivery checks in
`atlas_async.webhooks`.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

import anyio
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._core.clock import Clock
from .._core.errors import (
    APIError,
    AtlasError,
    ConfigurationError,
    TransportError,
    UnexpectedResponseError,
)
from .clock import AnyioClock

__all__ = [
    "DEFAULT_JWKS_URL",
    "JWKSCache",
    "WebhookFailureReason",
    "WebhookVerificationError",
    "b64url_decode",
    "b64url_encode",
    "clock_or_default",
    "fetch_jwks",
    "non_negative_seconds",
    "parse_jwks",
]

DEFAULT_JWKS_URL: Final = "https://api.atlascloud.ai/api/v1/webhooks/jwks.json"

WebhookFailureReason: TypeAlias = Literal[
    "missing_header",
    "invalid_header",
    "stale_timestamp",
    "unknown_key",
    "bad_signature",
    "malformed_body",
    "malformed_jwks",
    "jwks_unavailable",
]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class WebhookVerificationError(AtlasError):
    """
    A webhook delivery (or the key set meant to check it) failed verification.

    ``reason`` names the check that failed (see `WebhookFailureReason`); answer
    503 when `retryable` is true so Atlas delivers again, 400 otherwise.

    Example::

        try:
            event = verifier.verify(request.headers, body)
        except WebhookVerificationError as exc:
            return Response(status_code=503 if exc.retryable else 400)
    """

    reason: WebhookFailureReason

    def __init__(
        self,
        message: str,
        *,
        reason: WebhookFailureReason,
        prediction_id: str | None = None,
    ) -> None:
        super().__init__(message, prediction_id=prediction_id)
        self.reason = reason

    @property
    def retryable(self) -> bool:
        """True when the fault is ours and transient (the key set was unreachable)."""
        return self.reason == "jwks_unavailable"


def b64url_decode(text: str) -> bytes:
    """Decode base64url, padded or not; raise ValueError outside its alphabet."""
    # Padding is optional in base64url; Python's decoder would silently skip
    # characters outside the alphabet, so the alphabet is checked first.
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    bare = text.rstrip("=")
    return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwks_error(message: str) -> WebhookVerificationError:
    return WebhookVerificationError(
        f"malformed JWKS: {message}", reason="malformed_jwks"
    )


def parse_jwks(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """
    Parse a JWKS document into ``{kid: Ed25519PublicKey}``.

    Keys of another type (RSA, EC, X25519) or with a ``use`` other than ``sig``
    are skipped: a key set may serve other purposes too.

    Example::

        keys = parse_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519",
                                     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                                     "kid": "k1"}]})

    Raises:
        WebhookVerificationError: ``reason="malformed_jwks"`` when the document is
            not ``{"keys": [...]}``, or an Ed25519 entry lacks a ``kid``, has a bad
            ``x``, or repeats a ``kid``.
    """
    if not isinstance(document, Mapping):
        raise _jwks_error("the document is not a JSON object")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise _jwks_error('"keys" is not a list')
    keys: dict[str, Ed25519PublicKey] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _jwks_error(f"keys[{index}] is not an object")
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        if entry.get("use", "sig") != "sig":
            continue
        kid, x = entry.get("kid"), entry.get("x")
        if not isinstance(kid, str) or not kid:
            raise _jwks_error(f"keys[{index}] has no kid")
        if kid in keys:
            raise _jwks_error(f"kid {kid!r} appears twice")
        try:
            keys[kid] = Ed25519PublicKey.from_public_bytes(
                b64url_decode(x if isinstance(x, str) else "")
            )
        except ValueError:
            raise _jwks_error(f"keys[{index}] ({kid!r}) has a bad x") from None
    return keys


def _check_jwks_url(url: str) -> None:
    # Keys fetched over plain http from a remote host could be swapped in transit,
    # and then any forged delivery would verify.
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return
    raise ConfigurationError(
        f"the JWKS URL must be https (or http on loopback), not {url!r}"
    )


async def fetch_jwks(
    http: httpx.AsyncClient, url: str = DEFAULT_JWKS_URL
) -> dict[str, Any]:
    """
    GET the JWKS document at ``url`` and return it, unparsed (see `parse_jwks`).

    Example::

        async with httpx.AsyncClient() as http:
            keys = parse_jwks(await fetch_jwks(http))

    Raises:
        ConfigurationError: ``url`` is plain http to a non-loopback host.
        TransportError: no answer came.
        APIError: a non-2xx answer.
        UnexpectedResponseError: the answer is not a JSON object.
    """
    _check_jwks_url(url)
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise TransportError(
            f"could not fetch the webhook key set: {exc!r}", method="GET", url=url
        ) from exc
    if not response.is_success:
        raise APIError(
            "fetching the webhook key set failed",
            status_code=response.status_code,
            body=response.text,
        )
    try:
        document = response.json()
    except ValueError as exc:
        raise UnexpectedResponseError(
            "the webhook key set is not JSON",
            status_code=response.status_code,
            body=response.text,
        ) from exc
    if not isinstance(document, dict):
        raise UnexpectedResponseError(
            "the webhook key set is not a JSON object",
            status_code=response.status_code,
            body=document,
        )
    return document


def clock_or_default(clock: Clock | None) -> Clock:
    """Return ``clock``, or the real clock for None; refuse anything else."""
    if clock is None:
        return AnyioClock()
    if not isinstance(clock, Clock):
        # The old form was a bare callable (time.time): say what is wanted now.
        raise ConfigurationError(
            "clock must be a Clock (now(), wall(), sleep_until()),"
            f" not {type(clock).__name__}"
        )
    return clock


def non_negative_seconds(value: float | timedelta, name: str) -> float:
    """Return ``value`` in seconds; raise `ConfigurationError` if it is negative."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds >= 0:
        raise ConfigurationError(f"{name} must be >= 0, not {value!r}")
    return seconds


class JWKSCache:
    """
    Atlas's webhook keys, fetched on demand and refreshed on rotation.

    The key set is fetched when a key id is unknown (a rotation, or the first
    delivery) or when it is older than ``max_age`` (so revoked keys drop out), but
    at most once per ``min_refresh_interval``: deliveries with made-up key ids
    cannot make it hammer the JWKS endpoint. Concurrent misses share one fetch.
    When a refresh fails, keys already known keep working.

    Example::

        async with httpx.AsyncClient() as http:
            verifier = WebhookVerifier(JWKSCache(http))
            event = await verifier.averify(headers, body)

    Args:
        http: the client to fetch with; the cache does not close it.
        url: the JWKS URL (https, or http on loopback for the emulator).
        min_refresh_interval: seconds between two fetch attempts on demand.
        max_age: seconds after which known keys are refetched too.
        clock: where the cache reads its ages (``now()``; default: the real
            clock); tests pass ``atlas_async.testing.FakeClock``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str = DEFAULT_JWKS_URL,
        *,
        min_refresh_interval: float | timedelta = 60.0,
        max_age: float | timedelta = 86_400.0,
        clock: Clock | None = None,
    ) -> None:
        _check_jwks_url(url)
        self._http = http
        self._url = url
        self._min_interval = non_negative_seconds(
            min_refresh_interval, "min_refresh_interval"
        )
        self._max_age = non_negative_seconds(max_age, "max_age")
        self._clock = clock_or_default(clock)
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._lock = anyio.Lock()
        self._attempts = 0
        self._attempted_at: float | None = None
        self._fetched_at: float | None = None
        self._last_error: AtlasError | None = None

    @property
    def url(self) -> str:
        """Where the key set is fetched from."""
        return self._url

    @property
    def keys(self) -> Mapping[str, Ed25519PublicKey]:
        """The keys known now (a read-only view; empty before the first fetch)."""
        return MappingProxyType(self._keys)

    def get(self, kid: str) -> Ed25519PublicKey | None:
        """Return the key known now for ``kid``, without fetching."""
        return self._keys.get(kid)

    async def refresh(self) -> None:
        """
        Fetch the key set now, ignoring the refresh interval (e.g. at startup).

        Raises:
            WebhookVerificationError: ``reason="jwks_unavailable"`` if it failed.
        """
        async with self._lock:
            await self._fetch()
        self._raise_if_failed()

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        """
        Return the key for ``kid``, fetching the key set first when needed.

        Returns None when the latest key set has no such key.

        Raises:
            WebhookVerificationError: ``reason="jwks_unavailable"`` when ``kid`` is
                unknown and the last fetch failed.
        """
        known = self._keys.get(kid)
        if known is not None and not self._is_stale():
            return known
        attempts = self._attempts
        async with self._lock:
            # Whoever held the lock may have fetched already: don't fetch again.
            if self._attempts == attempts and self._may_fetch():
                await self._fetch()
        found = self._keys.get(kid)
        if found is None:
            self._raise_if_failed()
        return found

    def _is_stale(self) -> bool:
        return (
            self._fetched_at is not None
            and self._clock.now() - self._fetched_at >= self._max_age
        )

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock.now() - self._attempted_at >= self._min_interval
        )

    async def _fetch(self) -> None:
        self._attempts += 1
        self._attempted_at = self._clock.now()
        try:
            keys = parse_jwks(await fetch_jwks(self._http, self._url))
        except AtlasError as exc:
            self._last_error = exc
            return
        # Replace, don't merge: a key missing from the new set was revoked.
        self._keys = keys
        self._fetched_at = self._attempted_at
        self._last_error = None

    def _raise_if_failed(self) -> None:
        if self._last_error is not None:
            raise WebhookVerificationError(
                f"the webhook key set is unavailable: {self._last_error}",
                reason="jwks_unavailable",
            ) from self._last_error
