"""The API key never shows: not in reprs, logs, exception text or tracebacks."""

from __future__ import annotations

import logging
import pickle
import random
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from atlas_async._client import AtlasClient
from atlas_async._core.config import resolve_config
from atlas_async._core.errors import AtlasError, ConfigurationError
from atlas_async._net.session import ApiSession
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

SECRET = "sk-SECRET-do-not-leak-123"
BASE = "https://api.atlascloud.ai/api/v1"
SUBMIT = "/model/generateImage"
POLL = "/model/prediction/p1"


def error_body(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "request_id": "req-9", "data": None}


def everything_about(error: BaseException) -> str:
    """Every text an error offers: str, repr, attributes, traceback, causes."""
    texts = [
        str(error),
        repr(error),
        repr(vars(error)),
        "".join(traceback.format_exception(error)),
    ]
    cause = error.__cause__ or error.__context__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, AtlasError):
        texts.append(repr(vars(pickle.loads(pickle.dumps(error)))))
    return "\n".join(texts)


# Each scenario: the routes to mock, and the call that must fail.
Scenario = tuple[
    Callable[[respx.Router], None], Callable[[AtlasClient], Awaitable[object]]
]


def _poll(client: AtlasClient) -> Awaitable[object]:
    return client.get_prediction("p1")


async def _fetch(client: AtlasClient) -> object:
    # Polled by the scheduler until its failures in a row are spent.
    return await client.attach("p1")


def _submit(client: AtlasClient) -> Awaitable[object]:
    return client.submit_image("m/x", prompt="a fox")


def _respond(path: str, method: str, *responses: Any) -> Callable[[respx.Router], None]:
    def mock(router: respx.Router) -> None:
        route = router.route(method=method, path=path)
        if len(responses) == 1 and not isinstance(responses[0], BaseException):
            route.mock(return_value=responses[0])
        else:
            route.mock(side_effect=list(responses) * 30)

    return mock


SCENARIOS = [
    pytest.param(
        _respond(
            POLL, "GET", httpx.Response(401, json=error_body(401, "unauthorized"))
        ),
        _poll,
        id="401",
    ),
    pytest.param(
        _respond(
            POLL,
            "GET",
            httpx.Response(401, json=error_body(401, f"invalid key Bearer {SECRET}")),
        ),
        _poll,
        id="401-server-echoes-the-key",
    ),
    pytest.param(
        _respond(
            SUBMIT,
            "POST",
            httpx.Response(402, json=error_body(402, "insufficient balance")),
        ),
        _submit,
        id="402",
    ),
    pytest.param(
        _respond(
            SUBMIT,
            "POST",
            httpx.Response(
                429, json=error_body(429, "slow down"), headers={"Retry-After": "1"}
            ),
        ),
        _submit,
        id="429-exhausted",
    ),
    pytest.param(
        _respond(SUBMIT, "POST", httpx.Response(500, json=error_body(500, "internal"))),
        _submit,
        id="500-submit",
    ),
    pytest.param(
        _respond(POLL, "GET", httpx.Response(503, text=f"<html>{SECRET}</html>")),
        _poll,
        id="503-html-echo",
    ),
    pytest.param(
        _respond(POLL, "GET", httpx.ReadTimeout("timed out")),
        _poll,
        id="read-timeout-get",
    ),
    pytest.param(
        _respond(POLL, "GET", httpx.ConnectError("connection refused")),
        _fetch,
        id="connect-error-poll",
    ),
    pytest.param(
        _respond(SUBMIT, "POST", httpx.ReadTimeout("timed out")),
        _submit,
        id="submission-unknown",
    ),
    pytest.param(
        _respond(SUBMIT, "POST", httpx.RemoteProtocolError("peer closed")),
        _submit,
        id="submission-unknown-protocol",
    ),
    pytest.param(
        _respond(
            POLL,
            "GET",
            httpx.Response(302, headers={"Location": "https://evil.example/"}),
        ),
        _poll,
        id="redirect",
    ),
    pytest.param(
        _respond(POLL, "GET", httpx.Response(200, text="not json at all")),
        _poll,
        id="unexpected-body",
    ),
    pytest.param(
        _respond(POLL, "GET", httpx.Response(404, json=error_body(404, "not found"))),
        _poll,
        id="404",
    ),
]


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


@pytest.fixture
def capture_all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, asyncio
    caplog.set_level(logging.DEBUG, logger="atlas_async")
    return caplog


def make_client(router: respx.Router, clock: FakeClock) -> AtlasClient:
    return AtlasClient(
        SECRET,
        transport=httpx.MockTransport(router.handler),
        clock=clock,
        rng=random.Random(0),
        max_retries=2,
    )


class TestErrorPaths:
    @pytest.mark.parametrize(("mock", "call"), SCENARIOS)
    async def test_key_absent_from_errors_and_logs(
        self,
        router: respx.Router,
        capture_all_logs: pytest.LogCaptureFixture,
        mock: Callable[[respx.Router], None],
        call: Callable[[AtlasClient], Awaitable[object]],
    ) -> None:
        """Along every error path, neither the error nor any log record has the key."""
        mock(router)
        clock = FakeClock()
        async with make_client(router, clock) as client, clock.autojump():
            with pytest.raises(AtlasError) as info:
                await call(client)
        assert router.calls.call_count >= 1
        assert router.calls.last.request.headers["Authorization"] == f"Bearer {SECRET}"
        assert SECRET not in everything_about(info.value)
        assert SECRET not in capture_all_logs.text
        assert all(
            SECRET not in record.getMessage() for record in capture_all_logs.records
        )

    async def test_echoed_key_is_redacted_in_message_and_body(
        self, router: respx.Router
    ) -> None:
        """A server that echoes the key gets it replaced, and the rest kept."""
        body = {**error_body(401, f"bad key {SECRET}"), "details": [{"key": SECRET}]}
        router.get(POLL).mock(return_value=httpx.Response(401, json=body))
        async with make_client(router, FakeClock()) as client:
            with pytest.raises(AtlasError) as info:
                await client.get_prediction("p1")
        assert "bad key [redacted]" in str(info.value)
        assert getattr(info.value, "body", None) == {
            **error_body(401, "bad key [redacted]"),
            "details": [{"key": "[redacted]"}],
        }


class TestReprs:
    async def test_reprs_never_show_the_key(self, router: respx.Router) -> None:
        """Client (each state), config and session reprs leave the key out."""
        config = resolve_config(SECRET, env={})
        session = ApiSession(config)
        client = make_client(router, FakeClock())
        texts = [repr(config), str(config), repr(session), repr(client)]
        async with client:
            texts.append(repr(client))
            texts.append(repr(client.statistics()))
        texts.append(repr(client))
        assert all(SECRET not in text for text in texts)

    async def test_key_from_environment_stays_hidden(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A key read from ATLASCLOUD_API_KEY is hidden just the same."""
        monkeypatch.setenv("ATLASCLOUD_API_KEY", SECRET)
        client = AtlasClient()
        assert SECRET not in repr(client)
        assert SECRET not in repr(
            resolve_config(None, env={"ATLASCLOUD_API_KEY": SECRET})
        )


class TestConfigurationErrors:
    @pytest.mark.parametrize(
        "bad_key",
        [f"{SECRET} trailing", f"{SECRET}\x00", f"{SECRET}\u00e9"],
    )
    async def test_malformed_key_error_does_not_quote_the_key(
        self, bad_key: str
    ) -> None:
        """Refusing a malformed key never repeats it."""
        with pytest.raises(ConfigurationError) as info:
            AtlasClient(bad_key)
        assert SECRET not in everything_about(info.value)

    async def test_key_in_base_url_query_is_not_echoed(self) -> None:
        """A key pasted into base_url is refused without repeating the URL."""
        with pytest.raises(ConfigurationError) as info:
            AtlasClient(
                SECRET, base_url=f"https://api.atlascloud.ai/api/v1?key={SECRET}"
            )
        assert SECRET not in everything_about(info.value)

    async def test_key_in_base_url_userinfo_is_not_echoed(self) -> None:
        """A key pasted as URL credentials is refused without repeating it."""
        with pytest.raises(ConfigurationError) as info:
            AtlasClient(base_url=f"https://user:{SECRET}@api.atlascloud.ai/api/v1")
        assert SECRET not in everything_about(info.value)


class TestSuccessLogs:
    async def test_debug_logs_of_successful_calls_have_no_key(
        self, router: respx.Router, capture_all_logs: pytest.LogCaptureFixture
    ) -> None:
        """Submit, poll, upload and catalog at DEBUG log no header and no key."""
        router.post(SUBMIT).mock(
            return_value=httpx.Response(200, json={"code": 200, "data": {"id": "p1"}})
        )
        router.get(POLL).mock(
            return_value=httpx.Response(
                200, json={"code": 200, "data": {"id": "p1", "status": "processing"}}
            )
        )
        router.post("/model/uploadMedia").mock(
            return_value=httpx.Response(
                200, json={"code": 200, "data": {"download_url": "https://cdn/x"}}
            )
        )
        router.get("/models").mock(
            return_value=httpx.Response(200, json={"code": 200, "data": []})
        )
        async with make_client(router, FakeClock()) as client:
            await client.submit_image("m/x", prompt="p")
            await client.get_prediction("p1")
            await client.upload_media(b"bytes")
            await client.list_models()
        assert capture_all_logs.records, "the calls were logged at DEBUG"
        assert SECRET not in capture_all_logs.text
        assert "Bearer" not in capture_all_logs.text
        assert "authorization" not in capture_all_logs.text.lower()
