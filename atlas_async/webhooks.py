"""
Verify, parse and sign Atlas Cloud webhook deliveries (extras ``fastapi``/``emulator``).

Theory of operation
-------------------
A prediction submitted with ``webhook_url`` ends with one signed POST to that URL,
delivered *at least once*: Atlas retries on failure (10 s, 20 s, 40 s ... up to about
30 min), so the same prediction may arrive several times. Polling keeps working and
stays the reconciliation path; a webhook only lets the wait end early.

Atlas signs, with Ed25519, the exact bytes ``b"<timestamp>." + raw_body``; the key
is named by the ``X-AtlasCloud-Webhook-Key-Id`` header and published as a JWKS.
Only the timestamp and the body are signed, which dictates the rules here:

* the body is verified as the bytes received, never re-serialised JSON;
* the key id only *selects* a key: a forged one fails the signature;
* the unsigned ``X-AtlasCloud-Webhook-Id`` header must equal the signed body's
  ``session_id``, and the event type is read from the body, not the header;
* a delivery is identified by (id, timestamp, signature), the signature in its
  canonical base64url form, so re-encoding a captured signature does not make a
  "new" delivery (OpenSSL also rejects non-canonical Ed25519 signatures).

`WebhookVerifier.verify` checks, in this order, and raises
`WebhookVerificationError` with the first failing ``reason``:

====================  =========================================================
``missing_header``    a required header is absent or empty
``invalid_header``    timestamp not decimal seconds; id or key id not a token
``stale_timestamp``   ``|now - timestamp| > tolerance`` (either direction)
``bad_signature``     the signature header is not base64url of 64 bytes
``unknown_key``       no key with that key id
``bad_signature``     the signature does not verify
``malformed_body``    not a JSON object of the documented shape, its
                      ``session_id`` is not the id header, or the poll parser
                      rejects its ``payload``
====================  =========================================================

Cheap checks come first and the body is parsed only once its signature holds.
`WebhookVerifier.averify` does the same, but when the keys come from a `JWKSCache`
it refreshes them on an unknown key id (key rotation), at most once per
``min_refresh_interval``, so unsigned junk cannot turn into a request storm.

``verify`` has no side effects beyond reading the clock. Replays and redeliveries
are the caller's decision, through `WebhookVerifier.is_replay` and
`WebhookVerifier.seen` (bounded LRUs): a redelivered prediction is acknowledged
and ignored, so one session id resolves a waiting prediction once.

The payload is read by the poll parser (``_convert.structure_prediction``), so a
webhook and a poll of the same prediction give the same `Prediction`; only the
envelope adds a rule: ``"ERROR"`` is never a success.

Fetching and caching the key set (`JWKSCache`, `fetch_jwks`, `parse_jwks`) lives
in the private ``_jwks`` module and is re-exported here.

The package never imports this module: it needs ``cryptography``.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import time
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ._core.errors import ConfigurationError, UnexpectedResponseError
from ._core.models import Kind, Prediction, PredictionStatus
from ._net.jwks import (
    DEFAULT_JWKS_URL as DEFAULT_JWKS_URL,
    JWKSCache as JWKSCache,
    WebhookFailureReason as WebhookFailureReason,
    WebhookVerificationError as WebhookVerificationError,
    b64url_decode as _b64url_decode,
    b64url_encode as _b64url_encode,
    fetch_jwks as fetch_jwks,
    non_negative_seconds as _seconds,
    parse_jwks as parse_jwks,
)
from ._wire import convert as _convert

__all__ = [
    "DEFAULT_JWKS_URL",
    "HEADER_EVENT",
    "HEADER_ID",
    "HEADER_KEY_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "JWKSCache",
    "WebhookEvent",
    "WebhookFailureReason",
    "WebhookSigner",
    "WebhookStatus",
    "WebhookVerificationError",
    "WebhookVerifier",
    "build_body",
    "event_type_for",
    "fetch_jwks",
    "parse_jwks",
]

HEADER_ID: Final = "X-AtlasCloud-Webhook-Id"
HEADER_EVENT: Final = "X-AtlasCloud-Webhook-Event"
HEADER_TIMESTAMP: Final = "X-AtlasCloud-Webhook-Timestamp"
HEADER_KEY_ID: Final = "X-AtlasCloud-Webhook-Key-Id"
HEADER_SIGNATURE: Final = "X-AtlasCloud-Webhook-Signature-Ed25519"

WebhookStatus: TypeAlias = Literal["OK", "ERROR"]

# The key-set half lives in ``_jwks``; name this module in reprs, tracebacks and
# pickles, where users import them from.
for _public in (JWKSCache, WebhookVerificationError, fetch_jwks, parse_jwks):
    _public.__module__ = __name__
del _public

# The event header is informational (unsigned, and the body repeats it).
_REQUIRED = (HEADER_ID, HEADER_TIMESTAMP, HEADER_KEY_ID, HEADER_SIGNATURE)
# Printable ASCII without spaces: these values reach logs and error messages.
_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")
# The timestamp is part of the signed message: never normalise it, only accept it.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE_SIZE = 64


# --- the event ----------------------------------------------------------------


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


def event_type_for(kind: Kind | str) -> str:
    """
    Return the terminal event type Atlas sends for ``kind``.

    Example::

        assert event_type_for("video") == "video.task.terminal"
    """
    return f"{Kind.coerce(kind).value}.task.terminal"


# --- keys ---------------------------------------------------------------------


# --- verification -------------------------------------------------------------


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
class _Delivery:
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
            from ``clock()``.
        clock: wall time in unix seconds (default `time.time`), injectable.
        replay_cache_size: deliveries and session ids remembered by `seen`; size it
            above the deliveries expected within twice ``tolerance``.

    Raises:
        ConfigurationError: a mapping value that is not an Ed25519 public key, or
            a negative ``tolerance`` or non-positive ``replay_cache_size``.
        WebhookVerificationError: ``reason="malformed_jwks"`` for a bad document.
    """

    def __init__(
        self,
        keys: Mapping[str, Any] | JWKSCache,
        *,
        tolerance: float | timedelta = 300.0,
        clock: Callable[[], float] = time.time,
        replay_cache_size: int = 10_000,
    ) -> None:
        self._cache: JWKSCache | None = None
        self._static: Mapping[str, Ed25519PublicKey] = {}
        if isinstance(keys, JWKSCache):
            self._cache = keys
        else:
            self._static = MappingProxyType(_coerce_keys(keys))
        self._tolerance = _seconds(tolerance, "tolerance")
        self._clock = clock
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
        delivery = self._check_headers(headers)
        return self._finish(delivery, self.keys.get(delivery.key_id), body)

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
        delivery = self._check_headers(headers)
        if self._cache is None:
            key = self._static.get(delivery.key_id)
        else:
            key = await self._cache.key(delivery.key_id)
        return self._finish(delivery, key, body)

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

    def _check_headers(self, headers: Mapping[str, str]) -> _Delivery:
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
        skew = self._clock() - timestamp
        if abs(skew) > self._tolerance:
            raise _fail(
                "stale_timestamp",
                f"timestamp {timestamp} is {skew:+.0f}s off the clock, "
                f"outside the {self._tolerance:g}s window",
            )
        try:
            signature = _b64url_decode(lowered[HEADER_SIGNATURE.lower()])
        except ValueError:
            signature = b""
        if len(signature) != _SIGNATURE_SIZE:
            raise _fail(
                "bad_signature", f"{HEADER_SIGNATURE} is not 64 bytes base64url"
            )
        return _Delivery(webhook_id, timestamp_text, timestamp, key_id, signature)

    def _finish(
        self, delivery: _Delivery, key: Ed25519PublicKey | None, body: bytes
    ) -> WebhookEvent:
        if key is None:
            raise _fail("unknown_key", f"unknown signing key id {delivery.key_id!r}")
        message = delivery.timestamp_text.encode("ascii") + b"." + bytes(body)
        try:
            key.verify(delivery.signature, message)
        except InvalidSignature:
            raise _fail("bad_signature", "the signature does not match") from None
        return _parse_event(delivery, body)


def _coerce_keys(keys: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    if isinstance(keys.get("keys"), list):
        return parse_jwks(keys)
    for kid, key in keys.items():
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError(
                f"key {kid!r} is a {type(key).__name__}, not an Ed25519PublicKey"
            )
    return dict(keys)


# --- the body (F18 in atlas-api.md section 15) ----------------------------------------


def _malformed(message: str, session_id: str | None = None) -> WebhookVerificationError:
    return WebhookVerificationError(
        f"malformed webhook body: {message}",
        reason="malformed_body",
        prediction_id=session_id,
    )


def _parse_event(delivery: _Delivery, body: bytes) -> WebhookEvent:
    try:
        document = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        raise _malformed("not JSON") from None
    if not isinstance(document, dict):
        raise _malformed("not a JSON object")
    session_id = document.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise _malformed("no session_id")
    if session_id != delivery.webhook_id:
        raise _malformed(f"session_id differs from {HEADER_ID}", session_id)
    event_type = document.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise _malformed("no event_type", session_id)
    status = document.get("status")
    if status not in ("OK", "ERROR"):
        raise _malformed(f'status is {status!r}, not "OK" or "ERROR"', session_id)
    payload = document.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise _malformed("payload is not an object", session_id)
    created_at = _epoch_ms(document.get("created_at"), session_id)
    error = _text(document.get("error"))
    return WebhookEvent(
        webhook_id=delivery.webhook_id,
        session_id=session_id,
        event_type=event_type,
        timestamp=delivery.timestamp,
        key_id=delivery.key_id,
        signature=_b64url_encode(delivery.signature),
        status="OK" if status == "OK" else "ERROR",
        created_at=created_at,
        prediction=_prediction(session_id, status == "OK", payload, error, document),
        error=error,
        raw=document,
    )


def _epoch_ms(value: object, session_id: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _malformed("created_at is not epoch milliseconds", session_id)
    try:
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise _malformed("created_at is out of range", session_id) from None


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)  # an object or number: keep it readable, not lost


def _prediction(
    session_id: str,
    ok: bool,
    payload: Mapping[str, Any],
    error: str | None,
    document: Mapping[str, Any],
) -> Prediction:
    # The payload is read by the poll parser itself: "the webhook payload carries
    # the same result shape you would have polled for", so the two never disagree
    # on synonyms, outputs or dates.
    try:
        prediction = _convert.structure_prediction(
            payload,
            fallback_id=session_id,
            body=document,
            prediction_id=session_id,
            path="$.payload",
        )
    except UnexpectedResponseError as exc:
        raise _malformed(exc.message, session_id) from exc
    status = prediction.status
    if payload.get("status") is None:
        # Atlas sends webhooks only for terminal predictions; without a payload
        # status the envelope's OK/ERROR is all there is.
        status = PredictionStatus.COMPLETED if ok else PredictionStatus.FAILED
    if not ok and (status.is_success or not status.is_terminal):
        status = PredictionStatus.FAILED  # an envelope ERROR outranks the payload
    return attrs.evolve(
        prediction,
        # The signed session id names the prediction, whatever ids the payload has.
        id=session_id,
        status=status,
        error=prediction.error or error,
    )


# --- signing (the emulator, and users' tests) ---------------------------------


def build_body(
    *,
    session_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    status: WebhookStatus = "OK",
    error: str | None = None,
    created_at: float | None = None,
) -> bytes:
    """
    Encode a webhook body in Atlas's shape (F18), ready for `WebhookSigner.sign`.

    ``created_at`` is unix seconds; the body carries it as epoch milliseconds.

    Example::

        body = build_body(session_id="p1", event_type=event_type_for("image"),
                          payload={"status": "completed", "outputs": [url]})
    """
    document: dict[str, Any] = {
        "session_id": session_id,
        "event_type": event_type,
        "status": status,
    }
    if created_at is not None:
        document["created_at"] = round(created_at * 1000)
    document["payload"] = dict(payload)
    document["error"] = error
    return json.dumps(document, separators=(",", ":")).encode()


class WebhookSigner:
    """
    Signs webhook deliveries the way Atlas does: the emulator's half of `verify`.

    Example::

        signer = WebhookSigner.generate()
        verifier = WebhookVerifier(signer.jwks())
        headers = signer.sign(body, webhook_id="p1",
                              event_type="image.task.terminal", timestamp=time.time())
        event = verifier.verify(headers, body)

    Args:
        private_key: the Ed25519 signing key.
        kid: the key id; by default the key's RFC 7638 thumbprint.
    """

    def __init__(self, private_key: Ed25519PrivateKey, kid: str | None = None) -> None:
        self._private_key = private_key
        self._x = _b64url_encode(private_key.public_key().public_bytes_raw())
        self._kid = kid if kid is not None else _thumbprint(self._x)

    @classmethod
    def generate(cls, kid: str | None = None) -> WebhookSigner:
        """Return a signer with a fresh random key."""
        return cls(Ed25519PrivateKey.generate(), kid)

    def __repr__(self) -> str:
        # Never show the private key.
        return f"WebhookSigner(kid={self._kid!r})"

    @property
    def kid(self) -> str:
        """The key id sent in ``X-AtlasCloud-Webhook-Key-Id``."""
        return self._kid

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, for ``WebhookVerifier({signer.kid: signer.public_key})``."""
        return self._private_key.public_key()

    def jwk(self) -> dict[str, str]:
        """The public key as one JWK (``kty: OKP, crv: Ed25519``)."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self._x,
            "kid": self._kid,
            "use": "sig",
            "alg": "EdDSA",
        }

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """A JWKS document holding this key, as served at ``/webhooks/jwks.json``."""
        return {"keys": [self.jwk()]}

    def sign(
        self, body: bytes, *, webhook_id: str, event_type: str, timestamp: float
    ) -> dict[str, str]:
        """
        Sign ``body`` and return the five ``X-AtlasCloud-Webhook-*`` headers.

        Args:
            body: the exact bytes that will be sent.
            webhook_id: the prediction (session) id.
            event_type: e.g. ``"image.task.terminal"``.
            timestamp: unix seconds; fractions are dropped.
        """
        timestamp_text = str(int(timestamp))
        signature = self._private_key.sign(timestamp_text.encode() + b"." + body)
        return {
            HEADER_ID: webhook_id,
            HEADER_EVENT: event_type,
            HEADER_TIMESTAMP: timestamp_text,
            HEADER_KEY_ID: self._kid,
            HEADER_SIGNATURE: _b64url_encode(signature),
        }


def _thumbprint(x: str) -> str:
    # RFC 7638 (with RFC 8037 for OKP): required members, sorted, no whitespace.
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": x}, sort_keys=True, separators=(",", ":")
    )
    return _b64url_encode(hashlib.sha256(canonical.encode()).digest())
