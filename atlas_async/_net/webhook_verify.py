"""
`WebhookVerifier` and `WebhookEvent`: the machinery behind `atlas_async.webhooks`.

The face re-exports both; users never import this module. The rules (what is
checked, in which order, and why) are in the face's docstring. Here: the header
checks, the signature, and the replay memory; the body is read by the one
delivery reader, ``_wire.webhook.read_delivery``. Time comes from the injected
`Clock`: ``wall()`` for the signed timestamp.

Anything can arrive at a public endpoint, and a receiver passes it on as it
came: so ``verify`` checks the Python types too (headers a mapping of text,
the body bytes) and answers every malformed input with
`WebhookVerificationError`, never a ``TypeError`` or ``RecursionError``.

Signatures: the ``-Ed25519`` header is preferred; without it the bare
``X-AtlasCloud-Webhook-Signature`` is read, which may hold the Ed25519
signature (base64url of 64 bytes, after the HMAC is retired) or, during the
migration, a hex HMAC-SHA256 (32 bytes, optionally ``sha256=``-prefixed). A
value is tried as each form it can be, and each form only against its own
material: Ed25519 against the public key named by the key id, the HMAC against
``hmac_secret`` (over the same ``b"<timestamp>." + body``), and an HMAC is
refused when no secret was configured. So accepting the bare header never lets
a signature through that the right key or secret did not make.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
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
    HEADER_BARE_SIGNATURE,
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
_REQUIRED = (HEADER_ID, HEADER_TIMESTAMP)
# Printable ASCII without spaces: these values reach logs and error messages.
_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")
# The timestamp is part of the signed message: never normalise it, only accept it.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE_SIZE = 64
_HMAC_HEX = re.compile(r"(?:sha256=)?([0-9a-fA-F]{64})")
_MAX_SIGNATURE = 256  # characters; both forms are well under
_MAX_HEADERS = 1000
DEFAULT_MAX_BODY = 64 * 1024 * 1024


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """
    One verified webhook delivery.

    Attributes:
        webhook_id: the ``X-AtlasCloud-Webhook-Id`` header (equal to ``session_id``).
        session_id: the prediction id ("session id" in webhook terms).
        event_type: e.g. ``"video.task.terminal"``, from the signed body.
        timestamp: the signed timestamp, unix seconds.
        key_id: the key id that verified the signature ("" for an HMAC
            delivery that named none).
        signature: the signature, canonical: base64url without padding for
            Ed25519, lower-case hex for an HMAC.
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
    scheme: str = "ed25519"
    """How it was signed: ``"ed25519"``, or ``"hmac-sha256"`` (the legacy HMAC)."""

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
    ed25519: bytes | None  # the signature read as Ed25519, if it can be one
    hmac: bytes | None  # the signature read as an HMAC-SHA256, if it can be one


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
        hmac_secret: the legacy webhook secret (text or bytes), to accept a hex
            HMAC-SHA256 in the bare ``X-AtlasCloud-Webhook-Signature`` header
            during Atlas's migration; None (the default) refuses HMACs.
        max_body_size: bytes above which a body is refused unread; None for
            no limit.

    Raises:
        ConfigurationError: ``keys`` not a mapping or `JWKSCache`, a mapping
            value that is not an Ed25519 public key, a ``clock`` that is not a
            ``Clock``, a negative ``tolerance``, a non-positive
            ``replay_cache_size`` or ``max_body_size``, or an empty or
            non-text ``hmac_secret``.
        WebhookVerificationError: ``reason="malformed_jwks"`` for a bad document.
    """

    def __init__(
        self,
        keys: Mapping[str, Any] | JWKSCache,
        *,
        tolerance: float | timedelta = 300.0,
        clock: Clock | None = None,
        replay_cache_size: int = 10_000,
        hmac_secret: str | bytes | None = None,
        max_body_size: int | None = DEFAULT_MAX_BODY,
    ) -> None:
        self._cache: JWKSCache | None = None
        self._static: Mapping[str, Ed25519PublicKey] = {}
        if isinstance(keys, JWKSCache):
            self._cache = keys
        elif isinstance(keys, Mapping):
            self._static = MappingProxyType(_coerce_keys(keys))
        else:
            raise ConfigurationError(
                "keys must be a JWKS document, {kid: Ed25519PublicKey} or a"
                f" JWKSCache, not {type(keys).__name__}"
            )
        if isinstance(tolerance, bool) or not isinstance(
            tolerance, (int, float, timedelta)
        ):
            raise ConfigurationError(
                f"tolerance must be seconds or a timedelta, not {tolerance!r}"
            )
        self._tolerance = non_negative_seconds(tolerance, "tolerance")
        self._clock = clock_or_default(clock)
        for name, size in (
            ("replay_cache_size", replay_cache_size),
            ("max_body_size", 1 if max_body_size is None else max_body_size),
        ):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigurationError(f"{name} must be an int >= 1, not {size!r}")
        self._max_body = max_body_size
        self._hmac_secret = _hmac_secret(hmac_secret)
        self._deliveries = _LRUSet(replay_cache_size)
        self._sessions = _LRUSet(replay_cache_size)

    @property
    def keys(self) -> Mapping[str, Ed25519PublicKey]:
        """The keys this verifier accepts now."""
        return self._cache.keys if self._cache is not None else self._static

    def verify(
        self, headers: Mapping[str, str], body: bytes | bytearray | memoryview
    ) -> WebhookEvent:
        """
        Verify one delivery with the keys known now and return its event.

        Args:
            headers: the request headers; names are matched case-insensitively.
            body: the raw request body, exactly as received.

        Raises:
            WebhookVerificationError: with the ``reason`` of the first failed check.
        """
        signed = self._check_headers(headers)
        self._check_body(body)
        key = self.keys.get(signed.key_id) if signed.ed25519 is not None else None
        return self._finish(signed, key, body)

    async def averify(
        self, headers: Mapping[str, str], body: bytes | bytearray | memoryview
    ) -> WebhookEvent:
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
        self._check_body(body)
        key = None
        if signed.ed25519 is None:
            pass  # an HMAC only: no key to look up, nothing to fetch
        elif self._cache is None:
            key = self._static.get(signed.key_id)
        else:
            key = await self._cache.key(signed.key_id)
        return self._finish(signed, key, body)

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

    def _check_body(self, body: object) -> None:
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise _fail(
                "malformed_body",
                f"the body must be the raw bytes received, not {type(body).__name__}",
            )
        if self._max_body is not None and len(body) > self._max_body:
            raise _fail(
                "malformed_body",
                f"the body is larger than {self._max_body} bytes",
            )

    def _check_headers(self, headers: object) -> _Signed:
        lowered = _lowered(headers)
        missing = [name for name in _REQUIRED if not lowered.get(name.lower())]
        ed_text = lowered.get(HEADER_SIGNATURE.lower())
        bare_text = lowered.get(HEADER_BARE_SIGNATURE.lower())
        if not ed_text and not bare_text:
            missing.append(HEADER_SIGNATURE)
        if missing:
            raise _fail("missing_header", f"missing header(s): {', '.join(missing)}")
        webhook_id = lowered[HEADER_ID.lower()]
        key_id = lowered.get(HEADER_KEY_ID.lower(), "")
        timestamp_text = lowered[HEADER_TIMESTAMP.lower()]
        for name, value in ((HEADER_ID, webhook_id), (HEADER_KEY_ID, key_id)):
            if value and not _TOKEN.fullmatch(value):
                raise _fail("invalid_header", f"{name} is not a printable token")
        if not _TIMESTAMP.fullmatch(timestamp_text):
            raise _fail("invalid_header", f"{HEADER_TIMESTAMP} is not unix seconds")
        timestamp = int(timestamp_text)
        skew = self._clock.wall() - timestamp
        if not abs(skew) <= self._tolerance:
            raise _fail(
                "stale_timestamp",
                f"timestamp {timestamp} is {skew:+.0f}s off the clock, "
                f"outside the {self._tolerance:g}s window",
            )
        # Prefer -Ed25519; the bare header may hold either form (see the module).
        if ed_text:
            ed25519, mac = _as_ed25519(ed_text), None
            source = HEADER_SIGNATURE
        else:
            assert bare_text  # one of the two is there, checked above
            ed25519, mac = _as_ed25519(bare_text), _as_hmac(bare_text)
            source = HEADER_BARE_SIGNATURE
        if ed25519 is None and mac is None:
            raise _fail(
                "bad_signature",
                f"{source} is neither 64 bytes base64url"
                + (" nor a hex HMAC-SHA256" if source == HEADER_BARE_SIGNATURE else ""),
            )
        if ed25519 is not None and mac is None and not key_id:
            raise _fail("missing_header", f"missing header(s): {HEADER_KEY_ID}")
        return _Signed(webhook_id, timestamp_text, timestamp, key_id, ed25519, mac)

    def _finish(
        self,
        signed: _Signed,
        key: Ed25519PublicKey | None,
        body: bytes | bytearray | memoryview,
    ) -> WebhookEvent:
        message = signed.timestamp_text.encode("ascii") + b"." + bytes(body)
        scheme, signature = _verified(signed, key, self._hmac_secret, message)
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
            signature=signature,
            status=delivery.status,
            created_at=delivery.created_at,
            prediction=delivery.prediction,
            error=delivery.error,
            raw=delivery.raw,
            scheme=scheme,
        )


def _lowered(headers: object) -> dict[str, str]:
    """The headers by lower-case name; any value that is not text is refused."""
    if not isinstance(headers, Mapping):
        raise _fail(
            "invalid_header",
            "headers must be a mapping of names to values, not "
            + type(headers).__name__,
        )
    lowered: dict[str, str] = {}
    for count, (name, value) in enumerate(headers.items()):
        if count >= _MAX_HEADERS:
            raise _fail("invalid_header", f"more than {_MAX_HEADERS} headers")
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):  # raw ASGI headers
            value = value.decode("latin-1")
        if not isinstance(name, str) or not isinstance(value, str):
            raise _fail(
                "invalid_header",
                f"header {name!r:.40} is {type(value).__name__}, not text",
            )
        key = name.lower()
        if key in lowered and lowered[key] != value and key.startswith("x-atlascloud"):
            # Two different values for one signed field: which was meant?
            raise _fail("invalid_header", f"header {name:.60} given twice")
        lowered[key] = value
    return lowered


def _as_ed25519(text: str) -> bytes | None:
    if len(text) > _MAX_SIGNATURE:
        return None
    try:
        signature = b64url_decode(text)
    except ValueError:
        return None
    return signature if len(signature) == _SIGNATURE_SIZE else None


def _as_hmac(text: str) -> bytes | None:
    found = _HMAC_HEX.fullmatch(text) if len(text) <= _MAX_SIGNATURE else None
    return bytes.fromhex(found.group(1)) if found else None


def _verified(
    signed: _Signed,
    key: Ed25519PublicKey | None,
    secret: bytes | None,
    message: bytes,
) -> tuple[str, str]:
    """Return (scheme, canonical signature) of the form that verifies, or raise."""
    if signed.ed25519 is not None and key is not None:
        try:
            key.verify(signed.ed25519, message)
            return "ed25519", b64url_encode(signed.ed25519)
        except InvalidSignature:
            pass
    if signed.hmac is not None and secret is not None:
        expected = hmac.new(secret, message, hashlib.sha256).digest()
        if hmac.compare_digest(expected, signed.hmac):
            return "hmac-sha256", signed.hmac.hex()
    if signed.hmac is None and key is None:
        raise _fail("unknown_key", f"unknown signing key id {signed.key_id!r}")
    if signed.ed25519 is None and secret is None:
        raise _fail(
            "bad_signature",
            f"{HEADER_BARE_SIGNATURE} holds a hex HMAC and no hmac_secret was"
            " given to check it",
        )
    raise _fail("bad_signature", "the signature does not match")


def _hmac_secret(secret: object) -> bytes | None:
    if secret is None:
        return None
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes) or not secret:
        raise ConfigurationError(
            f"hmac_secret must be a non-empty str or bytes, not {secret!r:.40}"
        )
    return secret


def _coerce_keys(keys: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    if isinstance(keys.get("keys"), list):
        return parse_jwks(keys)
    for kid, key in keys.items():
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError(
                f"key {kid!r} is a {type(key).__name__}, not an Ed25519PublicKey"
            )
    return dict(keys)
