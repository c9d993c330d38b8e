"""`AtlasClient`: lifecycle, loop ownership, raw operations and one-shot calls."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import httpx
import pytest
import respx

from atlas_async._client import AtlasClient
from atlas_async._core.config import resolve_config
from atlas_async._core.errors import (
    ClientClosedError,
    ClientStateError,
    ConfigurationError,
    ServerError,
    SubmissionUnknownError,
    UnexpectedResponseError,
)
from atlas_async._core.models import Kind, PredictionStatus
from atlas_async._core.policies import (
    DurationModel,
    FixedPolicy,
    PollPlan,
    PollPolicy,
)
from atlas_async._net.session import ApiSession
from atlas_async._ops.operations import Operations
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

BASE = "https://api.atlascloud.ai/api/v1"
KEY = "sk-test-key-0123"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def envelope(data: object) -> dict[str, Any]:
    return {"code": 200, "message": "", "data": data}


def prediction(pid: str = "p1", status: str = "processing", **extra: Any) -> Any:
    return envelope({"id": pid, "status": status, **extra})


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


ClientFactory = Callable[..., AtlasClient]


@pytest.fixture
def make_client(router: respx.Router, clock: FakeClock) -> ClientFactory:
    def make(**kwargs: Any) -> AtlasClient:
        kwargs.setdefault("api_key", KEY)
        if "http_client" not in kwargs:
            kwargs.setdefault("transport", httpx.MockTransport(router.handler))
        return AtlasClient(clock=clock, rng=random.Random(0), **kwargs)

    return make


class TestLifecycle:
    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(lambda c: c.get_prediction("p1"), id="get_prediction"),
            pytest.param(lambda c: c.list_models(), id="list_models"),
            pytest.param(lambda c: c.upload_media(PNG), id="upload_media"),
            pytest.param(lambda c: c.submit_image("m/x", prompt="p"), id="submit"),
            pytest.param(lambda c: c.attach("p1"), id="attach"),
        ],
    )
    async def test_use_before_entering_explains_async_with(
        self, make_client: ClientFactory, call: Callable[[AtlasClient], Any]
    ) -> None:
        """Every operation outside `async with` raises ClientStateError saying how."""
        with pytest.raises(ClientStateError, match="async with AtlasClient") as info:
            await call(make_client())
        assert not isinstance(info.value, ClientClosedError)

    async def test_use_after_exit_raises_client_closed(
        self, make_client: ClientFactory
    ) -> None:
        """After the block ends, calls raise ClientClosedError (a RuntimeError)."""
        async with make_client() as client:
            pass
        with pytest.raises(ClientClosedError, match="closed") as info:
            await client.get_prediction("p1")
        assert isinstance(info.value, RuntimeError)

    async def test_entering_twice_is_refused(self, make_client: ClientFactory) -> None:
        """An open client cannot be entered again."""
        async with make_client() as client:
            with pytest.raises(ClientStateError, match="already open"):
                await client.__aenter__()

    async def test_reopening_after_close_is_refused(
        self, make_client: ClientFactory
    ) -> None:
        """A closed client is never reopened (httpx clients cannot be)."""
        client = make_client()
        async with client:
            pass
        with pytest.raises(ClientClosedError, match="cannot be reopened"):
            async with client:
                pass

    async def test_exit_without_enter_is_refused(
        self, make_client: ClientFactory
    ) -> None:
        """__aexit__ on a client that is not open is a state error."""
        with pytest.raises(ClientStateError, match="not open"):
            await make_client().__aexit__(None, None, None)

    async def test_use_from_another_event_loop_is_refused(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """A client belongs to the loop that entered it; another loop gets an error."""
        route = router.get("/model/prediction/p1").mock(
            return_value=httpx.Response(200, json=prediction())
        )

        async def from_other_loop(client: AtlasClient) -> BaseException | None:
            try:
                await client.get_prediction("p1")
            except ClientStateError as exc:
                return exc
            return None

        async with make_client() as client:
            error = await anyio.to_thread.run_sync(
                lambda: asyncio.run(from_other_loop(client))
            )
            await client.get_prediction("p1")  # the owning loop still works
        assert isinstance(error, ClientStateError)
        assert "another event loop" in str(error)
        assert route.call_count == 1

    async def test_owned_http_client_is_closed_on_exit(
        self, router: respx.Router
    ) -> None:
        """The httpx client the SDK built is closed (its transport too) on exit."""

        class Recording(httpx.MockTransport):
            closed = False

            async def aclose(self) -> None:
                self.closed = True

        transport = Recording(router.handler)
        async with AtlasClient(KEY, transport=transport):
            assert not transport.closed
        assert transport.closed

    async def test_injected_http_client_stays_open(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """An injected httpx client is the caller's to close."""
        router.get("/models").mock(return_value=httpx.Response(200, json=envelope([])))
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(router.handler)
        ) as http:
            async with make_client(http_client=http) as client:
                assert await client.list_models() == []
            assert not http.is_closed

    async def test_exception_in_block_propagates_and_closes(
        self, make_client: ClientFactory
    ) -> None:
        """An error inside the block passes through and still closes the client."""
        client = make_client()
        with pytest.raises(KeyError):
            async with client:
                raise KeyError("boom")
        assert "closed" in repr(client)

    async def test_both_http_client_and_transport_are_refused(self) -> None:
        """Injecting both a client and a transport is ambiguous."""
        async with httpx.AsyncClient() as http:
            with pytest.raises(ConfigurationError, match="not both"):
                AtlasClient(
                    KEY,
                    http_client=http,
                    transport=httpx.MockTransport(lambda r: httpx.Response(200)),
                )

    async def test_repr_shows_base_url_and_state_never_the_key(
        self, make_client: ClientFactory
    ) -> None:
        """The repr tells where and in which state, and leaves the key out."""
        client = make_client()
        assert repr(client) == f"AtlasClient(base_url='{BASE}', state=unopened)"
        async with client:
            assert "state=opened" in repr(client)
        assert KEY not in repr(client)

    async def test_options_for_the_scheduler_take_effect(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """Scheduler options are validated, then used: the rate budget is in force."""
        router.get("/models").mock(return_value=httpx.Response(200, json=envelope([])))
        async with make_client(
            max_in_flight=50, max_concurrent_requests=8, requests_per_second=5
        ) as client:
            await client.list_models()
            stats = client.statistics()
        assert stats.requests_per_second == 5.0
        assert stats.requests_sent == 1
        with pytest.raises(ConfigurationError, match="max_in_flight"):
            make_client(max_in_flight=0)

    async def test_key_and_base_url_come_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ATLASCLOUD_API_KEY and ATLASCLOUD_BASE_URL are read at construction."""
        monkeypatch.setenv("ATLASCLOUD_API_KEY", "sk-from-env")
        monkeypatch.setenv("ATLASCLOUD_BASE_URL", "http://127.0.0.1:8787/api/v1")
        client = AtlasClient()
        assert "http://127.0.0.1:8787/api/v1" in repr(client)
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=envelope(prediction()))

        async with AtlasClient(transport=httpx.MockTransport(answer)) as client:
            await client.get_prediction("p1")
        assert seen[0].headers["Authorization"] == "Bearer sk-from-env"
        assert str(seen[0].url).startswith("http://127.0.0.1:8787/api/v1/")

    async def test_plain_http_to_remote_host_is_refused(self) -> None:
        """The http safety rule applies to the client's own constructor."""
        with pytest.raises(ConfigurationError, match="plain http"):
            AtlasClient(KEY, base_url="http://api.atlascloud.ai/api/v1")
        AtlasClient(
            KEY, base_url="http://api.atlascloud.ai/api/v1", allow_insecure_http=True
        )


class _CrashingPlan:
    def delay(self, elapsed: float, polls: int, rng: random.Random) -> float:
        if polls:
            raise ValueError("scheduler bug")
        return 0.0


class _CrashingPolicy(PollPolicy):
    """A poll policy with a bug: planning the poll after the first raises."""

    def plan(self, durations: DurationModel) -> PollPlan:
        return _CrashingPlan()


class TestBackground:
    async def test_pending_predictions_fail_with_client_closed_on_exit(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """Leaving the block stops polling: pending futures get ClientClosedError."""
        router.post("/model/generateImage").mock(
            return_value=httpx.Response(200, json=prediction("p1", "created"))
        )
        async with make_client(poll=FixedPolicy(3600.0)) as client:
            future = await client.submit_image("m/x", prompt="a fox")
            assert not future.done()
        assert isinstance(future.exception(), ClientClosedError)
        assert future.exception().prediction_id == "p1"  # type: ignore[union-attr]
        with pytest.raises(ClientClosedError):
            await client.get_prediction("p1")

    async def test_a_bug_fails_the_prediction_it_was_handling_not_the_client(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """A bug in the scheduler (a poll policy that raises) fails the
        prediction it was handling, chained from the bug, and nothing else:
        the client stays open and usable."""
        router.post("/model/generateImage").mock(
            return_value=httpx.Response(200, json=prediction("p1", "created"))
        )
        router.get("/model/prediction/p1").mock(
            return_value=httpx.Response(200, json=prediction("p1"))
        )
        async with make_client(poll=_CrashingPolicy()) as client:
            future = await client.submit_image("m/x", prompt="a fox")
            with pytest.raises(UnexpectedResponseError, match="bug") as info:
                await future
            assert isinstance(info.value.__cause__, ValueError)
            assert "scheduler bug" in str(info.value.__cause__)
            assert "state=open" in repr(client)
            assert (await client.get_prediction("p1")).id == "p1"


@asynccontextmanager
async def operations(
    router: respx.Router, clock: FakeClock
) -> AsyncIterator[Operations]:
    """The raw operations over a session on the mocked API, as the client has them."""
    config = resolve_config(KEY, env={})
    session = ApiSession(
        config,
        transport=httpx.MockTransport(router.handler),
        clock=clock,
        rng=random.Random(0),
    )
    async with session:
        yield Operations(session, clock=clock, rng=random.Random(0))


class TestRawOperations:
    async def test_create_posts_a_flat_body_once(
        self, router: respx.Router, clock: FakeClock
    ) -> None:
        """A submit posts {model, **params} to the kind's path and parses the id."""
        route = router.post("/model/generateVideo").mock(
            return_value=httpx.Response(200, json=prediction("v1", "created"))
        )
        async with operations(router, clock) as ops:
            created = await ops.create(
                Kind.VIDEO, "kwaivgi/kling", {"prompt": "a fox", "duration": 5}
            )
        assert created.id == "v1"
        assert created.status is PredictionStatus.CREATED
        assert route.call_count == 1
        assert json.loads(route.calls.last.request.content) == {
            "model": "kwaivgi/kling",
            "prompt": "a fox",
            "duration": 5,
        }

    async def test_create_read_timeout_is_unknown_not_resent(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """A lost answer to a submit raises SubmissionUnknownError after one send."""
        route = router.post("/model/generateImage").mock(
            side_effect=httpx.ReadTimeout("timed out")
        )
        async with make_client() as client:
            with pytest.raises(SubmissionUnknownError) as info:
                await client.submit_image("m/x", prompt="p")
        assert route.call_count == 1
        assert (info.value.kind, info.value.model) == (Kind.IMAGE, "m/x")

    async def test_fetch_does_not_retry(
        self, router: respx.Router, clock: FakeClock
    ) -> None:
        """The scheduler's poll is one GET: it decides itself when to try again."""
        route = router.get("/model/prediction/p1").mock(
            return_value=httpx.Response(503)
        )
        async with operations(router, clock) as ops:
            with pytest.raises(ServerError) as info:
                await ops.fetch("p1")
        assert route.call_count == 1
        assert info.value.prediction_id == "p1"

    async def test_get_prediction_retries_then_returns(
        self, router: respx.Router, make_client: ClientFactory, clock: FakeClock
    ) -> None:
        """get_prediction retries a 503 and returns the snapshot."""
        route = router.get("/model/prediction/p1").mock(
            side_effect=[
                httpx.Response(503),
                httpx.Response(200, json=prediction(status="completed", outputs=["u"])),
            ]
        )
        async with make_client() as client, clock.autojump():
            snapshot = await client.get_prediction("p1")
        assert snapshot.status is PredictionStatus.COMPLETED
        assert snapshot.outputs == ("u",)
        assert route.call_count == 2

    async def test_get_prediction_returns_a_failed_prediction(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """A failure on the server is data here, not an exception."""
        router.get("/model/prediction/p1").mock(
            return_value=httpx.Response(
                200, json=prediction(status="failed", error="nsfw", error_code=1039)
            )
        )
        async with make_client() as client:
            snapshot = await client.get_prediction("p1")
        assert snapshot.status is PredictionStatus.FAILED
        assert snapshot.error_code == 1039

    async def test_prediction_id_is_percent_encoded(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """An id cannot add a query or fragment: it is encoded whole (ids with
        '/' or '..' are refused before sending: tests/test_validation.py)."""
        route = router.get("/model/prediction/a%3Fx%3D1%23f%20g").mock(
            return_value=httpx.Response(200, json=prediction("a?x=1#f g"))
        )
        async with make_client() as client:
            await client.get_prediction("a?x=1#f g")
        assert route.call_count == 1

    async def test_missing_key_fails_on_first_authenticated_call(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """Without a key the client opens, and the first call that needs it says how."""
        async with make_client(api_key=None) as client:
            with pytest.raises(ConfigurationError, match="ATLASCLOUD_API_KEY"):
                await client.get_prediction("p1")
        assert router.calls.call_count == 0


class TestUploadMedia:
    @staticmethod
    def route(router: respx.Router, **data: Any) -> respx.Route:
        payload = {"download_url": "https://cdn.example/u/1", **data}
        return router.post("/model/uploadMedia").mock(
            return_value=httpx.Response(200, json=envelope(payload))
        )

    async def test_upload_from_path(
        self, router: respx.Router, make_client: ClientFactory, tmp_path: Path
    ) -> None:
        """A path is read and sent as multipart `file` with its name and type."""
        route = self.route(router)
        path = tmp_path / "cat.png"
        path.write_bytes(PNG)
        async with make_client() as client:
            media = await client.upload_media(path)
        request = route.calls.last.request
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert request.headers["Content-Type"].startswith("multipart/form-data")
        assert b'name="file"; filename="cat.png"' in request.content
        assert b"Content-Type: image/png" in request.content
        assert PNG in request.content
        assert media.url == "https://cdn.example/u/1"
        assert (media.filename, media.size) == ("cat.png", len(PNG))
        assert media.content_type == "image/png"

    async def test_upload_from_str_path(
        self, router: respx.Router, make_client: ClientFactory, tmp_path: Path
    ) -> None:
        """A path given as str works the same."""
        route = self.route(router)
        path = tmp_path / "clip.mp4"
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
        async with make_client() as client:
            await client.upload_media(str(path))
        assert b'filename="clip.mp4"' in route.calls.last.request.content
        assert b"Content-Type: video/mp4" in route.calls.last.request.content

    async def test_upload_from_bytes_sniffs_the_type(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """Bytes without a name get one from their content: upload.png, image/png."""
        route = self.route(router)
        async with make_client() as client:
            media = await client.upload_media(bytearray(PNG))
        assert b'filename="upload.png"' in route.calls.last.request.content
        assert media.content_type == "image/png"

    async def test_upload_unknown_bytes_as_octet_stream(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """Unrecognised bytes go as application/octet-stream named upload."""
        route = self.route(router)
        async with make_client() as client:
            await client.upload_media(b"just some bytes")
        content = route.calls.last.request.content
        assert b'filename="upload"' in content
        assert b"Content-Type: application/octet-stream" in content

    async def test_upload_from_stream(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """A binary stream is read and sent; an explicit filename wins."""
        route = self.route(router)
        async with make_client() as client:
            await client.upload_media(io.BytesIO(PNG), filename="dir/fox.jpg")
        content = route.calls.last.request.content
        assert b'filename="fox.jpg"' in content
        assert b"Content-Type: image/jpeg" in content
        assert PNG in content

    async def test_upload_from_open_file_uses_its_name(
        self, router: respx.Router, make_client: ClientFactory, tmp_path: Path
    ) -> None:
        """A file opened with 'rb' lends its base name to the upload."""
        route = self.route(router)
        path = tmp_path / "voice.wav"
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
        async with make_client() as client:
            with path.open("rb") as stream:
                await client.upload_media(stream)
        assert b'filename="voice.wav"' in route.calls.last.request.content

    async def test_server_supplied_details_win(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """Filename and size from the server are kept over our own guesses."""
        self.route(router, filename="stored.png", size=999, type="image/png")
        async with make_client() as client:
            media = await client.upload_media(PNG)
        assert (media.filename, media.size) == ("stored.png", 999)

    async def test_missing_file_is_a_configuration_error(
        self, make_client: ClientFactory, tmp_path: Path
    ) -> None:
        """A path that does not exist is refused before anything is sent."""
        async with make_client() as client:
            with pytest.raises(ConfigurationError, match="cannot upload"):
                await client.upload_media(tmp_path / "nope.png")
            with pytest.raises(ConfigurationError, match="cannot upload"):
                await client.upload_media(tmp_path)

    async def test_text_stream_is_refused(self, make_client: ClientFactory) -> None:
        """A text-mode stream is a mistake: the message says to open with 'rb'."""
        async with make_client() as client:
            with pytest.raises(ConfigurationError, match="'rb'"):
                await client.upload_media(io.StringIO("text"))  # type: ignore[arg-type]

    async def test_other_types_are_refused(self, make_client: ClientFactory) -> None:
        """Anything that is not a path, bytes or a stream is refused by type."""
        async with make_client() as client:
            with pytest.raises(ConfigurationError, match="int"):
                await client.upload_media(42)  # type: ignore[arg-type]


class TestListModels:
    async def test_list_models_sends_no_authorization(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """The catalog is public: no key is sent even when one is configured."""
        route = router.get("/models").mock(
            return_value=httpx.Response(
                200,
                json={"code": "200", "data": [{"model": "a/b", "type": "Video"}]},
            )
        )
        async with make_client() as client:
            models = await client.list_models()
        assert [m.model for m in models] == ["a/b"]
        assert models[0].kind is Kind.VIDEO
        assert "Authorization" not in route.calls.last.request.headers

    async def test_list_models_works_without_a_key(
        self, router: respx.Router, make_client: ClientFactory
    ) -> None:
        """A client with no key can still read the catalog."""
        router.get("/models").mock(return_value=httpx.Response(200, json=envelope([])))
        async with make_client(api_key=None) as client:
            assert await client.list_models() == []
