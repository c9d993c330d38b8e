"""
The emulator as a client nobody here wrote sees it: plain ``requests`` and
``time.sleep``, against ``python -m atlas_async.emulator`` in its own process
with default flags (only a faster time scale).

The client below is written the way the vendor's ComfyUI nodes and third-party
scripts are (docs/wire.md): ``utm_*`` query parameters on every call, the
``X-Atlas-Client`` headers, a poll that tries ``/model/result/{id}`` first and
falls back to ``/model/prediction/{id}`` and its trailing-slash form, 400/404
tolerated while a fresh id warms up, success on ``completed``/``succeeded``,
and the vendor catalog's model ids, none of which is in the emulator's own
catalog. Nothing here imports the SDK.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.e2e]

KEY = "sk-third-party"
UTM = {"utm_source": "github", "utm_medium": "readme", "utm_campaign": "comfyui"}
HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "X-Atlas-Client": "comfyui",
    "X-Atlas-Source": "github-readme",
}
FLAGS = ["--port", "0", "--time-scale", "200"]  # everything else: defaults
TERMINAL_FAILURES = {"failed", "timeout", "canceled", "cancelled", "error"}


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """An emulator process with default flags, 200 times faster than Atlas."""
    process = subprocess.Popen(
        [sys.executable, "-m", "atlas_async.emulator", *FLAGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().rsplit(" ", 1)[1].strip()
        yield base_url.removesuffix("/api/v1")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        finally:
            if process.poll() is None:  # pragma: no cover - only if it hangs
                process.kill()
                process.wait()


class ThirdPartyClient:
    """A client in the style of the vendor's ComfyUI one, on ``requests``."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.session = requests.Session()
        self.session.headers.update(HEADERS)

    def generate(self, kind: str, payload: dict[str, Any]) -> str:
        response = self.session.post(
            f"{self.origin}/api/v1/model/generate{kind}",
            json=payload,
            params=UTM,
            timeout=30,
        )
        response.raise_for_status()
        prediction_id: str = response.json()["data"]["id"]
        return prediction_id

    def poll(self, prediction_id: str, timeout: float = 30.0) -> dict[str, Any]:
        candidates = [
            f"{self.origin}/api/v1/model/result/{prediction_id}",
            f"{self.origin}/api/v1/model/prediction/{prediction_id}",
            f"{self.origin}/api/v1/model/prediction/{prediction_id}/",
        ]
        started = time.monotonic()
        while True:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{prediction_id} did not finish in {timeout}s")
            for url in candidates:
                response = self.session.get(url, params=UTM, timeout=30)
                if response.status_code in (400, 404):
                    continue
                body: dict[str, Any] = response.json()
                data = body.get("data") or {}
                status = data.get("status")
                if status in ("completed", "succeeded"):
                    return data
                if status in TERMINAL_FAILURES:
                    error = data.get("error") or body.get("message") or "failed"
                    raise RuntimeError(str(error))
                break
            time.sleep(0.02)

    def upload(self, path: Path, content_type: str) -> str:
        with path.open("rb") as handle:
            response = self.session.post(
                f"{self.origin}/api/v1/model/uploadMedia",
                files={"file": (path.name, handle, content_type)},
                params=UTM,
                timeout=60,
            )
        response.raise_for_status()
        url: str = response.json()["data"]["download_url"]
        return url


@pytest.fixture
def client(origin: str) -> ThirdPartyClient:
    return ThirdPartyClient(origin)


@pytest.mark.parametrize(
    ("kind", "payload", "suffix"),
    [
        pytest.param(
            "Image",
            {"model": "google/imagen4-fast", "prompt": "a sneaker", "num_images": 1},
            ".png",
            id="imagen4-fast",
        ),
        pytest.param(
            "Image",
            {
                "model": "alibaba/wan-2.5/text-to-image",
                "prompt": "an icon",
                "size": "1024*1024",
                "enable_prompt_expansion": False,
                "seed": -1,
            },
            ".png",
            id="wan-2.5-t2i",
        ),
        pytest.param(
            "Video",
            {"model": "minimax/hailuo-02/t2v-pro", "prompt": "a cat in a garden"},
            ".mp4",
            id="hailuo-02-t2v-pro",
        ),
        pytest.param(
            "Video",
            {
                "model": "bytedance/seedance-v1-pro-t2v-1080p",
                "prompt": "waves",
                "duration": 5,
            },
            ".mp4",
            id="seedance-v1-pro-t2v-1080p",
        ),
    ],
)
def test_vendor_catalog_models_generate_and_download(
    client: ThirdPartyClient, kind: str, payload: dict[str, Any], suffix: str
) -> None:
    """Submit with utm_* params, poll through the aliases, download the file."""
    prediction_id = client.generate(kind, payload)
    data = client.poll(prediction_id)
    [url] = data["outputs"]
    assert url.startswith(client.origin)
    assert url.endswith(suffix)
    media = client.session.get(url, params=UTM, timeout=30)
    assert media.status_code == 200
    assert media.content
    assert data["completed_at"]
    assert float(data["price"]) > 0


def test_an_uploaded_image_feeds_an_image_to_video_model(
    client: ThirdPartyClient, tmp_path: Path
) -> None:
    """Upload a file, then hand its URL to an i2v model, as the nodes chain them."""
    picture = tmp_path / "first frame.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1000))
    image_url = client.upload(picture, "image/png")
    assert image_url.endswith(".png")
    prediction_id = client.generate(
        "Video",
        {"model": "minimax/hailuo-02/i2v-pro", "image": image_url, "prompt": "blink"},
    )
    assert client.poll(prediction_id)["outputs"][0].endswith(".mp4")
    assert client.session.get(image_url, timeout=30).content == picture.read_bytes()


def test_a_transcript_comes_back_as_text(
    client: ThirdPartyClient, tmp_path: Path
) -> None:
    """An m4a upload transcribed by an ASR model: outputs hold the text."""
    audio = tmp_path / "memo.m4a"
    audio.write_bytes(bytes(4096))
    audio_url = client.upload(audio, "audio/mp4")
    prediction_id = client.generate(
        "Audio", {"model": "openai/whisper-large-v3", "audio": audio_url}
    )
    data = client.poll(prediction_id)
    [text] = data["outputs"]
    assert not text.startswith("http")
    assert data["stt_result"]["text"] == text


def test_history_and_balance_answer_the_vendor_shapes(
    client: ThirdPartyClient,
) -> None:
    """What the MCP server's list_predictions and get_balance read."""
    prediction_id = client.generate(
        "Image", {"model": "luma/photon-flash", "prompt": "a lamp"}
    )
    client.poll(prediction_id)
    history = client.session.get(
        f"{client.origin}/api/v1/model/history",
        params={"no": "1", "size": "5", "sessionID": prediction_id, **UTM},
        timeout=30,
    ).json()
    [item] = history["data"]["items"]
    assert (item["ID"], item["status"]) == (prediction_id, "completed")
    assert '"luma/photon-flash"' in item["requestBody"]
    balance = client.session.get(
        f"{client.origin}/public/v1/balance", params=UTM, timeout=30
    ).json()
    assert float(balance["available"]["value"]) < 1_000_000


def test_an_implausible_model_still_gets_the_apis_400(
    client: ThirdPartyClient,
) -> None:
    """Only ids no catalog could hold are refused."""
    with pytest.raises(requests.HTTPError) as caught:
        client.generate("Image", {"model": "not a model", "prompt": "x"})
    assert caught.value.response is not None
    assert caught.value.response.status_code == 400
