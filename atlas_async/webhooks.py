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
The signature travels in ``X-AtlasCloud-Webhook-Signature-Ed25519``, which is
preferred; without it the bare ``X-AtlasCloud-Webhook-Signature`` is read, where
the Ed25519 signature moves once Atlas retires its legacy HMAC. During that
migration the bare header carries a hex HMAC-SHA256: it is accepted only when
the verifier has the ``hmac_secret`` it was made with (over the same bytes),
and refused otherwise, so no form is ever accepted without its own key.
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
``invalid_header``    headers not a mapping of text (bytes are read as
                      latin-1), or one signed header given twice with two values
``missing_header``    a required header is absent or empty (the key id is not
                      needed for an HMAC)
``invalid_header``    timestamp not decimal seconds; id or key id not a token
``stale_timestamp``   ``|wall() - timestamp| > tolerance`` (either way)
``bad_signature``     the signature is not base64url of 64 bytes (nor, in the
                      bare header, a hex HMAC-SHA256)
``malformed_body``    the body is not bytes, or is over ``max_body_size``
``unknown_key``       no key with that key id
``bad_signature``     the signature does not verify, or an HMAC came and no
                      ``hmac_secret`` was given
``malformed_body``    not a JSON object of the documented shape (or nested too
                      deeply to read), its ``session_id`` is not the id header,
                      or the poll parser rejects its ``payload``
====================  =========================================================

Garbage of any kind (wrong Python types, non-UTF-8, NaN or negative timestamps,
bad base64 or hex, huge or deeply nested bodies) is answered with
`WebhookVerificationError`, never ``TypeError``, ``AttributeError`` or
``RecursionError``.

Cheap checks come first and the body is parsed only once its signature holds.
`WebhookVerifier.averify` does the same, but when the keys come from a `JWKSCache`
it refreshes them on an unknown key id (key rotation), at most once per
``min_refresh_interval``, so unsigned junk cannot turn into a request storm.

``verify`` has no side effects beyond reading the clock. Replays and redeliveries
are the caller's decision, through `WebhookVerifier.is_replay` and
`WebhookVerifier.seen` (bounded LRUs): a redelivered prediction is acknowledged
and ignored, so one session id resolves a waiting prediction once.

The body is read by the one delivery reader (``_wire.webhook``), which
``parse_prediction`` also uses, so a verified event and a parse of the same body
agree. Its payload is read by the poll parser, so a webhook and a poll of the
same prediction give the same `Prediction`; the envelope adds two rules: the id
is the signed ``session_id``, and ``"ERROR"`` is never a success.

The time comes from an injected ``Clock`` (``atlas_async._core.clock``):
``wall()`` for the signed timestamp, ``now()`` for the key cache's ages; the
default is the real clock, and tests pass ``atlas_async.testing.FakeClock``.

This module is the face: the verifier, the signer and the key set live in
private modules below it and are re-exported here. The package never imports
this module: it needs ``cryptography``.
"""

from __future__ import annotations

from ._core.extras import missing_extra

try:
    from ._net.jwks import (
        DEFAULT_JWKS_URL,
        JWKSCache,
        WebhookFailureReason,
        WebhookVerificationError,
        fetch_jwks,
        parse_jwks,
    )
    from ._net.webhook_sign import WebhookSigner
    from ._net.webhook_verify import WebhookEvent, WebhookVerifier
except ModuleNotFoundError as exc:
    if (exc.name or "").partition(".")[0] != "cryptography":
        raise
    raise missing_extra(
        "cryptography", "fastapi", feature="webhook signatures (atlas_async.webhooks)"
    ) from exc
from ._wire.webhook import (
    HEADER_BARE_SIGNATURE,
    HEADER_EVENT,
    HEADER_ID,
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    WebhookStatus,
    build_body,
    event_type_for,
)

__all__ = [
    "DEFAULT_JWKS_URL",
    "HEADER_BARE_SIGNATURE",
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

# Name this module in reprs, tracebacks and pickles: users import them from here.
for _public in (
    JWKSCache,
    WebhookEvent,
    WebhookSigner,
    WebhookVerificationError,
    WebhookVerifier,
    build_body,
    event_type_for,
    fetch_jwks,
    parse_jwks,
):
    _public.__module__ = __name__
del _public
