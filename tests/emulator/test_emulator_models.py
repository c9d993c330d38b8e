"""
Model ids outside the catalog, the text-output models, and the forms of the
newer wire (W1-W6, W15, W16 of docs/wire.md): ``created``/``timeout``, live
fields, HTTP 500 verdicts, ``error`` objects, the poll path aliases.
"""

from __future__ import annotations

from typing import Any

import pytest

from atlas_async.emulator import (
    DEFAULT_CATALOG,
    EmulatorConfig,
    Faults,
    MediaKind,
    WireStyle,
    infer_spec,
    plausible_model_id,
)

from .conftest import Wire, WireFactory

pytestmark = pytest.mark.asyncio

IMAGE = "google/nano-banana-2/text-to-image"
ASR = "bytedance/seed-asr-2.0"
LYRICS = "minimax/lyrics-generation"
UTM = {"utm_source": "github", "utm_medium": "readme", "utm_campaign": "comfyui"}
IMG = "https://example.test/a.png"

# (endpoint, body) as the vendor's ComfyUI nodes send them, for the models its
# end-to-end tests use; none of these ids is in the emulator's catalog.
COMFYUI_CASES: list[tuple[str, dict[str, Any]]] = [
    ("Image", {"model": "luma/photon-flash", "prompt": "a cat"}),
    ("Video", {"model": "minimax/hailuo-02/t2v-pro", "prompt": "a cat walking"}),
    ("Video", {"model": "minimax/hailuo-02/i2v-pro", "image": IMG, "prompt": "x"}),
    ("Image", {"model": "alibaba/wan-2.6/text-to-image", "size": "1024*1024"}),
    (
        "Video",
        {"model": "kwaivgi/kling-video-o3-pro/text-to-video", "prompt": "a cat"},
    ),
    (
        "Video",
        {"model": "kwaivgi/kling-video-o3-std/text-to-video", "prompt": "fog"},
    ),
    ("Video", {"model": "alibaba/wan-2.6/image-to-video-flash", "image": IMG}),
    ("Video", {"model": "kwaivgi/kling-video-o3-pro/image-to-video", "image": IMG}),
    (
        "Video",
        {
            "model": "kwaivgi/kling-video-o3-std/video-edit",
            "video": "https://example.test/v.mp4",
            "images": "",
            "prompt": "grade it",
        },
    ),
    ("Video", {"model": "atlascloud/van-2.5/image-to-video", "image": IMG}),
    (
        "Image",
        {"model": "alibaba/wan-2.5/text-to-image", "prompt": "icon", "seed": -1},
    ),
    (
        "Image",
        {"model": "google/imagen4-fast", "prompt": "a sneaker", "num_images": 1},
    ),
    ("Video", {"model": "vidu/q3-pro/text-to-video", "prompt": "a kitchen"}),
    ("Video", {"model": "vidu/q3-pro/image-to-video", "image": IMG}),
    ("Video", {"model": "alibaba/wan-2.2-spicy/image-to-video", "image": IMG}),
    ("Video", {"model": "alibaba/wan-2.2-spicy/image-to-video-lora", "image": IMG}),
    ("Video", {"model": "alibaba/happyhorse-1.0/text-to-video", "prompt": "horse"}),
    ("Video", {"model": "alibaba/happyhorse-1.0/image-to-video", "image": IMG}),
    (
        "Video",
        {
            "model": "alibaba/happyhorse-1.0/video-edit",
            "video": "https://example.test/v.mp4",
        },
    ),
    (
        "Video",
        {"model": "atlascloud/wan-2.2-turbo/infinite-image-to-video", "image": IMG},
    ),
    (
        "Video",
        {
            "model": "atlascloud/wan-2.2-turbo-spicy/infinite-image-to-video",
            "image": IMG,
        },
    ),
    ("Video", {"model": "atlascloud/wan-2.2-turbo/image-to-video", "image": IMG}),
    ("Video", {"model": "bytedance/seedance-v1-pro-t2v-1080p", "prompt": "a wave"}),
]
EXTENSIONS = {"Image": "png", "Video": "mp4", "Audio": "wav"}


async def poll_at_end(wire: Wire, prediction_id: str, seconds: float) -> Any:
    wire.clock.advance(seconds)
    return await wire.poll(prediction_id)


class TestModelsOutsideTheCatalog:
    @pytest.mark.parametrize(
        ("kind", "body"),
        [pytest.param(kind, body, id=body["model"]) for kind, body in COMFYUI_CASES],
    )
    async def test_the_vendor_clients_model_ids_run_to_completion(
        self, wire: Wire, kind: str, body: dict[str, Any]
    ) -> None:
        """Each id the vendor's ComfyUI end-to-end tests use is accepted as its
        nodes send it (utm_* params included) and completes with a file of the
        endpoint's kind."""
        catalog = {spec.model for spec in DEFAULT_CATALOG}
        assert body["model"] not in catalog
        response = await wire.http.post(f"/model/generate{kind}", json=body, params=UTM)
        assert response.status_code == 200, response.text
        prediction_id = response.json()["data"]["id"]
        data = await poll_at_end(wire, prediction_id, 200.0)
        assert data["status"] == "completed"
        [output] = data["outputs"]
        assert output == f"{wire.origin}/files/{prediction_id}-0.{EXTENSIONS[kind]}"
        assert (await wire.http.get(output)).status_code == 200

    async def test_the_kind_comes_from_the_endpoint(self, wire: Wire) -> None:
        """An id's words do not override the endpoint: an image-sounding id
        sent to generateVideo makes a video."""
        prediction_id = await wire.submit(
            "/model/generateVideo", model="alibaba/wan-2.5/text-to-image", prompt="x"
        )
        data = await poll_at_end(wire, prediction_id, 200.0)
        assert data["outputs"][0].endswith(".mp4")

    async def test_inferred_models_are_not_listed(self, wire: Wire) -> None:
        """The catalog stays as it is: a model used by id is not added to it."""
        await wire.submit(model="google/imagen4-fast", prompt="x")
        listed = (await wire.http.get("/models")).json()["data"]
        assert "google/imagen4-fast" not in {entry["model"] for entry in listed}

    @pytest.mark.parametrize(
        "model",
        [
            pytest.param("", id="empty"),
            pytest.param("   ", id="spaces"),
            pytest.param("google/imagen 4", id="inner-space"),
            pytest.param("google/imagen\x004", id="control-char"),
            pytest.param("google/" + "x" * 200, id="absurd-length"),
            pytest.param("google//imagen4", id="empty-segment"),
            pytest.param("/imagen4", id="leading-slash"),
            pytest.param("google/imagen4/", id="trailing-slash"),
            pytest.param("acme/nope", id="placeholder"),
            pytest.param("no/such-model", id="placeholder-no"),
            pytest.param(42, id="not-a-string"),
        ],
    )
    async def test_an_implausible_id_is_the_apis_400(
        self, wire: Wire, model: object
    ) -> None:
        """Ids no catalog could hold still get the 400, nothing is created."""
        response = await wire.http.post(
            "/model/generateImage", json={"model": model, "prompt": "x"}
        )
        assert response.status_code == 400
        assert response.json()["msg"].startswith("Invalid request parameters")
        assert wire.emulator.stats.snapshot().predictions_created == 0

    async def test_an_inferred_model_still_needs_some_input(self, wire: Wire) -> None:
        """A body with nothing but the model (and settings) asks for nothing: 400."""
        response = await wire.http.post(
            "/model/generateImage",
            json={"model": "google/imagen4-fast", "seed": 3, "prompt": " "},
        )
        assert response.status_code == 400

    async def test_an_inferred_model_takes_sizes_written_with_x(
        self, wire: Wire
    ) -> None:
        """Only catalog models get Wan's "width*height" check."""
        await wire.submit(model="openai/gpt-image-1", prompt="x", size="1024x1024")

    async def test_plausibility_and_inference_are_public(self) -> None:
        """infer_spec gives an inferred spec its profile, or None."""
        assert plausible_model_id("bytedance/seedance-v1-pro-t2v-1080p")
        assert not plausible_model_id("a b")
        spec = infer_spec("openai/whisper-1/speech-to-text", MediaKind.AUDIO)
        assert spec is not None
        assert spec.profile.value == "transcript"
        assert infer_spec("", MediaKind.IMAGE) is None


class TestTextOutputs:
    async def test_speech_to_text_answers_the_transcript_as_text(
        self, wire: Wire
    ) -> None:
        """An ASR model's outputs hold the transcript itself, and stt_result its
        structure (W5, W6)."""
        prediction_id = await wire.submit(
            "/model/generateAudio", model=ASR, audio="https://example.test/a.m4a"
        )
        data = await poll_at_end(wire, prediction_id, 100.0)
        assert data["status"] == "completed"
        [text] = data["outputs"]
        assert not text.startswith(("http://", "https://", "//", "data:"))
        result = data["stt_result"]
        assert set(result) == {
            "text",
            "language",
            "language_code",
            "duration",
            "words",
            "channels",
        }
        assert result["text"] == text
        assert result["language_code"] == "en"
        assert result["words"][0]["start"] == 0.0
        assert result["words"][-1]["end"] == pytest.approx(result["duration"])
        assert data["has_nsfw_contents"] == [False]

    async def test_lyrics_answer_the_lyrics_as_text(self, wire: Wire) -> None:
        """A lyrics model's outputs hold the lyrics, lyrics_result their parts."""
        prediction_id = await wire.submit(
            "/model/generateAudio", model=LYRICS, prompt="summer rain"
        )
        data = await poll_at_end(wire, prediction_id, 100.0)
        [text] = data["outputs"]
        result = data["lyrics_result"]
        assert set(result) == {"song_title", "style_tags", "lyrics"}
        assert result["lyrics"] == text
        assert result["song_title"] == "Summer Rain"
        assert "[Chorus]" in text

    @pytest.mark.parametrize(
        ("model", "field"),
        [
            pytest.param("openai/whisper-large-v3", "stt_result", id="whisper"),
            pytest.param("acme-labs/transcribe-pro", "stt_result", id="transcribe"),
            pytest.param("elevenlabs/speech-to-text", "stt_result", id="stt"),
            pytest.param("suno/lyrics-v2", "lyrics_result", id="lyrics"),
        ],
    )
    async def test_the_words_of_an_unknown_audio_id_pick_a_text_profile(
        self, wire: Wire, model: str, field: str
    ) -> None:
        """asr/transcribe/speech-to-text and lyrics ids answer text."""
        prediction_id = await wire.submit(
            "/model/generateAudio", model=model, prompt="x", audio="https://a/b.wav"
        )
        data = await poll_at_end(wire, prediction_id, 100.0)
        assert field in data
        assert not data["outputs"][0].startswith("http")

    @pytest.mark.parametrize(
        "model", ["suno/v4.5/music", "minimax/speech-02-hd", "acme-labs/tts-1"]
    )
    async def test_music_and_speech_ids_answer_audio_files(
        self, wire: Wire, model: str
    ) -> None:
        """Music and speech come back as WAV URLs."""
        prediction_id = await wire.submit(
            "/model/generateAudio", model=model, text="hello"
        )
        data = await poll_at_end(wire, prediction_id, 100.0)
        assert data["outputs"][0].endswith(".wav")

    async def test_asr_needs_an_audio_input(self, wire: Wire) -> None:
        """The catalog's ASR model refuses a body without audio."""
        response = await wire.http.post(
            "/model/generateAudio", json={"model": ASR, "prompt": "hi"}
        )
        assert response.status_code == 400

    async def test_text_outputs_have_no_files(self, wire: Wire) -> None:
        """There is nothing to download for a text output."""
        prediction_id = await wire.submit(
            "/model/generateAudio", model=LYRICS, prompt="x"
        )
        wire.clock.advance(100.0)
        for name in (f"{prediction_id}-0.wav", f"{prediction_id}-0.txt"):
            assert (await wire.http.get(f"{wire.origin}/files/{name}")).status_code == (
                404
            )


class TestLiveFields:
    async def test_a_completed_prediction_carries_the_live_fields(
        self, wire_factory: WireFactory
    ) -> None:
        """price (a number here), executionTime and latency_ms (Atlas ms),
        completed_at (ISO) on completion; none of them, and no metrics, before."""
        config = EmulatorConfig(epoch=1_700_000_000.0, model_latency={IMAGE: (4, 4)})
        async with wire_factory(config) as wire:
            prediction_id = await wire.submit(model=IMAGE, prompt="x", num_images=2)
            before = await wire.poll(prediction_id)
            data = await poll_at_end(wire, prediction_id, 4.0)
        absent = {"price", "executionTime", "latency_ms", "completed_at", "metrics"}
        assert absent.isdisjoint(before)
        assert data["price"] == 0.06  # 0.03 per image
        assert (data["executionTime"], data["latency_ms"]) == (4000, 4000)
        assert data["completed_at"] == "2023-11-14T22:13:24.000Z"
        assert data["metrics"] == {"predict_time": 4.0}

    async def test_models_outside_the_catalog_send_the_price_as_text(
        self, wire: Wire
    ) -> None:
        """price is a string for the newer-forms models; a video is billed per
        second of its duration."""
        prediction_id = await wire.submit(
            "/model/generateVideo",
            model="minimax/hailuo-02/t2v-pro",
            prompt="x",
            duration=10,
        )
        data = await poll_at_end(wire, prediction_id, 200.0)
        assert data["price"] == "0.6"

    async def test_a_failed_prediction_has_no_price(self, wire: Wire) -> None:
        """Failures are not billed: timing fields, but no price."""
        prediction_id = await wire.submit(model=IMAGE, prompt="[emulator:fail]")
        data = await poll_at_end(wire, prediction_id, 20.0)
        assert "price" not in data
        assert data["executionTime"] > 0
        assert data["completed_at"].endswith("Z")


class TestStatuses:
    async def test_a_queued_prediction_is_created_then_processing(
        self, wire: Wire
    ) -> None:
        """Models outside the catalog wait 2 Atlas seconds ``created``: the
        submit and early polls say so; latency_ms then counts the wait."""
        response = await wire.http.post(
            "/model/generateImage", json={"model": "google/imagen4-fast", "prompt": "x"}
        )
        assert response.json()["data"]["status"] == "created"
        prediction_id = response.json()["data"]["id"]
        assert (await wire.poll(prediction_id))["status"] == "created"
        wire.clock.advance(2.0)
        assert (await wire.poll(prediction_id))["status"] == "processing"
        data = await poll_at_end(wire, prediction_id, 10.0)
        assert data["latency_ms"] == data["executionTime"] + 2000

    async def test_the_style_option_sets_the_queue_for_every_model(
        self, wire_factory: WireFactory
    ) -> None:
        """EmulatorConfig(style=...) puts every model in those forms."""
        config = EmulatorConfig(style=WireStyle(queue_seconds=5.0))
        async with wire_factory(config) as wire:
            prediction_id = await wire.submit(model=IMAGE, prompt="x")
            wire.clock.advance(4.9)
            assert (await wire.poll(prediction_id))["status"] == "created"

    async def test_a_timeout_is_a_terminal_fault(self, wire: Wire) -> None:
        """[emulator:timeout] ends it ``timeout``, with its reason, unbilled."""
        prediction_id = await wire.submit(model=IMAGE, prompt="[emulator:timeout]")
        data = await poll_at_end(wire, prediction_id, 20.0)
        assert data["status"] == "timeout"
        assert "timed out" in data["error"]
        assert (data["outputs"], data["error_code"]) == ([], None)
        assert "price" not in data
        assert wire.emulator.stats.snapshot().faults["timeout"] == 1

    async def test_timeout_rate_times_out_that_share(
        self, in_process: WireFactory
    ) -> None:
        """Faults(timeout_rate=0.5) times out about half (seeded, repeatable)."""
        async with in_process(EmulatorConfig(faults=Faults(timeout_rate=0.5))) as wire:
            ids = [await wire.submit(model=IMAGE, prompt=f"p{i}") for i in range(200)]
            wire.clock.advance(20.0)
            statuses = [(await wire.poll(i))["status"] for i in ids]
        assert set(statuses) == {"completed", "timeout"}
        assert 70 <= statuses.count("timeout") <= 130


class TestVerdictsAndErrorObjects:
    async def test_a_verdict_is_http_500_with_the_failure_in_the_body(
        self, wire: Wire
    ) -> None:
        """With the verdict form, a failed poll answers 500 and the whole
        verdict: {code: 500, message, data: {status: failed, error, ...}}."""
        prediction_id = await wire.submit(
            model=IMAGE, prompt="[emulator:fail] [emulator:verdict-5xx]"
        )
        wire.clock.advance(20.0)
        response = await wire.http.get(f"/model/prediction/{prediction_id}")
        assert response.status_code == 500
        body = response.json()
        assert set(body) == {"code", "message", "data"}
        assert body["code"] == 500
        data = body["data"]
        assert (data["id"], data["status"], data["error_code"]) == (
            prediction_id,
            "failed",
            1000,
        )
        reason = "Generation failed: the model could not process this request."
        assert reason in (data["error"], body["message"])
        if data["error"] == "":
            assert body["message"] == reason  # W2: the outer message is the reason

    async def test_a_completed_prediction_is_never_a_verdict(self, wire: Wire) -> None:
        """The marker only changes how a failure is answered."""
        prediction_id = await wire.submit(model=IMAGE, prompt="[emulator:verdict-5xx]")
        wire.clock.advance(20.0)
        assert (await wire.poll(prediction_id))["status"] == "completed"

    async def test_verdicts_come_in_both_forms(self, in_process: WireFactory) -> None:
        """With verdict_5xx_rate=1 every failure and timeout answers 500; about
        half carry the reason only in the outer message (W2)."""
        faults = Faults(error_rate=0.5, timeout_rate=0.5, verdict_5xx_rate=1.0)
        async with in_process(EmulatorConfig(faults=faults)) as wire:
            ids = [await wire.submit(model=IMAGE, prompt=f"p{i}") for i in range(80)]
            wire.clock.advance(20.0)
            answers = [await wire.http.get(f"/model/prediction/{i}") for i in ids]
        verdicts = [a.json() for a in answers if a.status_code == 500]
        statuses = {v["data"]["status"] for v in verdicts}
        assert statuses == {"failed", "timeout"}
        assert all(
            a.json()["data"]["status"] == "completed"
            for a in answers
            if a.status_code == 200
        )
        empty = [v for v in verdicts if v["data"]["error"] == ""]
        assert 0 < len(empty) < len(verdicts)
        assert all(v["message"] != "prediction failed" for v in empty)

    async def test_verdict_rate_zero_keeps_failures_inside_200(
        self, wire_factory: WireFactory
    ) -> None:
        """verdict_5xx_rate=0 overrides a model's own share."""
        config = EmulatorConfig(faults=Faults(verdict_5xx_rate=0.0))
        async with wire_factory(config) as wire:
            prediction_id = await wire.submit(
                "/model/generateAudio",
                model=ASR,
                audio="https://a/b.wav",
                prompt="[emulator:fail]",
            )
            data = await poll_at_end(wire, prediction_id, 100.0)
        assert data["status"] == "failed"

    @pytest.mark.parametrize(
        ("path", "body", "key"),
        [
            pytest.param(
                "/model/generateImage",
                {"model": "google/imagen4-fast", "prompt": "[emulator:fail]"},
                "message",
                id="outside-the-catalog",
            ),
            pytest.param(
                "/model/generateAudio",
                {"model": LYRICS, "prompt": "[emulator:fail]"},
                "reason",
                id="lyrics",
            ),
            pytest.param(
                "/model/generateAudio",
                {"model": ASR, "audio": "https://a/b.wav", "prompt": "[emulator:fail]"},
                "detail",
                id="asr",
            ),
        ],
    )
    async def test_some_models_send_error_as_an_object(
        self, wire: Wire, path: str, body: dict[str, Any], key: str
    ) -> None:
        """``error`` is {message|reason|detail: text} for these models (W4),
        whether the failure comes inside a 200 or as a 500 verdict."""
        prediction_id = await wire.submit(path, **body)
        wire.clock.advance(200.0)
        response = await wire.http.get(f"/model/prediction/{prediction_id}")
        payload = response.json()
        error = payload["data"]["error"]
        if error == "":
            assert response.status_code == 500
            assert payload["message"].startswith("Generation failed")
        else:
            assert error == {
                key: "Generation failed: the model could not process this request."
            }

    async def test_the_classic_catalog_sends_error_as_text(self, wire: Wire) -> None:
        """nano-banana-2 keeps the documented form: a string, inside a 200."""
        prediction_id = await wire.submit(model=IMAGE, prompt="[emulator:fail]")
        data = await poll_at_end(wire, prediction_id, 20.0)
        assert isinstance(data["error"], str)


class TestPollPaths:
    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("/model/prediction/{}/", id="trailing-slash"),
            pytest.param("/model/result/{}", id="result"),
            pytest.param("/model/result/{}/", id="result-trailing-slash"),
        ],
    )
    async def test_aliases_answer_as_the_poll(self, wire: Wire, path: str) -> None:
        """The fallbacks clients use (W15, W16) answer the same as the poll."""
        prediction_id = await wire.submit(model=IMAGE, prompt="x")
        wire.clock.advance(20.0)
        alias = await wire.http.get(path.format(prediction_id), params=UTM)
        assert alias.status_code == 200
        assert alias.json()["data"] == await wire.poll(prediction_id)
        assert wire.emulator.stats.snapshot().polls_for(prediction_id) == 2

    async def test_an_unknown_id_on_an_alias_is_404(self, wire: Wire) -> None:
        """The aliases know the same predictions, no more."""
        response = await wire.http.get("/model/result/nope")
        assert response.status_code == 404

    async def test_the_result_alias_counts_under_its_own_route(
        self, wire: Wire
    ) -> None:
        """Stats tell the two poll paths apart."""
        prediction_id = await wire.submit(model=IMAGE, prompt="x")
        await wire.http.get(f"/model/result/{prediction_id}")
        endpoints = wire.emulator.stats.snapshot().requests_by_endpoint
        assert endpoints["GET /api/v1/model/result/{id}"] == 1


async def test_the_new_faults_parse_from_the_command_line() -> None:
    """--fault timeout_rate=... and verdict_5xx_rate=... (none: per model)."""
    faults = Faults.from_options(["timeout_rate=0.2", "verdict_5xx_rate=1"])
    assert (faults.timeout_rate, faults.verdict_5xx_rate) == (0.2, 1.0)
    assert Faults.from_options(["verdict_5xx_rate=none"]).verdict_5xx_rate is None
    with pytest.raises(ValueError, match="verdict_5xx_rate"):
        Faults.from_options(["verdict_5xx_rate=2"])
