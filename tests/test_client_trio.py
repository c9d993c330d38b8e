"""The client under trio: lifecycle, retries on the fake clock, uploads, catalog."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
import respx
import trio

from atlas_async._client import AtlasClient
from atlas_async._core.errors import ClientClosedError, ClientStateError
from atlas_async._core.models import PredictionStatus
from atlas_async.testing import FakeClock

BASE = "https://api.atlascloud.ai/api/v1"
KEY = "sk-test-key-0123"


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


def make_client(router: respx.Router, clock: FakeClock | None = None) -> AtlasClient:
    return AtlasClient(
        KEY,
        transport=httpx.MockTransport(router.handler),
        clock=clock,
        rng=random.Random(0),
    )


class TestUnderTrio:
    @pytest.mark.anyio
    async def test_get_prediction_retries_on_the_fake_clock(
        self, router: respx.Router
    ) -> None:
        """Under trio, a GET retries a 503 after a FakeClock backoff and returns."""
        assert trio.lowlevel.current_trio_token() is not None
        route = router.get("/model/prediction/p1").mock(
            side_effect=[
                httpx.Response(503),
                httpx.Response(
                    200, json={"code": 200, "data": {"id": "p1", "status": "completed"}}
                ),
            ]
        )
        clock = FakeClock()
        async with make_client(router, clock) as client, clock.autojump():
            snapshot = await client.get_prediction("p1")
        assert snapshot.status is PredictionStatus.COMPLETED
        assert route.call_count == 2
        assert 0.25 <= clock.now() <= 0.5

    @pytest.mark.anyio
    async def test_lifecycle_errors_under_trio(self, router: respx.Router) -> None:
        """The state checks work the same under trio."""
        client = make_client(router)
        with pytest.raises(ClientStateError, match="async with"):
            await client.get_prediction("p1")
        async with client:
            pass
        with pytest.raises(ClientClosedError):
            await client.list_models()

    @pytest.mark.anyio
    async def test_upload_and_catalog_under_trio(
        self, router: respx.Router, tmp_path: Path
    ) -> None:
        """File reads and multipart uploads use anyio, so they run under trio."""
        upload = router.post("/model/uploadMedia").mock(
            return_value=httpx.Response(
                200, json={"code": 200, "data": {"download_url": "https://cdn/x"}}
            )
        )
        router.get("/models").mock(
            return_value=httpx.Response(200, json={"code": 200, "data": []})
        )
        path = tmp_path / "a.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
        async with make_client(router) as client:
            media = await client.upload_media(path)
            assert await client.list_models() == []
        assert media.url == "https://cdn/x"
        assert b'filename="a.png"' in upload.calls.last.request.content

    @pytest.mark.anyio
    async def test_client_opened_under_trio_refuses_asyncio(
        self, router: respx.Router
    ) -> None:
        """A client entered under trio raises a state error when asyncio calls it."""

        async def from_asyncio(client: AtlasClient) -> BaseException | None:
            try:
                await client.get_prediction("p1")
            except ClientStateError as exc:
                return exc
            return None

        async with make_client(router) as client:
            error = await anyio.to_thread.run_sync(
                lambda: asyncio.run(from_asyncio(client))
            )
        assert isinstance(error, ClientStateError)
        assert router.calls.call_count == 0
