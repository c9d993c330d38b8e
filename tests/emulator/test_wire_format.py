"""The emulator's wire format, pinned against docs/wire.md."""

from __future__ import annotations

import base64
import re
from datetime import datetime

import httpx
import pytest

from atlas_async.emulator import EmulatorConfig

from .conftest import Wire, WireFactory

pytestmark = pytest.mark.asyncio

IMAGE = "google/nano-banana-2/text-to-image"
I2V = "kwaivgi/kling-v3.0-std/image-to-video"
EDIT = "google/nano-banana/edit"
VIDEO = "bytedance/seedance-2.0/text-to-video"
AUDIO = "bytedance/seed-audio-1.0"
SUBMIT_KEYS = {
    "id",
    "model",
    "status",
    "outputs",
    "urls",
    "created_at",
    "has_nsfw_contents",
}
POLL_KEYS = SUBMIT_KEYS | {"error", "error_code"}
LIVE_KEYS = {"metrics", "completed_at", "executionTime", "latency_ms"}


def _error_body(response: httpx.Response, code: int, msg: str) -> None:
    assert response.status_code == code
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "code": code,
        "msg": msg,
        "request_id": request_id,
        "data": None,
    }


class TestSubmitAndPoll:
    async def test_submit_answers_the_processing_envelope(self, wire: Wire) -> None:
        """A submit answers {code, message, data} with the F2 fields and urls.get."""
        response = await wire.http.post(
            "/model/generateImage", json={"model": IMAGE, "prompt": "a fox"}
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-request-id"]
        body = response.json()
        assert set(body) == {"code", "message", "data"}
        assert (body["code"], body["message"]) == (200, "")
        data = body["data"]
        assert set(data) == SUBMIT_KEYS
        assert re.fullmatch(r"[0-9a-f]{32}", data["id"])
        assert data["model"] == IMAGE
        assert data["status"] == "processing"
        assert data["outputs"] is None
        assert data["has_nsfw_contents"] is None
        assert data["urls"] == {"get": f"{wire.base_url}/model/prediction/{data['id']}"}
        assert data["created_at"].endswith("Z")
        datetime.fromisoformat(data["created_at"].replace("Z", "+00:00"))

    async def test_poll_while_processing_has_every_field(self, wire: Wire) -> None:
        """A poll before the latency has passed says processing, outputs null,
        and carries no metrics at all (not even an empty object)."""
        prediction_id = await wire.submit(model=IMAGE, prompt="a fox")
        data = await wire.poll(prediction_id)
        assert set(data) == POLL_KEYS
        assert data["status"] == "processing"
        assert data["outputs"] is None
        assert data["error"] is None

    async def test_poll_after_latency_is_completed_with_urls(self, wire: Wire) -> None:
        """Once the clock passes the latency, outputs are absolute /files/ URLs."""
        prediction_id = await wire.submit(model=IMAGE, prompt="a fox")
        wire.clock.advance(10.0)  # the image row's maximum
        data = await wire.poll(prediction_id)
        assert data["status"] == "completed"
        assert data["outputs"] == [f"{wire.origin}/files/{prediction_id}-0.png"]
        assert data["has_nsfw_contents"] == [False]
        assert data["error"] == ""
        assert data["error_code"] is None
        assert set(data) == POLL_KEYS | LIVE_KEYS | {"price"}
        metrics = data["metrics"]
        assert isinstance(metrics, dict)
        assert 2.0 <= metrics["predict_time"] <= 10.0

    async def test_num_images_gives_that_many_outputs(self, wire: Wire) -> None:
        """num_images=3 gives three distinct outputs and three nsfw flags."""
        prediction_id = await wire.submit(model=IMAGE, prompt="foxes", num_images=3)
        wire.clock.advance(10.0)
        data = await wire.poll(prediction_id)
        outputs = data["outputs"]
        assert isinstance(outputs, list)
        assert len(set(outputs)) == 3
        assert data["has_nsfw_contents"] == [False, False, False]

    async def test_base64_output_gives_png_data_uris(self, wire: Wire) -> None:
        """enable_base64_output makes every output a decodable PNG data URI."""
        prediction_id = await wire.submit(
            model=IMAGE, prompt="a fox", num_images=2, enable_base64_output=True
        )
        wire.clock.advance(10.0)
        outputs = (await wire.poll(prediction_id))["outputs"]
        assert isinstance(outputs, list)
        assert len(outputs) == 2
        for output in outputs:
            prefix, _, encoded = output.partition(",")
            assert prefix == "data:image/png;base64"
            assert base64.b64decode(encoded).startswith(b"\x89PNG\r\n\x1a\n")

    async def test_failed_prediction_carries_error_and_code(self, wire: Wire) -> None:
        """A failure arrives inside HTTP 200: status failed, error text, code."""
        prediction_id = await wire.submit(model=IMAGE, prompt="x [emulator:fail]")
        wire.clock.advance(10.0)
        data = await wire.poll(prediction_id)
        assert data["status"] == "failed"
        assert data["outputs"] == []
        assert data["has_nsfw_contents"] == []
        assert data["error_code"] == 1000
        assert isinstance(data["error"], str)
        assert data["error"]

    async def test_moderation_failure_is_code_1039(self, wire: Wire) -> None:
        """Content moderation fails with error_code 1039 and a content-policy text."""
        prediction_id = await wire.submit(model=IMAGE, prompt="[emulator:moderate]")
        wire.clock.advance(10.0)
        data = await wire.poll(prediction_id)
        assert data["status"] == "failed"
        assert data["error_code"] == 1039
        assert "content policy" in str(data["error"])

    async def test_nsfw_marker_sets_every_flag(self, wire: Wire) -> None:
        """has_nsfw_contents has one flag per output, true for the nsfw marker."""
        prediction_id = await wire.submit(
            model=IMAGE, prompt="[emulator:nsfw]", num_images=2
        )
        wire.clock.advance(10.0)
        assert (await wire.poll(prediction_id))["has_nsfw_contents"] == [True, True]

    @pytest.mark.parametrize(
        ("path", "body", "suffix"),
        [
            pytest.param(
                "/model/generateVideo",
                {"model": VIDEO, "prompt": "waves"},
                "mp4",
                id="video",
            ),
            pytest.param(
                "/model/generateVideo",
                {"model": I2V, "image": "http://x/a.png"},
                "mp4",
                id="i2v",
            ),
            pytest.param(
                "/model/generateImage",
                {"model": EDIT, "images": ["http://x/a.png"]},
                "png",
                id="edit",
            ),
            pytest.param(
                "/model/generateAudio",
                {"model": AUDIO, "text": "hello"},
                "wav",
                id="audio",
            ),
        ],
    )
    async def test_every_kind_completes_with_its_media(
        self, wire: Wire, path: str, body: dict[str, object], suffix: str
    ) -> None:
        """Video, image-to-video, image tools and audio complete with their media."""
        prediction_id = await wire.submit(path, **body)
        wire.clock.advance(180.0)
        outputs = (await wire.poll(prediction_id))["outputs"]
        assert outputs == [f"{wire.origin}/files/{prediction_id}-0.{suffix}"]


class TestErrors:
    @pytest.mark.parametrize(
        "authorization",
        [
            pytest.param(None, id="missing"),
            pytest.param("Basic abc", id="wrong-scheme"),
            pytest.param("Bearer", id="empty-key"),
        ],
    )
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            pytest.param("GET", "/model/prediction/abc", id="poll"),
            pytest.param("POST", "/model/generateImage", id="submit"),
            pytest.param("GET", "/no/such/path", id="unknown-path"),
        ],
    )
    async def test_no_valid_key_is_401_on_any_path(
        self, wire: Wire, authorization: str | None, method: str, path: str
    ) -> None:
        """Without a valid bearer key every path answers the 401 envelope."""
        headers = {"Authorization": authorization or ""}
        response = await wire.http.request(method, path, headers=headers)
        _error_body(response, 401, "unauthorized")

    async def test_api_key_restriction_rejects_other_keys(
        self, wire_factory: WireFactory
    ) -> None:
        """With api_keys set, another key gets 401 and the listed one gets in."""
        config = EmulatorConfig(api_keys="sesame")
        async with wire_factory(config, key="other") as wire:
            response = await wire.http.get("/model/prediction/abc")
            _error_body(response, 401, "unauthorized")
            response = await wire.http.get(
                "/model/prediction/abc", headers={"Authorization": "Bearer sesame"}
            )
            _error_body(response, 404, "not found")

    async def test_catalog_and_files_need_no_key(self, wire: Wire) -> None:
        """GET /models and the files route answer without Authorization."""
        prediction_id = await wire.submit(model=IMAGE, prompt="a fox")
        wire.clock.advance(10.0)
        no_key = {"Authorization": ""}
        assert (await wire.http.get("/models", headers=no_key)).status_code == 200
        url = f"{wire.origin}/files/{prediction_id}-0.png"
        assert (await wire.http.get(url, headers=no_key)).status_code == 200

    async def test_no_balance_key_gets_402_on_submit(
        self, wire_factory: WireFactory
    ) -> None:
        """A configured no-balance key gets 402 on submits and nothing is created."""
        config = EmulatorConfig(no_balance_keys="broke")
        async with wire_factory(config, key="broke") as wire:
            response = await wire.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "a fox"}
            )
            _error_body(response, 402, "insufficient balance")
            assert wire.emulator.stats.snapshot().predictions_created == 0

    async def test_unknown_prediction_is_404(self, wire: Wire) -> None:
        """An unknown id answers {"code":404,"msg":"not found"} plus request_id."""
        response = await wire.http.get("/model/prediction/0123")
        _error_body(response, 404, "not found")

    async def test_unknown_path_with_key_is_404(self, wire: Wire) -> None:
        """With a valid key, a path the API does not have is 404."""
        _error_body(await wire.http.get("/model/getResult"), 404, "not found")

    async def test_wrong_method_is_405(self, wire: Wire) -> None:
        """GET on a submit route (or POST on a poll) is 405."""
        _error_body(
            await wire.http.get("/model/generateImage"), 405, "method not allowed"
        )
        _error_body(
            await wire.http.post("/model/prediction/x"), 405, "method not allowed"
        )
        _error_body(await wire.http.post("/models"), 405, "method not allowed")

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({"prompt": "a fox"}, id="missing-model"),
            pytest.param({"model": IMAGE}, id="missing-prompt"),
            pytest.param({"model": IMAGE, "prompt": "   "}, id="blank-prompt"),
            pytest.param({"model": I2V, "prompt": "waves"}, id="i2v-without-image"),
            pytest.param({"model": AUDIO}, id="audio-without-text"),
            pytest.param(
                {"model": IMAGE, "prompt": "x", "num_images": 5}, id="num-images-5"
            ),
            pytest.param(
                {"model": IMAGE, "prompt": "x", "num_images": True},
                id="num-images-bool",
            ),
            pytest.param(["not", "an", "object"], id="not-an-object"),
        ],
    )
    async def test_invalid_parameters_are_400(self, wire: Wire, body: object) -> None:
        """Bad bodies get the bare "Invalid request parameters" 400."""
        response = await wire.http.post("/model/generateImage", json=body)
        _error_body(response, 400, "Invalid request parameters")

    async def test_unparseable_body_is_400(self, wire: Wire) -> None:
        """A body that is not JSON is a 400."""
        response = await wire.http.post("/model/generateImage", content=b"{nope")
        _error_body(response, 400, "Invalid request parameters")

    async def test_unknown_model_is_400_naming_it(self, wire: Wire) -> None:
        """A model outside the catalog is a 400 whose msg names the model."""
        response = await wire.http.post(
            "/model/generateImage", json={"model": "acme/nope", "prompt": "x"}
        )
        assert response.status_code == 400
        assert response.json()["msg"].startswith("Invalid request parameters")
        assert "acme/nope" in response.json()["msg"]

    async def test_size_with_x_is_the_wan_400(self, wire: Wire) -> None:
        """size "720x1280" gets Wan's exact message; "720*1280" is fine."""
        response = await wire.http.post(
            "/model/generateImage",
            json={"model": IMAGE, "prompt": "x", "size": "720x1280"},
        )
        _error_body(
            response,
            400,
            "Invalid size format: 720x1280, expected format: width*height",
        )
        await wire.submit(model=IMAGE, prompt="x", size="720*1280")

    async def test_retention_headers_are_validated(self, wire: Wire) -> None:
        """X-AtlasCloud-*-Hours outside their range is 400; inside is accepted."""
        body = {"model": IMAGE, "prompt": "x"}
        bad = await wire.http.post(
            "/model/generateImage",
            json=body,
            headers={"X-AtlasCloud-Object-Expiration-Hours": "0"},
        )
        assert bad.status_code == 400
        good = await wire.http.post(
            "/model/generateImage",
            json=body,
            headers={
                "X-AtlasCloud-Object-Expiration-Hours": "24",
                "X-AtlasCloud-Request-Retention-Hours": "0",
            },
        )
        assert good.status_code == 200


class TestUploadModelsFiles:
    async def test_upload_answers_download_url_and_serves_the_file(
        self, wire: Wire
    ) -> None:
        """uploadMedia answers type, download_url, filename, size; the URL serves it."""
        content = b"\x89PNG\r\n\x1a\nnot really"
        response = await wire.http.post(
            "/model/uploadMedia",
            files={"file": ("cat photo.png", content, "image/png")},
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["code"], body["message"]) == (200, "")
        data = body["data"]
        assert set(data) == {"type", "download_url", "filename", "size"}
        assert data == {
            "type": "image/png",
            "download_url": data["download_url"],
            "filename": "cat photo.png",
            "size": len(content),
        }
        assert data["download_url"].startswith(f"{wire.origin}/files/upload-")
        download = await wire.http.get(data["download_url"])
        assert download.content == content
        assert download.headers["content-type"] == "image/png"

    async def test_upload_guesses_the_type_from_the_filename(self, wire: Wire) -> None:
        """A part without Content-Type gets one guessed from its filename."""
        response = await wire.http.post(
            "/model/uploadMedia",
            content=(
                b'--b\r\nContent-Disposition: form-data; name="file"; '
                b'filename="clip.mp4"\r\n\r\ndata\r\n--b--\r\n'
            ),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert response.json()["data"]["type"] == "video/mp4"

    @pytest.mark.parametrize(
        ("content_type", "content"),
        [
            pytest.param("application/json", b"{}", id="not-multipart"),
            pytest.param("multipart/form-data", b"x", id="no-boundary"),
            pytest.param(
                "multipart/form-data; boundary=b",
                b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\n'
                b"x\r\n--b--\r\n",
                id="no-file-field",
            ),
            pytest.param(
                "multipart/form-data; boundary=b",
                b"--b\r\nbroken--b--",
                id="no-part-head",
            ),
        ],
    )
    async def test_upload_without_a_file_field_is_400(
        self, wire: Wire, content_type: str, content: bytes
    ) -> None:
        """An upload whose multipart body has no `file` part is a 400."""
        response = await wire.http.post(
            "/model/uploadMedia",
            content=content,
            headers={"Content-Type": content_type},
        )
        _error_body(response, 400, "Invalid request parameters")

    async def test_upload_over_the_limit_is_413(
        self, wire_factory: WireFactory
    ) -> None:
        """A body over max_upload_bytes is a 413."""
        async with wire_factory(EmulatorConfig(max_upload_bytes=10)) as wire:
            response = await wire.http.post(
                "/model/uploadMedia", files={"file": ("a.bin", b"x" * 100)}
            )
            _error_body(response, 413, "request entity too large")

    async def test_catalog_lists_every_kind(self, wire: Wire) -> None:
        """GET /models lists image, video, image-to-video, tool and audio models."""
        body = (await wire.http.get("/models")).json()
        assert body["code"] == "200"  # a string on this list (W12)
        entries = body["data"]
        assert {"model", "type", "displayName", "categories"} <= set(entries[0])
        assert {entry["type"] for entry in entries} == {"Image", "Video", "Audio"}
        categories = {c for entry in entries for c in entry["categories"]}
        assert {
            "TEXT-TO-IMAGE",
            "IMAGE-TO-VIDEO",
            "IMAGE-TO-IMAGE",
            "TEXT-TO-VIDEO",
        } <= (categories)
        assert IMAGE in {entry["model"] for entry in entries}

    @pytest.mark.parametrize(
        ("path", "body", "content_type", "magic"),
        [
            pytest.param(
                "/model/generateImage",
                {"model": IMAGE, "prompt": "x"},
                "image/png",
                b"\x89PNG",
                id="png",
            ),
            pytest.param(
                "/model/generateVideo",
                {"model": VIDEO, "prompt": "x"},
                "video/mp4",
                b"ftyp",
                id="mp4",
            ),
            pytest.param(
                "/model/generateAudio",
                {"model": AUDIO, "prompt": "x"},
                "audio/wav",
                b"RIFF",
                id="wav",
            ),
        ],
    )
    async def test_files_are_served_with_their_content_type(
        self,
        wire: Wire,
        path: str,
        body: dict[str, object],
        content_type: str,
        magic: bytes,
    ) -> None:
        """Each output file is served with its content type and real bytes."""
        prediction_id = await wire.submit(path, **body)
        wire.clock.advance(180.0)
        outputs = (await wire.poll(prediction_id))["outputs"]
        assert isinstance(outputs, list)
        response = await wire.http.get(outputs[0])
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert magic in response.content[:12]
        head = await wire.http.head(outputs[0])
        assert head.content == b""
        assert head.headers["content-length"] == str(len(response.content))

    async def test_file_of_unfinished_or_unknown_output_is_404(
        self, wire: Wire
    ) -> None:
        """Outputs of a processing prediction, or beyond its count, are 404."""
        prediction_id = await wire.submit(model=IMAGE, prompt="x")
        url = f"{wire.origin}/files/{prediction_id}-0.png"
        _error_body(await wire.http.get(url), 404, "not found")
        wire.clock.advance(10.0)
        assert (await wire.http.get(url)).status_code == 200
        for name in (f"{prediction_id}-1.png", f"{prediction_id}-0.mp4", "nope.png"):
            response = await wire.http.get(f"{wire.origin}/files/{name}")
            _error_body(response, 404, "not found")
