"""
The emulator's half of the contract: what it emits has the shape of the
literal bodies in `literals` (`shape.assert_shape`: the same keys, recursively,
and the same JSON types; values only where a test pins them).

Each test drives an in-process emulator on a fake clock with plain httpx, as
any client would, and compares the decoded answer with one literal: the
conformance fixtures the emulator emits (F2, F3, F5, F7, F8, F11-F18) and the
wire facts it has a side in (W1-W16). The SDK's half reads the same literals
(`test_sdk_fixtures`, `test_sdk_wire_facts`, `test_sdk_client`); neither half
is compared with the other. Not emitted, so not here: F1 (``starting``), F4
(an id alone), F6 and F10 (bare bodies), F9 (no id), F19 (Replicate's form),
W6's Suno extras, W17 (the asset library) and W18 (a vendor error text).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from atlas_async.emulator import (
    CLASSIC_STYLE,
    Emulator,
    EmulatorConfig,
    Faults,
    SigningKey,
    WireStyle,
)
from atlas_async.testing import FakeClock

from . import literals as lit
from .shape import assert_shape, json_type, shape_mismatches

EPOCH = 1_700_000_000.0  # the emulator's clock 0: 2023-11-14T22:13:20Z
ORIGIN = "http://127.0.0.1"
IMAGE = "google/nano-banana-2/text-to-image"  # in the catalog: the classic forms
NEWER = "google/imagen4-fast"  # outside it: the newer forms (a 2 s queue)
ASR = "bytedance/seed-asr-2.0"
LYRICS = "minimax/lyrics-generation"
AUDIO = "https://example.com/interview.wav"
DONE = 30.0  # Atlas seconds after which every prediction here has ended
FAIL = "[emulator:fail] a fox"
VERDICT = "[emulator:fail] [emulator:verdict-5xx] a fox"

# RFC 8032 section 7.1, test 1: the key W13's literal is signed with.
RFC8032_SEED = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
RFC8032_PUBLIC = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)


def config(**options: Any) -> EmulatorConfig:
    """Every model here takes exactly 4 Atlas seconds once it runs."""
    options.setdefault(
        "model_latency", dict.fromkeys((IMAGE, NEWER, ASR, LYRICS), (4.0, 4.0))
    )
    return EmulatorConfig(epoch=EPOCH, **options)


@attrs.define
class Emu:
    """One in-process emulator, a plain client of it and its clock."""

    http: httpx.AsyncClient
    clock: FakeClock
    emulator: Emulator

    async def submit(
        self,
        model: str = IMAGE,
        path: str = "/model/generateImage",
        **params: Any,
    ) -> str:
        """Submit (asserting HTTP 200) and return the prediction id."""
        params.setdefault("prompt", "a fox")
        answer = await self.http.post(path, json={"model": model, **params})
        assert answer.status_code == 200, answer.text
        prediction_id: str = answer.json()["data"]["id"]
        return prediction_id

    async def ended(
        self, model: str = IMAGE, path: str = "/model/generateImage", **params: Any
    ) -> httpx.Response:
        """Submit, let it end, and return its poll answer."""
        prediction_id = await self.submit(model, path, **params)
        self.clock.advance(DONE)
        return await self.http.get(f"/model/prediction/{prediction_id}")


@asynccontextmanager
async def emulator(
    settings: EmulatorConfig | None = None,
    *,
    key: str = "test-key",
    webhooks: Receiver | None = None,
) -> AsyncIterator[Emu]:
    clock = FakeClock()
    emu = Emulator(
        settings if settings is not None else config(),
        clock=clock.now,
        sleep=clock.sleep,
        signer=SigningKey.from_seed(RFC8032_SEED),
        webhook_sender=webhooks,
    )
    try:
        async with emu, emu.client(key) as http:
            yield Emu(http, clock, emu)
    finally:
        emu.close()


def body_of(answer: httpx.Response, status: int = 200) -> Any:
    """The answer's JSON, after checking its HTTP status and content type."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    return json.loads(answer.content)


class Receiver:
    """A webhook sender that keeps each POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.arrived = anyio.Event()

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        self.posts.append((dict(headers), body))
        self.arrived.set()
        return 200


async def delivery(settings: EmulatorConfig, prompt: str) -> tuple[dict[str, str], Any]:
    """The one webhook POST of an image prediction: its headers and body."""
    receiver = Receiver()
    async with emulator(settings, webhooks=receiver) as emu:
        await emu.submit(prompt=prompt, webhook_url="http://127.0.0.1:9/hook")
        emu.clock.advance(DONE)
        with anyio.fail_after(10):  # a guard only; the clock is fake
            await receiver.arrived.wait()
    [(headers, body)] = receiver.posts
    return headers, json.loads(body)


@pytest.mark.asyncio
class TestFixturesTheEmulatorEmits:
    async def test_f2_a_submit_answers_the_processing_envelope(self) -> None:
        """F2: {code, message, data: {id, model, outputs: null, urls: {get},
        status: "processing"}} (the data has more: created_at, nsfw)."""
        async with emulator() as emu:
            answer = await emu.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "a fox"}
            )
        body = body_of(answer)
        assert_shape(
            body,
            lit.F2_SUBMIT_PROCESSING,
            pins=["code", "message", "data.status", "data.outputs"],
            open=["data"],
        )
        prediction_id = body["data"]["id"]
        assert body["data"]["urls"]["get"].endswith(
            f"/api/v1/model/prediction/{prediction_id}"
        )

    async def test_f3_a_model_with_a_queue_answers_created(self) -> None:
        """F3: a queued model's submit says "created" with a poll URL."""
        async with emulator() as emu:
            answer = await emu.http.post(
                "/model/generateImage", json={"model": NEWER, "prompt": "a fox"}
            )
        assert_shape(
            body_of(answer),
            lit.F3_SUBMIT_CREATED,
            pins=["code", "data.status", "data.outputs"],
            open=["", "data"],
        )

    async def test_f5_a_running_poll_has_null_outputs_and_error_and_no_metrics(
        self,
    ) -> None:
        """F5: processing, `outputs` and `error` null; no `metrics` until it ends."""
        async with emulator() as emu:
            prediction_id = await emu.submit()
            emu.clock.advance(1.0)
            answer = await emu.http.get(f"/model/prediction/{prediction_id}")
        body = body_of(answer)
        assert_shape(
            body,
            lit.F5_PROCESSING,
            pins=["data.status", "data.outputs", "data.error"],
            open=["", "data"],
        )
        assert "metrics" not in body["data"]

    @pytest.mark.parametrize(
        "literal",
        [
            pytest.param(lit.F7_COMPLETED, id="F7"),
            pytest.param(lit.F8_COMPLETED_METRICS, id="F8-metrics"),
        ],
    )
    async def test_f7_f8_a_completed_poll_lists_its_outputs_and_metrics(
        self, literal: bytes
    ) -> None:
        """F7/F8: completed, `outputs` a list of URL strings, `metrics` is
        {predict_time: number}, `created_at` a string."""
        async with emulator() as emu:
            body = body_of(await emu.ended())
        assert_shape(body, literal, pins=["data.status"], open=["", "data"])
        assert body["data"]["outputs"][0].startswith(f"{ORIGIN}/files/")

    async def test_f11_a_failure_inside_http_200_carries_error_and_error_code(
        self,
    ) -> None:
        """F11: a classic model's moderated failure is HTTP 200, `failed`,
        `error` text and `error_code` 1039."""
        async with emulator() as emu:
            answer = await emu.ended(prompt="[emulator:moderate] a fox")
        assert_shape(
            body_of(answer),
            lit.F11_FAILED,
            pins=["code", "data.status", "data.error_code"],
            open=["", "data"],
        )

    async def test_f12_f13_no_key_is_the_401_envelope(self) -> None:
        """F12 (and F13, its live subset): {code, msg, request_id, data: null}."""
        async with emulator() as emu:
            answer = await emu.http.get(
                "/model/prediction/x", headers={"authorization": ""}
            )
        body = body_of(answer, 401)
        assert_shape(body, lit.F12_UNAUTHORIZED, pins=["code", "msg", "data"])
        assert_shape(body, lit.F13_UNAUTHORIZED_LIVE, pins=["code", "msg"], open=[""])
        assert body["request_id"] == answer.headers["x-request-id"]

    async def test_f14_an_unknown_prediction_is_the_404_envelope(self) -> None:
        async with emulator() as emu:
            answer = await emu.http.get("/model/prediction/" + lit.W_ID)
        body = body_of(answer, 404)
        assert_shape(body, lit.F14_NOT_FOUND_LIVE, pins=["code", "msg"], open=[""])
        assert_shape(body, lit.F12_UNAUTHORIZED, pins=["data"])

    async def test_f15_a_submit_the_balance_cannot_cover_is_402(self) -> None:
        """F15: an image costs 0.03; an account holding 0.01 gets 402."""
        async with emulator(config(balance=0.01)) as emu:
            answer = await emu.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "a fox"}
            )
        body = body_of(answer, 402)
        assert_shape(body, lit.F15_NO_BALANCE, pins=["code", "msg", "data"], open=[""])
        assert_shape(body, lit.F12_UNAUTHORIZED, pins=["data"])

    async def test_f16_a_refused_billing_query_is_the_billing_error_envelope(
        self,
    ) -> None:
        """F16: {error: {type, code, message, param}, request_id}, HTTP 400."""
        async with emulator() as emu:
            answer = await emu.http.get(
                f"{ORIGIN}/public/v1/model-usage",
                params={"start_date": "2023-11-15", "end_date": "2023-11-14"},
            )
        assert_shape(
            body_of(answer, 400),
            lit.F16_BILLING_ERROR,
            pins=["error.type", "error.code", "error.message", "error.param"],
        )

    async def test_f17_an_upload_answers_its_download_url(self) -> None:
        """F17: {code, data: {download_url, filename, size}} (and `type`)."""
        async with emulator() as emu:
            answer = await emu.http.post(
                "/model/uploadMedia",
                files={"file": ("photo.jpg", b"\xff\xd8\xff\xe0" * 16, "image/jpeg")},
            )
        body = body_of(answer)
        assert_shape(
            body,
            lit.F17_UPLOAD,
            pins=["code", "data.filename"],
            open=["", "data"],
        )
        assert body["data"]["size"] == 64

    async def test_f18_a_webhook_delivery_is_the_envelope_around_the_poll_data(
        self,
    ) -> None:
        """F18: {session_id, event_type, status: "OK", created_at (epoch ms),
        payload: {model, status, outputs}} (an `error` beside the payload)."""
        headers, body = await delivery(config(), "a fox")
        assert_shape(
            body,
            lit.F18_WEBHOOK,
            pins=["event_type", "status", "payload.model", "payload.status"],
            open=["", "payload"],
        )
        assert body["created_at"] == (EPOCH + 4.0) * 1000
        assert headers["X-AtlasCloud-Webhook-Id"] == body["session_id"]


@pytest.mark.asyncio
class TestW1ToW3VerdictsAnsweredAs5xx:
    @staticmethod
    async def verdicts(count: int = 8) -> list[Any]:
        """The HTTP 500 bodies of ``count`` failed image predictions."""
        async with emulator() as emu:
            ids = [await emu.submit(prompt=VERDICT) for _ in range(count)]
            emu.clock.advance(DONE)
            return [
                body_of(await emu.http.get(f"/model/prediction/{pid}"), 500)
                for pid in ids
            ]

    async def test_w1_a_verdict_is_http_500_with_the_failed_prediction_inside(
        self,
    ) -> None:
        """W1: {code: 500, message, data: {id, status: "failed", error}}."""
        bodies = await self.verdicts()
        inner = [body for body in bodies if body["data"]["error"]]
        assert inner  # the seed gives both forms; W2 takes the other
        for body in inner:
            assert_shape(
                body, lit.W1_FAILED_AS_500, pins=["code", "data.status"], open=["data"]
            )

    async def test_w2_some_verdicts_hold_the_reason_only_in_the_outer_message(
        self,
    ) -> None:
        """W2: `data.error` empty, the outer `message` is the reason."""
        bodies = await self.verdicts()
        outer = [body for body in bodies if not body["data"]["error"]]
        assert outer
        for body in outer:
            assert_shape(
                body,
                lit.W2_OUTER_MESSAGE,
                pins=["code", "data.status", "data.error"],
                open=["data"],
            )
            assert body["message"].startswith("Generation failed")

    async def test_w3_a_timed_out_prediction_can_be_a_5xx_verdict_too(self) -> None:
        """W3: the terminal `timeout`, in a 5xx body."""
        async with emulator(config(faults=Faults(verdict_5xx_rate=1.0))) as emu:
            answer = await emu.ended(prompt="[emulator:timeout] a fox")
        assert_shape(
            body_of(answer, 500),
            lit.w3_terminal_as_5xx("timeout"),
            pins=["code", "data.status"],
            open=["data"],
        )


@pytest.mark.asyncio
class TestW4ErrorObjects:
    @pytest.mark.parametrize("key", ["message", "detail", "reason"])
    async def test_a_model_of_that_style_sends_error_as_an_object(
        self, key: str
    ) -> None:
        """W4: `error` is {key: text} for a model whose style says so."""
        async with emulator(config(style=WireStyle(error_key=key))) as emu:
            answer = await emu.ended(prompt=FAIL)
        assert_shape(
            body_of(answer),
            lit.w4_error_object(json.dumps({key: "bad input"})),
            pins=["code", "data.status"],
            open=["", "data"],
        )

    async def test_a_classic_model_sends_error_as_text(self) -> None:
        async with emulator() as emu:
            answer = await emu.ended(prompt=FAIL)
        assert_shape(
            body_of(answer),
            lit.w4_error_object('"bad input"'),
            pins=["code", "data.status"],
            open=["", "data"],
        )

    @pytest.mark.parametrize(
        ("model", "key", "params", "statuses"),
        [
            pytest.param(ASR, "detail", {"audio": AUDIO}, {500}, id="asr-detail"),
            pytest.param(LYRICS, "reason", {}, {200, 500}, id="lyrics-reason"),
        ],
    )
    async def test_the_text_models_send_their_own_error_keys(
        self, model: str, key: str, params: dict[str, Any], statuses: set[int]
    ) -> None:
        """W4 (and W1): seed-asr-2.0's failures are all HTTP 500 verdicts,
        `error` under `detail`; the lyrics model's, half of them verdicts,
        under `reason` (a W2 verdict has it in the outer message instead)."""
        async with emulator() as emu:
            ids = [
                await emu.submit(model, "/model/generateAudio", prompt=FAIL, **params)
                for _ in range(6)
            ]
            emu.clock.advance(DONE)
            answers = [await emu.http.get(f"/model/prediction/{pid}") for pid in ids]
        assert {answer.status_code for answer in answers} == statuses
        bodies = [body_of(answer, answer.status_code) for answer in answers]
        objects = [body for body in bodies if body["data"]["error"] != ""]
        assert objects
        for body in objects:
            assert_shape(
                body,
                lit.w4_error_object(json.dumps({key: "bad input"})),
                pins=["data.status"],
                open=["", "data"],
            )


def is_text(output: str) -> bool:
    """W5's rule: not a URL (http(s)://, //) and not a data URI."""
    lowered = output.lower()
    return not lowered.startswith(("http://", "https://", "//", "data:"))


@pytest.mark.asyncio
class TestW5AndW6TextModelsAndLiveFields:
    async def test_w5_a_transcript_is_the_text_itself_in_outputs(self) -> None:
        async with emulator() as emu:
            answer = await emu.ended(ASR, "/model/generateAudio", audio=AUDIO)
        body = body_of(answer)
        assert_shape(
            body,
            lit.W5_TRANSCRIPT_OUTPUT,
            pins=["code", "message", "data.status"],
            open=["data"],
        )
        [text] = body["data"]["outputs"]
        assert is_text(text)
        assert text == body["data"]["stt_result"]["text"]

    async def test_w5_lyrics_are_the_text_itself_in_outputs(self) -> None:
        async with emulator() as emu:
            answer = await emu.ended(LYRICS, "/model/generateAudio")
        body = body_of(answer)
        assert_shape(
            body,
            lit.W5_LYRICS_OUTPUTS,
            pins=["code", "message", "data.status"],
            open=["data"],
        )
        assert all(is_text(output) for output in body["data"]["outputs"])
        assert "[Verse]" in body["data"]["outputs"][0]

    async def test_w6_a_transcript_carries_every_live_field_and_stt_result(
        self,
    ) -> None:
        """W6: price (as text in this style), latency_ms, executionTime,
        completed_at, created_at, has_nsfw_contents and stt_result{text,
        language, language_code, duration, words[], channels[]}. `timings` and
        `duration` come "depending on the model": this one sends neither."""
        settings = config(style=WireStyle(price_as_text=True))
        async with emulator(settings) as emu:
            answer = await emu.ended(ASR, "/model/generateAudio", audio=AUDIO)
        body = body_of(answer)
        assert_shape(
            body,
            lit.W6_LIVE_FIELDS,
            pins=["code", "message", "data.status", "data.error"],
            open=["data", "data.stt_result.words[]"],
            optional=["data.timings", "data.duration"],
        )
        data = body["data"]
        assert data["latency_ms"] == data["executionTime"] == 4000
        assert data["completed_at"] == "2023-11-14T22:13:24.000Z"

    async def test_w6_lyrics_carry_lyrics_result_and_a_numeric_price(self) -> None:
        """W6: {song_title, style_tags, lyrics}; the classic style's price is a
        number, as the literal's."""
        async with emulator(config(style=CLASSIC_STYLE)) as emu:
            answer = await emu.ended(
                LYRICS, "/model/generateAudio", prompt="city lights"
            )
        body = body_of(answer)
        assert_shape(
            body, lit.W6_LYRICS_RESULT, pins=["code", "data.status"], open=["", "data"]
        )
        assert body["data"]["lyrics_result"]["lyrics"] == body["data"]["outputs"][0]

    async def test_w6_the_newer_forms_send_the_price_as_text(self) -> None:
        """W6: `price` "string or number"; a model outside the catalog sends
        text, as W6_LIVE_FIELDS has it."""
        async with emulator() as emu:
            body = body_of(await emu.ended(NEWER))
        assert body["data"]["price"] == "0.03"
        literal = json.loads(lit.W6_LIVE_FIELDS)["data"]["price"]
        assert json_type(body["data"]["price"]) == json_type(literal)


@pytest.mark.asyncio
class TestW7History:
    async def test_an_ended_prediction_is_an_item_with_its_result(self) -> None:
        """W7: {code: "200", message, data: {items[{ID, createdAt, model,
        requestBody, status, result}], pageNo, pageSize, total}}."""
        sent = b'{"model": "google/nano-banana-2/text-to-image", "prompt": "a fox"}'
        async with emulator() as emu:
            submitted = await emu.http.post(
                "/model/generateImage",
                content=sent,
                headers={"content-type": "application/json"},
            )
            prediction_id = body_of(submitted)["data"]["id"]
            emu.clock.advance(2.0)
            await emu.submit()  # a second, still running when the first has ended
            emu.clock.advance(2.0)
            answer = await emu.http.get(
                "/model/history", params={"no": 1, "size": 10, "status": "completed"}
            )
        body = body_of(answer)
        assert_shape(
            body,
            lit.W7_HISTORY,
            pins=["code", "message", "data.pageNo", "data.pageSize", "data.total"],
            open=["data.items[].result"],
        )
        [item] = body["data"]["items"]
        assert item["ID"] == prediction_id
        assert item["requestBody"] == sent.decode()
        assert item["createdAt"] == "1700000000"
        assert item["result"]["status"] == item["status"] == "completed"

    async def test_a_running_prediction_is_an_item_without_result(self) -> None:
        async with emulator() as emu:
            await emu.submit()
            answer = await emu.http.get("/model/history", params={"no": 1, "size": 10})
        [item] = body_of(answer)["data"]["items"]
        assert_shape(item, lit.W7_HISTORY_RUNNING_ITEM, pins=["status"])


@pytest.mark.asyncio
class TestW8Statuses:
    @pytest.mark.parametrize(
        ("prompt", "at", "status"),
        [
            pytest.param("a fox", 0.0, "created", id="created"),
            pytest.param("a fox", 3.0, "processing", id="processing"),
            pytest.param("a fox", DONE, "completed", id="completed"),
            pytest.param(FAIL, DONE, "failed", id="failed"),
            pytest.param("[emulator:timeout] a fox", DONE, "timeout", id="timeout"),
        ],
    )
    async def test_every_status_of_the_vocabulary_is_emitted(
        self, prompt: str, at: float, status: str
    ) -> None:
        """W8: created, processing, completed, failed, timeout (a model with a
        queue, every failure inside HTTP 200 here). An ended failure's
        `outputs` is [] where the literal has null: both say "none"."""
        settings = config(faults=Faults(verdict_5xx_rate=0.0))
        async with emulator(settings) as emu:
            prediction_id = await emu.submit(NEWER, prompt=prompt)
            emu.clock.advance(at)
            answer = await emu.http.get(f"/model/prediction/{prediction_id}")
        body = body_of(answer)
        if status in ("failed", "timeout"):
            assert body["data"]["outputs"] == []
            body["data"]["outputs"] = None
        assert_shape(
            body, lit.w8_status(status), pins=["code", "data.status"], open=["", "data"]
        )


@pytest.mark.asyncio
class TestW9W10Uploads:
    async def test_w9_a_file_is_typed_by_its_name_and_keeps_it(self) -> None:
        """W9: voice.m4a sent as octet-stream is audio/mp4; the URL keeps
        the extension."""
        async with emulator() as emu:
            answer = await emu.http.post(
                "/model/uploadMedia",
                files={"file": ("voice.m4a", bytes(4096), "application/octet-stream")},
            )
        body = body_of(answer)
        assert_shape(
            body,
            lit.W9_UPLOAD_TYPED_BY_NAME,
            pins=["code", "message", "data.type", "data.filename", "data.size"],
        )
        assert body["data"]["download_url"].endswith("voice.m4a")

    async def test_w10_uploads_have_their_own_limit_above_the_body_limit(
        self,
    ) -> None:
        """W10: an upload larger than any other body may be is accepted."""
        settings = config(max_body_bytes=1024)
        async with emulator(settings) as emu:
            upload = await emu.http.post(
                "/model/uploadMedia",
                files={"file": ("voice.m4a", bytes(4096), "audio/mp4")},
            )
            submit = await emu.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "x" * 4096}
            )
        assert_shape(body_of(upload), lit.W9_UPLOAD_TYPED_BY_NAME, pins=["data.size"])
        assert submit.status_code == 413


@pytest.mark.asyncio
class TestW11Billing:
    async def test_the_balance_body_and_a_running_predictions_frozen_price(
        self,
    ) -> None:
        """W11: {object, scope, account{id, name, type}, available, cash, bonus,
        subscription_bonus, frozen{value, currency}, credit_grant{...},
        request_id}; an image (0.03) running on 10 USD freezes 0.03."""
        async with emulator(config(balance=10)) as emu:
            await emu.submit()
            running = await emu.http.get(f"{ORIGIN}/public/v1/balance")
            emu.clock.advance(DONE)
            ended = await emu.http.get(f"{ORIGIN}/public/v1/balance")
        assert_shape(
            body_of(running),
            lit.W11_BALANCE,
            pins=[
                "object",
                "scope",
                "account.type",
                "available.value",
                "cash.value",
                "frozen.value",
                "frozen.currency",
            ],
            open=["credit_grant"],
        )
        charged = body_of(ended)
        assert (charged["cash"]["value"], charged["frozen"]["value"]) == (
            "9.970000",
            "0.000000",
        )

    @pytest.mark.parametrize("path", ["model-usage", "model-costs"])
    async def test_usage_and_costs_are_lists_of_daily_buckets(self, path: str) -> None:
        """W11: {object: "list", scope, data[{object: "bucket", date, start_at,
        end_at, partial, results[]}], has_more, next_page, request_id};
        `group_by[]=model` groups the rows."""
        async with emulator() as emu:
            await emu.submit()
            emu.clock.advance(DONE)
            answer = await emu.http.get(
                f"{ORIGIN}/public/v1/{path}?start_date=2023-11-14&end_date=2023-11-15"
                "&group_by[]=model&utm_source=test"
            )
        body = body_of(answer)
        assert_shape(
            body,
            lit.W11_USAGE_LIST,
            pins=["object", "scope", "has_more", "next_page"],
        )
        [bucket] = body["data"]
        assert (bucket["date"], bucket["partial"]) == ("2023-11-14", True)
        [row] = bucket["results"]
        assert row["model"] == IMAGE


@pytest.mark.asyncio
class TestW12Prices:
    @pytest.mark.parametrize(
        ("model", "literal"),
        [
            pytest.param(IMAGE, lit.W12_PRICE_PER_IMAGE, id="image"),
            pytest.param(
                "bytedance/seedance-2.0/text-to-video",
                lit.W12_PRICE_PER_SECOND,
                id="second",
            ),
        ],
    )
    async def test_a_catalog_price_is_the_literals(
        self, model: str, literal: bytes
    ) -> None:
        """An entry's `price` has the literal's keys and, for the stock image
        and video models, its amounts and unit."""
        async with emulator() as emu:
            body = body_of(await emu.http.get("/models"))
        [entry] = [sent for sent in body["data"] if sent["model"] == model]
        pins = [
            f"{side}.{name}"
            for side in ("actual", "origin")
            for name in ("base_price", "output_image_price", "request_price", "unit")
        ]
        assert_shape(entry["price"], literal, pins=["discount", *pins])

    async def test_a_completed_prediction_is_charged_its_catalog_price(
        self,
    ) -> None:
        """The `price` a completed image reports (W6) is what the balance loses:
        two images at 0.03 each cost 0.06."""
        async with emulator(config(balance=10)) as emu:
            answer = await emu.ended(num_images=2)
            balance = body_of(await emu.http.get(f"{ORIGIN}/public/v1/balance"))
        assert body_of(answer)["data"]["price"] == 0.06
        assert balance["cash"]["value"] == "9.940000"


@pytest.mark.asyncio
class TestW12Catalog:
    async def test_entries_share_the_literals_fields_and_price_units(self) -> None:
        """W12: `code` the string "200" (the vendor's type for this list);
        each entry's fields that the literal has are of its types, the price
        under `price.actual` with its `unit`. The literal's optional fields
        (cache_creation_price, supported_*, minDuration, priority, avgLatency)
        are not sent; `categories` and `tags` are lists, never null."""
        async with emulator() as emu:
            body = body_of(await emu.http.get("/models"))
        entry = json.loads(lit.W12_CATALOG_ENTRY)
        not_sent = {
            "cache_creation_price",
            "supported_protocols",
            "supported_sampling_parameters",
            "minDuration",
            "priority",
            "avgLatency",
        }
        assert_shape(
            {"code": body["code"], "data": []},
            lit.W12_CATALOG,
            pins=["code"],
        )
        # null in the literal is "defensive only"; the discount's type is
        # pinned by no source (a number there, text here).
        literal = {k: v for k, v in entry.items() if k not in ("categories", "tags")}
        del literal["price"]["discount"]
        units = {"generation", "second", "image", "minute", "1k_chars"}
        for sent in body["data"]:
            assert isinstance(sent["categories"], list)
            assert isinstance(sent["tags"], list)
            compared = {k: v for k, v in sent.items() if k in literal}
            compared["price"] = {
                k: v for k, v in sent["price"].items() if k != "discount"
            }
            problems = shape_mismatches(
                compared,
                literal,
                open={"price.actual", "price.origin"},
                optional=not_sent,
            )
            assert not problems, (sent["model"], problems)
            assert sent["price"]["actual"]["unit"] in units
        asr = next(e for e in body["data"] if e["model"] == ASR)
        assert (asr["type"], asr["price"]["actual"]["unit"]) == ("Audio", "minute")
        assert (asr["input_modalities"], asr["output_modalities"]) == (
            ["audio"],
            ["text"],
        )


@pytest.mark.asyncio
class TestW13BareSignatureHeader:
    @staticmethod
    def verify(headers: Mapping[str, str], signature: str, body: bytes) -> None:
        """Ed25519 over b"<timestamp>." + body with the RFC 8032 public key."""
        key = Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC)
        stamp = headers["X-AtlasCloud-Webhook-Timestamp"]
        key.verify(
            base64.urlsafe_b64decode(signature + "=="), f"{stamp}.".encode() + body
        )

    async def test_bare_sends_the_ed25519_signature_only_in_the_bare_header(
        self,
    ) -> None:
        """W13, after the HMAC's retirement: the literal's five headers, the
        Ed25519 signature (base64url, 86 characters) in the bare one."""
        receiver = Receiver()
        async with emulator(config(webhook_signature="bare"), webhooks=receiver) as emu:
            await emu.submit(webhook_url="http://127.0.0.1:9/hook")
            emu.clock.advance(DONE)
            with anyio.fail_after(10):
                await receiver.arrived.wait()
        [(headers, body)] = receiver.posts
        assert headers.pop("Content-Type") == "application/json"
        assert set(headers) == set(lit.W13_BARE_SIGNATURE_HEADERS)
        literal = lit.W13_BARE_SIGNATURE_HEADERS
        assert (
            headers["X-AtlasCloud-Webhook-Key-Id"]
            == literal["X-AtlasCloud-Webhook-Key-Id"]
        )
        assert (
            headers["X-AtlasCloud-Webhook-Event"]
            == literal["X-AtlasCloud-Webhook-Event"]
        )
        signature = headers["X-AtlasCloud-Webhook-Signature"]
        assert len(signature) == len(literal["X-AtlasCloud-Webhook-Signature"]) == 86
        self.verify(headers, signature, body)

    async def test_both_sends_the_same_signature_in_both_headers(self) -> None:
        """W13's fallback: with "both", the bare header repeats -Ed25519."""
        headers, _ = await delivery(config(webhook_signature="both"), "a fox")
        assert (
            headers["X-AtlasCloud-Webhook-Signature"]
            == headers["X-AtlasCloud-Webhook-Signature-Ed25519"]
        )


class TestW13LiteralSignature:
    def test_the_emulators_signer_makes_the_literal_signature(self) -> None:
        """The literal's signature is what the emulator's key signs F18 with."""
        literal = lit.W13_BARE_SIGNATURE_HEADERS
        signed = SigningKey.from_seed(RFC8032_SEED).sign(
            lit.F18_WEBHOOK,
            webhook_id=literal["X-AtlasCloud-Webhook-Id"],
            event_type=literal["X-AtlasCloud-Webhook-Event"],
            timestamp=1_700_000_000,
        )
        assert (
            signed["X-AtlasCloud-Webhook-Signature-Ed25519"]
            == (literal["X-AtlasCloud-Webhook-Signature"])
        )


@pytest.mark.asyncio
class TestW14ToW16PollPaths:
    @pytest.mark.parametrize(
        "path",
        [
            pytest.param(
                "/model/prediction/{}?utm_source=comfyui&utm_medium=node", id="W14-utm"
            ),
            pytest.param("/model/prediction/{}/", id="W15-trailing-slash"),
            pytest.param("/model/result/{}", id="W16-result"),
            pytest.param("/model/result/{}/?utm_campaign=x", id="W16-result-slash-utm"),
        ],
    )
    async def test_every_poll_path_answers_the_poll_envelope(self, path: str) -> None:
        """W14-W16: utm_* ignored, the trailing slash and /model/result/{id}
        answer what /model/prediction/{id} answers, W16's envelope."""
        async with emulator() as emu:
            prediction_id = await emu.submit()
            emu.clock.advance(DONE)
            plain = await emu.http.get(f"/model/prediction/{prediction_id}")
            other = await emu.http.get(path.format(prediction_id))
        body = body_of(other)
        assert body == body_of(plain)
        assert_shape(
            body, lit.W16_RESULT_PATH, pins=["code", "data.status"], open=["", "data"]
        )

    async def test_w14_utm_params_change_no_submit(self) -> None:
        """W14: a submit with utm_* answers as one without (same seed)."""
        answers = []
        for query in ("", "?utm_source=comfyui&utm_medium=node"):
            async with emulator() as emu:
                answer = await emu.http.post(
                    "/model/generateImage" + query,
                    json={"model": IMAGE, "prompt": "a fox"},
                )
                answers.append(body_of(answer))
        assert answers[0] == answers[1]
        assert_shape(answers[1], lit.F2_SUBMIT_PROCESSING, open=["data"])
