"""
download_outputs against hostile or odd outputs: names that must not collide or
escape, files that must not be overwritten, inline data that must not blow up
memory, plain-text outputs (W5), and redirects that must end in DownloadError.

Redirects run against a real HTTP server on loopback (raw asyncio sockets),
through both the httpx and the aiohttp transport.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import random
import re
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

from atlas_async import DownloadError
from atlas_async._core.models import Prediction, PredictionStatus
from atlas_async._net.transport import AiohttpTransport, aiohttp_installed
from atlas_async._ops.download import download_outputs

CDN = "https://cdn.example.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MiB = 1024 * 1024


def prediction(*outputs: str, prediction_id: str = "p-1") -> Prediction:
    return Prediction(
        id=prediction_id, status=PredictionStatus.COMPLETED, outputs=outputs
    )


def png_uri(data: bytes = PNG) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def files(directory: Path) -> list[str]:
    """Everything in the directory, hidden temporaries included."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_mocked=True)


async def save(
    pred: Prediction,
    directory: Path,
    router: respx.Router | None = None,
    **options: Any,
) -> list[Path]:
    """download_outputs with a mocked client (no network)."""
    handler = (router or respx.Router(assert_all_mocked=True)).handler
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await download_outputs(pred, directory, http=http, **options)


def peak_bytes_of(run: Callable[[], Any]) -> int:
    """Run a coroutine function; return the peak of Python allocations during it."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


@pytest.mark.asyncio
class TestDistinctNames:
    async def test_ids_that_reduce_alike_never_share_a_file(self, out: Path) -> None:
        """a/b, a_b, a b, a+b (and more) once all became a_b-0.png: now each id
        gets its own file, and every file keeps its own bytes."""
        ids = ["a/b", "a_b", "a b", "a+b", "A_B", "a\\b", "a:b", "a_b/", "./a_b"]
        saved: dict[str, Path] = {}
        for pid in ids:
            body = PNG + pid.encode()
            (saved[pid],) = await save(
                prediction(png_uri(body), prediction_id=pid), out
            )
        assert len({p.name for p in saved.values()}) == len(ids)
        for pid, path in saved.items():
            assert path.read_bytes() == PNG + pid.encode()
        # Also apart on a file system that ignores case.
        assert len({p.name.lower() for p in saved.values()}) == len(ids)

    async def test_batch_prefixes_stay_distinct(self, out: Path) -> None:
        """The batch's "<index>-<id>" prefix is kept distinct the same way."""
        first = await save(prediction(png_uri()), out, name_prefix="00003-a/b")
        second = await save(prediction(png_uri()), out, name_prefix="00003-a_b")
        assert first[0].name != second[0].name
        assert second[0].name == "00003-a_b-0.png"

    @pytest.mark.parametrize(
        "hostile",
        [
            "../../../../tmp/escape",
            "/etc/passwd",
            "..",
            ".",
            "",
            "a/../../b",
            "..\\..\\windows",
            "C:\\evil",
            "%2e%2e%2fescape",
            "\x00",
            "a\nb",
            "\u202ecod.exe",
            "~root",
            "x" * 5000,
            "\ud800",
        ],
    )
    async def test_hostile_ids_stay_inside_the_directory(
        self, tmp_path: Path, out: Path, hostile: str
    ) -> None:
        """Whatever the id, the one file lands directly in the directory,
        visible (no leading dot) and with a bounded name."""
        (path,) = await save(prediction(png_uri(), prediction_id=hostile), out)
        assert path.parent == out
        assert (await anyio.Path(path).resolve()).parent == await anyio.Path(
            out
        ).resolve()
        assert not path.name.startswith((".", "~", "-"))
        assert len(path.name) <= 120
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", path.name)
        assert files(out) == [path.name]
        assert files(tmp_path) == ["out"]


@pytest.mark.asyncio
class TestNoOverwrite:
    async def test_a_file_with_other_bytes_is_not_overwritten(self, out: Path) -> None:
        """A name that holds someone else's file stays untouched: DownloadError,
        and no temporary left behind."""
        await anyio.Path(out).mkdir()
        (out / "p-1-0.png").write_bytes(b"precious")
        with pytest.raises(DownloadError, match="refusing to overwrite") as caught:
            await save(prediction(png_uri()), out)
        assert caught.value.output_index == 0
        assert (out / "p-1-0.png").read_bytes() == b"precious"
        assert files(out) == ["p-1-0.png"]

    async def test_a_file_with_the_same_bytes_is_a_rerun(self, out: Path) -> None:
        """Saving the same output again returns the existing file."""
        (first,) = await save(prediction(png_uri()), out)
        (again,) = await save(prediction(png_uri()), out)
        assert again == first
        assert again.read_bytes() == PNG
        assert files(out) == ["p-1-0.png"]

    async def test_a_link_in_the_way_is_never_followed(
        self, tmp_path: Path, out: Path
    ) -> None:
        """A symlink planted at the final name is neither written through nor
        replaced, even when it points at identical bytes."""
        target = tmp_path / "target.png"
        target.write_bytes(PNG)
        await anyio.Path(out).mkdir()
        (out / "p-1-0.png").symlink_to(target)
        with pytest.raises(DownloadError, match="refusing to overwrite"):
            await save(prediction(png_uri()), out)
        assert (out / "p-1-0.png").is_symlink()
        assert target.read_bytes() == PNG

    async def test_overwrite_replaces_when_asked(self, out: Path) -> None:
        """overwrite=True replaces the other file atomically."""
        await anyio.Path(out).mkdir()
        (out / "p-1-0.png").write_bytes(b"old")
        (path,) = await save(prediction(png_uri()), out, overwrite=True)
        assert path.read_bytes() == PNG
        assert files(out) == ["p-1-0.png"]

    async def test_without_hard_links_names_are_still_claimed_exclusively(
        self, out: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a file system without hard links the name is claimed with O_EXCL:
        new files are saved, existing ones still refused."""

        def no_links(*_: object, **__: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_links)
        (path,) = await save(prediction(png_uri()), out)
        assert path.read_bytes() == PNG
        (out / "p-2-0.png").write_bytes(b"precious")
        with pytest.raises(DownloadError, match="refusing to overwrite"):
            await save(prediction(png_uri(), prediction_id="p-2"), out)
        assert (out / "p-2-0.png").read_bytes() == b"precious"
        assert files(out) == ["p-1-0.png", "p-2-0.png"]


class TestInlineData:
    def test_an_oversized_data_uri_is_refused_before_decoding(self, out: Path) -> None:
        """An 8 MiB data URI over a 1 MiB cap is refused from its length alone:
        almost nothing is allocated (decoding it first cost several times its size)."""
        uri = png_uri(PNG + os.urandom(6 * MiB))

        async def run() -> None:
            with pytest.raises(DownloadError, match="larger than"):
                await save(prediction(uri), out, max_bytes=MiB)

        assert peak_bytes_of(run) < MiB
        assert files(out) == []

    def test_a_large_data_uri_is_decoded_in_slices(self, out: Path) -> None:
        """A 6 MiB output given as an 8 MiB data URI is written whole while the
        decoder holds only a few slices in memory."""
        data = PNG + os.urandom(6 * MiB)
        uri = png_uri(data)
        paths: list[Path] = []

        async def run() -> None:
            paths.extend(await save(prediction(uri), out))

        assert peak_bytes_of(run) < 4 * MiB
        assert paths[0].read_bytes() == data

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        "encode",
        [
            pytest.param(lambda b: base64.b64encode(b).decode(), id="standard"),
            pytest.param(
                lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
                id="url-safe-unpadded",
            ),
            pytest.param(
                lambda b: base64.encodebytes(b).decode().replace("\n", "\r\n"),
                id="wrapped-crlf",
            ),
            pytest.param(
                lambda b: " ".join(
                    re.findall(".{1,999}", base64.b64encode(b).decode())
                ),
                id="spaces",
            ),
        ],
    )
    async def test_every_base64_form_survives_slicing(
        self, out: Path, encode: Callable[[bytes], str]
    ) -> None:
        """Inputs longer than one slice decode to the exact bytes, whatever the
        alphabet, padding and line breaks (slices must not cut a quantum)."""
        data = PNG + random.Random(7).randbytes(700_001)
        (path,) = await save(prediction("data:image/png;base64," + encode(data)), out)
        assert path.read_bytes() == data
        (raw,) = await save(prediction(encode(data), prediction_id="raw"), out)
        assert raw.read_bytes() == data

    @pytest.mark.asyncio
    async def test_invalid_base64_after_a_valid_start_leaves_nothing(
        self, out: Path
    ) -> None:
        """A bad character a megabyte in fails the download and the partly
        written temporary is removed."""
        good = base64.b64encode(PNG + bytes(MiB)).decode()
        with pytest.raises(DownloadError, match="valid base64"):
            await save(prediction(f"data:image/png;base64,{good}@@@@{good}"), out)
        assert files(out) == []

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("output", "match"),
        [
            pytest.param("data:image/png;base64,QUJD=QUJD", "base64", id="inner-pad"),
            pytest.param("data:image/png;base64,QUJDR", "base64", id="bad-length"),
            pytest.param("data:image/png;base64,QUJDRA===", "base64", id="3-pads"),
            pytest.param("data:image/png;base64,QUJ\u00e9", "base64", id="non-ascii"),
            pytest.param("data:image/png,%89PNG%0D%0A", "not base64", id="pct-png"),
            pytest.param("data:video/mp4,garbage", "not base64", id="plain-video"),
            pytest.param("data:../../x;base64,QUJD", "malformed", id="bad-media-type"),
            pytest.param("data:" + "x" * 5000 + ",QUJD", "malformed", id="long-header"),
            pytest.param("data:;base64,    ", "empty", id="blank"),
        ],
    )  # fmt: skip
    async def test_malformed_data_uris_are_download_errors(
        self, out: Path, output: str, match: str
    ) -> None:
        """Non-base64 binary data URIs and broken base64 never become files."""
        with pytest.raises(DownloadError, match=match) as caught:
            await save(prediction(output), out)
        assert caught.value.prediction_id == "p-1"
        assert files(out) == []

    @pytest.mark.asyncio
    async def test_percent_encoded_text_is_still_accepted(self, out: Path) -> None:
        """RFC 2397 text (no media type means text/plain) stays a .txt file."""
        (path,) = await save(prediction("data:,caf%C3%A9%20au%20lait"), out)
        assert (path.name, path.read_text("utf-8")) == ("p-1-0.txt", "café au lait")

    @pytest.mark.asyncio
    async def test_percent_encoded_text_over_the_cap_is_refused(
        self, out: Path
    ) -> None:
        """The cap holds for percent-encoded data too, and nothing is left."""
        with pytest.raises(DownloadError, match="larger than 100 bytes"):
            await save(prediction("data:text/plain," + "%41" * 101), out, max_bytes=100)
        assert files(out) == []


@pytest.mark.asyncio
class TestTextOutputs:
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("Hello world, this is the transcript.", id="transcript"),
            pytest.param("[Verse]\nÜber den Wolken\n歌词 🎵\n", id="lyrics"),
            pytest.param("Okay", id="one-word"),
            pytest.param("ABCD", id="base64-alphabet-word"),
            pytest.param("", id="silence"),
            pytest.param("see https://example.com for more", id="mentions-a-url"),
        ],
    )
    async def test_plain_text_outputs_are_saved_as_utf8_txt(
        self, out: Path, text: str
    ) -> None:
        """W5: an output that is not a URL or data URI is the text itself."""
        (path,) = await save(prediction(text), out)
        assert path.name == "p-1-0.txt"
        assert path.read_bytes() == text.encode("utf-8")

    async def test_text_outputs_follow_the_naming_rules(self, out: Path) -> None:
        """A text output of an odd id gets the same safe, distinct name."""
        (path,) = await save(prediction("hi there", prediction_id="a/b"), out)
        assert re.fullmatch(r"a_b~[0-9a-f]{12}-0\.txt", path.name)

    async def test_text_over_the_cap_is_refused(self, out: Path) -> None:
        """A text output over max_bytes is a DownloadError and leaves nothing."""
        with pytest.raises(DownloadError, match="larger than 10 bytes"):
            await save(prediction("a transcript of some length"), out, max_bytes=10)
        assert files(out) == []

    async def test_a_lone_surrogate_is_written_as_replacement(self, out: Path) -> None:
        """JSON may carry a lone surrogate; the file is still valid UTF-8."""
        (path,) = await save(prediction("la \ud800 la"), out)
        assert path.read_text("utf-8") == "la ? la"

    async def test_binary_and_text_outputs_side_by_side(
        self, out: Path, router: respx.Router
    ) -> None:
        """A URL, raw base64 and a transcript each get their own kind of file;
        a protocol-relative URL is fetched over https."""
        route = router.get(f"{CDN}/a.png").mock(
            return_value=httpx.Response(200, content=PNG)
        )
        raw = base64.b64encode(PNG).decode()
        outputs = ("//cdn.example.com/a.png", raw, "the words")
        paths = await save(prediction(*outputs), out, router)
        assert [p.name for p in paths] == ["p-1-0.png", "p-1-1.png", "p-1-2.txt"]
        assert route.calls.last.request.url.scheme == "https"

    @pytest.mark.parametrize(
        "output", ["file:///etc/passwd", "ftp://host/x.png", "s3://bucket/key.png"]
    )
    async def test_urls_of_other_schemes_are_refused_not_saved_as_text(
        self, out: Path, output: str
    ) -> None:
        """A URL we cannot fetch is an error, neither read nor kept as text."""
        with pytest.raises(DownloadError, match="not an http"):
            await save(prediction(output), out)
        assert files(out) == []


# -- redirects, against a real server on loopback ------------------------------


class Server:
    """An HTTP/1.1 server on loopback: path -> (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[str] = []
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def redirect(self, path: str, location: str) -> None:
        self.routes[path] = (302, {"Location": location}, b"")

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.seen.append(path)
            status, headers, body = self.routes.get(path, (404, {}, b""))
            lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            lines += ["Connection: close", "", ""]
            writer.write("\r\n".join(lines).encode("latin-1") + body)
            await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def serving() -> AsyncIterator[Server]:
    server = Server()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


def transports() -> Iterator[Any]:
    yield pytest.param(lambda: None, id="httpx")
    yield pytest.param(
        lambda: AiohttpTransport(max_connections=4),
        id="aiohttp",
        marks=pytest.mark.skipif(not aiohttp_installed(), reason="no aiohttp"),
    )


@pytest.fixture(params=list(transports()))
def make_transport(request: pytest.FixtureRequest) -> Callable[[], Any]:
    factory: Callable[[], Any] = request.param
    return factory


async def fetch_over(
    make_transport: Callable[[], Any], url: str, directory: Path
) -> list[Path]:
    async with httpx.AsyncClient(transport=make_transport()) as http:
        return await download_outputs(prediction(url), directory, http=http, retries=0)


@pytest.mark.asyncio
class TestRedirects:
    async def test_a_redirect_with_credentials_in_the_url_is_refused(
        self, out: Path, make_transport: Callable[[], Any]
    ) -> None:
        """A redirect to user:pw@host is a DownloadError on every transport (the
        aiohttp one raised a bare ValueError), and is never followed."""
        async with serving() as server:
            server.redirect("/start", f"http://user:pw@127.0.0.1:{server.port}/x.png")
            server.routes["/x.png"] = (200, {"Content-Type": "image/png"}, PNG)
            with pytest.raises(DownloadError, match="user name or password") as caught:
                await fetch_over(make_transport, f"{server.base}/start", out)
            assert server.seen == ["/start"]
        assert "pw" not in str(caught.value)
        assert files(out) == []

    async def test_an_output_url_with_credentials_is_never_requested(
        self, out: Path, make_transport: Callable[[], Any]
    ) -> None:
        """The output URL itself with user:pw@ is refused before any request."""
        async with serving() as server:
            url = f"http://u:secret@127.0.0.1:{server.port}/x.png"
            with pytest.raises(DownloadError, match="user name or password") as caught:
                await fetch_over(make_transport, url, out)
            assert server.seen == []
        assert "secret" not in str(caught.value)

    async def test_a_redirect_loop_stops_at_the_first_repeat(
        self, out: Path, make_transport: Callable[[], Any]
    ) -> None:
        """A -> B -> A is recognised as a loop on its first repeat."""
        async with serving() as server:
            server.redirect("/a", "/b")
            server.redirect("/b", f"{server.base}/a")
            with pytest.raises(DownloadError, match="redirect loop"):
                await fetch_over(make_transport, f"{server.base}/a", out)
            assert server.seen == ["/a", "/b"]

    async def test_a_long_chain_of_redirects_is_cut_off(
        self, out: Path, make_transport: Callable[[], Any]
    ) -> None:
        """Eleven different hops exceed the ten allowed."""
        async with serving() as server:
            for hop in range(20):
                server.redirect(f"/{hop}", f"/{hop + 1}")
            with pytest.raises(DownloadError, match="too many redirects"):
                await fetch_over(make_transport, f"{server.base}/0", out)
            assert len(server.seen) == 11

    @pytest.mark.parametrize(
        "location",
        [
            "ftp://127.0.0.1/x.png",
            "javascript:alert(1)",
            "data:image/png;base64,iVBORw0KGgo=",
            "file:///etc/passwd",
            "http://[::1/x",
            "http://exa mple.com/x",
        ],
    )
    async def test_odd_redirect_targets_are_download_errors(
        self, out: Path, make_transport: Callable[[], Any], location: str
    ) -> None:
        """Other schemes, hostless or unparseable targets end in DownloadError."""
        async with serving() as server:
            server.redirect("/start", location)
            with pytest.raises(DownloadError):
                await fetch_over(make_transport, f"{server.base}/start", out)
            assert server.seen == ["/start"]
        assert files(out) == []


@pytest.mark.asyncio
class TestLibraryErrors:
    @pytest.mark.parametrize(
        "raised", [ValueError("odd URL"), TypeError("odd header"), KeyError("x")]
    )
    async def test_what_the_http_library_raises_becomes_a_download_error(
        self, out: Path, raised: Exception
    ) -> None:
        """A transport raising something that is not a network error gives a
        DownloadError with the original as its cause."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise raised

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            with pytest.raises(DownloadError) as caught:
                await download_outputs(prediction(f"{CDN}/a.png"), out, http=http)
        assert caught.value.__cause__ is raised
        assert files(out) == []

    async def test_an_error_while_reading_the_body_becomes_a_download_error(
        self, out: Path
    ) -> None:
        """A body stream that raises a non-network error mid-way is typed too,
        and its partial file is removed."""

        class Broken(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                yield PNG
                raise ValueError("decoder blew up")

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, stream=Broken())

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            with pytest.raises(DownloadError, match="decoder blew up"):
                await download_outputs(prediction(f"{CDN}/a.png"), out, http=http)
        assert files(out) == []
