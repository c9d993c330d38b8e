"""Tests for download_outputs: respx through MockTransport, FakeClock, tmp_path."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx
import pytest
import pytest_asyncio
import respx

from atlas_async import DownloadError
from atlas_async._core.errors import AtlasError, ConfigurationError
from atlas_async._core.models import Prediction, PredictionStatus
from atlas_async._ops import download as _download
from atlas_async._ops.download import download_outputs
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

API = "https://api.atlascloud.ai"
CDN = "https://cdn.example.com"
KEY = "sk-test-do-not-leak"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 32


def prediction(*outputs: str, prediction_id: str = "p-1") -> Prediction:
    return Prediction(
        id=prediction_id, status=PredictionStatus.COMPLETED, outputs=outputs
    )


def files(directory: Path) -> list[str]:
    """Everything in the directory, hidden temporaries included."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


class Chunks(httpx.AsyncByteStream):
    """A body that yields chunks, then optionally fails or blocks forever."""

    def __init__(
        self,
        chunks: list[bytes],
        *,
        fail: Exception | None = None,
        reached: anyio.Event | None = None,
    ) -> None:
        self.chunks, self.fail, self.reached = chunks, fail, reached

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail is not None:
            raise self.fail
        if self.reached is not None:
            self.reached.set()
            await anyio.sleep_forever()


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_mocked=True)


@pytest_asyncio.fixture
async def http(router: respx.Router) -> AsyncIterator[httpx.AsyncClient]:
    # The API session's own client: it carries the key as a default header.
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(router.handler),
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Download(Protocol):
    """download_outputs with the test's client, clock and directory filled in."""

    async def __call__(self, pred: Prediction, **options: Any) -> list[Path]: ...


@pytest.fixture
def download(http: httpx.AsyncClient, out: Path, clock: FakeClock) -> Download:
    async def run(pred: Prediction, **options: Any) -> list[Path]:
        options.setdefault("api_origin", API)
        directory = options.pop("directory", out)
        paths: list[Path] = []
        error: Exception | None = None
        async with clock.autojump():
            # Caught inside the block: autojump's task group would wrap it.
            try:
                paths = await download_outputs(
                    pred, directory, http=http, clock=clock, **options
                )
            except Exception as exc:  # noqa: BLE001  re-raised below
                error = exc
        if error is not None:
            raise error
        return paths

    return run


def ok(content: bytes, content_type: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.Response(200, content=content, headers=headers)


class TestInlineOutputs:
    async def test_data_uri_is_decoded_with_its_media_type(
        self, download: Download, out: Path
    ) -> None:
        """A base64 data URI becomes a file with its bytes and type's extension."""
        uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
        (path,) = await download(prediction(uri))
        assert path == out / "p-1-0.png"
        assert path.read_bytes() == PNG

    async def test_raw_base64_gets_its_extension_from_magic_bytes(
        self, download: Download, out: Path
    ) -> None:
        """Raw base64 (enable_base64_output) is sniffed: JPEG bytes give .jpg."""
        raw = base64.b64encode(JPEG).decode().rstrip("=")  # padding dropped too
        (path,) = await download(prediction(raw))
        assert path.name == "p-1-0.jpg"
        assert path.read_bytes() == JPEG

    async def test_unrecognised_bytes_fall_back_to_bin(
        self, download: Download
    ) -> None:
        """Long base64 with no known type is saved as .bin rather than guessed."""
        raw = base64.b64encode(b"xyz123" * 50).decode()
        (path,) = await download(prediction(raw))
        assert path.name == "p-1-0.bin"

    async def test_plain_data_uri_is_percent_decoded(self, download: Download) -> None:
        """A data URI without ;base64 holds percent-encoded text."""
        (path,) = await download(prediction("data:text/plain,hello%20world"))
        assert (path.name, path.read_bytes()) == ("p-1-0.txt", b"hello world")

    @pytest.mark.parametrize(
        ("output", "match"),
        [
            pytest.param(
                "data:image/png;base64,@@@@", "not an http", id="bad-data-uri"
            ),
            pytest.param("data:image/png;base64", "malformed data URI", id="no-comma"),
            pytest.param("data:image/png;base64,", "is empty", id="empty"),
            pytest.param("file:///etc/passwd", "not an http", id="file-scheme"),
        ],
    )
    async def test_invalid_inline_data_is_a_download_error(
        self, download: Download, out: Path, output: str, match: str
    ) -> None:
        """Outputs that are neither URL nor decodable data raise and write nothing."""
        with pytest.raises(DownloadError, match=match) as caught:
            await download(prediction(output))
        assert (caught.value.prediction_id, caught.value.output_index) == ("p-1", 0)
        assert files(out) == []


class TestUrlOutputs:
    async def test_png_named_from_content_type(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """The Content-Type picks the extension, whatever the URL says."""
        router.get(f"{CDN}/x/result").mock(return_value=ok(PNG, "image/png"))
        (path,) = await download(prediction(f"{CDN}/x/result"))
        assert path == out / "p-1-0.png"
        assert path.read_bytes() == PNG
        assert files(out) == ["p-1-0.png"]

    @pytest.mark.parametrize(
        ("url", "content_type", "name"),
        [
            pytest.param("/v.mp4", "video/mp4; codecs=avc1", "p-1-0.mp4", id="mp4"),
            pytest.param("/a", "audio/wav", "p-1-0.wav", id="wav"),
            pytest.param("/a", "audio/mpeg", "p-1-0.mp3", id="mp3"),
            pytest.param("/i.webp", "application/octet-stream", "p-1-0.webp", id="sfx"),
            pytest.param("/i.JPEG?sig=1", None, "p-1-0.jpg", id="jpeg-suffix"),
            pytest.param("/blob", None, "p-1-0.bin", id="nothing-known"),
            pytest.param("/x.tar%2fgz", None, "p-1-0.bin", id="odd-suffix"),
            pytest.param("/run.sh", "text/x-shellscript", "p-1-0.bin", id="script"),
        ],
    )  # fmt: skip
    async def test_extension_falls_back_from_type_to_suffix_to_bin(
        self,
        download: Download,
        router: respx.Router,
        url: str,
        content_type: str | None,
        name: str,
    ) -> None:
        """Known types map to extensions; else a sane URL suffix; else .bin."""
        router.get(url=f"{CDN}{url}").mock(return_value=ok(b"data", content_type))
        (path,) = await download(prediction(f"{CDN}{url}"))
        assert path.name == name

    async def test_several_outputs_keep_their_order(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """Paths come back in output order, one bounded task each."""
        for i in range(5):
            router.get(f"{CDN}/{i}").mock(return_value=ok(bytes([i]) * 8, "image/png"))
        outputs = [f"{CDN}/{i}" for i in range(5)]
        paths = await download(
            prediction(*outputs), max_concurrency=2, name_prefix="item-00007"
        )
        assert [p.name for p in paths] == [f"item-00007-{i}.png" for i in range(5)]
        assert [p.read_bytes() for p in paths] == [bytes([i]) * 8 for i in range(5)]

    async def test_no_outputs_means_no_files(
        self, download: Download, out: Path
    ) -> None:
        """A prediction without outputs downloads nothing (and still makes the dir)."""
        assert await download(prediction()) == []
        assert await anyio.Path(out).is_dir()

    async def test_existing_file_is_replaced_atomically_when_asked(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """With overwrite=True the same name is replaced with the new content whole."""
        await anyio.Path(out).mkdir()
        (out / "p-1-0.png").write_bytes(b"old")
        router.get(f"{CDN}/a.png").mock(return_value=ok(PNG, "image/png"))
        (path,) = await download(prediction(f"{CDN}/a.png"), overwrite=True)
        assert path.read_bytes() == PNG
        assert files(out) == ["p-1-0.png"]

    async def test_error_status_fails_at_once_with_a_hint(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """A 404 is not retried and says the URL may have expired."""
        route = router.get(f"{CDN}/gone.png").mock(return_value=httpx.Response(404))
        with pytest.raises(DownloadError, match="may have expired") as caught:
            await download(prediction(f"{CDN}/gone.png?X-Signature=secret"))
        assert route.call_count == 1
        assert caught.value.status_code == 404
        assert caught.value.url == f"{CDN}/gone.png"  # the signed query stays out
        assert "secret" not in str(caught.value)
        assert files(out) == []

    async def test_one_failing_output_raises_download_error_not_a_group(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """With several outputs, the caller still gets a plain DownloadError."""
        router.get(f"{CDN}/good").mock(return_value=ok(PNG, "image/png"))
        router.get(f"{CDN}/bad").mock(return_value=httpx.Response(410))
        with pytest.raises(DownloadError, match="HTTP 410"):
            await download(prediction(f"{CDN}/good", f"{CDN}/bad"), max_concurrency=1)
        assert not [n for n in files(out) if ".part-" in n]


class TestRetries:
    async def test_503_then_success_retries_on_the_fake_clock(
        self,
        download: Download,
        router: respx.Router,
        clock: FakeClock,
    ) -> None:
        """Two 503s are retried with backoff (fake time only), then saved."""
        route = router.get(f"{CDN}/a.png").mock(
            side_effect=[httpx.Response(503), httpx.Response(503), ok(PNG, "image/png")]
        )
        (path,) = await download(prediction(f"{CDN}/a.png"))
        assert path.read_bytes() == PNG
        assert route.call_count == 3
        # 0.5 s then 1 s nominal, each jittered into [50%, 100%]
        assert 0.75 <= clock.now() <= 1.5

    @pytest.mark.parametrize(
        "retry_after",
        ["7", "Thu, 01 Jan 2026 00:00:07 GMT"],
        ids=["seconds", "http-date"],
    )
    async def test_retry_after_of_the_output_host_is_honoured(
        self,
        download: Download,
        router: respx.Router,
        clock: FakeClock,
        retry_after: str,
    ) -> None:
        """A 429 with Retry-After waits that long (seconds, or a date read on the
        client's wall clock), not the shorter backoff."""
        route = router.get(f"{CDN}/a.png").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": retry_after}),
                ok(PNG, "image/png"),
            ]
        )
        # FakeClock's wall starts at 2026-01-01T00:00:00Z: the date is 7 s ahead.
        (path,) = await download(prediction(f"{CDN}/a.png"))
        assert path.read_bytes() == PNG
        assert route.call_count == 2
        assert clock.now() == pytest.approx(7.0)

    async def test_network_error_then_success(
        self, download: Download, router: respx.Router
    ) -> None:
        """A connect error is retried like a 5xx."""
        route = router.get(f"{CDN}/a.png").mock(
            side_effect=[httpx.ConnectError("refused"), ok(PNG, "image/png")]
        )
        await download(prediction(f"{CDN}/a.png"))
        assert route.call_count == 2

    async def test_retries_are_bounded(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """After `retries` extra attempts the last failure is reported."""
        route = router.get(f"{CDN}/a.png").mock(return_value=httpx.Response(502))
        with pytest.raises(DownloadError, match="after 3 attempt") as caught:
            await download(prediction(f"{CDN}/a.png"), retries=2)
        assert route.call_count == 3
        assert caught.value.status_code == 502
        assert files(out) == []

    async def test_mid_stream_failure_leaves_no_partial_and_no_temp_file(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """A connection dropped mid-body leaves nothing under any name."""
        router.get(f"{CDN}/v.mp4").mock(
            side_effect=lambda _: httpx.Response(
                200,
                headers={"Content-Type": "video/mp4"},
                stream=Chunks([b"\x00" * 1000], fail=httpx.ReadError("reset")),
            )
        )
        with pytest.raises(DownloadError, match="ReadError") as caught:
            await download(prediction(f"{CDN}/v.mp4"), retries=0)
        assert isinstance(caught.value.__cause__, httpx.ReadError)
        assert files(out) == []

    async def test_mid_stream_failure_is_retried_from_scratch(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """The retry rewrites the whole file; the broken attempt leaves no trace."""
        bodies = iter(
            [
                Chunks([b"broken"], fail=httpx.RemoteProtocolError("eof")),
                Chunks([b"whole", b" file"]),
            ]
        )
        router.get(f"{CDN}/a.txt").mock(
            side_effect=lambda _: httpx.Response(200, stream=next(bodies))
        )
        (path,) = await download(prediction(f"{CDN}/a.txt"))
        assert path.read_bytes() == b"whole file"
        assert files(out) == ["p-1-0.txt"]


class TestSizeCap:
    async def test_declared_length_over_the_cap_is_refused_before_writing(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """A Content-Length above max_bytes fails without creating any file."""
        router.get(f"{CDN}/big.png").mock(return_value=ok(b"x" * 101, "image/png"))
        with pytest.raises(DownloadError, match="larger than 100 bytes"):
            await download(prediction(f"{CDN}/big.png"), max_bytes=100)
        assert files(out) == []

    async def test_streamed_body_over_the_cap_is_aborted_and_deleted(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """A body without Content-Length is counted and cut off at the cap."""
        router.get(f"{CDN}/big").mock(
            side_effect=lambda _: httpx.Response(200, stream=Chunks([b"x" * 60] * 3))
        )
        with pytest.raises(DownloadError, match="larger than 100 bytes"):
            await download(prediction(f"{CDN}/big"), max_bytes=100)
        assert files(out) == []

    async def test_inline_data_over_the_cap_is_refused(
        self, download: Download, out: Path
    ) -> None:
        """The cap applies to base64 outputs too."""
        with pytest.raises(DownloadError, match="larger than"):
            await download(prediction(base64.b64encode(PNG).decode()), max_bytes=10)
        assert files(out) == []


class TestNames:
    @pytest.mark.parametrize(
        "url",
        [
            pytest.param(f"{CDN}/../../etc/passwd", id="dot-dot"),
            pytest.param(f"{CDN}/%2e%2e%2f%2e%2e%2fetc%2fpasswd", id="encoded"),
            pytest.param(f"{CDN}/a/..%2f..%2f.bashrc", id="mixed"),
            pytest.param(f"{CDN}/x.png%00.sh", id="nul"),
        ],
    )
    async def test_hostile_urls_cannot_leave_the_directory(
        self,
        download: Download,
        router: respx.Router,
        out: Path,
        url: str,
    ) -> None:
        """Only our own name is used; the URL contributes at most an extension."""
        router.route().mock(return_value=ok(b"data"))
        (path,) = await download(prediction(url))
        assert path.parent == out
        assert path.name == "p-1-0.bin"
        assert files(out) == ["p-1-0.bin"]

    @pytest.mark.parametrize(
        ("prediction_id", "name_prefix", "expected"),
        [
            pytest.param("../../etc/passwd", None, "etc_passwd~", id="dot-dot-id"),
            pytest.param("/abs/path", None, "abs_path~", id="absolute-id"),
            pytest.param("a\x00b\\c:d", None, "a_b_c_d~", id="nul-backslash"),
            pytest.param("..", None, "output~", id="only-dots"),
            pytest.param("p-1", "../../../tmp/evil", "tmp_evil~", id="prefix"),
            pytest.param("p-1", ".hidden", "hidden~", id="no-hidden-files"),
            pytest.param("x" * 500, None, "x" * 87 + "~", id="bounded"),
            pytest.param("p-1", "item-00007", "item-00007-0.png", id="kept-as-is"),
        ],
    )  # fmt: skip
    async def test_names_are_sanitised(
        self,
        download: Download,
        out: Path,
        prediction_id: str,
        name_prefix: str | None,
        expected: str,
    ) -> None:
        """Ids and prefixes are reduced to safe characters and a bounded length;
        a reduced one ends in "~" and 12 hex digits of its digest."""
        uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
        (path,) = await download(
            prediction(uri, prediction_id=prediction_id), name_prefix=name_prefix
        )
        assert path.parent == out
        if expected.endswith("~"):
            assert re.fullmatch(re.escape(expected) + "[0-9a-f]{12}-0[.]png", path.name)
        else:
            assert path.name == expected
        assert files(out) == [path.name]


class TestAuthorization:
    async def test_foreign_origin_gets_no_authorization(
        self, download: Download, router: respx.Router
    ) -> None:
        """A CDN URL is fetched without the client's Authorization header."""
        route = router.get(f"{CDN}/a.png").mock(return_value=ok(PNG, "image/png"))
        await download(prediction(f"{CDN}/a.png"))
        assert "authorization" not in route.calls.last.request.headers

    async def test_api_origin_keeps_authorization(
        self, download: Download, router: respx.Router
    ) -> None:
        """An output served by the API itself is fetched with the key."""
        route = router.get(f"{API}/media/a.png").mock(return_value=ok(PNG, "image/png"))
        await download(prediction(f"{API}/media/a.png"), api_origin=f"{API}/api/v1")
        assert route.calls.last.request.headers["authorization"] == f"Bearer {KEY}"

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("http://api.atlascloud.ai/media/a.png", id="other-scheme"),
            pytest.param("https://api.atlascloud.ai:8443/media/a.png", id="other-port"),
            pytest.param("https://api.atlascloud.ai.evil.com/a.png", id="suffix-host"),
        ],
    )
    async def test_look_alike_origins_get_no_authorization(
        self, download: Download, router: respx.Router, url: str
    ) -> None:
        """Scheme, host and port must all match the API origin exactly."""
        route = router.get(url).mock(return_value=ok(PNG, "image/png"))
        await download(prediction(url))
        assert "authorization" not in route.calls.last.request.headers

    async def test_no_api_origin_means_no_credentials_anywhere(
        self, download: Download, router: respx.Router
    ) -> None:
        """Without api_origin even the API host gets no Authorization."""
        route = router.get(f"{API}/a.png").mock(return_value=ok(PNG, "image/png"))
        await download(prediction(f"{API}/a.png"), api_origin=None)
        assert "authorization" not in route.calls.last.request.headers

    async def test_redirects_are_followed_without_credentials(
        self, download: Download, router: respx.Router
    ) -> None:
        """API -> CDN -> API redirects: only the first hop carries the key."""
        first = router.get(f"{API}/media/a").mock(
            return_value=httpx.Response(302, headers={"Location": f"{CDN}/a"})
        )
        second = router.get(f"{CDN}/a").mock(
            return_value=httpx.Response(307, headers={"Location": f"{API}/final.png"})
        )
        third = router.get(f"{API}/final.png").mock(return_value=ok(PNG, "image/png"))
        (path,) = await download(prediction(f"{API}/media/a"))
        assert path.read_bytes() == PNG
        assert "authorization" in first.calls.last.request.headers
        assert "authorization" not in second.calls.last.request.headers
        assert "authorization" not in third.calls.last.request.headers

    async def test_client_auth_is_not_applied_to_foreign_origins(
        self, router: respx.Router, out: Path
    ) -> None:
        """An `auth=` configured on the client is switched off for a CDN."""
        route = router.get(f"{CDN}/a.png").mock(return_value=ok(PNG, "image/png"))
        transport = httpx.MockTransport(router.handler)
        async with httpx.AsyncClient(transport=transport, auth=("user", KEY)) as client:
            await download_outputs(prediction(f"{CDN}/a.png"), out, http=client)
        assert "authorization" not in route.calls.last.request.headers

    async def test_redirect_loops_and_odd_schemes_are_refused(
        self, download: Download, router: respx.Router, out: Path
    ) -> None:
        """Endless redirects and a redirect to file:// end in DownloadError."""
        router.get(f"{CDN}/loop").mock(
            return_value=httpx.Response(302, headers={"Location": "/loop"})
        )
        router.get(f"{CDN}/local").mock(
            return_value=httpx.Response(302, headers={"Location": "file:///etc/passwd"})
        )
        with pytest.raises(DownloadError, match="redirect loop"):
            await download(prediction(f"{CDN}/loop"))
        with pytest.raises(DownloadError, match="refusing to fetch file:"):
            await download(prediction(f"{CDN}/local"))
        assert files(out) == []

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("https://[::1/a.png", id="unparseable"),
            pytest.param("http://", id="no-host"),
        ],
    )
    async def test_invalid_urls_are_refused(
        self, download: Download, router: respx.Router, url: str
    ) -> None:
        """A URL without a usable host is never sent."""
        route = router.route().mock(return_value=ok(PNG))
        with pytest.raises(DownloadError, match="not an http"):
            await download(prediction(url))
        assert route.call_count == 0


class TestCancellation:
    async def test_cancelled_download_removes_its_temporary_file(
        self, http: httpx.AsyncClient, router: respx.Router, out: Path
    ) -> None:
        """Cancelling mid-body deletes the temporary; no final file appears."""
        reached = anyio.Event()
        router.get(f"{CDN}/slow.mp4").mock(
            side_effect=lambda _: httpx.Response(
                200,
                headers={"Content-Type": "video/mp4"},
                stream=Chunks([b"\x00" * 100], reached=reached),
            )
        )
        seen: list[str] = []
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: download_outputs(
                        prediction(f"{CDN}/slow.mp4"), out, http=http
                    )
                )
                await reached.wait()
                seen = files(out)
                tg.cancel_scope.cancel()
        assert len(seen) == 1
        assert seen[0].startswith(".p-1-0.mp4.part-")
        assert files(out) == []


class TestDirectory:
    async def test_missing_directory_is_created(
        self, download: Download, tmp_path: Path
    ) -> None:
        """Nested directories that do not exist yet are created."""
        target = tmp_path / "a" / "b" / "c"
        uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
        (path,) = await download(prediction(uri), directory=target)
        assert path.parent == target

    async def test_a_file_in_the_way_is_a_configuration_error(
        self, download: Download, tmp_path: Path
    ) -> None:
        """A directory path that is a file gives a clear ConfigurationError."""
        blocker = tmp_path / "file"
        await anyio.Path(blocker).write_text("x")
        with pytest.raises(ConfigurationError, match="cannot create the download"):
            await download(prediction("aGk="), directory=blocker / "sub")

    async def test_unwritable_directory_is_a_configuration_error(
        self, download: Download, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A read-only directory is reported before any download starts."""
        locked = tmp_path / "locked"
        await anyio.Path(locked).mkdir(mode=0o500)
        if os.name != "posix" or os.geteuid() == 0:  # root may write anywhere
            monkeypatch.setattr(os, "access", lambda *_: False)
        with pytest.raises(ConfigurationError, match="not writable"):
            await download(prediction("aGk="), directory=locked)

    async def test_permission_denied_while_writing_is_a_configuration_error(
        self, download: Download, out: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A directory that refuses the temporary file is the caller's to fix."""

        def refuse(path: Path) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(_download, "_create", refuse)
        with pytest.raises(ConfigurationError, match="cannot write to the download"):
            await download(prediction("aGk="))
        assert files(out) == []

    async def test_failed_rename_is_a_download_error_and_leaves_no_temp(
        self, download: Download, out: Path
    ) -> None:
        """If the final name cannot be replaced, the temporary is still removed."""
        await anyio.Path(out / "p-1-0.txt").mkdir(parents=True)  # a dir in the way
        with pytest.raises(DownloadError, match="could not write") as caught:
            await download(prediction("aGk="), overwrite=True)
        assert isinstance(caught.value.__cause__, OSError)
        assert files(out) == ["p-1-0.txt"]

    @pytest.mark.parametrize(
        "options",
        [
            pytest.param({"max_concurrency": 0}, id="concurrency"),
            pytest.param({"retries": -1}, id="retries"),
            pytest.param({"max_bytes": 0}, id="max-bytes"),
        ],
    )
    async def test_bad_arguments_are_configuration_errors(
        self, download: Download, options: dict[str, int]
    ) -> None:
        """Nonsense limits are refused up front."""
        with pytest.raises(ConfigurationError):
            await download(prediction("aGk="), **options)

    async def test_download_error_is_an_atlas_error(self) -> None:
        """DownloadError sits under AtlasError, so one except catches everything."""
        error = DownloadError("x", prediction_id="p", output_index=2, status_code=500)
        assert isinstance(error, AtlasError)
        assert "prediction p" in str(error)
