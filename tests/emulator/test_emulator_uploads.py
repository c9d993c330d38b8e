"""Uploads far above the request-body limit, streamed to disk and typed by name;
the body limit for everything else; the bare webhook signature header."""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from atlas_async.emulator import Emulator, EmulatorConfig, Faults, serve
from atlas_async.testing import FakeClock

from .conftest import Wire, WireFactory

MiB = 1024 * 1024
IMAGE = "google/nano-banana-2/text-to-image"


def upload_files(emulator: Emulator) -> list[Path]:
    """Every file in the emulator's upload folder, temporaries included."""
    uploads = list(emulator.uploads.values())
    folder = uploads[0].path.parent if uploads else None
    return sorted(folder.iterdir()) if folder is not None else []


@pytest.mark.asyncio
class TestLargeUploads:
    async def test_an_upload_above_the_body_limit_streams_to_disk(
        self, tmp_path: Path
    ) -> None:
        """A 60 MiB upload (over the 50 MB body limit) is accepted in-process
        without the emulator ever holding it: far less than its size is
        allocated while it is received."""
        source = tmp_path / "speech.m4a"
        with source.open("wb") as out:
            for index in range(60):
                out.write(bytes([index]) * MiB)
        clock = FakeClock()
        emulator = Emulator(EmulatorConfig(), clock=clock.now, sleep=clock.sleep)
        async with emulator.client() as http:
            tracemalloc.start()
            try:
                with source.open("rb") as handle:
                    answer = await http.post(
                        "/model/uploadMedia",
                        files={"file": ("speech.m4a", handle, "audio/mp4")},
                    )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert answer.status_code == 200, answer.text
            data = answer.json()["data"]
            assert data["size"] == 60 * MiB
            assert peak < 16 * MiB
            stored = emulator.uploads[data["download_url"].rsplit("/", 1)[1]]
            assert stored.path.read_bytes() == source.read_bytes()

    @pytest.mark.e2e
    async def test_a_large_upload_round_trips_over_a_socket(
        self, tmp_path: Path
    ) -> None:
        """Over loopback: a 51 MiB upload is stored and served back intact."""
        source = tmp_path / "clip.mkv"
        source.write_bytes(bytes(range(256)) * (51 * MiB // 256))
        async with (
            serve(EmulatorConfig()) as emu,
            httpx.AsyncClient(
                base_url=emu.base_url,
                headers={"Authorization": "Bearer k"},
                timeout=60,
            ) as http,
        ):
            with source.open("rb") as handle:
                answer = await http.post(
                    "/model/uploadMedia", files={"file": ("clip.mkv", handle)}
                )
            assert answer.status_code == 200, answer.text
            data = answer.json()["data"]
            assert data["type"] == "video/x-matroska"
            assert data["download_url"].endswith(".mkv")
            served = await http.get(data["download_url"])
        assert served.headers["content-type"] == "video/x-matroska"
        assert served.content == source.read_bytes()

    async def test_an_upload_over_its_limit_is_413_and_leaves_no_file(
        self, wire_factory: WireFactory
    ) -> None:
        """Past max_upload_bytes the upload stops with 413; the part written so
        far is deleted."""
        config = EmulatorConfig(max_upload_bytes=64 * 1024)
        async with wire_factory(config) as wire:
            ok = await wire.http.post(
                "/model/uploadMedia", files={"file": ("a.png", b"\x89PNG")}
            )
            refused = await wire.http.post(
                "/model/uploadMedia",
                files={"file": ("b.png", b"z" * 100_000, "image/png")},
            )
            assert ok.status_code == 200
            assert refused.status_code == 413
            assert refused.json()["msg"] == "request entity too large"
            names = [path.name for path in upload_files(wire.emulator)]
        assert names == [ok.json()["data"]["download_url"].rsplit("/", 1)[1]]

    async def test_a_declared_length_over_the_limit_is_refused_unread(
        self, in_process: WireFactory
    ) -> None:
        """A Content-Length over the limit is 413 before any byte is read."""
        async with in_process(EmulatorConfig(max_upload_bytes=10)) as wire:
            answer = await wire.http.post(
                "/model/uploadMedia",
                content=b"--b\r\n" + b"x" * 20,
                headers={"content-type": "multipart/form-data; boundary=b"},
            )
            stats = wire.emulator.stats.snapshot()
        assert answer.status_code == 413
        assert stats.responses_by_status == {413: 1}

    async def test_a_json_body_has_its_own_smaller_limit(
        self, wire_factory: WireFactory
    ) -> None:
        """max_body_bytes caps submits; uploads are limited separately."""
        config = EmulatorConfig(max_body_bytes=1000)
        async with wire_factory(config) as wire:
            big = await wire.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "x" * 2000}
            )
            upload = await wire.http.post(
                "/model/uploadMedia", files={"file": ("a.png", b"p" * 5000)}
            )
        assert big.status_code == 413
        assert upload.status_code == 200

    async def test_a_refused_upload_keeps_nothing(
        self, wire_factory: WireFactory
    ) -> None:
        """An upload answered 5xx (a fault) or 400 (no file part) leaves no file."""
        faults = Faults(server_error_rate=1.0, targets=["upload"])
        async with wire_factory(EmulatorConfig(faults=faults)) as wire:
            failed = await wire.http.post(
                "/model/uploadMedia", files={"file": ("a.png", b"\x89PNG")}
            )
            wrong = await wire.http.post(
                "/model/uploadMedia", files={"other": ("a.png", b"\x89PNG")}
            )
            assert failed.status_code >= 500
            assert wrong.status_code >= 400
            assert wire.emulator.uploads == {}


@pytest.mark.asyncio
class TestTypedByName:
    @pytest.mark.parametrize(
        ("filename", "declared", "expected"),
        [
            pytest.param(
                "voice.m4a", "application/octet-stream", "audio/mp4", id="m4a"
            ),
            pytest.param("note.opus", "", "audio/opus", id="opus"),
            pytest.param("photo.HEIC", "image/jpeg", "image/heic", id="heic"),
            pytest.param("pic.avif", "", "image/avif", id="avif"),
            pytest.param("readme.md", "", "text/markdown", id="md"),
            pytest.param(
                "deck.pptx",
                "",
                "application/vnd.openxmlformats-officedocument"
                ".presentationml.presentation",
                id="pptx",
            ),
            pytest.param("data.weird", "text/x-weird", "text/x-weird", id="declared"),
            pytest.param("blob", "", "application/octet-stream", id="nothing"),
        ],
    )
    async def test_the_type_comes_from_the_file_name(
        self, wire: Wire, filename: str, declared: str, expected: str
    ) -> None:
        """The name's extension decides the type (W9); the URL keeps the name."""
        part: tuple[str, bytes] | tuple[str, bytes, str] = (
            (filename, b"data", declared) if declared else (filename, b"data")
        )
        answer = await wire.http.post(
            "/model/uploadMedia",
            files={"file": part},
            params={"utm_source": "github"},
        )
        data = answer.json()["data"]
        assert data["type"] == expected
        assert data["download_url"].endswith(filename)
        served = await wire.http.get(data["download_url"], params={"utm_medium": "x"})
        assert served.content == b"data"
        assert served.headers["content-type"] == data["type"]

    async def test_an_upload_without_a_key_is_401_and_not_stored(
        self, wire: Wire
    ) -> None:
        """Anonymous uploads are refused like every other call."""
        answer = await wire.http.post(
            "/model/uploadMedia",
            files={"file": ("a.png", b"\x89PNG")},
            headers={"Authorization": ""},
        )
        assert answer.status_code == 401
        assert wire.emulator.uploads == {}


class Receiver:
    """A webhook sender that keeps each delivery."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.arrived = anyio.Event()

    async def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        self.posts.append((dict(headers), body))
        self.arrived.set()
        return 200


def _verify(
    jwks: dict[str, list[dict[str, str]]],
    headers: dict[str, str],
    body: bytes,
    signature: str,
) -> None:
    x = jwks["keys"][0]["x"]
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=="))
    stamp = headers["X-AtlasCloud-Webhook-Timestamp"].encode()
    key.verify(base64.urlsafe_b64decode(signature + "=="), stamp + b"." + body)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("place", "ed25519", "bare"),
    [
        pytest.param("ed25519", True, False, id="ed25519"),
        pytest.param("both", True, True, id="both"),
        pytest.param("bare", False, True, id="bare"),
    ],
)
async def test_the_signature_travels_where_configured(
    place: str, ed25519: bool, bare: bool
) -> None:
    """webhook_signature puts the Ed25519 signature in the -Ed25519 header, the
    bare X-AtlasCloud-Webhook-Signature header (W13), or both."""
    clock = FakeClock(wall=1_700_000_000.0)
    receiver = Receiver()
    config = EmulatorConfig(
        epoch=1_700_000_000.0,
        model_latency={IMAGE: (4.0, 4.0)},
        webhook_signature=place,
    )
    emulator = Emulator(
        config, clock=clock.now, sleep=clock.sleep, webhook_sender=receiver
    )
    async with emulator, emulator.client() as http:
        await http.post(
            "/model/generateImage",
            json={"model": IMAGE, "prompt": "x", "webhook_url": "http://127.0.0.1:9/h"},
        )
        clock.advance(4.0)
        with anyio.fail_after(10):
            await receiver.arrived.wait()
        jwks = (await http.get(emulator.jwks_url)).json()
    [(headers, body)] = receiver.posts
    assert ("X-AtlasCloud-Webhook-Signature-Ed25519" in headers) is ed25519
    assert ("X-AtlasCloud-Webhook-Signature" in headers) is bare
    for name in (
        "X-AtlasCloud-Webhook-Signature-Ed25519",
        "X-AtlasCloud-Webhook-Signature",
    ):
        if name in headers:
            _verify(jwks, headers, body, headers[name])


def test_a_signature_place_must_be_known() -> None:
    """Any other webhook_signature is a ValueError."""
    with pytest.raises(ValueError, match="webhook_signature"):
        EmulatorConfig(webhook_signature="hmac")
