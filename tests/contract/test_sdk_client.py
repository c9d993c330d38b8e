"""
The SDK's half of the contract through the public client: the literal bodies
answered by a respx-mocked API, and what ``get_prediction`` and an awaited
prediction give for them (W1-W3, W6, W8, W14-W16).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
import respx

import atlas_async as atlas
from atlas_async.testing import FakeClock

from . import literals as lit

pytestmark = pytest.mark.asyncio

BASE = "https://api.atlascloud.ai/api/v1"
POLL_PATH = f"/model/prediction/{lit.W_ID}"


@asynccontextmanager
async def opened(router: respx.Router) -> AsyncIterator[atlas.AtlasClient]:
    # Opened inside each test: the client's task group must be entered and
    # exited by the same task.
    clock = FakeClock()
    async with (
        clock.autojump(),
        atlas.AtlasClient(
            "sk-contract-key",
            transport=httpx.MockTransport(router.handler),
            clock=clock,
            rng=random.Random(1),
            max_retries=1,
            poll=atlas.FixedPolicy(interval=1.0),
        ) as client,
    ):
        yield client


def answers(*bodies: tuple[int, bytes]) -> Callable[[httpx.Request], httpx.Response]:
    """A handler giving ``bodies`` in turn, then the last one again."""
    queue = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(
            status, content=body, headers={"content-type": "application/json"}
        )

    return handler


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


class TestW1ToW3FailuresAnsweredAs5xx:
    async def test_a_500_with_a_failed_verdict_is_the_failed_prediction(
        self, router: respx.Router
    ) -> None:
        """W1: HTTP 500 with `data.status` failed is that failure, raised once
        with the body's error, and not polled again."""
        route = router.get(POLL_PATH).mock(
            side_effect=answers((500, lit.W1_FAILED_AS_500))
        )
        async with opened(router) as client:
            with pytest.raises(atlas.PredictionFailedError) as caught:
                await client.attach(lit.W_ID, timeout=60)
        assert caught.value.error == "the model could not process this input"
        assert caught.value.status is atlas.PredictionStatus.FAILED
        assert route.call_count == 1

    async def test_an_empty_inner_error_takes_the_outer_message(
        self, router: respx.Router
    ) -> None:
        """W2: `data.error` empty: the envelope's `message` is the reason."""
        router.get(POLL_PATH).mock(side_effect=answers((500, lit.W2_OUTER_MESSAGE)))
        async with opened(router) as client:
            prediction = await client.get_prediction(lit.W_ID)
        assert prediction.status is atlas.PredictionStatus.FAILED
        assert prediction.error == "Input image is too small (min 256x256)"

    @pytest.mark.parametrize(
        ("wire", "status"),
        [
            pytest.param("failed", atlas.PredictionStatus.FAILED, id="failed"),
            pytest.param("canceled", atlas.PredictionStatus.CANCELED, id="canceled"),
            pytest.param("cancelled", atlas.PredictionStatus.CANCELED, id="cancelled"),
            pytest.param("error", atlas.PredictionStatus.FAILED, id="error"),
            pytest.param("timeout", atlas.PredictionStatus.TIMEOUT, id="timeout"),
        ],
    )
    async def test_every_terminal_status_in_a_5xx_body_ends_it(
        self, router: respx.Router, wire: str, status: atlas.PredictionStatus
    ) -> None:
        """W3: failed, canceled, cancelled, error, timeout in a 5xx body: the
        snapshot, returned by one GET (no retry)."""
        route = router.get(POLL_PATH).mock(
            side_effect=answers((503, lit.w3_terminal_as_5xx(wire)))
        )
        async with opened(router) as client:
            prediction = await client.get_prediction(lit.W_ID)
        assert prediction.status is status
        assert route.call_count == 1


class TestW6ViewsThroughTheClient:
    async def test_an_awaited_prediction_carries_its_views(
        self, router: respx.Router
    ) -> None:
        """W6: polled from created to completed, the result has its cost,
        latency, completion time, transcript and text."""
        router.get(POLL_PATH).mock(
            side_effect=answers(
                (200, lit.w8_status("created")), (200, lit.W6_LIVE_FIELDS)
            )
        )
        async with opened(router) as client:
            prediction = await client.attach(lit.W_ID, kind="audio", timeout=60)
        assert prediction.cost == Decimal("0.0125")
        assert prediction.latency == 4.25
        assert prediction.completed_at == datetime(
            2026, 3, 1, 12, 0, 4, 250000, tzinfo=timezone.utc
        )
        assert prediction.stt_result is not None
        assert prediction.stt_result.language_code == "en"
        assert prediction.text == "Hello world"

    async def test_garbage_live_fields_never_fail_a_poll(
        self, router: respx.Router
    ) -> None:
        """W6: every live field of the wrong shape: the prediction completes,
        its views None."""
        router.get(POLL_PATH).mock(side_effect=answers((200, lit.W6_GARBAGE)))
        async with opened(router) as client:
            snapshot = await client.get_prediction(lit.W_ID)
            prediction = await client.attach(lit.W_ID, timeout=60)
        assert snapshot == prediction
        assert prediction.outputs == ("https://cdn.atlascloud.ai/a.png",)
        assert (prediction.cost, prediction.latency, prediction.text) == (
            None,
            None,
            None,
        )


class TestW8StatusesThroughTheClient:
    async def test_created_is_waited_on_until_it_completes(
        self, router: respx.Router
    ) -> None:
        """W8: `created` is not terminal: polled on until `completed`."""
        route = router.get(POLL_PATH).mock(
            side_effect=answers(
                (200, lit.w8_status("created")),
                (200, lit.w8_status("processing")),
                (200, lit.w8_status("completed")),
            )
        )
        async with opened(router) as client:
            prediction = await client.attach(lit.W_ID, timeout=60)
        assert prediction.status == "completed"
        assert route.call_count == 3

    async def test_a_server_timeout_raises_prediction_failed_not_timeout(
        self, router: respx.Router
    ) -> None:
        """W8: the server's `timeout` is its verdict: PredictionFailedError
        with status TIMEOUT, never the client's PredictionTimeoutError."""
        router.get(POLL_PATH).mock(side_effect=answers((200, lit.w8_status("timeout"))))
        async with opened(router) as client:
            with pytest.raises(atlas.PredictionError) as caught:
                await client.attach(lit.W_ID, timeout=60)
        assert type(caught.value) is atlas.PredictionFailedError
        assert caught.value.status is atlas.PredictionStatus.TIMEOUT


class TestW14ToW16PollPaths:
    async def test_the_sdk_polls_its_own_path_whatever_urls_get_says(
        self, router: respx.Router
    ) -> None:
        """W14-W16: other clients poll `/model/result/{id}`, a trailing slash or
        with utm_* params; the SDK polls `/model/prediction/{id}` with no query,
        and reads the same envelope."""
        body = lit.W16_RESULT_PATH.replace(
            b'"status"',
            b'"urls": {"get": "https://api.atlascloud.ai/api/v1/model/result/'
            + lit.W_ID.encode()
            + b'/?utm_source=x"}, "status"',
        )
        route = router.get(POLL_PATH).mock(side_effect=answers((200, body)))
        async with opened(router) as client:
            prediction = await client.attach(lit.W_ID, timeout=60)
        assert prediction.outputs == ("https://cdn.atlascloud.ai/a.png",)
        assert prediction.urls["get"].endswith(
            f"/model/result/{lit.W_ID}/?utm_source=x"
        )
        [call] = route.calls
        assert call.request.url.path == f"/api/v1/model/prediction/{lit.W_ID}"
        assert call.request.url.query == b""
