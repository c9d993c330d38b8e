"""
The wire fixtures F1-F19 (docs/wire.md, "Sample answers") and every status code
of its "Error answers", driven through the public client over respx: what a user
gets back for each answer the real API is known to give.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import respx

import atlas_async as atlas
from atlas_async import PredictionStatus as S
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

BASE = "https://api.atlascloud.ai/api/v1"
PID = "8ba2926c6bd642049f4d17dd68ea6785"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


@asynccontextmanager
async def opened(router: respx.Router) -> AsyncIterator[atlas.AtlasClient]:
    # Opened inside each test (not in an async fixture): the client's task group
    # must be entered and exited by the same task.
    clock = FakeClock()
    async with (
        clock.autojump(),
        atlas.AtlasClient(
            "sk-fixture-key",
            transport=httpx.MockTransport(router.handler),
            clock=clock,
            rng=random.Random(1),
            max_retries=0,
            poll=atlas.FixedPolicy(interval=1.0),
        ) as client,
    ):
        yield client


def answer(status: int, body: object, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


SUBMITS = [
    pytest.param(
        {"code": 200, "data": {"id": "prediction_abc123", "status": "starting"}},
        "prediction_abc123",
        S.STARTING,
        id="F1",
    ),
    pytest.param(
        {
            "code": 200,
            "message": "",
            "data": {
                "id": PID,
                "model": "kwaivgi/kling-v3.0-pro/image-to-video",
                "outputs": None,
                "urls": {"get": f"{BASE}/model/prediction/{PID}"},
                "status": "processing",
            },
        },
        PID,
        S.PROCESSING,
        id="F2",
    ),
    pytest.param(
        {
            "code": 200,
            "data": {
                "id": "prediction-id",
                "status": "created",
                "outputs": None,
                "urls": {"get": f"{BASE}/model/prediction/{{id}}"},
            },
        },
        "prediction-id",
        S.CREATED,
        id="F3",
    ),
    pytest.param(
        {"code": 200, "data": {"id": "prediction_id"}},
        "prediction_id",
        S.CREATED,
        id="F4",
    ),
]


class TestSubmitFixtures:
    @pytest.mark.parametrize(("body", "pid", "status"), SUBMITS)
    async def test_submit_answer_gives_a_future_for_its_id(
        self,
        router: respx.Router,
        body: object,
        pid: str,
        status: S,
    ) -> None:
        """Every known submit answer yields a future that polls to its result."""
        async with opened(router) as client:
            route = router.post("/model/generateImage").mock(answer(200, body))
            done = {
                "code": 200,
                "data": {"id": pid, "status": "completed", "outputs": ["u"]},
            }
            router.get(path__regex=r"/model/prediction/.+").mock(answer(200, done))
            future = await client.submit_image("m/x", prompt="p")
            assert future.id == pid
            prediction = await future
            assert prediction.outputs == ("u",)
            assert route.call_count == 1
            sent = json.loads(route.calls[0].request.content)
            assert sent == {"model": "m/x", "prompt": "p"}
            assert status.is_terminal is False


POLLS = [
    pytest.param(
        {
            "data": {
                "id": "pred-1",
                "status": "processing",
                "outputs": None,
                "error": None,
            }
        },
        S.PROCESSING,
        (),
        id="F5-processing",
    ),
    pytest.param(
        {
            "id": "pred_abc123",
            "status": "processing",
            "model": "model-name",
            "created_at": "2025-01-01T00:00:00Z",
        },
        S.PROCESSING,
        (),
        id="F6-bare-processing",
    ),
    pytest.param(
        {
            "code": 200,
            "data": {
                "id": "prediction_abc123",
                "status": "completed",
                "outputs": ["https://cdn.atlascloud.ai/generated/xxx.png"],
            },
        },
        S.COMPLETED,
        ("https://cdn.atlascloud.ai/generated/xxx.png",),
        id="F7-completed",
    ),
    pytest.param(
        {
            "data": {
                "id": "pred_abc123",
                "status": "completed",
                "outputs": ["https://storage.atlascloud.ai/outputs/result.mp4"],
                "metrics": {"predict_time": 45.2},
                "created_at": "2025-01-01T00:00:00Z",
            }
        },
        S.COMPLETED,
        ("https://storage.atlascloud.ai/outputs/result.mp4",),
        id="F8-metrics",
    ),
    pytest.param(
        {
            "code": 200,
            "data": {
                "status": "completed",
                "outputs": ["https://dashscope-result-sgp/image-url.png"],
                "has_nsfw_contents": None,
                "error": "",
            },
        },
        S.COMPLETED,
        ("https://dashscope-result-sgp/image-url.png",),
        id="F9-no-id",
    ),
    pytest.param(
        {
            "created_at": "2019-08-24T14:15:22Z",
            "has_nsfw_contents": [True],
            "id": "string",
            "model": "string",
            "outputs": ["string"],
            "status": "string",
            "urls": {},
        },
        S.UNKNOWN,
        ("string",),
        id="F10-schema-rendering",
    ),
    pytest.param(
        {
            "code": 200,
            "data": {
                "id": "x",
                "status": "failed",
                "error": "content policy",
                "error_code": 1039,
            },
        },
        S.FAILED,
        (),
        id="F11-failed-in-200",
    ),
    pytest.param(
        {
            "id": "7hm7nbwarxrm80cnq1yvmxz4m4",
            "logs": "...",
            "urls": {"cancel": "http://example.com", "result": "http://example.com"},
            "model": "black-forest-labs/flux-dev",
            "output": ["https://replicate.delivery/x.png"],
            "status": "processing",
            "created_at": "2025-03-21T11:36:30.151Z",
            "has_nsfw_contents": [False],
        },
        S.PROCESSING,
        ("https://replicate.delivery/x.png",),
        id="F19-replicate-style",
    ),
    pytest.param(
        {"status": "failed", "error": "Invalid parameter: resolution not supported"},
        S.FAILED,
        (),
        id="korean-seed-bare-failure",
    ),
]


class TestPollFixtures:
    @pytest.mark.parametrize(("body", "status", "outputs"), POLLS)
    async def test_get_prediction_parses_every_known_shape(
        self,
        router: respx.Router,
        body: object,
        status: S,
        outputs: tuple[str, ...],
    ) -> None:
        """get_prediction returns a snapshot for each known body, failures included."""
        async with opened(router) as client:
            router.get(f"/model/prediction/{PID}").mock(answer(200, body))
            prediction = await client.get_prediction(PID)
            assert prediction.status is status
            assert prediction.outputs == outputs
            assert prediction.id

    async def test_failed_prediction_raises_with_code_when_awaited(
        self, router: respx.Router
    ) -> None:
        """F11 through the scheduler: the future raises PredictionFailedError."""
        async with opened(router) as client:
            failed = {
                "code": 200,
                "data": {
                    "id": PID,
                    "status": "failed",
                    "error": "nope",
                    "error_code": 1039,
                },
            }
            router.get(f"/model/prediction/{PID}").mock(answer(200, failed))
            with pytest.raises(atlas.PredictionFailedError) as caught:
                await client.attach(PID)
            assert caught.value.prediction_id == PID
            assert caught.value.error_code == 1039
            assert caught.value.error == "nope"


STATUS_CODES = [
    pytest.param(400, atlas.InvalidRequestError, id="400"),
    pytest.param(401, atlas.AuthenticationError, id="401"),
    pytest.param(402, atlas.InsufficientBalanceError, id="402"),
    pytest.param(403, atlas.PermissionDeniedError, id="403"),
    pytest.param(404, atlas.NotFoundError, id="404"),
    pytest.param(413, atlas.InvalidRequestError, id="413"),
    pytest.param(429, atlas.RateLimitError, id="429"),
    pytest.param(451, atlas.PermissionDeniedError, id="451"),
    pytest.param(500, atlas.ServerError, id="500"),
    pytest.param(503, atlas.ServerError, id="503"),
    pytest.param(504, atlas.ServerError, id="504"),
]


class TestStatusCodes:
    @pytest.mark.parametrize(("code", "error"), STATUS_CODES)
    async def test_status_code_maps_to_its_error_with_details(
        self,
        router: respx.Router,
        code: int,
        error: type[atlas.APIError],
    ) -> None:
        """Each documented status raises its class with status, text and request id."""
        async with opened(router) as client:
            body = {
                "code": code,
                "msg": f"text {code}",
                "request_id": "req-9",
                "data": None,
            }
            router.get(f"/model/prediction/{PID}").mock(
                answer(code, body, **{"Retry-After": "3"})
            )
            with pytest.raises(error) as caught:
                await client.get_prediction(PID)
            assert caught.value.status_code == code
            assert caught.value.message == f"text {code}"
            assert caught.value.request_id == "req-9"
            assert caught.value.retry_after == 3.0

    @pytest.mark.parametrize(
        ("body", "error", "message"),
        [
            pytest.param(
                {"code": 401, "msg": "unauthorized", "request_id": "r", "data": None},
                atlas.AuthenticationError,
                "unauthorized",
                id="F12",
            ),
            pytest.param(
                {"code": 401, "msg": "unauthorized"},
                atlas.AuthenticationError,
                "unauthorized",
                id="F13",
            ),
            pytest.param(
                {"code": 404, "msg": "not found"},
                atlas.NotFoundError,
                "not found",
                id="F14",
            ),
            pytest.param(
                {"code": 402, "msg": "insufficient balance", "data": None},
                atlas.InsufficientBalanceError,
                "insufficient balance",
                id="F15",
            ),
            pytest.param(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_date_range",
                        "message": "end_date must be after start_date",
                        "param": "end_date",
                    },
                    "request_id": "req_1",
                },
                atlas.InvalidRequestError,
                "end_date must be after start_date",
                id="F16",
            ),
        ],
    )
    async def test_error_envelopes_map_to_their_errors(
        self,
        router: respx.Router,
        body: dict[str, Any],
        error: type[atlas.APIError],
        message: str,
    ) -> None:
        """The documented error bodies, at their HTTP status, raise the right class."""
        async with opened(router) as client:
            status = body.get("code", 400)
            assert isinstance(status, int)
            router.get(f"/model/prediction/{PID}").mock(answer(status, body))
            with pytest.raises(error) as caught:
                await client.get_prediction(PID)
            assert caught.value.message == message

    async def test_request_id_falls_back_to_the_header(
        self, router: respx.Router
    ) -> None:
        """Without request_id in the body, X-Request-ID is kept."""
        async with opened(router) as client:
            router.get(f"/model/prediction/{PID}").mock(
                answer(
                    404, {"code": 404, "msg": "not found"}, **{"X-Request-ID": "hdr-1"}
                )
            )
            with pytest.raises(atlas.NotFoundError) as caught:
                await client.get_prediction(PID)
            assert caught.value.request_id == "hdr-1"


class TestUploadFixture:
    async def test_f17_upload_answer_gives_the_download_url(
        self, router: respx.Router
    ) -> None:
        """F17: data.download_url becomes UploadedMedia.url with name and size."""
        async with opened(router) as client:
            body = {
                "code": 200,
                "data": {
                    "download_url": "https://atlas-img.example/media/xxx.jpg",
                    "filename": "photo.jpg",
                    "size": 123456,
                },
            }
            route = router.post("/model/uploadMedia").mock(answer(200, body))
            media = await client.upload_media(
                b"\xff\xd8\xff" + b"0" * 10, filename="a.jpg"
            )
            assert media.url == "https://atlas-img.example/media/xxx.jpg"
            assert media.filename == "photo.jpg"
            assert media.size == 123456
            assert b'name="file"' in route.calls[0].request.content
