"""
The webhook verifier against garbage, and the bare signature header (W13).

Every case goes through the public `atlas_async.webhooks` API, both `verify`
and `averify`, and must end in `WebhookVerificationError` (with the expected
``reason``): never a TypeError, AttributeError or RecursionError. The fixtures
are literal: a fixed key (RFC 8037's), a fixed body, and the signatures and
HMACs computed once from them and written down here.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from atlas_async import ConfigurationError, PredictionStatus
from atlas_async.testing import FakeClock
from atlas_async.webhooks import (
    HEADER_BARE_SIGNATURE,
    HEADER_SIGNATURE,
    WebhookSigner,
    WebhookVerificationError,
    WebhookVerifier,
)

NOW = 1_700_000_000
# RFC 8037 appendix A's Ed25519 public key, published under the key id "k1".
JWKS = {
    "keys": [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "kid": "k1",
        }
    ]
}
BODY = (
    b'{"session_id":"s-1","event_type":"image.task.terminal","status":"OK",'
    b'"created_at":1700000000000,"payload":{"model":"m/x","status":"completed",'
    b'"outputs":["https://cdn.example/a.png"]},"error":null}'
)
# RFC 8037's private key over b"1700000000." + BODY.
ED25519 = (
    "Jdr5Ed0Whc_VQZRyhOJnO9KvzcCSmBzlkV-iq2vDnmn-"
    "FFnlsChcyqFa8bnOC3b-BNZvk9ALFohAXvmv1mr5BQ"
)
# HMAC-SHA256(HMAC_SECRET, b"1700000000." + BODY), hex.
HMAC_SECRET = "whsec-legacy-0123"
HMAC_HEX = "6d77364fefcad6c27d6efd80afd66a12626e1fc78c4d25dbcefb3da0c24dc27c"
HEADERS = {
    "X-AtlasCloud-Webhook-Id": "s-1",
    "X-AtlasCloud-Webhook-Event": "image.task.terminal",
    "X-AtlasCloud-Webhook-Timestamp": "1700000000",
    "X-AtlasCloud-Webhook-Key-Id": "k1",
    "X-AtlasCloud-Webhook-Signature-Ed25519": ED25519,
}


def headers(**changes: Any) -> dict[Any, Any]:
    """HEADERS with ``Name_With_Underscores=value`` changed (None: removed)."""
    result: dict[Any, Any] = dict(HEADERS)
    for name, value in changes.items():
        full = "X-AtlasCloud-Webhook-" + name.replace("_", "-")
        if value is None:
            result.pop(full, None)
        else:
            result[full] = value
    return result


def bare(signature: str, **changes: Any) -> dict[Any, Any]:
    """Headers with only the bare signature header carrying ``signature``."""
    return headers(Signature_Ed25519=None, Signature=signature, **changes)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_payload(depth: int) -> bytes:
    inner = '{"a":' * depth + "1" + "}" * depth
    return (
        '{"session_id":"s-1","event_type":"image.task.terminal","status":"OK",'
        f'"payload":{{"status":"completed","metrics":{inner}}}}}'
    ).encode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall=NOW)


def make_verifier(clock: FakeClock, **options: Any) -> WebhookVerifier:
    return WebhookVerifier(JWKS, clock=clock, **options)


def both_ways(
    verifier: WebhookVerifier, given_headers: Any, body: Any
) -> list[WebhookVerificationError]:
    """Run verify and averify; return the two errors (failing on anything else)."""
    errors: list[WebhookVerificationError] = []
    with pytest.raises(WebhookVerificationError) as sync:
        verifier.verify(given_headers, body)
    errors.append(sync.value)

    async def run() -> None:
        await verifier.averify(given_headers, body)

    with pytest.raises(WebhookVerificationError) as async_:
        asyncio.run(run())
    errors.append(async_.value)
    return errors


class Signed:
    """A body signed with a fresh key the verifier knows: garbage that verifies."""

    def __init__(self, signer: WebhookSigner) -> None:
        self.signer = signer

    def __call__(self, body: bytes) -> tuple[dict[str, str], bytes]:
        return (
            self.signer.sign(
                body, webhook_id="s-1", event_type="image.task.terminal", timestamp=NOW
            ),
            body,
        )


SIGNER = WebhookSigner.generate(kid="k2")
SIGN = Signed(SIGNER)
ARABIC_DIGITS = "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"
SHORT_SIGNATURE = base64.urlsafe_b64encode(bytes(63)).decode()
H = headers
INV, M, S, T = "invalid_header", "missing_header", "bad_signature", "stale_timestamp"
B = "malformed_body"


def with_extra(name: Any, value: Any) -> dict[Any, Any]:
    return {**HEADERS, name: value}


def signed_case(name: str, body: bytes) -> tuple[str, dict[str, str], bytes, str]:
    """A body garbage once its signature holds (signed with a known key)."""
    return (name, *SIGN(body), B)


GARBAGE: list[tuple[str, Any, Any, str]] = [
    # -- headers that are not a mapping of text
    ("headers-none", None, BODY, INV),
    ("headers-int", 5, BODY, INV),
    ("headers-list", list(HEADERS.items()), BODY, INV),
    ("headers-str", "X-AtlasCloud-Webhook-Id: s-1", BODY, INV),
    ("headers-bytes", b"X-AtlasCloud-Webhook-Id: s-1", BODY, INV),
    ("name-int", with_extra(7, "x"), BODY, INV),
    ("name-none", with_extra(None, "x"), BODY, INV),
    ("value-none", with_extra("X-AtlasCloud-Webhook-Id", None), BODY, INV),
    ("value-int", H(Timestamp=NOW), BODY, INV),
    ("value-float", H(Timestamp=float(NOW)), BODY, INV),
    ("value-list", H(Signature_Ed25519=[ED25519]), BODY, INV),
    ("value-dict", H(Key_Id={"kid": "k1"}), BODY, INV),
    ("twice-two-values", with_extra("x-atlascloud-webhook-id", "s-2"), BODY, INV),
    # -- missing or empty headers
    ("no-headers", {}, BODY, M),
    ("no-id", H(Id=None), BODY, M),
    ("empty-timestamp", H(Timestamp=""), BODY, M),
    ("no-signature", H(Signature_Ed25519=None), BODY, M),
    ("no-key-id", H(Key_Id=None), BODY, M),
    # -- header values that are not what they claim
    ("id-with-space", H(Id="s 1"), BODY, INV),
    ("id-non-ascii", H(Id="s\u00e9-1"), BODY, INV),
    ("id-huge", H(Id="s" * 100_000), BODY, INV),
    ("key-id-control", H(Key_Id="k\x001"), BODY, INV),
    # -- timestamps
    ("ts-nan", H(Timestamp="NaN"), BODY, INV),
    ("ts-inf", H(Timestamp="inf"), BODY, INV),
    ("ts-negative", H(Timestamp="-1700000000"), BODY, INV),
    ("ts-float", H(Timestamp="1700000000.0"), BODY, INV),
    ("ts-exponent", H(Timestamp="1.7e9"), BODY, INV),
    ("ts-hex", H(Timestamp="0x6553f100"), BODY, INV),
    ("ts-padded", H(Timestamp=" 1700000000"), BODY, INV),
    ("ts-arabic-digits", H(Timestamp=ARABIC_DIGITS), BODY, INV),
    ("ts-huge-digits", H(Timestamp="9" * 4000), BODY, INV),
    ("ts-far-future", H(Timestamp="999999999999"), BODY, T),
    ("ts-epoch", H(Timestamp="0"), BODY, T),
    # -- signatures
    ("sig-not-base64", H(Signature_Ed25519="not base64!"), BODY, S),
    ("sig-63-bytes", H(Signature_Ed25519=SHORT_SIGNATURE), BODY, S),
    ("sig-hex-in-ed25519", H(Signature_Ed25519="ab" * 64), BODY, S),
    ("sig-only-padding", H(Signature_Ed25519="=" * 88), BODY, S),
    ("sig-huge", H(Signature_Ed25519="A" * 1_000_000), BODY, S),
    ("sig-non-ascii", H(Signature_Ed25519="\u00e9" * 86), BODY, S),
    ("sig-latin1-bytes", H(Signature_Ed25519=b"\xff\xfe"), BODY, S),
    ("sig-of-other-body", H(), BODY + b" ", S),
    ("sig-by-other-key", H(Key_Id="k2"), BODY, S),
    ("sig-unknown-key", H(Key_Id="k9"), BODY, "unknown_key"),
    ("bare-garbage", bare("zz" * 32), BODY, S),
    ("bare-hmac-no-secret", bare(HMAC_HEX), BODY, S),
    ("bare-short-hex", bare(HMAC_HEX[:-2]), BODY, S),
    # -- bodies
    ("body-none", H(), None, B),
    ("body-int", H(), 5, B),
    ("body-str", H(), BODY.decode(), B),
    ("body-list", H(), list(BODY), B),
    ("body-dict", H(), json.loads(BODY), B),
    signed_case("body-not-utf8", b"\xff\xfe{\x00"),
    signed_case("body-nested-arrays", nested(100_000)),
    signed_case("body-nested-payload", deep_payload(5_000)),
    signed_case("body-not-an-object", b"[]"),
    signed_case("body-nan-id", b'{"session_id": NaN}'),
    signed_case("body-empty", b""),
]

# What building a verifier from garbage raises: (id, keys, options, error).
NOT_A_VERIFIER: list[tuple[str, Any, dict[str, Any], type[Exception]]] = [
    ("keys-none", None, {}, ConfigurationError),
    ("keys-int", 5, {}, ConfigurationError),
    ("keys-list", [JWKS], {}, ConfigurationError),
    ("jwks-junk", {"keys": [None, 5]}, {}, WebhookVerificationError),
    ("key-str", {"k1": "not a key"}, {}, ConfigurationError),
    ("clock-str", JWKS, {"clock": "now"}, ConfigurationError),
    ("tolerance-none", JWKS, {"tolerance": None}, ConfigurationError),
    ("tolerance-str", JWKS, {"tolerance": "300"}, ConfigurationError),
    ("tolerance-nan", JWKS, {"tolerance": float("nan")}, ConfigurationError),
    ("tolerance-negative", JWKS, {"tolerance": timedelta(-1)}, ConfigurationError),
    ("cache-none", JWKS, {"replay_cache_size": None}, ConfigurationError),
    ("cache-str", JWKS, {"replay_cache_size": "9"}, ConfigurationError),
    ("secret-int", JWKS, {"hmac_secret": 5}, ConfigurationError),
    ("secret-list", JWKS, {"hmac_secret": ["s"]}, ConfigurationError),
    ("secret-dict", JWKS, {"hmac_secret": {"s": 1}}, ConfigurationError),
    ("secret-empty", JWKS, {"hmac_secret": ""}, ConfigurationError),
    ("max-body-zero", JWKS, {"max_body_size": 0}, ConfigurationError),
]

# The bare header never verifies a signature its own key or secret did not
# make: (id, hmac_secret, body, headers, reason).
NEVER_WEAKER: list[tuple[str, Any, bytes, dict[str, Any], str]] = [
    ("no-secret", None, BODY, bare(HMAC_HEX), S),
    ("wrong-secret", "wrong", BODY, bare(HMAC_HEX), S),
    ("other-body", HMAC_SECRET, BODY + b" ", bare(HMAC_HEX), S),
    ("other-timestamp", HMAC_SECRET, BODY, bare(HMAC_HEX, Timestamp="1700000001"), S),
    ("other-id", HMAC_SECRET, BODY, bare(HMAC_HEX, Id="s-2"), B),
    ("hmac-in-ed25519-header", HMAC_SECRET, BODY, H(Signature_Ed25519=HMAC_HEX), S),
    ("bare-ed25519-unknown-kid", HMAC_SECRET, BODY, bare(ED25519, Key_Id="k9"),
     "unknown_key"),
    ("bare-ed25519-other-body", HMAC_SECRET, BODY + b" ", bare(ED25519), S),
]  # fmt: skip


class TestGarbage:
    def test_there_are_at_least_thirty_cases(self) -> None:
        """The table is the point: keep it broad."""
        assert len(GARBAGE) >= 30

    @pytest.mark.parametrize(
        ("given_headers", "body", "reason"),
        [pytest.param(*case[1:], id=case[0]) for case in GARBAGE],
    )
    def test_garbage_is_a_verification_error(
        self, clock: FakeClock, given_headers: Any, body: Any, reason: str
    ) -> None:
        """verify and averify both answer it with WebhookVerificationError and
        the reason of the check that failed."""
        verifier = WebhookVerifier({"keys": [*JWKS["keys"], SIGNER.jwk()]}, clock=clock)
        for error in both_ways(verifier, given_headers, body):
            assert error.reason == reason, error
            assert not error.retryable

    def test_a_body_over_the_size_limit_is_refused_unread(
        self, clock: FakeClock
    ) -> None:
        """max_body_size refuses a huge body before any signature work."""
        verifier = make_verifier(clock, max_body_size=100)
        for error in both_ways(verifier, HEADERS, BODY):
            assert error.reason == "malformed_body"
            assert "larger than 100 bytes" in str(error)

    def test_bytearray_and_memoryview_bodies_still_verify(
        self, clock: FakeClock
    ) -> None:
        """The body types a server hands out are accepted, not only bytes."""
        verifier = make_verifier(clock)
        for body in (bytearray(BODY), memoryview(BODY)):
            assert verifier.verify(HEADERS, body).session_id == "s-1"

    def test_bytes_header_names_and_values_are_read(self, clock: FakeClock) -> None:
        """Raw ASGI headers (bytes) are read as latin-1 text."""
        raw: Any = {k.encode(): v.encode() for k, v in HEADERS.items()}
        assert make_verifier(clock).verify(raw, BODY).session_id == "s-1"

    @pytest.mark.parametrize(
        ("keys", "options", "error"),
        [pytest.param(*case[1:], id=case[0]) for case in NOT_A_VERIFIER],
    )
    def test_garbage_configuration_is_a_typed_error(
        self, keys: Any, options: dict[str, Any], error: type[Exception]
    ) -> None:
        """Building a verifier from garbage raises a typed error up front."""
        build: Any = WebhookVerifier  # garbage on purpose: the types are wrong
        with pytest.raises(error):
            build(keys, **options)


class TestBareSignatureHeader:
    """W13: the bare X-AtlasCloud-Webhook-Signature header, with literal headers."""

    def test_the_literal_fixture_verifies_through_the_ed25519_header(
        self, clock: FakeClock
    ) -> None:
        """The baseline: the -Ed25519 header as Atlas sends it today."""
        event = make_verifier(clock).verify(HEADERS, BODY)
        assert (event.session_id, event.scheme, event.signature) == (
            "s-1",
            "ed25519",
            ED25519,
        )

    def test_ed25519_in_the_bare_header_verifies(self, clock: FakeClock) -> None:
        """After the HMAC is retired the Ed25519 signature comes in the bare header."""
        given = {
            "X-AtlasCloud-Webhook-Id": "s-1",
            "X-AtlasCloud-Webhook-Event": "image.task.terminal",
            "X-AtlasCloud-Webhook-Timestamp": "1700000000",
            "X-AtlasCloud-Webhook-Key-Id": "k1",
            "X-AtlasCloud-Webhook-Signature": ED25519,
        }
        event = make_verifier(clock).verify(given, BODY)
        assert (event.scheme, event.key_id) == ("ed25519", "k1")
        assert event.prediction.status is PredictionStatus.COMPLETED

    def test_during_migration_ed25519_is_preferred_over_the_bare_hmac(
        self, clock: FakeClock
    ) -> None:
        """Both headers: the -Ed25519 one decides, no HMAC secret needed."""
        given = {**HEADERS, "X-AtlasCloud-Webhook-Signature": HMAC_HEX}
        event = make_verifier(clock).verify(given, BODY)
        assert event.scheme == "ed25519"

    def test_a_bad_ed25519_header_does_not_fall_back_to_the_bare_one(
        self, clock: FakeClock
    ) -> None:
        """When -Ed25519 is there it is the signature: a valid HMAC beside a
        forged Ed25519 value does not rescue the delivery."""
        forged = base64.urlsafe_b64encode(bytes(64)).decode().rstrip("=")
        given = {
            **HEADERS,
            "X-AtlasCloud-Webhook-Signature-Ed25519": forged,
            "X-AtlasCloud-Webhook-Signature": HMAC_HEX,
        }
        verifier = make_verifier(clock, hmac_secret=HMAC_SECRET)
        for error in both_ways(verifier, given, BODY):
            assert error.reason == "bad_signature"

    @pytest.mark.parametrize(
        "value",
        [HMAC_HEX, HMAC_HEX.upper(), f"sha256={HMAC_HEX}"],
        ids=["hex", "upper-hex", "sha256-prefix"],
    )
    def test_a_hex_hmac_in_the_bare_header_verifies_with_the_secret(
        self, clock: FakeClock, value: str
    ) -> None:
        """A legacy delivery (no Ed25519, no key id) verifies against the
        configured secret; its signature is kept in one canonical form."""
        given = {
            "X-AtlasCloud-Webhook-Id": "s-1",
            "X-AtlasCloud-Webhook-Timestamp": "1700000000",
            "X-AtlasCloud-Webhook-Signature": value,
        }
        for secret in (HMAC_SECRET, HMAC_SECRET.encode()):
            event = make_verifier(clock, hmac_secret=secret).verify(given, BODY)
            assert (event.scheme, event.signature, event.key_id) == (
                "hmac-sha256",
                HMAC_HEX,
                "",
            )

    @pytest.mark.parametrize(
        ("secret", "body", "given", "reason"),
        [pytest.param(*case[1:], id=case[0]) for case in NEVER_WEAKER],
    )
    def test_the_bare_header_never_weakens_verification(
        self,
        clock: FakeClock,
        secret: str | None,
        body: bytes,
        given: dict[str, str],
        reason: str,
    ) -> None:
        """Each form verifies only against its own key or secret, over the
        signed timestamp and body; no secret means no HMAC is accepted."""
        verifier = make_verifier(clock, hmac_secret=secret)
        for error in both_ways(verifier, given, body):
            assert error.reason == reason

    def test_an_hmac_delivery_still_has_a_timestamp_window(
        self, clock: FakeClock
    ) -> None:
        """The replay window applies to HMAC deliveries too."""
        clock.advance(301)
        verifier = make_verifier(clock, hmac_secret=HMAC_SECRET)
        for error in both_ways(verifier, bare(HMAC_HEX), BODY):
            assert error.reason == "stale_timestamp"

    def test_re_encoding_an_hmac_does_not_make_a_new_delivery(
        self, clock: FakeClock
    ) -> None:
        """Upper-case hex or a prefix is the same delivery for replay checks."""
        verifier = make_verifier(clock, hmac_secret=HMAC_SECRET)
        first = verifier.verify(bare(HMAC_HEX), BODY)
        assert not verifier.seen(first)
        again = verifier.verify(bare("sha256=" + HMAC_HEX.upper()), BODY)
        assert verifier.is_replay(again)

    def test_the_bare_header_name_is_exported(self) -> None:
        """Receivers can name both headers from the public module."""
        assert HEADER_BARE_SIGNATURE == "X-AtlasCloud-Webhook-Signature"
        assert HEADER_SIGNATURE == "X-AtlasCloud-Webhook-Signature-Ed25519"
