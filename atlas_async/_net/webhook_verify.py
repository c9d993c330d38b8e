"""
`WebhookVerifier` and `WebhookEvent`: the machinery behind `atlas_async.webhooks`.

The face re-exports both; users never import this module. The rules (what is
checked, in which order, and why) are in the face's docstring. Here: the header
checks, the signature, and the replay memory; the body is read by the one
delivery reader, ``_wire.webhook.read_delivery``. Time comes from the injected
`Clock`: ``wall()`` for the signed timestamp.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Hashable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._core.clock import Clock
from .._core.errors import ConfigurationError, UnexpectedResponseError
from .._core.models import Kind, Prediction
from .._wire.webhook import (
    HEADER_ID,
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    WebhookStatus,
    read_delivery,
)
from .jwks import (
    JWKSCache,
    WebhookFailureReason,
    WebhookVerificationError,
    b64url_decode,
    b64url_encode,
    clock_or_default,
    non_negative_seconds,
    parse_jwks,
)

__all__ = ["WebhookEvent", "WebhookVerifier"]

# The event header is informational (unsigned, and the body repeats it).
_REQUIRED = (HEADER_ID, HEADER_TIMESTAMP, HEADER_KEY_ID, HEADER_SIGNATURE)
# Printable ASCII without spaces: these values reach logs and error messages.
_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")
# The timestamp is part of the signed message: never normalise it, only accept it.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE_SIZE = 64


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """
    One verified webhook delivery.

    Attributes:
        webhook_id: the ``X-AtlasCloud-Webhook-Id`` header (equal to ``session_id``).
        session_id: the prediction id ("session id" in webhook terms).
        event_type: e.g. ``"video.task.terminal"``, from the signed body.
        timestamp: the signed timestamp, unix seconds.
        key_id: the key id that verified the signature.
        signature: the signature, canonical base64url without padding.
        status: the envelope's ``"OK"`` or ``"ERROR"``; see `prediction` for the
            prediction's own status (an ``"OK"`` can carry a failed prediction).
        created_at: when Atlas created the event, when it said.
        prediction: the payload as a `Prediction`, with ``id = session_id``.
        error: the envelope's error text, or None.
        raw: the whole body as decoded JSON.

    Example::

        event = verifier.verify(headers, body)
        if event.prediction.status.is_success:
            print(event.prediction.outputs)
    """

    webhook_id: str
    session_id: str
    event_type: str
    timestamp: int
    key_id: str
    signature: str = attrs.field(repr=False)
    status: WebhookStatus
    created_at: datetime | None
    prediction: Prediction
    error: str | None
    raw: Mapping[str, Any] = attrs.field(repr=False, eq=False)

    @property
    def delivery_key(self) -> tuple[str, int, str]:
        """(webhook id, timestamp, signature): one signed delivery, for replays."""
        return (self.webhook_id, self.timestamp, self.signature)

    @property
    def kind(self) -> Kind | None:
        """The `Kind` named by the event type (``image.task.terminal``), or None."""
        try:
            return Kind(self.event_type.split(".", 1)[0])
        except ValueError:
            return None


class _LRUSet:
    """A set that forgets its oldest entries beyond ``maxsize``."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._items: collections.OrderedDict[Hashable, None] = collections.OrderedDict()

    def __contains__(self, item: Hashable) -> bool:
        return item in self._items

    def add(self, item: Hashable) -> bool:
        """Add ``item``; return True when it was already there."""
        present = item in self._items
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self._maxsize:
            self._items.popitem(last=False)
        return present


@attrs.frozen
class _Signed:
    """What the headers say, once their cheap checks passed."""

    webhook_id: str
    timestamp_text: str
    timestamp: int
    key_id: str
    signature: bytes


def _fail(reason: WebhookFailureReason, message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason=reason)


class WebhookVerifier:
    """
    Checks webhook signatures and timestamps and turns deliveries into events.

    Example::

        verifier = WebhookVerifier(jwks_document)        # or {kid: key}, or a JWKSCache
        event = verifier.verify(request.headers, await request.body())
        if not verifier.seen(event):                     # first delivery of it
            handle(event.prediction)

    Args:
        keys: ``{kid: Ed25519PublicKey}``, a JWKS document (``{"keys": [...]}``),
            or a `JWKSCache` (then prefer `averify`, which follows rotations).
        tolerance: how far, in seconds either way, the signed timestamp may be
            from the clock's ``wall()``.
        clock: where the time is read (default: the real clock); tests pass
            ``atlas_async.testing.FakeClock``.
        replay_cache_size: deliveries and session ids remembered by `seen`; size it
            above the deliveries expected within twice ``tolerance``.

    Raises:
        ConfigurationError: a mapping value that is not an Ed25519 public key, a
            ``clock`` that is not a ``Clock``, a negative ``tolerance`` or a
            non-positive ``replay_cache_size``.
        WebhookVerificationError: ``reason="malformed_jwks"`` for a bad document.
    """

    def __init__(
        self,
        keys: Mapping[str, Any] | JWKSCache,
        *,
        tolerance: float | timedelta = 300.0,
        clock: Clock | None = None,
        replay_cache_size: int = 10_000,
    ) -> None:
        self._cache: JWKSCache | None = None
        self._static: Mapping[str, Ed25519PublicKey] = {}
        if isinstance(keys, JWKSCache):
            self._cache = keys
        else:
            self._static = MappingProxyType(_coerce_keys(keys))
        self._tolerance = non_negative_seconds(tolerance, "tolerance")
        self._clock = clock_or_default(clock)
        if replay_cache_size < 1:
            raise ConfigurationError(
                f"replay_cache_size must be >= 1, not {replay_cache_size!r}"
            )
        self._deliveries = _LRUSet(replay_cache_size)
        self._sessions = _LRUSet(replay_cache_size)

    @property
    def keys(self) -> Mapping[str, Ed25519PublicKey]:
        """The keys this verifier accepts now."""
        return self._cache.keys if self._cache is not None else self._static

    def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """
        Verify one delivery with the keys known now and return its event.

        Args:
            headers: the request headers; names are matched case-insensitively.
            body: the raw request body, exactly as received.

        Raises:
            WebhookVerificationError: with the ``reason`` of the first failed check.
        """
        signed = self._check_headers(headers)
        return _finish(signed, self.keys.get(signed.key_id), body)

    async def averify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """
        Like `verify`, but fetch the key set first when the key id is unknown.

        With static keys this is `verify`. With a `JWKSCache`, the headers and the
        timestamp are checked before any fetch, so only plausible deliveries can
        trigger one.

        Raises:
            WebhookVerificationError: as `verify`, or ``reason="jwks_unavailable"``
                (retryable) when the key set could not be fetched.
        """
        signed = self._check_headers(headers)
        if self._cache is None:
            key = self._static.get(signed.key_id)
        else:
            key = await self._cache.key(signed.key_id)
        return _finish(signed, key, body)

    def is_replay(self, event: WebhookEvent) -> bool:
        """True when `seen` already recorded this exact signed delivery."""
        return event.delivery_key in self._deliveries

    def seen(self, event: WebhookEvent) -> bool:
        """
        Record ``event``; return True when its session id was delivered before.

        True means "already handled": an exact replay, or an at-least-once
        redelivery (same session id, new timestamp and signature). Call it once
        the event is handled, so a delivery whose handling failed can be retried.
        """
        self._deliveries.add(event.delivery_key)
        return self._sessions.add(event.session_id)

    def _check_headers(self, headers: Mapping[str, str]) -> _Signed:
        lowered = {name.lower(): value for name, value in headers.items()}
        missing = [name for name in _REQUIRED if not lowered.get(name.lower())]
        if missing:
            raise _fail("missing_header", f"missing header(s): {', '.join(missing)}")
        webhook_id = lowered[HEADER_ID.lower()]
        key_id = lowered[HEADER_KEY_ID.lower()]
        timestamp_text = lowered[HEADER_TIMESTAMP.lower()]
        for name, value in ((HEADER_ID, webhook_id), (HEADER_KEY_ID, key_id)):
            if not _TOKEN.fullmatch(value):
                raise _fail("invalid_header", f"{name} is not a printable token")
        if not _TIMESTAMP.fullmatch(timestamp_text):
            raise _fail("invalid_header", f"{HEADER_TIMESTAMP} is not unix seconds")
        timestamp = int(timestamp_text)
        skew = self._clock.wall() - timestamp
        if abs(skew) > self._tolerance:
            raise _fail(
                "stale_timestamp",
                f"timestamp {timestamp} is {skew:+.0f}s off the clock, "
                f"outside the {self._tolerance:g}s window",
            )
        try:
            signature = b64url_decode(lowered[HEADER_SIGNATURE.lower()])
        except ValueError:
            signature = b""
        if len(signature) != _SIGNATURE_SIZE:
            raise _fail(
                "bad_signature", f"{HEADER_SIGNATURE} is not 64 bytes base64url"
            )
        return _Signed(webhook_id, timestamp_text, timestamp, key_id, signature)


def _finish(signed: _Signed, key: Ed25519PublicKey | None, body: bytes) -> WebhookEvent:
    if key is None:
        raise _fail("unknown_key", f"unknown signing key id {signed.key_id!r}")
    message = signed.timestamp_text.encode("ascii") + b"." + bytes(body)
    try:
        key.verify(signed.signature, message)
    except InvalidSignature:
        raise _fail("bad_signature", "the signature does not match") from None
    # Only now, with the signature holding, is the body parsed.
    try:
        delivery = read_delivery(bytes(body))
    except UnexpectedResponseError as exc:
        raise WebhookVerificationError(
            exc.message, reason="malformed_body", prediction_id=exc.prediction_id
        ) from exc
    if delivery.session_id != signed.webhook_id:
        raise WebhookVerificationError(
            f"malformed webhook body: session_id differs from {HEADER_ID}",
            reason="malformed_body",
            prediction_id=delivery.session_id,
        )
    return WebhookEvent(
        webhook_id=signed.webhook_id,
        session_id=delivery.session_id,
        event_type=delivery.event_type,
        timestamp=signed.timestamp,
        key_id=signed.key_id,
        signature=b64url_encode(signed.signature),
        status=delivery.status,
        created_at=delivery.created_at,
        prediction=delivery.prediction,
        error=delivery.error,
        raw=delivery.raw,
    )


def _coerce_keys(keys: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    if isinstance(keys.get("keys"), list):
        return parse_jwks(keys)
    for kid, key in keys.items():
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError(
                f"key {kid!r} is a {type(key).__name__}, not an Ed25519PublicKey"
            )
    return dict(keys)
