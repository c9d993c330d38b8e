"""
The emulator's webhook signing key: Ed25519, signed and published as Atlas does.

What a receiver gets with each delivery:

* the signature is Ed25519 over the exact bytes ``b"<timestamp>." + body``,
  where ``<timestamp>`` is the decimal unix seconds sent in
  ``X-AtlasCloud-Webhook-Timestamp``;
* it travels base64url without padding (64 bytes, so 86 characters) in
  ``X-AtlasCloud-Webhook-Signature-Ed25519``;
* ``X-AtlasCloud-Webhook-Key-Id`` names the key, ``X-AtlasCloud-Webhook-Id`` is
  the prediction (session) id and ``X-AtlasCloud-Webhook-Event`` repeats the
  body's event type;
* the public key is a JWKS document of OKP/Ed25519 keys
  (``{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ..., "kid": ...}]}``),
  served at ``GET /api/v1/webhooks/jwks.json``.

The key id defaults to the key's RFC 7638 thumbprint (with RFC 8037's members
for OKP keys), so one seed always gives one key id.

This is the emulator's own code, written against ``cryptography`` alone: it
shares nothing with the SDK's verifier, so an end-to-end test catches either
side drifting from the format above.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "BARE_SIGNATURE_HEADER",
    "EVENT_HEADER",
    "ID_HEADER",
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SigningKey",
    "WebhookSigning",
]

ID_HEADER: Final = "X-AtlasCloud-Webhook-Id"
EVENT_HEADER: Final = "X-AtlasCloud-Webhook-Event"
TIMESTAMP_HEADER: Final = "X-AtlasCloud-Webhook-Timestamp"
KEY_ID_HEADER: Final = "X-AtlasCloud-Webhook-Key-Id"
SIGNATURE_HEADER: Final = "X-AtlasCloud-Webhook-Signature-Ed25519"
BARE_SIGNATURE_HEADER: Final = "X-AtlasCloud-Webhook-Signature"

_SEED_SIZE = 32


class WebhookSigning(Protocol):
    """
    What the emulator needs of a webhook signer: a key id, a key set to publish
    and a way to sign one delivery.

    `SigningKey` is the emulator's own; any object with these members and the
    same header format works (the SDK's ``atlas_async.webhooks.WebhookSigner``
    does, for tests that already hold one).
    """

    @property
    def kid(self) -> str:
        """The key id sent in ``X-AtlasCloud-Webhook-Key-Id``."""
        ...

    def jwks(self) -> Mapping[str, object]:
        """The public key set, as served at ``/api/v1/webhooks/jwks.json``."""
        ...

    def sign(
        self, body: bytes, *, webhook_id: str, event_type: str, timestamp: float
    ) -> dict[str, str]:
        """Return the ``X-AtlasCloud-Webhook-*`` headers for ``body``."""
        ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """
    An Ed25519 webhook signing key (`WebhookSigning`).

    Example::

        key = SigningKey.from_seed(bytes(32), kid="test-key")
        headers = key.sign(body, webhook_id="p1",
                           event_type="image.task.terminal", timestamp=1700000000)

    Args:
        private_key: the Ed25519 private key.
        kid: the key id; by default the key's RFC 7638 thumbprint.
    """

    def __init__(self, private_key: Ed25519PrivateKey, kid: str | None = None) -> None:
        self._private_key = private_key
        self._x = _b64url(private_key.public_key().public_bytes_raw())
        self._kid = kid if kid is not None else self._thumbprint()

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        """Return a key drawn from the operating system's random source."""
        return cls(Ed25519PrivateKey.generate(), kid)

    @classmethod
    def from_seed(cls, seed: bytes, kid: str | None = None) -> SigningKey:
        """
        Return the key whose 32-byte Ed25519 seed (RFC 8032 private key) is ``seed``.

        The same seed always signs the same bytes the same way, which lets a test
        hold a literal signed delivery.

        Raises:
            ValueError: if ``seed`` is not 32 bytes.
        """
        if len(seed) != _SEED_SIZE:
            raise ValueError(f"an Ed25519 seed is {_SEED_SIZE} bytes, not {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed), kid)

    def __repr__(self) -> str:
        # The private half must never reach a log.
        return f"SigningKey(kid={self._kid!r})"

    @property
    def kid(self) -> str:
        """The key id sent in ``X-AtlasCloud-Webhook-Key-Id``."""
        return self._kid

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half."""
        return self._private_key.public_key()

    def jwk(self) -> dict[str, str]:
        """The public key as one JWK (``kty`` OKP, ``crv`` Ed25519)."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self._x,
            "kid": self._kid,
            "use": "sig",
            "alg": "EdDSA",
        }

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The key set document holding this key."""
        return {"keys": [self.jwk()]}

    def sign(
        self, body: bytes, *, webhook_id: str, event_type: str, timestamp: float
    ) -> dict[str, str]:
        """
        Sign ``body`` at ``timestamp`` and return the five webhook headers.

        Args:
            body: the exact bytes that will be POSTed.
            webhook_id: the prediction (session) id.
            event_type: e.g. ``"image.task.terminal"``.
            timestamp: unix seconds; the fraction is dropped, as the header
                carries whole seconds and the signature covers the header text.
        """
        stamp = f"{int(timestamp)}"
        signature = self._private_key.sign(b"%s.%s" % (stamp.encode("ascii"), body))
        return {
            ID_HEADER: webhook_id,
            EVENT_HEADER: event_type,
            TIMESTAMP_HEADER: stamp,
            KEY_ID_HEADER: self._kid,
            SIGNATURE_HEADER: _b64url(signature),
        }

    def _thumbprint(self) -> str:
        # RFC 7638: the required members only, in lexicographic order, no spaces.
        members = {"crv": "Ed25519", "kty": "OKP", "x": self._x}
        canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
        return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())
