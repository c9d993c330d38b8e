"""
`WebhookSigner`: signs deliveries as Atlas does, for the emulator and for tests.

The face, `atlas_async.webhooks`, re-exports it; users never import this module.
It is the other half of ``webhook_verify``: Ed25519 over
``b"<timestamp>." + body``, the key published as a JWKS.
"""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .._wire.webhook import (
    HEADER_EVENT,
    HEADER_ID,
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
)
from .jwks import b64url_encode

__all__ = ["WebhookSigner"]


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
        self._x = b64url_encode(private_key.public_key().public_bytes_raw())
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
            HEADER_SIGNATURE: b64url_encode(signature),
        }


def _thumbprint(x: str) -> str:
    # RFC 7638 (with RFC 8037 for OKP): required members, sorted, no whitespace.
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": x}, sort_keys=True, separators=(",", ":")
    )
    return b64url_encode(hashlib.sha256(canonical.encode()).digest())
