"""
The wire contract, held from both ends.

Each case is one literal answer, the bytes Atlas sends. For each, the emulator
must emit it (in-process, on a fake clock, with its own ids put in place of the
literal's) and the SDK must read it into the expected values. The emulator
shares no code with the SDK, so a change on one side that the other does not
follow fails here instead of against the real service.

For nano-banana-2 the emulator reports ``processing``, ``completed`` and
``failed`` (its catalog's classic forms); the ``created`` and ``starting``
answers other clients have seen are read by the SDK side only here.

Webhooks add the signature: a delivery the emulator signs must verify with the
SDK's `WebhookVerifier`, and one literal delivery, signed with the RFC 8032 test
key, must be what the emulator's signer produces and what the verifier accepts,
so neither signer's format can drift unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import anyio
import httpx
import pytest

from atlas_async import (
    Kind,
    ModelInfo,
    NotFoundError,
    Prediction,
    PredictionStatus,
    RateLimitError,
    UploadedMedia,
)
from atlas_async._wire.parse import (
    error_from_response,
    parse_models,
    parse_prediction,
    parse_submit,
    parse_upload,
)
from atlas_async.emulator import Emulator, EmulatorConfig, Faults, SigningKey
from atlas_async.testing import FakeClock
from atlas_async.webhooks import WebhookVerificationError, WebhookVerifier

IMAGE = "google/nano-banana-2/text-to-image"
EPOCH = 1_700_000_000.0  # the emulator's clock 0, in unix seconds
CREATED = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
# The literals' ids; the emulator's own are put in their place before comparing.
PID = "8ba2926c6bd642049f4d17dd68ea6785"
REQUEST_ID = "req_00000000000000aa"
POLL_URL = f"http://127.0.0.1/api/v1/model/prediction/{PID}"
OUTPUT_URL = f"http://127.0.0.1/files/{PID}-0.png"
FAILURE = "Generation failed: the model could not process this request."
JSON = {"content-type": "application/json"}

# RFC 8032 section 7.1, test 1: the seed, and (RFC 8037 appendix A) its public
# JWK member and RFC 7638 thumbprint, computed there, not here.
RFC8032_SEED = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

# --- the literals ---------------------------------------------------------------

SUBMIT = (
    '{"code":200,"message":"","data":{"id":"8ba2926c6bd642049f4d17dd68ea6785",'
    '"model":"google/nano-banana-2/text-to-image","status":"processing",'
    '"outputs":null,"urls":{"get":"http://127.0.0.1/api/v1/model/prediction/'
    '8ba2926c6bd642049f4d17dd68ea6785"},"created_at":"2023-11-14T22:13:20.000Z",'
    '"has_nsfw_contents":null}}'
)
POLL_PROCESSING = (
    '{"code":200,"message":"","data":{"id":"8ba2926c6bd642049f4d17dd68ea6785",'
    '"model":"google/nano-banana-2/text-to-image","status":"processing",'
    '"outputs":null,"urls":{"get":"http://127.0.0.1/api/v1/model/prediction/'
    '8ba2926c6bd642049f4d17dd68ea6785"},"has_nsfw_contents":null,'
    '"created_at":"2023-11-14T22:13:20.000Z","error":null,"error_code":null}}'
)
POLL_COMPLETED = (
    '{"code":200,"message":"","data":{"id":"8ba2926c6bd642049f4d17dd68ea6785",'
    '"model":"google/nano-banana-2/text-to-image","status":"completed",'
    '"outputs":["http://127.0.0.1/files/8ba2926c6bd642049f4d17dd68ea6785-0.png"],'
    '"urls":{"get":"http://127.0.0.1/api/v1/model/prediction/'
    '8ba2926c6bd642049f4d17dd68ea6785"},"has_nsfw_contents":[false],'
    '"created_at":"2023-11-14T22:13:20.000Z","error":"","error_code":null,'
    '"metrics":{"predict_time":4.0},"completed_at":"2023-11-14T22:13:24.000Z",'
    '"executionTime":4000,"latency_ms":4000,"price":0.03}}'
)
POLL_FAILED = (
    '{"code":200,"message":"","data":{"id":"8ba2926c6bd642049f4d17dd68ea6785",'
    '"model":"google/nano-banana-2/text-to-image","status":"failed","outputs":[],'
    '"urls":{"get":"http://127.0.0.1/api/v1/model/prediction/'
    '8ba2926c6bd642049f4d17dd68ea6785"},"has_nsfw_contents":[],'
    '"created_at":"2023-11-14T22:13:20.000Z",'
    '"error":"Generation failed: the model could not process this request.",'
    '"error_code":1000,"metrics":{"predict_time":4.0},'
    '"completed_at":"2023-11-14T22:13:24.000Z","executionTime":4000,'
    '"latency_ms":4000}}'
)
# Seen from Atlas by other clients, never sent by the emulator.
POLL_CREATED = (
    '{"code":200,"data":{"id":"8ba2926c6bd642049f4d17dd68ea6785",'
    '"status":"created","outputs":null,"urls":{"get":"http://127.0.0.1/api/v1/'
    'model/prediction/8ba2926c6bd642049f4d17dd68ea6785"}}}'
)
POLL_STARTING = (
    '{"code":200,"data":{"id":"8ba2926c6bd642049f4d17dd68ea6785","status":"starting"}}'
)
NOT_FOUND = (
    '{"code":404,"msg":"not found","request_id":"req_00000000000000aa","data":null}'
)
RATE_LIMITED = (
    '{"code":429,"msg":"rate limit exceeded","request_id":"req_00000000000000aa",'
    '"data":null}'
)
RATE_LIMITED_HEADERS = {**JSON, "retry-after": "2"}
MODEL_ENTRY = (
    '{"uuid":"18f7358b-b6c6-565a-abbe-6b0a207704cf",'
    '"model":"google/nano-banana-2/text-to-image","type":"Image",'
    '"displayName":"Nano Banana 2","categories":["TEXT-TO-IMAGE"],'
    '"organization":"google","schema":"https://static.atlascloud.ai/model/schema/'
    'google-nano-banana-2-text-to-image.json","tags":[],"display_console":true,'
    '"price":{"discount":"1","actual":{"input_price":"0","output_price":"0",'
    '"base_price":"0.03","cache_price":"0","cache_creation_price":"0",'
    '"output_image_price":"0.03","request_price":"0","unit":"image"},'
    '"origin":{"input_price":"0","output_price":"0","base_price":"0.03",'
    '"cache_price":"0","cache_creation_price":"0","output_image_price":"0.03",'
    '"request_price":"0","unit":"image"}},"input_modalities":["text"],'
    '"output_modalities":["image"]}'
)
UPLOAD = (
    '{"code":200,"message":"","data":{"type":"image/png",'
    '"download_url":"http://127.0.0.1/files/upload-000001-photo.png",'
    '"filename":"photo.png","size":4}}'
)
WEBHOOK_BODY = (
    b'{"session_id":"8ba2926c6bd642049f4d17dd68ea6785",'
    b'"event_type":"image.task.terminal","status":"OK","created_at":1700000004000,'
    b'"payload":{"id":"8ba2926c6bd642049f4d17dd68ea6785",'
    b'"model":"google/nano-banana-2/text-to-image","status":"completed",'
    b'"outputs":["http://127.0.0.1/files/8ba2926c6bd642049f4d17dd68ea6785-0.png"],'
    b'"urls":{"get":"http://127.0.0.1/api/v1/model/prediction/'
    b'8ba2926c6bd642049f4d17dd68ea6785"},"has_nsfw_contents":[false],'
    b'"created_at":"2023-11-14T22:13:20.000Z","error":"","error_code":null,'
    b'"metrics":{"predict_time":4.0},"completed_at":"2023-11-14T22:13:24.000Z",'
    b'"executionTime":4000,"latency_ms":4000,"price":0.03},"error":null}'
)
WEBHOOK_FAILED_BODY = (
    b'{"session_id":"8ba2926c6bd642049f4d17dd68ea6785",'
    b'"event_type":"image.task.terminal","status":"ERROR","created_at":1700000004000,'
    b'"payload":{"id":"8ba2926c6bd642049f4d17dd68ea6785",'
    b'"model":"google/nano-banana-2/text-to-image","status":"failed","outputs":[],'
    b'"urls":{"get":"http://127.0.0.1/api/v1/model/prediction/'
    b'8ba2926c6bd642049f4d17dd68ea6785"},"has_nsfw_contents":[],'
    b'"created_at":"2023-11-14T22:13:20.000Z",'
    b'"error":"Generation failed: the model could not process this request.",'
    b'"error_code":1000,"metrics":{"predict_time":4.0},'
    b'"completed_at":"2023-11-14T22:13:24.000Z","executionTime":4000,'
    b'"latency_ms":4000},'
    b'"error":"Generation failed: the model could not process this request."}'
)
# WEBHOOK_BODY signed with the RFC 8032 key at 1700000004.
WEBHOOK_HEADERS = {
    "X-AtlasCloud-Webhook-Id": PID,
    "X-AtlasCloud-Webhook-Event": "image.task.terminal",
    "X-AtlasCloud-Webhook-Timestamp": "1700000004",
    "X-AtlasCloud-Webhook-Key-Id": RFC8037_KID,
    "X-AtlasCloud-Webhook-Signature-Ed25519": (
        "yYzVqrMyEtVoFWeWsWJyC-fDpmnT4SXspZEaf5r5Tw0Vlb46lkPXwT6eCa70t3nLog_q2K82I6Yp"
        "J-asowoGDA"
    ),
}
WEBHOOK_JWKS = {
    "keys": [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": RFC8037_X,
            "kid": RFC8037_KID,
            "use": "sig",
            "alg": "EdDSA",
        }
    ]
}
SIGNED_AT = 1_700_000_004


def with_ids(literal: str | bytes, prediction_id: str, request_id: str = "") -> Any:
    """The literal as JSON, with the emulator's ids in place of the literal's."""
    text = literal.decode() if isinstance(literal, bytes) else literal
    text = text.replace(PID, prediction_id)
    if request_id:
        text = text.replace(REQUEST_ID, request_id)
    return json.loads(text)


def content(response: httpx.Response) -> Any:
    """The answer's JSON, after checking it says it is JSON."""
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.content)


# --- the emulator side ------------------------------------------------------------


class Receiver:
    """A webhook sender that keeps each POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.arrived = anyio.Event()

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        self.posts.append((dict(headers), body))
        self.arrived.set()
        return 200


@asynccontextmanager
async def emulator(
    faults: Faults | None = None, receiver: Receiver | None = None
) -> AsyncIterator[tuple[Emulator, httpx.AsyncClient, FakeClock]]:
    """An in-process emulator whose image takes 4 s, signing with the RFC key;
    the clock's wall time is the emulator's (EPOCH at clock 0)."""
    clock = FakeClock(wall=EPOCH)
    config = EmulatorConfig(
        epoch=EPOCH,
        model_latency={IMAGE: (4.0, 4.0)},
        faults=faults if faults is not None else Faults(),
    )
    emu = Emulator(
        config,
        clock=clock.now,
        sleep=clock.sleep,
        signer=SigningKey.from_seed(RFC8032_SEED),
        webhook_sender=receiver,
    )
    async with emu, emu.client() as http:
        yield emu, http, clock


async def submit(http: httpx.AsyncClient, prompt: str = "a fox", **body: Any) -> str:
    answer = await http.post(
        "/model/generateImage", json={"model": IMAGE, "prompt": prompt, **body}
    )
    assert answer.status_code == 200, answer.text
    prediction_id: str = answer.json()["data"]["id"]
    return prediction_id


@pytest.mark.asyncio
class TestTheEmulatorEmitsTheLiterals:
    async def test_submit_answers_the_processing_envelope(self) -> None:
        """A submit answers SUBMIT, field for field."""
        async with emulator() as (_, http, _):
            answer = await http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "a fox"}
            )
        body = content(answer)
        assert answer.status_code == 200
        assert body == with_ids(SUBMIT, body["data"]["id"])

    async def test_polls_answer_processing_then_completed(self) -> None:
        """Before its latency a poll is POLL_PROCESSING, after it POLL_COMPLETED."""
        async with emulator() as (_, http, clock):
            pid = await submit(http)
            before = await http.get(f"/model/prediction/{pid}")
            clock.advance(4.0)
            after = await http.get(f"/model/prediction/{pid}")
        assert (before.status_code, after.status_code) == (200, 200)
        assert content(before) == with_ids(POLL_PROCESSING, pid)
        assert content(after) == with_ids(POLL_COMPLETED, pid)

    async def test_a_failed_prediction_polls_as_failed_with_its_error(self) -> None:
        """A forced failure polls as POLL_FAILED, inside HTTP 200."""
        async with emulator() as (_, http, clock):
            pid = await submit(http, "[emulator:fail] a fox")
            clock.advance(4.0)
            answer = await http.get(f"/model/prediction/{pid}")
        assert answer.status_code == 200
        assert content(answer) == with_ids(POLL_FAILED, pid)

    async def test_an_unknown_prediction_is_the_404_envelope(self) -> None:
        """Polling an id the emulator never made answers NOT_FOUND."""
        async with emulator() as (_, http, _):
            answer = await http.get(f"/model/prediction/{PID}")
        request_id = answer.headers["x-request-id"]
        assert answer.status_code == 404
        assert content(answer) == with_ids(NOT_FOUND, PID, request_id)

    async def test_a_refused_submit_is_the_429_envelope_with_retry_after(
        self,
    ) -> None:
        """Over the in-flight limit, a submit answers RATE_LIMITED and Retry-After."""
        async with emulator(Faults(max_in_flight=1, retry_after=2)) as (_, http, _):
            await submit(http)
            answer = await http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "b"}
            )
        request_id = answer.headers["x-request-id"]
        assert answer.status_code == 429
        assert answer.headers["retry-after"] == RATE_LIMITED_HEADERS["retry-after"]
        assert content(answer) == with_ids(RATE_LIMITED, PID, request_id)

    async def test_the_catalog_lists_the_entry_shape(self) -> None:
        """The catalog is {code, message, data: [...]} and holds MODEL_ENTRY."""
        async with emulator() as (_, http, _):
            answer = await http.get("/models")
        body = content(answer)
        assert answer.status_code == 200
        assert (body["code"], body["message"]) == ("200", "")  # a string here
        entry = next(e for e in body["data"] if e["model"] == IMAGE)
        assert entry == json.loads(MODEL_ENTRY)
        assert {frozenset(e) for e in body["data"]} == {frozenset(entry)}

    async def test_an_upload_answers_the_download_url_envelope(self) -> None:
        """A multipart upload of photo.png answers UPLOAD."""
        async with emulator() as (_, http, _):
            answer = await http.post(
                "/model/uploadMedia",
                files={"file": ("photo.png", b"\x89PNG", "image/png")},
            )
        assert answer.status_code == 200
        assert content(answer) == json.loads(UPLOAD)

    @pytest.mark.parametrize(
        ("prompt", "literal"),
        [
            pytest.param("a fox", WEBHOOK_BODY, id="completed"),
            pytest.param("[emulator:fail] a fox", WEBHOOK_FAILED_BODY, id="failed"),
        ],
    )
    async def test_a_webhook_delivery_is_the_literal_body_and_headers(
        self, prompt: str, literal: bytes
    ) -> None:
        """At its end a prediction is POSTed as the literal body, with the
        webhook headers of WEBHOOK_HEADERS (a signature of its own body)."""
        receiver = Receiver()
        async with emulator(receiver=receiver) as (_, http, clock):
            pid = await submit(http, prompt, webhook_url="http://127.0.0.1:9/hook")
            clock.advance(4.0)
            with anyio.fail_after(10):  # a guard only; the clock is fake
                await receiver.arrived.wait()
        [(headers, body)] = receiver.posts
        assert json.loads(body) == with_ids(literal, pid)
        signature = headers.pop("X-AtlasCloud-Webhook-Signature-Ed25519")
        assert len(signature) == 86  # 64 bytes, base64url without padding
        assert headers.pop("Content-Type") == "application/json"
        expected = dict(WEBHOOK_HEADERS, **{"X-AtlasCloud-Webhook-Id": pid})
        del expected["X-AtlasCloud-Webhook-Signature-Ed25519"]
        assert headers == expected


# --- the SDK side ---------------------------------------------------------------


def prediction(**fields: Any) -> Prediction:
    """The literals' prediction with ``fields`` changed."""
    values: dict[str, Any] = {
        "id": PID,
        "status": PredictionStatus.PROCESSING,
        "status_raw": "processing",
        "model": IMAGE,
        "created_at": CREATED,
        "urls": {"get": POLL_URL},
        **fields,
    }
    return Prediction(**values)


class TestTheSdkReadsTheLiterals:
    def test_submit_reads_as_a_processing_prediction(self) -> None:
        """SUBMIT reads as the new prediction, processing, with its poll URL."""
        read = parse_submit(200, JSON, SUBMIT.encode(), now=EPOCH)
        assert read == prediction()

    @pytest.mark.parametrize(
        ("literal", "expected"),
        [
            pytest.param(POLL_PROCESSING, prediction(), id="processing"),
            pytest.param(
                POLL_COMPLETED,
                prediction(
                    status=PredictionStatus.COMPLETED,
                    status_raw="completed",
                    outputs=(OUTPUT_URL,),
                    has_nsfw_contents=(False,),
                    metrics={"predict_time": 4.0},
                ),
                id="completed",
            ),
            pytest.param(
                POLL_FAILED,
                prediction(
                    status=PredictionStatus.FAILED,
                    status_raw="failed",
                    error=FAILURE,
                    error_code=1000,
                    has_nsfw_contents=(),
                    metrics={"predict_time": 4.0},
                ),
                id="failed",
            ),
            pytest.param(
                POLL_CREATED,
                prediction(
                    status=PredictionStatus.CREATED,
                    status_raw="created",
                    model=None,
                    created_at=None,
                ),
                id="created",
            ),
            pytest.param(
                POLL_STARTING,
                prediction(
                    status=PredictionStatus.STARTING,
                    status_raw="starting",
                    model=None,
                    created_at=None,
                    urls={},
                ),
                id="starting",
            ),
        ],
    )
    def test_each_poll_status_reads_as_pinned(
        self, literal: str, expected: Prediction
    ) -> None:
        """Every poll literal reads into the pinned prediction."""
        read = parse_prediction(
            200, JSON, literal.encode(), now=EPOCH, prediction_id=PID
        )
        assert read == expected

    def test_only_completed_and_failed_are_terminal(self) -> None:
        """Of the statuses on this wire, completed ends well and failed ends badly."""
        statuses = {
            literal: parse_prediction(200, JSON, literal.encode(), now=EPOCH).status
            for literal in (
                POLL_CREATED,
                POLL_STARTING,
                POLL_PROCESSING,
                POLL_COMPLETED,
                POLL_FAILED,
            )
        }
        terminal = [s for s in statuses.values() if s.is_terminal]
        assert terminal == [PredictionStatus.COMPLETED, PredictionStatus.FAILED]
        assert [s.is_success for s in terminal] == [True, False]

    def test_the_404_envelope_is_a_not_found_error(self) -> None:
        """NOT_FOUND is a NotFoundError carrying msg, request_id and the id."""
        error = error_from_response(
            404, JSON, NOT_FOUND.encode(), now=EPOCH, prediction_id=PID
        )
        assert isinstance(error, NotFoundError)
        assert (error.status_code, error.message) == (404, "not found")
        assert (error.request_id, error.prediction_id) == (REQUEST_ID, PID)
        with pytest.raises(NotFoundError):
            parse_prediction(404, JSON, NOT_FOUND.encode(), now=EPOCH)

    def test_the_429_envelope_is_a_rate_limit_error_with_its_wait(self) -> None:
        """RATE_LIMITED with Retry-After 2 is a RateLimitError asking for 2 s."""
        error = error_from_response(
            429, RATE_LIMITED_HEADERS, RATE_LIMITED.encode(), now=EPOCH
        )
        assert isinstance(error, RateLimitError)
        assert (error.status_code, error.message) == (429, "rate limit exceeded")
        assert (error.request_id, error.retry_after) == (REQUEST_ID, 2.0)
        with pytest.raises(RateLimitError):
            parse_submit(429, RATE_LIMITED_HEADERS, RATE_LIMITED.encode(), now=EPOCH)

    def test_a_catalog_entry_reads_as_model_info(self) -> None:
        """MODEL_ENTRY reads as an image model with its name and category."""
        body = f'{{"code":200,"message":"","data":[{MODEL_ENTRY}]}}'.encode()
        [info] = parse_models(200, JSON, body, now=EPOCH)
        assert info == ModelInfo(
            model=IMAGE,
            type="Image",
            display_name="Nano Banana 2",
            categories=("TEXT-TO-IMAGE",),
        )
        assert info.kind is Kind.IMAGE

    def test_the_upload_answer_reads_as_uploaded_media(self) -> None:
        """UPLOAD reads as its download URL, file name, size and type."""
        read = parse_upload(200, JSON, UPLOAD.encode(), now=EPOCH)
        assert read == UploadedMedia(
            url="http://127.0.0.1/files/upload-000001-photo.png",
            filename="photo.png",
            size=4,
            content_type="image/png",
        )


# --- the signature ----------------------------------------------------------------


class TestBothSignersAgree:
    def test_the_emulator_key_is_the_rfc_8037_key(self) -> None:
        """From the RFC 8032 seed, the emulator publishes RFC 8037's x and kid."""
        assert SigningKey.from_seed(RFC8032_SEED).jwks() == WEBHOOK_JWKS

    def test_the_emulator_signs_the_literal_delivery_exactly(self) -> None:
        """The emulator's signer, given the literal body, gives the literal headers."""
        headers = SigningKey.from_seed(RFC8032_SEED).sign(
            WEBHOOK_BODY,
            webhook_id=PID,
            event_type="image.task.terminal",
            timestamp=SIGNED_AT + 0.9,  # whole seconds are signed
        )
        assert headers == WEBHOOK_HEADERS

    def test_the_sdk_verifies_the_literal_delivery(self) -> None:
        """The literal signed delivery verifies with the SDK and reads as pinned."""
        verifier = WebhookVerifier(WEBHOOK_JWKS, clock=FakeClock(wall=SIGNED_AT))
        event = verifier.verify(WEBHOOK_HEADERS, WEBHOOK_BODY)
        assert (event.session_id, event.key_id, event.timestamp) == (
            PID,
            RFC8037_KID,
            SIGNED_AT,
        )
        assert (event.event_type, event.kind, event.status) == (
            "image.task.terminal",
            Kind.IMAGE,
            "OK",
        )
        assert event.created_at == datetime.fromtimestamp(SIGNED_AT, tz=timezone.utc)
        assert event.prediction == prediction(
            status=PredictionStatus.COMPLETED,
            status_raw="completed",
            outputs=(OUTPUT_URL,),
            has_nsfw_contents=(False,),
            metrics={"predict_time": 4.0},
        )

    def test_the_sdk_rejects_the_literal_delivery_with_another_body(self) -> None:
        """The literal signature covers the body: one changed byte fails it."""
        verifier = WebhookVerifier(WEBHOOK_JWKS, clock=FakeClock(wall=SIGNED_AT))
        tampered = WEBHOOK_BODY.replace(b'"OK"', b'"ER"', 1)
        with pytest.raises(WebhookVerificationError) as caught:
            verifier.verify(WEBHOOK_HEADERS, tampered)
        assert caught.value.reason == "bad_signature"

    @pytest.mark.asyncio
    async def test_a_delivery_the_emulator_signs_verifies_with_its_served_keys(
        self,
    ) -> None:
        """A failed prediction's delivery verifies against the JWKS the emulator
        serves, and reads as a failure with the emulator's error."""
        receiver = Receiver()
        async with emulator(receiver=receiver) as (emu, http, clock):
            pid = await submit(
                http, "[emulator:fail] a fox", webhook_url="http://127.0.0.1:9/hook"
            )
            clock.advance(4.0)
            with anyio.fail_after(10):  # a guard only; the clock is fake
                await receiver.arrived.wait()
            jwks = (await http.get(emu.jwks_url)).json()
        verifier = WebhookVerifier(jwks, clock=clock)
        event = verifier.verify(*receiver.posts[0])
        assert (event.session_id, event.status, event.error) == (pid, "ERROR", FAILURE)
        assert event.prediction.status is PredictionStatus.FAILED
        assert event.prediction.error_code == 1000
