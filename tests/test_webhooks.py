"""Webhook signing, verification, key sets and replay handling."""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio.lowlevel
import httpx
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import atlas_async as atlas
from atlas_async import Kind, PredictionStatus
from atlas_async._wire.parse import parse_prediction
from atlas_async.testing import FakeClock
from atlas_async.webhooks import (
    DEFAULT_JWKS_URL,
    HEADER_EVENT,
    HEADER_ID,
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    JWKSCache,
    WebhookEvent,
    WebhookSigner,
    WebhookVerificationError,
    WebhookVerifier,
    build_body,
    event_type_for,
    fetch_jwks,
    parse_jwks,
)

NOW = 1_700_000_000
SESSION = "session-123"
JWKS_HOST = "https://api.atlascloud.test"
JWKS_PATH = "/api/v1/webhooks/jwks.json"
JWKS_URL = JWKS_HOST + JWKS_PATH
# F18 (docs/wire.md, "Sample answers"), verbatim.
F18 = {
    "session_id": SESSION,
    "event_type": "image.task.terminal",
    "status": "OK",
    "created_at": 1700000000000,
    "payload": {
        "model": "google/nano-banana-2/text-to-image",
        "status": "completed",
        "outputs": ["https://cdn.atlascloud.test/a.png"],
    },
}
# RFC 8037 appendix A: an Ed25519 key pair and its RFC 7638 thumbprint.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def signed(
    signer: WebhookSigner,
    document: object = F18,
    *,
    webhook_id: str = SESSION,
    timestamp: float = NOW,
) -> tuple[dict[str, str], bytes]:
    body = document if isinstance(document, bytes) else encode(document)
    headers = signer.sign(
        body,
        webhook_id=webhook_id,
        event_type="image.task.terminal",
        timestamp=timestamp,
    )
    return headers, body


def with_payload(payload: object, **top: object) -> dict[str, Any]:
    return {**F18, "payload": payload, **top}


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner.generate(kid="k1")


@pytest.fixture
def clock() -> FakeClock:
    """The verifier's clock: its wall() reads NOW until a test advances it."""
    return FakeClock(wall=NOW)


@pytest.fixture
def verifier(signer: WebhookSigner, clock: FakeClock) -> WebhookVerifier:
    return WebhookVerifier(signer.jwks(), clock=clock)


def reason_of(
    verifier: WebhookVerifier, headers: Mapping[str, str], body: bytes
) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        verifier.verify(headers, body)
    return info.value.reason


class TestRoundTrip:
    def test_signed_delivery_verifies_into_an_event(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """A delivery signed by the signer verifies and carries the signed facts."""
        headers, body = signed(signer)

        event = verifier.verify(headers, body)

        assert (event.webhook_id, event.session_id, event.key_id) == (
            SESSION,
            SESSION,
            "k1",
        )
        assert (event.event_type, event.timestamp, event.status) == (
            "image.task.terminal",
            NOW,
            "OK",
        )
        assert event.signature == headers[HEADER_SIGNATURE]
        assert event.raw == F18
        assert event.error is None

    @pytest.mark.parametrize(
        "rename",
        [
            pytest.param(str.lower, id="lower"),
            pytest.param(str.upper, id="upper"),
            pytest.param(str.swapcase, id="swapped"),
        ],
    )
    def test_header_names_match_case_insensitively(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        rename: Any,
    ) -> None:
        """Header lookup ignores case, as HTTP does."""
        headers, body = signed(signer)

        event = verifier.verify({rename(k): v for k, v in headers.items()}, body)

        assert event.session_id == SESSION

    def test_signer_emits_the_five_documented_headers(
        self, signer: WebhookSigner
    ) -> None:
        """sign() returns exactly the X-AtlasCloud-Webhook-* headers Atlas sends."""
        headers, _ = signed(signer)

        assert set(headers) == {
            HEADER_ID,
            HEADER_EVENT,
            HEADER_TIMESTAMP,
            HEADER_KEY_ID,
            HEADER_SIGNATURE,
        }
        assert len(base64.urlsafe_b64decode(headers[HEADER_SIGNATURE] + "==")) == 64

    def test_signature_is_over_timestamp_dot_body(self, signer: WebhookSigner) -> None:
        """The signed message is the exact bytes "<timestamp>.<raw body>"."""
        headers, body = signed(signer)
        signature = base64.urlsafe_b64decode(headers[HEADER_SIGNATURE] + "==")

        signer.public_key.verify(signature, f"{NOW}.".encode() + body)

    def test_padded_signature_is_accepted_and_canonicalised(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """A base64url signature with padding verifies; the event keeps no padding."""
        headers, body = signed(signer)
        canonical = headers[HEADER_SIGNATURE]
        headers[HEADER_SIGNATURE] = canonical + "=="

        assert verifier.verify(headers, body).signature == canonical

    def test_fractional_timestamp_is_signed_as_whole_seconds(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """sign() drops the fraction of a float timestamp (time.time())."""
        headers, body = signed(signer, timestamp=NOW + 0.9)

        assert headers[HEADER_TIMESTAMP] == str(NOW)
        assert verifier.verify(headers, body).timestamp == NOW

    def test_key_mapping_works_like_a_jwks(
        self, signer: WebhookSigner, clock: FakeClock
    ) -> None:
        """A {kid: public key} mapping is accepted in place of a JWKS document."""
        verifier = WebhookVerifier({"k1": signer.public_key}, clock=clock)
        headers, body = signed(signer)

        assert verifier.verify(headers, body).key_id == "k1"
        assert set(verifier.keys) == {"k1"}

    def test_build_body_round_trips_through_verify(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """build_body writes the F18 shape that verify reads back."""
        body = build_body(
            session_id="p-7",
            event_type=event_type_for(Kind.VIDEO),
            payload={"status": "completed", "outputs": ["https://cdn/a.mp4"]},
            created_at=NOW,
        )
        headers, _ = signed(signer, body, webhook_id="p-7")

        event = verifier.verify(headers, body)

        assert event.prediction.outputs == ("https://cdn/a.mp4",)
        assert event.kind is Kind.VIDEO
        assert event.created_at == datetime.fromtimestamp(NOW, tz=timezone.utc)

    def test_null_created_at_is_none(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """created_at is optional in the body; null leaves it unset."""
        event = verifier.verify(*signed(signer, {**F18, "created_at": None}))

        assert event.created_at is None

    def test_build_body_without_created_at_leaves_it_out(self) -> None:
        """created_at is optional in build_body and then absent from the body."""
        body = build_body(session_id="p", event_type="image.task.terminal", payload={})

        assert "created_at" not in json.loads(body)


class TestHeaderFailures:
    @pytest.mark.parametrize(
        "header", [HEADER_ID, HEADER_TIMESTAMP, HEADER_KEY_ID, HEADER_SIGNATURE]
    )
    def test_missing_required_header_is_rejected(
        self, signer: WebhookSigner, verifier: WebhookVerifier, header: str
    ) -> None:
        """Each signing header is required."""
        headers, body = signed(signer)
        del headers[header]

        assert reason_of(verifier, headers, body) == "missing_header"

    def test_empty_header_counts_as_missing(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """An empty header value is as good as no header."""
        headers, body = signed(signer)
        headers[HEADER_KEY_ID] = ""

        assert reason_of(verifier, headers, body) == "missing_header"

    def test_event_header_is_optional(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """The unsigned event header is informational; the body names the event."""
        headers, body = signed(signer)
        headers[HEADER_EVENT] = "video.task.terminal"

        assert verifier.verify(headers, body).event_type == "image.task.terminal"
        del headers[HEADER_EVENT]
        assert verifier.verify(headers, body).event_type == "image.task.terminal"

    @pytest.mark.parametrize(
        ("header", "value"),
        [
            pytest.param(HEADER_TIMESTAMP, "1.7e9", id="timestamp-float"),
            pytest.param(HEADER_TIMESTAMP, f" {NOW}", id="timestamp-space"),
            pytest.param(HEADER_TIMESTAMP, f"-{NOW}", id="timestamp-negative"),
            pytest.param(HEADER_TIMESTAMP, "١٢٣", id="timestamp-non-ascii-digits"),
            pytest.param(HEADER_ID, "session 123", id="id-space"),
            pytest.param(HEADER_KEY_ID, "k1\n", id="kid-newline"),
            pytest.param(HEADER_KEY_ID, "k" * 513, id="kid-too-long"),
        ],
    )
    def test_malformed_header_value_is_rejected(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        header: str,
        value: str,
    ) -> None:
        """Header values that cannot be what Atlas sends fail as invalid_header."""
        headers, body = signed(signer)
        headers[header] = value

        assert reason_of(verifier, headers, body) == "invalid_header"

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("not*base64", id="alphabet"),
            pytest.param("a", id="truncated"),
            pytest.param(base64.b64encode(b"\xff" * 64).decode(), id="standard-b64"),
            pytest.param(base64.urlsafe_b64encode(b"x" * 32).decode(), id="32-bytes"),
        ],
    )
    def test_signature_that_is_not_64_bytes_of_base64url_is_rejected(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        value: str,
    ) -> None:
        """A signature header that cannot decode to 64 bytes is a bad signature."""
        headers, body = signed(signer)
        headers[HEADER_SIGNATURE] = value

        assert reason_of(verifier, headers, body) == "bad_signature"


class TestSignatureFailures:
    def test_unknown_key_id_is_rejected(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """A key id missing from the key set fails as unknown_key."""
        headers, body = signed(WebhookSigner.generate(kid="k2"))

        with pytest.raises(WebhookVerificationError, match="'k2'") as info:
            verifier.verify(headers, body)
        assert info.value.reason == "unknown_key"

    def test_signature_by_another_key_is_rejected(
        self, verifier: WebhookVerifier
    ) -> None:
        """A forger who names our key id but holds another key fails."""
        headers, body = signed(WebhookSigner.generate(kid="k1"))

        assert reason_of(verifier, headers, body) == "bad_signature"

    def test_tampered_body_is_rejected(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """Changing one byte of the body breaks the signature."""
        headers, body = signed(signer)

        assert reason_of(verifier, headers, body.replace(b"OK", b"OK ")) == (
            "bad_signature"
        )

    def test_reserialised_body_is_rejected(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """Equal JSON in other bytes fails: the raw body is what was signed."""
        headers, body = signed(signer)
        reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()

        assert reason_of(verifier, headers, reserialised) == "bad_signature"

    def test_tampered_timestamp_is_rejected(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """The timestamp is signed: moving it within the window still fails."""
        headers, body = signed(signer)
        headers[HEADER_TIMESTAMP] = str(NOW + 1)

        assert reason_of(verifier, headers, body) == "bad_signature"

    def test_zero_padded_timestamp_is_a_different_message(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """The timestamp text is verified as sent, never normalised."""
        headers, body = signed(signer)
        headers[HEADER_TIMESTAMP] = "0" + headers[HEADER_TIMESTAMP]

        assert reason_of(verifier, headers, body) == "bad_signature"


class TestTolerance:
    @pytest.mark.parametrize(
        ("offset", "accepted"),
        [
            pytest.param(0, True, id="now"),
            pytest.param(-300, True, id="300s-old"),
            pytest.param(300, True, id="300s-ahead"),
            pytest.param(-301, False, id="301s-old"),
            pytest.param(301, False, id="301s-ahead"),
        ],
    )
    def test_timestamp_must_be_within_the_window_either_way(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        clock: FakeClock,
        offset: int,
        accepted: bool,
    ) -> None:
        """The default window is 300 s into the past and into the future."""
        headers, body = signed(signer, timestamp=NOW + offset)

        if accepted:
            assert verifier.verify(headers, body).timestamp == NOW + offset
        else:
            assert reason_of(verifier, headers, body) == "stale_timestamp"

    def test_tolerance_accepts_a_timedelta(
        self, signer: WebhookSigner, clock: FakeClock
    ) -> None:
        """tolerance=timedelta(seconds=10) narrows the window to 10 s."""
        verifier = WebhookVerifier(
            signer.jwks(), tolerance=timedelta(seconds=10), clock=clock
        )
        headers, body = signed(signer)

        clock.advance(10)
        assert verifier.verify(headers, body).timestamp == NOW
        clock.advance(1)
        assert reason_of(verifier, headers, body) == "stale_timestamp"

    def test_stale_delivery_fails_before_the_key_is_looked_up(
        self, clock: FakeClock, verifier: WebhookVerifier
    ) -> None:
        """An old delivery with an unknown key id reports the timestamp."""
        headers, body = signed(WebhookSigner.generate(kid="k2"))
        clock.advance(3600)

        assert reason_of(verifier, headers, body) == "stale_timestamp"

    def test_a_bare_callable_is_not_a_clock(self, signer: WebhookSigner) -> None:
        """The verifier and the key cache want a Clock, not time.time."""
        with pytest.raises(atlas.ConfigurationError, match="Clock"):
            WebhookVerifier(signer.jwks(), clock=lambda: NOW)  # type: ignore[arg-type]
        with pytest.raises(atlas.ConfigurationError, match="Clock"):
            JWKSCache(httpx.AsyncClient(), clock=lambda: NOW)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            pytest.param("tolerance", -1.0, id="negative-tolerance"),
            pytest.param("tolerance", float("nan"), id="nan-tolerance"),
            pytest.param("replay_cache_size", 0, id="no-replay-cache"),
        ],
    )
    def test_bad_options_are_refused(
        self, signer: WebhookSigner, option: str, value: object
    ) -> None:
        """Nonsense options raise ConfigurationError at construction."""
        with pytest.raises(atlas.ConfigurationError, match=option):
            WebhookVerifier(signer.jwks(), **{option: value})  # type: ignore[arg-type]


class TestBodyFailures:
    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"not json", id="not-json"),
            pytest.param(b"\xff\xfe\x00", id="not-utf8"),
            pytest.param(encode([F18]), id="array"),
            pytest.param(encode({**F18, "session_id": None}), id="no-session-id"),
            pytest.param(encode({**F18, "session_id": "other"}), id="id-mismatch"),
            pytest.param(encode({**F18, "event_type": 7}), id="bad-event-type"),
            pytest.param(encode({**F18, "status": "ok"}), id="bad-status"),
            pytest.param(encode(with_payload([1])), id="payload-array"),
            pytest.param(encode({**F18, "created_at": "yesterday"}), id="created-text"),
            pytest.param(encode({**F18, "created_at": True}), id="created-bool"),
            pytest.param(encode({**F18, "created_at": 1e300}), id="created-huge"),
            pytest.param(
                encode(with_payload({"outputs": {"a": "u1"}})), id="outputs-object"
            ),
            pytest.param(
                encode(with_payload({"outputs": [{"x": 1}]})), id="output-no-url"
            ),
        ],
    )
    def test_signed_body_of_the_wrong_shape_is_rejected(
        self, signer: WebhookSigner, verifier: WebhookVerifier, body: bytes
    ) -> None:
        """A correctly signed body that is not the F18 shape fails as malformed."""
        headers, _ = signed(signer, body)

        assert reason_of(verifier, headers, body) == "malformed_body"

    def test_body_error_names_the_prediction_once_it_is_known(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """A malformed body with a session id carries it as prediction_id."""
        body = encode({**F18, "status": "maybe"})
        headers, _ = signed(signer, body)

        with pytest.raises(WebhookVerificationError) as info:
            verifier.verify(headers, body)
        assert info.value.prediction_id == SESSION


class TestError:
    def test_error_is_an_atlas_error_with_a_reason(self) -> None:
        """WebhookVerificationError joins the package's tree and survives pickling."""
        error = WebhookVerificationError("nope", reason="bad_signature")
        copy = pickle.loads(pickle.dumps(error))

        assert isinstance(error, atlas.AtlasError)
        assert (copy.reason, str(copy)) == ("bad_signature", "nope")

    @pytest.mark.parametrize(
        ("reason", "retryable"),
        [
            pytest.param("jwks_unavailable", True, id="jwks-unavailable"),
            pytest.param("bad_signature", False, id="bad-signature"),
            pytest.param("stale_timestamp", False, id="stale"),
        ],
    )
    def test_only_an_unreachable_key_set_is_retryable(
        self, reason: Any, retryable: bool
    ) -> None:
        """retryable is true only when the fault is ours and transient."""
        error = WebhookVerificationError("x", reason=reason)

        assert error.retryable is retryable


class TestJWKS:
    def test_ed25519_keys_are_parsed_by_kid(self) -> None:
        """Each OKP/Ed25519 entry becomes a public key under its kid."""
        keys = parse_jwks(
            {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "a"}]}
        )

        assert list(keys) == ["a"]
        assert base64.urlsafe_b64encode(keys["a"].public_bytes_raw()).rstrip(b"=") == (
            RFC8037_X.encode()
        )

    @pytest.mark.parametrize(
        "entry",
        [
            pytest.param({"kty": "RSA", "n": "abc", "e": "AQAB", "kid": "r"}, id="rsa"),
            pytest.param(
                {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "e"}, id="ec"
            ),
            pytest.param(
                {"kty": "OKP", "crv": "X25519", "x": RFC8037_X, "kid": "x"},
                id="x25519",
            ),
            pytest.param(
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": RFC8037_X,
                    "kid": "n",
                    "use": "enc",
                },
                id="encryption-use",
            ),
        ],
    )
    def test_other_keys_are_ignored(self, entry: dict[str, str]) -> None:
        """Keys that are not Ed25519 signing keys are skipped, not rejected."""
        ours = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "ours"}

        assert list(parse_jwks({"keys": [entry, ours]})) == ["ours"]

    @pytest.mark.parametrize(
        "document",
        [
            pytest.param([], id="not-an-object"),
            pytest.param({}, id="no-keys"),
            pytest.param({"keys": {"kid": "a"}}, id="keys-not-a-list"),
            pytest.param({"keys": ["a"]}, id="entry-not-an-object"),
            pytest.param(
                {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}]},
                id="no-kid",
            ),
            pytest.param(
                {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a"}]}, id="no-x"
            ),
            pytest.param(
                {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "a"}]},
                id="x-too-short",
            ),
            pytest.param(
                {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "a+b/", "kid": "a"}]},
                id="x-not-base64url",
            ),
            pytest.param(
                {
                    "keys": [
                        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "a"},
                        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "a"},
                    ]
                },
                id="duplicate-kid",
            ),
        ],
    )
    def test_malformed_documents_are_rejected(self, document: Any) -> None:
        """A document that is not a usable key set raises malformed_jwks."""
        with pytest.raises(WebhookVerificationError) as info:
            parse_jwks(document)

        assert info.value.reason == "malformed_jwks"

    def test_verifier_rejects_a_mapping_of_non_keys(self) -> None:
        """A {kid: something-else} mapping is a configuration mistake."""
        with pytest.raises(atlas.ConfigurationError, match="'k1'"):
            WebhookVerifier({"k1": "not a key"})

    def test_verifier_rejects_a_malformed_jwks(self) -> None:
        """A JWKS document is parsed at construction, so mistakes show up early."""
        with pytest.raises(WebhookVerificationError):
            WebhookVerifier({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a"}]})


class TestSigner:
    def test_default_kid_is_the_rfc7638_thumbprint(self) -> None:
        """Without a kid, the signer names its key by its JWK thumbprint."""
        key = Ed25519PrivateKey.from_private_bytes(
            base64.urlsafe_b64decode(RFC8037_D + "=")
        )

        signer = WebhookSigner(key)

        assert signer.kid == RFC8037_THUMBPRINT
        assert signer.jwk()["x"] == RFC8037_X

    def test_jwks_is_a_document_the_parser_accepts(self) -> None:
        """jwks() is an OKP/Ed25519 signing key set that parse_jwks reads back."""
        signer = WebhookSigner.generate(kid="k9")

        document = signer.jwks()

        assert document["keys"][0]["kty"] == "OKP"
        assert document["keys"][0]["crv"] == "Ed25519"
        assert list(parse_jwks(document)) == ["k9"]

    def test_repr_shows_the_kid_and_not_the_key(self) -> None:
        """The private key never appears in a repr."""
        assert repr(WebhookSigner.generate(kid="k1")) == "WebhookSigner(kid='k1')"


class TestReplay:
    def test_first_delivery_is_neither_replay_nor_seen(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """A new delivery is not a replay, and seen() reports it as new."""
        event = verifier.verify(*signed(signer))

        assert verifier.is_replay(event) is False
        assert verifier.seen(event) is False

    def test_same_delivery_again_is_a_replay(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """The exact same signed delivery is a replay once seen."""
        headers, body = signed(signer)
        verifier.seen(verifier.verify(headers, body))

        again = verifier.verify(headers, body)

        assert verifier.is_replay(again) is True
        assert verifier.seen(again) is True

    def test_redelivery_is_not_a_replay_but_is_already_seen(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """At-least-once redelivery (new timestamp and signature) resolves once."""
        verifier.seen(verifier.verify(*signed(signer)))

        redelivery = verifier.verify(*signed(signer, timestamp=NOW + 20))

        assert verifier.is_replay(redelivery) is False
        assert verifier.seen(redelivery) is True

    def test_verify_alone_records_nothing(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """verify() has no memory; only seen() records deliveries."""
        headers, body = signed(signer)
        verifier.verify(headers, body)

        assert verifier.is_replay(verifier.verify(headers, body)) is False

    def test_replay_memory_is_bounded(
        self, signer: WebhookSigner, clock: FakeClock
    ) -> None:
        """Beyond replay_cache_size, the least recently seen delivery is forgotten."""
        verifier = WebhookVerifier(signer.jwks(), clock=clock, replay_cache_size=2)
        events = [
            verifier.verify(
                *signed(signer, with_payload({}, session_id=s), webhook_id=s)
            )
            for s in ("a", "b", "c")
        ]
        for event in events:
            verifier.seen(event)

        assert [verifier.is_replay(e) for e in events] == [False, True, True]
        assert verifier.seen(events[0]) is False


class TestPrediction:
    def test_f18_body_is_a_completed_prediction(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """The F18 fixture becomes a completed Prediction with its outputs."""
        event = verifier.verify(*signed(signer))

        prediction = event.prediction
        assert prediction.id == SESSION
        assert prediction.status is PredictionStatus.COMPLETED
        assert prediction.status_raw == "completed"
        assert prediction.model == "google/nano-banana-2/text-to-image"
        assert prediction.outputs == ("https://cdn.atlascloud.test/a.png",)
        assert prediction.raw == F18["payload"]
        assert event.created_at == datetime(
            2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc
        )
        assert event.kind is Kind.IMAGE

    def test_ok_envelope_with_failed_payload_is_failed(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """A top-level OK carrying payload.status failed is a FAILED prediction."""
        document = with_payload(
            {"status": "failed", "error": "content policy", "error_code": 1039}
        )

        prediction = verifier.verify(*signed(signer, document)).prediction

        assert prediction.status is PredictionStatus.FAILED
        assert (prediction.error, prediction.error_code) == ("content policy", 1039)

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            pytest.param({"status": "completed"}, PredictionStatus.FAILED, id="done"),
            pytest.param({"status": "processing"}, PredictionStatus.FAILED, id="live"),
            pytest.param({"status": "timeout"}, PredictionStatus.TIMEOUT, id="timeout"),
            pytest.param({}, PredictionStatus.FAILED, id="no-status"),
            pytest.param(None, PredictionStatus.FAILED, id="no-payload"),
        ],
    )
    def test_error_envelope_is_never_a_success(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        payload: object,
        expected: PredictionStatus,
    ) -> None:
        """A top-level ERROR fails the prediction, keeping a specific failure."""
        document = with_payload(payload, status="ERROR", error="worker crashed")

        event = verifier.verify(*signed(signer, document))

        assert (event.status, event.error) == ("ERROR", "worker crashed")
        assert event.prediction.status is expected
        assert event.prediction.error == "worker crashed"

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param("succeeded", PredictionStatus.COMPLETED, id="succeeded"),
            pytest.param("success", PredictionStatus.COMPLETED, id="success"),
            pytest.param("Completed", PredictionStatus.COMPLETED, id="case"),
            pytest.param("cancelled", PredictionStatus.CANCELED, id="cancelled"),
            pytest.param("canceled", PredictionStatus.CANCELED, id="canceled"),
            pytest.param("error", PredictionStatus.FAILED, id="error"),
            pytest.param("timeout", PredictionStatus.TIMEOUT, id="timeout"),
            pytest.param("exploded", PredictionStatus.UNKNOWN, id="unknown-word"),
            pytest.param(3, PredictionStatus.UNKNOWN, id="not-a-string"),
        ],
    )
    def test_payload_status_uses_the_poll_synonyms(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        raw: object,
        expected: PredictionStatus,
    ) -> None:
        """payload.status folds synonyms exactly as the poll API's status does."""
        document = with_payload({"status": raw})

        assert verifier.verify(*signed(signer, document)).prediction.status is expected

    def test_ok_envelope_without_payload_status_is_completed(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """Webhooks are sent only at the end, so a bare OK means completed."""
        prediction = verifier.verify(*signed(signer, with_payload(None))).prediction

        assert prediction.status is PredictionStatus.COMPLETED
        assert (prediction.status_raw, prediction.outputs) == ("", ())

    @pytest.mark.parametrize(
        ("payload", "outputs"),
        [
            pytest.param({"outputs": None, "output": "u1"}, ("u1",), id="output"),
            pytest.param(
                {"outputs": [{"url": "u1"}, {"download_url": "u2"}]},
                ("u1", "u2"),
                id="objects",
            ),
        ],
    )
    def test_outputs_are_read_like_a_poll(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        payload: dict[str, Any],
        outputs: tuple[str, ...],
    ) -> None:
        """outputs may be a singular output, or objects holding a URL, as in polls."""
        document = with_payload({"status": "completed", **payload})

        assert verifier.verify(*signed(signer, document)).prediction.outputs == outputs

    def test_optional_payload_fields_are_carried_over(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """urls, metrics, NSFW flags and an ISO created_at reach the Prediction."""
        document = with_payload(
            {
                "status": "completed",
                "outputs": ["u1"],
                "urls": {"get": "https://api/p", "bad": 1},
                "metrics": {"predict_time": 45.2},
                "has_nsfw_contents": [False],
                "created_at": "2025-01-01T00:00:00Z",
                "error": "",
                "error_code": True,
            }
        )

        prediction = verifier.verify(*signed(signer, document)).prediction

        assert prediction.urls == {"get": "https://api/p"}
        assert prediction.metrics == {"predict_time": 45.2}
        assert prediction.has_nsfw_contents == (False,)
        assert prediction.created_at == datetime(2025, 1, 1, tzinfo=timezone.utc)
        assert (prediction.error, prediction.error_code) == (None, None)

    @pytest.mark.parametrize(
        ("created_at", "expected"),
        [
            pytest.param("2025-13-45", None, id="bad-iso"),
            pytest.param(17, None, id="not-a-string"),
        ],
    )
    def test_unreadable_payload_created_at_is_dropped(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        created_at: object,
        expected: None,
    ) -> None:
        """A payload created_at that is not ISO-8601 is left in raw, not guessed."""
        document = with_payload({"status": "completed", "created_at": created_at})

        prediction = verifier.verify(*signed(signer, document)).prediction

        assert prediction.created_at is expected
        assert prediction.raw["created_at"] == created_at

    def test_session_id_names_the_prediction_over_payload_ids(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """The signed session_id is the prediction id, whatever ids the payload has."""
        document = with_payload({"status": "completed", "request_id": "req-9"})

        prediction = verifier.verify(*signed(signer, document)).prediction

        assert prediction.id == SESSION
        assert prediction.raw == document["payload"]

    def test_structured_error_is_kept_as_json_text(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """An error object without a reason's key is kept as its JSON text
        rather than dropped; one with a reason gives the reason."""
        document = with_payload(
            {"status": "failed"}, status="ERROR", error={"code": 7, "type": "gpu"}
        )
        event = verifier.verify(*signed(signer, document))
        assert event.error == '{"code":7,"type":"gpu"}'

        document = with_payload(
            {"status": "failed"}, status="ERROR", error={"code": 7, "msg": "boom"}
        )
        event = verifier.verify(*signed(signer, document))
        assert event.error == "boom"

    @pytest.mark.parametrize(
        ("event_type", "kind"),
        [
            pytest.param("video.task.terminal", Kind.VIDEO, id="video"),
            pytest.param("audio.task.terminal", Kind.AUDIO, id="audio"),
            pytest.param("llm.task.terminal", None, id="other"),
        ],
    )
    def test_event_kind_comes_from_the_event_type(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        event_type: str,
        kind: Kind | None,
    ) -> None:
        """WebhookEvent.kind maps "<kind>.task.terminal" to a Kind."""
        event = verifier.verify(*signed(signer, {**F18, "event_type": event_type}))

        assert event.kind is kind

    def test_event_type_for_names_the_terminal_event(self) -> None:
        """event_type_for accepts a Kind or its value."""
        assert event_type_for("audio") == "audio.task.terminal"
        assert event_type_for(Kind.IMAGE) == "image.task.terminal"

    def test_event_is_a_frozen_value(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """Events compare by value and cannot be changed."""
        headers, body = signed(signer)
        event = verifier.verify(headers, body)

        assert event == verifier.verify(headers, body)
        with pytest.raises(AttributeError):
            event.status = "ERROR"  # type: ignore[misc]
        assert isinstance(event, WebhookEvent)


# Literal deliveries, each with the (status, id) both readers must give it.
DELIVERIES = [
    pytest.param(F18, PredictionStatus.COMPLETED, id="F18"),
    pytest.param(
        with_payload({"id": "pred-7", "status": "failed"}),
        PredictionStatus.FAILED,
        id="ok-failed-own-id",
    ),
    pytest.param(
        # The case the two readers used to disagree on: COMPLETED under pred-7
        # through parse_prediction, FAILED under the session id when verified.
        with_payload(
            {"id": "pred-7", "status": "completed", "outputs": ["https://cdn/a"]},
            status="ERROR",
            error="worker crashed",
        ),
        PredictionStatus.FAILED,
        id="error-completed",
    ),
    pytest.param(
        with_payload({"status": "timeout"}, status="ERROR"),
        PredictionStatus.TIMEOUT,
        id="error-timeout",
    ),
    pytest.param(
        with_payload({"request_id": "req-9"}), PredictionStatus.COMPLETED, id="ok-bare"
    ),
    pytest.param(
        with_payload(None, status="ERROR"), PredictionStatus.FAILED, id="none"
    ),
]


class TestOneReader:
    @pytest.mark.parametrize(("document", "expected"), DELIVERIES)
    def test_verifier_and_parse_prediction_agree_on_status_and_id(
        self,
        signer: WebhookSigner,
        verifier: WebhookVerifier,
        document: dict[str, Any],
        expected: PredictionStatus,
    ) -> None:
        """A verified delivery and parse_prediction of its body give one answer."""
        headers, body = signed(signer, document)

        verified = verifier.verify(headers, body).prediction
        parsed = parse_prediction(200, {}, body, now=NOW)

        assert (verified.status, verified.id) == (expected, SESSION)
        assert (parsed.status, parsed.id) == (expected, SESSION)
        assert parsed == verified

    def test_a_malformed_delivery_is_refused_by_both(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """A delivery without an envelope status is malformed either way."""
        document = {key: value for key, value in F18.items() if key != "status"}
        headers, body = signed(signer, document)

        assert reason_of(verifier, headers, body) == "malformed_body"
        with pytest.raises(atlas.UnexpectedResponseError, match="status"):
            parse_prediction(200, {}, body, now=NOW)


def jwks_router(*responses: httpx.Response | Exception) -> tuple[Any, Any]:
    router = respx.Router(base_url=JWKS_HOST)
    route = router.get(JWKS_PATH).mock(side_effect=list(responses))
    return router, route


def jwks_response(*signers: WebhookSigner) -> httpx.Response:
    return httpx.Response(200, json={"keys": [s.jwk() for s in signers]})


class TestFetchJWKS:
    @pytest.mark.asyncio
    async def test_fetch_returns_the_document(self, signer: WebhookSigner) -> None:
        """fetch_jwks GETs the URL and returns the decoded document."""
        router, route = jwks_router(jwks_response(signer))
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(router.handler)
        ) as http:
            document = await fetch_jwks(http, JWKS_URL)

        assert document == signer.jwks()
        assert route.calls.last.request.headers["accept"] == "application/json"

    @pytest.mark.parametrize(
        ("response", "error"),
        [
            pytest.param(httpx.Response(404), atlas.APIError, id="404"),
            pytest.param(
                httpx.Response(200, text="<html>"),
                atlas.UnexpectedResponseError,
                id="not-json",
            ),
            pytest.param(
                httpx.Response(200, json=[]),
                atlas.UnexpectedResponseError,
                id="not-an-object",
            ),
            pytest.param(
                httpx.ConnectError("refused"), atlas.TransportError, id="connect"
            ),
        ],
    )
    @pytest.mark.asyncio
    async def test_fetch_failures_map_to_atlas_errors(
        self, response: Any, error: type[Exception]
    ) -> None:
        """Transport, status and body failures raise the package's own errors."""
        router, _ = jwks_router(response)
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(router.handler)
        ) as http:
            with pytest.raises(error):
                await fetch_jwks(http, JWKS_URL)

    @pytest.mark.parametrize(
        ("url", "allowed"),
        [
            pytest.param("http://127.0.0.1:8787/jwks.json", True, id="loopback-ip"),
            pytest.param("http://localhost/jwks.json", True, id="localhost"),
            pytest.param("http://[::1]/jwks.json", True, id="loopback-v6"),
            pytest.param("http://api.atlascloud.ai/jwks.json", False, id="remote"),
            pytest.param("http://10.0.0.1/jwks.json", False, id="private-ip"),
            pytest.param("ftp://localhost/jwks.json", False, id="ftp"),
        ],
    )
    @pytest.mark.asyncio
    async def test_plain_http_is_allowed_only_on_loopback(
        self, signer: WebhookSigner, url: str, allowed: bool
    ) -> None:
        """Keys over plain http could be swapped in transit, so only loopback may."""
        router = respx.Router()
        router.get(url).mock(return_value=jwks_response(signer))
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(router.handler)
        ) as http:
            if allowed:
                assert await fetch_jwks(http, url) == signer.jwks()
            else:
                with pytest.raises(atlas.ConfigurationError):
                    await fetch_jwks(http, url)

    def test_cache_refuses_an_insecure_url_at_construction(self) -> None:
        """JWKSCache checks its URL up front, not at the first delivery."""
        with pytest.raises(atlas.ConfigurationError):
            JWKSCache(httpx.AsyncClient(), "http://example.com/jwks.json")

    def test_default_url_is_atlas_production(self) -> None:
        """The default key set is the one Atlas documents."""
        cache = JWKSCache(httpx.AsyncClient())

        assert cache.url == DEFAULT_JWKS_URL
        assert DEFAULT_JWKS_URL == "https://api.atlascloud.ai/api/v1/webhooks/jwks.json"


class TestJWKSCache:
    @pytest.fixture
    def monotonic(self) -> FakeClock:
        """The cache's clock, apart from the verifier's: ages are on its now()."""
        return FakeClock(1000.0)

    def make(
        self, router: Any, monotonic: FakeClock, **options: Any
    ) -> tuple[JWKSCache, httpx.AsyncClient]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(router.handler))
        return JWKSCache(http, JWKS_URL, clock=monotonic, **options), http

    @pytest.mark.asyncio
    async def test_first_delivery_fetches_the_key_set(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """An empty cache fetches once, then serves later deliveries from memory."""
        router, route = jwks_router(jwks_response(signer))
        cache, http = self.make(router, monotonic)
        verifier = WebhookVerifier(cache, clock=clock)
        async with http:
            first = await verifier.averify(*signed(signer))
            second = await verifier.averify(*signed(signer, timestamp=NOW + 1))

        assert (first.key_id, second.key_id) == ("k1", "k1")
        assert route.call_count == 1
        assert set(verifier.keys) == {"k1"}

    @pytest.mark.asyncio
    async def test_unknown_kid_refreshes_the_key_set(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """A delivery signed by a rotated-in key triggers one refresh and verifies."""
        rotated = WebhookSigner.generate(kid="k2")
        router, route = jwks_router(
            jwks_response(signer), jwks_response(signer, rotated)
        )
        cache, http = self.make(router, monotonic, min_refresh_interval=60)
        verifier = WebhookVerifier(cache, clock=clock)
        async with http:
            await verifier.averify(*signed(signer))
            monotonic.advance(61)
            event = await verifier.averify(*signed(rotated))

        assert event.key_id == "k2"
        assert route.call_count == 2

    @pytest.mark.asyncio
    async def test_refreshes_are_rate_limited(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """Unknown key ids within min_refresh_interval cause no further fetches."""
        router, route = jwks_router(jwks_response(signer), jwks_response(signer))
        cache, http = self.make(
            router, monotonic, min_refresh_interval=timedelta(minutes=1)
        )
        verifier = WebhookVerifier(cache, clock=clock)
        stranger = WebhookSigner.generate(kid="made-up")
        async with http:
            await verifier.averify(*signed(signer))
            for _ in range(5):
                monotonic.advance(10)
                with pytest.raises(WebhookVerificationError) as info:
                    await verifier.averify(*signed(stranger))
                assert info.value.reason == "unknown_key"
            assert route.call_count == 1

            monotonic.advance(10)
            with pytest.raises(WebhookVerificationError):
                await verifier.averify(*signed(stranger))
        assert route.call_count == 2

    @pytest.mark.asyncio
    async def test_concurrent_misses_share_one_fetch(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """Many deliveries arriving on a cold cache fetch the key set once."""
        router, route = jwks_router(jwks_response(signer), jwks_response(signer))

        async def handler(request: httpx.Request) -> httpx.Response:
            # Yield once, so the other deliveries queue up on the cache's lock.
            await anyio.lowlevel.checkpoint()
            response: httpx.Response = router.handler(request)
            return response

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        cache = JWKSCache(http, JWKS_URL, clock=monotonic, min_refresh_interval=0)
        verifier = WebhookVerifier(cache, clock=clock)
        async with http:
            events = await asyncio.gather(
                *(verifier.averify(*signed(signer)) for _ in range(10))
            )

        assert len(events) == 10
        assert route.call_count == 1

    @pytest.mark.asyncio
    async def test_unreachable_key_set_is_retryable(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """When the key set cannot be fetched, the delivery fails as retryable."""
        router, _ = jwks_router(httpx.Response(503))
        cache, http = self.make(router, monotonic)
        verifier = WebhookVerifier(cache, clock=clock)
        async with http:
            with pytest.raises(WebhookVerificationError) as info:
                await verifier.averify(*signed(signer))

        assert info.value.reason == "jwks_unavailable"
        assert info.value.retryable
        assert isinstance(info.value.__cause__, atlas.APIError)

    @pytest.mark.asyncio
    async def test_rate_limited_miss_after_a_failure_stays_retryable(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """Within the interval after a failed fetch, misses report the outage."""
        router, route = jwks_router(httpx.Response(500))
        cache, http = self.make(router, monotonic)
        verifier = WebhookVerifier(cache, clock=clock)
        async with http:
            for _ in range(2):
                with pytest.raises(WebhookVerificationError) as info:
                    await verifier.averify(*signed(signer))
                assert info.value.reason == "jwks_unavailable"

        assert route.call_count == 1

    @pytest.mark.asyncio
    async def test_malformed_key_set_is_retryable(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """A fetched document that is not a key set counts as unavailable."""
        router, _ = jwks_router(httpx.Response(200, json={"keys": "none"}))
        cache, http = self.make(router, monotonic)
        async with http:
            with pytest.raises(WebhookVerificationError) as info:
                await WebhookVerifier(cache, clock=clock).averify(*signed(signer))

        assert info.value.reason == "jwks_unavailable"
        assert "malformed JWKS" in str(info.value)

    @pytest.mark.asyncio
    async def test_stale_keys_are_refetched_and_revoked_keys_drop_out(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """After max_age the set is refetched, and a key no longer in it fails."""
        replacement = WebhookSigner.generate(kid="k2")
        router, route = jwks_router(jwks_response(signer), jwks_response(replacement))
        cache, http = self.make(router, monotonic, max_age=3600)
        verifier = WebhookVerifier(cache, clock=clock)
        async with http:
            await verifier.averify(*signed(signer))
            monotonic.advance(3600)
            with pytest.raises(WebhookVerificationError) as info:
                await verifier.averify(*signed(signer))

        assert info.value.reason == "unknown_key"
        assert route.call_count == 2
        assert set(cache.keys) == {"k2"}

    @pytest.mark.asyncio
    async def test_stale_keys_keep_working_while_the_key_set_is_down(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """A failed refresh of a stale set keeps verifying with the known keys."""
        router, route = jwks_router(jwks_response(signer), httpx.Response(502))
        cache, http = self.make(router, monotonic, max_age=3600)
        verifier = WebhookVerifier(cache, clock=clock)
        async with http:
            await verifier.averify(*signed(signer))
            monotonic.advance(7200)
            event = await verifier.averify(*signed(signer))

        assert event.key_id == "k1"
        assert route.call_count == 2

    @pytest.mark.asyncio
    async def test_header_checks_run_before_any_fetch(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """Deliveries failing cheap checks never reach the JWKS endpoint."""
        router, route = jwks_router(jwks_response(signer))
        cache, http = self.make(router, monotonic)
        verifier = WebhookVerifier(cache, clock=clock)
        headers, body = signed(signer)
        clock.advance(3600)
        async with http:
            with pytest.raises(WebhookVerificationError) as info:
                await verifier.averify(headers, body)

        assert info.value.reason == "stale_timestamp"
        assert route.call_count == 0

    @pytest.mark.asyncio
    async def test_explicit_refresh_loads_keys_for_sync_verify(
        self, signer: WebhookSigner, clock: FakeClock, monotonic: FakeClock
    ) -> None:
        """await cache.refresh() fills the cache, after which verify() works."""
        router, _ = jwks_router(jwks_response(signer))
        cache, http = self.make(router, monotonic)
        verifier = WebhookVerifier(cache, clock=clock)
        headers, body = signed(signer)

        assert reason_of(verifier, headers, body) == "unknown_key"
        async with http:
            await cache.refresh()

        assert verifier.verify(headers, body).key_id == "k1"
        assert cache.get("k1") is not None

    @pytest.mark.asyncio
    async def test_explicit_refresh_raises_when_it_fails(
        self, monotonic: FakeClock
    ) -> None:
        """refresh() reports a failed fetch as jwks_unavailable."""
        router, _ = jwks_router(httpx.ConnectError("down"))
        cache, http = self.make(router, monotonic)
        async with http:
            with pytest.raises(WebhookVerificationError) as info:
                await cache.refresh()

        assert info.value.reason == "jwks_unavailable"
        assert isinstance(info.value.__cause__, atlas.TransportError)

    @pytest.mark.asyncio
    async def test_averify_with_static_keys_is_verify(
        self, signer: WebhookSigner, verifier: WebhookVerifier
    ) -> None:
        """Without a cache, averify checks against the static keys."""
        event = await verifier.averify(*signed(signer))

        assert event == verifier.verify(*signed(signer))
        with pytest.raises(WebhookVerificationError):
            await verifier.averify(*signed(WebhookSigner.generate(kid="k2")))

    def test_negative_intervals_are_refused(self) -> None:
        """min_refresh_interval and max_age must not be negative."""
        with pytest.raises(atlas.ConfigurationError, match="max_age"):
            JWKSCache(httpx.AsyncClient(), max_age=-1)
