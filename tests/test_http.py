"""`ApiSession`: auth per origin, error mapping, the gate, and the retry rules."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import respx

from atlas_async._core.config import resolve_config
from atlas_async._core.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SubmissionUnknownError,
    TransportError,
    UnexpectedResponseError,
)
from atlas_async._core.models import Kind
from atlas_async._core.windows import Cause, RequestKind
from atlas_async._net.gate import NullGate
from atlas_async._net.session import USER_AGENT, ApiSession, RetryMode
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

BASE = "https://api.atlascloud.ai/api/v1"
KEY = "sk-test-key-0123"
SUBMIT = "/model/generateImage"
POLL = "/model/prediction/p1"
OK_SUBMIT = {"code": 200, "message": "", "data": {"id": "p1", "status": "created"}}
OK_POLL = {"code": 200, "message": "", "data": {"id": "p1", "status": "processing"}}


def error_body(code: int, msg: str = "nope") -> dict[str, Any]:
    return {"code": code, "msg": msg, "request_id": "req-1", "data": None}


class RecordingGate:
    """A gate that counts slots and keeps every recorded outcome."""

    def __init__(self) -> None:
        self.slots = 0
        self.active = 0
        self.records: list[tuple[int | None, float | None]] = []
        self.kinds: list[RequestKind] = []

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.slots += 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    def slot(
        self, kind: RequestKind = RequestKind.OTHER
    ) -> AbstractAsyncContextManager[None]:
        self.kinds.append(kind)
        return self._slot()

    def admit_now(self, kind: RequestKind, now: float) -> bool:
        self.kinds.append(kind)
        self.slots += 1
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1

    def record(
        self,
        status_code: int | None,
        retry_after: float | None,
        kind: RequestKind = RequestKind.OTHER,
        message: str | None = None,
        now: float | None = None,
    ) -> Cause | None:
        assert self.active == 0, "record() comes after the slot is released"
        self.records.append((status_code, retry_after))
        return None


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=BASE, assert_all_called=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


SessionFactory = Callable[..., ApiSession]


@pytest.fixture
def make_session(router: respx.Router, clock: FakeClock) -> SessionFactory:
    def make(
        *,
        key: str | None = KEY,
        base_url: str = BASE,
        max_retries: int = 4,
        gate: RecordingGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float | None = None,
    ) -> ApiSession:
        config = resolve_config(
            key, base_url, env={}, max_retries=max_retries, timeout=timeout
        )
        if http_client is None and transport is None:
            transport = httpx.MockTransport(router.handler)
        return ApiSession(
            config,
            transport=transport,
            http_client=http_client,
            clock=clock,
            rng=random.Random(0),
            gate=gate,
        )

    return make


async def submit(session: ApiSession) -> Any:
    return await session.request(
        "POST",
        SUBMIT,
        json={"model": "m/x", "prompt": "a fox"},
        retry=RetryMode.SUBMIT,
        kind=Kind.IMAGE,
        model="m/x",
    )


class TestSubmitIsNeverSentTwice:
    @pytest.mark.parametrize(
        "failure",
        [
            pytest.param(httpx.ReadTimeout("timed out"), id="read-timeout"),
            pytest.param(httpx.ReadError("reset"), id="read-error"),
            pytest.param(httpx.WriteError("broken pipe"), id="write-error"),
            pytest.param(httpx.WriteTimeout("timed out"), id="write-timeout"),
            pytest.param(
                httpx.RemoteProtocolError("disconnected"), id="remote-protocol"
            ),
        ],
    )
    async def test_sent_without_answer_raises_submission_unknown_once(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        failure: httpx.HTTPError,
    ) -> None:
        """A submit that may have arrived is sent exactly once and reported unknown."""
        route = router.post(SUBMIT).mock(side_effect=failure)
        async with make_session() as session:
            with pytest.raises(SubmissionUnknownError) as info:
                await submit(session)
        assert route.call_count == 1
        assert info.value.kind is Kind.IMAGE
        assert info.value.model == "m/x"
        assert info.value.__cause__ is failure
        assert "not re-sent" in str(info.value)

    async def test_server_error_500_is_sent_once(
        self, router: respx.Router, make_session: SessionFactory
    ) -> None:
        """A 500 on submit may have created the prediction: unknown, one send,
        the ServerError as its cause."""
        route = router.post(SUBMIT).mock(
            return_value=httpx.Response(500, json=error_body(500, "internal"))
        )
        async with make_session() as session:
            with pytest.raises(SubmissionUnknownError) as info:
                await submit(session)
        assert route.call_count == 1
        cause = info.value.__cause__
        assert isinstance(cause, ServerError)
        assert cause.status_code == 500

    @pytest.mark.parametrize(
        "failure",
        [
            pytest.param(httpx.ConnectError("refused"), id="connect-error"),
            pytest.param(httpx.ConnectTimeout("timed out"), id="connect-timeout"),
            pytest.param(httpx.PoolTimeout("no connection"), id="pool-timeout"),
        ],
    )
    async def test_never_sent_failures_are_resent(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        clock: FakeClock,
        failure: httpx.HTTPError,
    ) -> None:
        """A submit that provably never left is sent again after a backoff."""
        route = router.post(SUBMIT).mock(
            side_effect=[failure, httpx.Response(200, json=OK_SUBMIT)]
        )
        async with make_session() as session, clock.autojump():
            raw = await submit(session)
        assert raw.status_code == 200
        assert route.call_count == 2
        assert 0.25 <= clock.now() <= 0.5

    async def test_connect_errors_give_up_after_the_bound(
        self, router: respx.Router, make_session: SessionFactory, clock: FakeClock
    ) -> None:
        """Endless connect failures end in TransportError, not SubmissionUnknown."""
        route = router.post(SUBMIT).mock(side_effect=httpx.ConnectError("refused"))
        async with make_session(max_retries=2) as session, clock.autojump():
            with pytest.raises(TransportError) as info:
                await submit(session)
        assert not isinstance(info.value, SubmissionUnknownError)
        assert isinstance(info.value.__cause__, httpx.ConnectError)
        assert route.call_count == 3

    async def test_503_means_not_taken_and_is_retried_after_retry_after(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        clock: FakeClock,
    ) -> None:
        """A 503 means "not taken": the submit waits Retry-After and retries."""
        route = router.post(SUBMIT).mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": "7"}),
                httpx.Response(200, json=OK_SUBMIT),
            ]
        )
        async with make_session() as session, clock.autojump():
            raw = await submit(session)
        assert raw.status_code == 200
        assert route.call_count == 2
        assert clock.now() == 7.0

    @pytest.mark.parametrize(
        "answer",
        [
            pytest.param(
                httpx.Response(429, json=error_body(429), headers={"Retry-After": "2"}),
                id="http-429",
            ),
            pytest.param(
                httpx.Response(200, json=error_body(429, "too many requests")),
                id="inside-http-200",
            ),
        ],
    )
    async def test_a_refused_submit_goes_up_once_to_wait_for_its_limit(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        clock: FakeClock,
        answer: httpx.Response,
    ) -> None:
        """A 429 on a submit is not retried by the session: it is sent once and
        raised, for the scheduler to wait for the model's window or the rate."""
        route = router.post(SUBMIT).mock(return_value=answer)
        async with make_session(max_retries=3) as session, clock.autojump():
            with pytest.raises(RateLimitError):
                await submit(session)
        assert route.call_count == 1
        assert clock.now() == 0.0

    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (400, InvalidRequestError),
            (401, AuthenticationError),
            (402, InsufficientBalanceError),
            (404, NotFoundError),
            # The gateway failed after the submit went through: unknown.
            (502, SubmissionUnknownError),
            (504, SubmissionUnknownError),
        ],
    )
    async def test_other_errors_are_not_retried(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        status: int,
        error: type[Exception],
    ) -> None:
        """Every other error answer is raised after one send."""
        route = router.post(SUBMIT).mock(
            return_value=httpx.Response(status, json=error_body(status))
        )
        async with make_session() as session:
            with pytest.raises(error):
                await submit(session)
        assert route.call_count == 1


class TestIdempotentRetries:
    @pytest.mark.parametrize(
        "first",
        [
            pytest.param(httpx.Response(429), id="429"),
            pytest.param(httpx.Response(500), id="500"),
            pytest.param(httpx.Response(502, text="<html>bad</html>"), id="502"),
            pytest.param(httpx.Response(503), id="503"),
            pytest.param(httpx.Response(504), id="504"),
            pytest.param(httpx.ReadTimeout("timed out"), id="read-timeout"),
            pytest.param(httpx.ReadError("reset"), id="read-error"),
            pytest.param(httpx.ConnectError("refused"), id="connect-error"),
            pytest.param(httpx.RemoteProtocolError("eof"), id="remote-protocol"),
            pytest.param(httpx.PoolTimeout("busy"), id="pool-timeout"),
        ],
    )
    async def test_get_is_retried_then_succeeds(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        clock: FakeClock,
        first: httpx.Response | Exception,
    ) -> None:
        """A GET retries 429, 5xx and network failures and returns the success."""
        route = router.get(POLL).mock(
            side_effect=[first, httpx.Response(200, json=OK_POLL)]
        )
        async with make_session() as session, clock.autojump():
            raw = await session.request(
                "GET", POLL, retry=RetryMode.IDEMPOTENT, prediction_id="p1"
            )
        assert raw.status_code == 200
        assert raw.body == httpx.Response(200, json=OK_POLL).content
        assert raw.decoded.value == OK_POLL
        # Classified once, here: the parsers need not classify it again.
        assert raw.error_checked
        assert route.call_count == 2

    async def test_get_gives_up_after_the_bound(
        self, router: respx.Router, make_session: SessionFactory, clock: FakeClock
    ) -> None:
        """After max_retries the last error is raised, with bounded total waiting."""
        route = router.get(POLL).mock(
            return_value=httpx.Response(503, json=error_body(503, "busy"))
        )
        async with make_session() as session, clock.autojump():
            with pytest.raises(ServerError) as info:
                await session.request(
                    "GET", POLL, retry=RetryMode.IDEMPOTENT, prediction_id="p1"
                )
        assert route.call_count == 5
        assert info.value.prediction_id == "p1"
        # 0.5 + 1 + 2 + 4 nominal, each jittered down by at most half.
        assert 3.75 <= clock.now() <= 7.5

    async def test_get_read_timeouts_give_up_as_transport_error(
        self, router: respx.Router, make_session: SessionFactory, clock: FakeClock
    ) -> None:
        """Endless read timeouts end in a TransportError caused by httpx's error."""
        route = router.get(POLL).mock(side_effect=httpx.ReadTimeout("timed out"))
        async with make_session(max_retries=1) as session, clock.autojump():
            with pytest.raises(TransportError) as info:
                await session.request("GET", POLL, retry=RetryMode.IDEMPOTENT)
        assert route.call_count == 2
        assert isinstance(info.value.__cause__, httpx.ReadTimeout)
        assert info.value.method == "GET"
        assert info.value.url == BASE + POLL

    async def test_get_honours_retry_after(
        self, router: respx.Router, make_session: SessionFactory, clock: FakeClock
    ) -> None:
        """A Retry-After on a GET is waited out before the retry."""
        router.get(POLL).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "12"}),
                httpx.Response(200, json=OK_POLL),
            ]
        )
        async with make_session() as session, clock.autojump():
            await session.request("GET", POLL, retry=RetryMode.IDEMPOTENT)
        assert clock.now() == 12.0

    async def test_retry_after_is_capped(
        self, router: respx.Router, make_session: SessionFactory, clock: FakeClock
    ) -> None:
        """An absurd Retry-After is capped at 60 seconds."""
        router.get(POLL).mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": "86400"}),
                httpx.Response(200, json=OK_POLL),
            ]
        )
        async with make_session() as session, clock.autojump():
            await session.request("GET", POLL, retry=RetryMode.IDEMPOTENT)
        assert clock.now() == 60.0

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    async def test_client_errors_are_not_retried(
        self, router: respx.Router, make_session: SessionFactory, status: int
    ) -> None:
        """4xx answers other than 408/429 are final."""
        route = router.get(POLL).mock(
            return_value=httpx.Response(status, json=error_body(status))
        )
        async with make_session() as session:
            with pytest.raises(APIError) as info:
                await session.request("GET", POLL, retry=RetryMode.IDEMPOTENT)
        assert info.value.status_code == status
        assert route.call_count == 1

    async def test_non_transient_httpx_error_is_not_retried(
        self, router: respx.Router, make_session: SessionFactory
    ) -> None:
        """A local protocol error is a bug, not weather: mapped, not retried."""
        route = router.get(POLL).mock(side_effect=httpx.LocalProtocolError("bad"))
        async with make_session() as session:
            with pytest.raises(TransportError):
                await session.request("GET", POLL, retry=RetryMode.IDEMPOTENT)
        assert route.call_count == 1


class TestNoRetry:
    async def test_error_answer_is_raised_at_once(
        self, router: respx.Router, make_session: SessionFactory
    ) -> None:
        """RetryMode.NONE leaves the retry to the caller (the scheduler)."""
        route = router.get(POLL).mock(return_value=httpx.Response(503))
        async with make_session() as session:
            with pytest.raises(ServerError):
                await session.request("GET", POLL, retry=RetryMode.NONE)
        assert route.call_count == 1

    async def test_read_timeout_is_a_plain_transport_error(
        self, router: respx.Router, make_session: SessionFactory
    ) -> None:
        """Without SUBMIT, a lost answer is a TransportError, not SubmissionUnknown."""
        router.get(POLL).mock(side_effect=httpx.ReadTimeout("timed out"))
        async with make_session() as session:
            with pytest.raises(TransportError) as info:
                await session.request(
                    "GET", POLL, retry=RetryMode.NONE, prediction_id="p1"
                )
        assert not isinstance(info.value, SubmissionUnknownError)
        assert info.value.prediction_id == "p1"


class TestAuthorization:
    @staticmethod
    def capture() -> tuple[list[httpx.Request], httpx.MockTransport]:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=OK_POLL)

        return seen, httpx.MockTransport(handler)

    async def test_api_origin_gets_the_key_and_user_agent(
        self, make_session: SessionFactory
    ) -> None:
        """A request to the API origin carries the bearer key and our User-Agent."""
        seen, transport = self.capture()
        async with make_session(transport=transport) as session:
            await session.request("GET", POLL, retry=RetryMode.NONE)
        assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
        assert seen[0].headers["User-Agent"] == USER_AGENT
        assert USER_AGENT.startswith("atlas-async/")

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("https://storage.atlascloud.ai/out.png", id="other-host"),
            pytest.param("http://api.atlascloud.ai/api/v1/models", id="other-scheme"),
            pytest.param("https://api.atlascloud.ai:8443/api/v1", id="other-port"),
            pytest.param("https://api.atlascloud.ai.evil.com/x", id="lookalike"),
        ],
    )
    async def test_other_origins_never_get_the_key(
        self, make_session: SessionFactory, url: str
    ) -> None:
        """Any URL off the API origin is sent without Authorization."""
        seen, transport = self.capture()
        async with make_session(transport=transport) as session:
            await session.request("GET", url, retry=RetryMode.NONE)
        assert "Authorization" not in seen[0].headers
        assert str(seen[0].url) == url

    async def test_absolute_url_on_the_api_origin_gets_the_key(
        self, make_session: SessionFactory
    ) -> None:
        """An absolute URL with the API's origin (any case, explicit port) is ours."""
        seen, transport = self.capture()
        async with make_session(transport=transport) as session:
            await session.request(
                "GET", "https://API.atlascloud.ai:443/api/v1/x", retry=RetryMode.NONE
            )
        assert seen[0].headers["Authorization"] == f"Bearer {KEY}"

    async def test_auth_false_sends_no_key(self, make_session: SessionFactory) -> None:
        """auth=False keeps the key off even the API origin (the model catalog)."""
        seen, transport = self.capture()
        async with make_session(transport=transport) as session:
            await session.request("GET", "/models", retry=RetryMode.NONE, auth=False)
        assert "Authorization" not in seen[0].headers

    async def test_missing_key_fails_before_sending(
        self, make_session: SessionFactory
    ) -> None:
        """Without a key, an authenticated call raises ConfigurationError saying how."""
        seen, transport = self.capture()
        async with make_session(key=None, transport=transport) as session:
            with pytest.raises(ConfigurationError, match="ATLASCLOUD_API_KEY"):
                await session.request("GET", POLL, retry=RetryMode.NONE)
            await session.request("GET", "/models", retry=RetryMode.NONE, auth=False)
        assert [request.url.path for request in seen] == ["/api/v1/models"]

    async def test_redirects_are_not_followed(
        self, router: respx.Router, make_session: SessionFactory
    ) -> None:
        """A redirect is an error: the key never follows Location to another host."""
        route = router.get(POLL).mock(
            return_value=httpx.Response(
                302, headers={"Location": "https://evil.example/steal"}
            )
        )
        elsewhere = respx.Router(assert_all_called=False)
        target = elsewhere.get("https://evil.example/steal")
        async with make_session() as session:
            with pytest.raises(UnexpectedResponseError, match="redirect") as info:
                await session.request("GET", POLL, retry=RetryMode.IDEMPOTENT)
        assert info.value.status_code == 302
        assert route.call_count == 1
        assert target.call_count == 0

    async def test_injected_client_is_neither_changed_nor_closed(
        self, make_session: SessionFactory
    ) -> None:
        """An injected http_client keeps its headers, redirect setting and life."""
        seen, transport = self.capture()
        client = httpx.AsyncClient(
            transport=transport, headers={"X-Mine": "1"}, follow_redirects=True
        )
        async with client:
            async with make_session(http_client=client) as session:
                assert not session.owns_client
                await session.request("GET", POLL, retry=RetryMode.NONE)
            assert not client.is_closed
            assert dict(client.headers).get("authorization") is None
            assert client.follow_redirects is True
        assert seen[0].headers["X-Mine"] == "1"
        assert seen[0].headers["Authorization"] == f"Bearer {KEY}"

    async def test_injected_client_does_not_follow_api_redirects(
        self, router: respx.Router, make_session: SessionFactory
    ) -> None:
        """Even a client built with follow_redirects=True does not follow ours."""
        router.get(POLL).mock(
            return_value=httpx.Response(307, headers={"Location": BASE + "/other"})
        )
        other = router.get("/other").mock(return_value=httpx.Response(200))
        client = httpx.AsyncClient(
            transport=httpx.MockTransport(router.handler), follow_redirects=True
        )
        async with client, make_session(http_client=client) as session:
            with pytest.raises(UnexpectedResponseError):
                await session.request("GET", POLL, retry=RetryMode.NONE)
        assert other.call_count == 0

    async def test_owned_client_is_closed(self, make_session: SessionFactory) -> None:
        """The client the session built is closed with the session."""
        session = make_session()
        assert session.owns_client
        async with session:
            pass
        with pytest.raises(RuntimeError):
            await session.request("GET", POLL, retry=RetryMode.NONE)


class TestGate:
    async def test_every_attempt_passes_the_gate_and_is_recorded(
        self, router: respx.Router, make_session: SessionFactory, clock: FakeClock
    ) -> None:
        """Each attempt, retries included, takes a slot and reports its outcome."""
        router.get(POLL).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "3"}),
                httpx.ConnectError("refused"),
                httpx.Response(200, json=OK_POLL),
            ]
        )
        gate = RecordingGate()
        async with make_session(gate=gate) as session, clock.autojump():
            await session.request(
                "GET", POLL, retry=RetryMode.IDEMPOTENT, purpose=RequestKind.POLL
            )
        assert gate.slots == 3
        assert gate.records == [(429, 3.0), (None, None), (200, None)]
        assert gate.kinds == [RequestKind.POLL] * 3
        assert (session.attempts, session.retries) == (3, 2)

    async def test_a_session_without_a_gate_admits_everything(
        self, router: respx.Router, make_session: SessionFactory
    ) -> None:
        """A session built without a gate (used on its own) gets the null gate."""
        router.get(POLL).mock(return_value=httpx.Response(200, json=OK_POLL))
        session = make_session()
        assert isinstance(session.gate, NullGate)
        async with session:
            answer = await session.request("GET", POLL, retry=RetryMode.NONE)
        assert answer.status_code == 200

    async def test_null_gate_admits_and_ignores(self) -> None:
        """The default gate is a no-op."""
        gate = NullGate()
        async with gate.slot():
            gate.record(200, None)
        assert repr(gate) == "NullGate()"


class TestRequestDetails:
    async def test_explicit_timeout_travels_with_each_request(
        self, make_session: SessionFactory
    ) -> None:
        """timeout= becomes the request's own timeouts, with no pool limit."""
        seen, transport = TestAuthorization.capture()
        async with make_session(transport=transport, timeout=5) as session:
            await session.request("GET", POLL, retry=RetryMode.NONE)
        assert seen[0].extensions["timeout"] == {
            "connect": 5,
            "read": 5,
            "write": 5,
            "pool": None,
        }

    async def test_owned_client_defaults(self, make_session: SessionFactory) -> None:
        """A client the session builds: connect 10 s, read/write 60 s, no pool limit."""
        seen, transport = TestAuthorization.capture()
        async with make_session(transport=transport) as session:
            await session.request("GET", POLL, retry=RetryMode.NONE)
        assert seen[0].extensions["timeout"] == {
            "connect": 10,
            "read": 60,
            "write": 60,
            "pool": None,
        }

    async def test_injected_client_keeps_its_own_timeouts(
        self, make_session: SessionFactory
    ) -> None:
        """Without timeout=, an injected client's timeouts are left alone."""
        seen, transport = TestAuthorization.capture()
        client = httpx.AsyncClient(transport=transport, timeout=3)
        async with client, make_session(http_client=client) as session:
            await session.request("GET", POLL, retry=RetryMode.NONE)
        assert seen[0].extensions["timeout"]["read"] == 3

    async def test_json_and_multipart_bodies_are_sent(
        self, make_session: SessionFactory
    ) -> None:
        """json= and files= reach the wire as JSON and multipart field `file`."""
        seen, transport = TestAuthorization.capture()
        async with make_session(transport=transport) as session:
            await session.request("POST", SUBMIT, json={"a": 1}, retry=RetryMode.NONE)
            await session.request(
                "POST",
                "/model/uploadMedia",
                files={"file": ("a.png", b"PNGDATA", "image/png")},
                retry=RetryMode.NONE,
            )
        assert seen[0].content == b'{"a":1}'
        assert b'name="file"; filename="a.png"' in seen[1].content

    async def test_relative_path_must_start_with_slash(
        self, make_session: SessionFactory
    ) -> None:
        """A path without a leading slash is a programming error."""
        async with make_session() as session:
            with pytest.raises(ValueError, match="start with '/'"):
                await session.request("GET", "models", retry=RetryMode.NONE)

    async def test_request_before_open_is_refused(
        self, make_session: SessionFactory
    ) -> None:
        """The owned client exists only between open() and aclose()."""
        with pytest.raises(RuntimeError, match="open"):
            await make_session().request("GET", POLL, retry=RetryMode.NONE)

    async def test_http_client_and_transport_together_are_refused(self) -> None:
        """Both injection points at once is ambiguous."""
        config = resolve_config(KEY, env={})
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        async with httpx.AsyncClient() as client:
            with pytest.raises(ConfigurationError, match="not both"):
                ApiSession(config, http_client=client, transport=transport)

    async def test_repr_names_the_base_url_and_ownership(
        self, make_session: SessionFactory
    ) -> None:
        """The session's repr shows the base URL and who owns the client."""
        assert repr(make_session()) == f"ApiSession(base_url='{BASE}', client=owned)"


class TestLogging:
    async def test_debug_record_per_attempt_with_prediction_id(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Each attempt logs method, path and status; the prediction id rides along."""
        router.get(POLL).mock(return_value=httpx.Response(200, json=OK_POLL))
        caplog.set_level(logging.DEBUG, logger="atlas_async")
        async with make_session() as session:
            await session.request("GET", POLL, retry=RetryMode.NONE, prediction_id="p1")
        [record] = [r for r in caplog.records if r.name == "atlas_async"]
        assert record.levelno == logging.DEBUG
        message = record.getMessage()
        assert "GET /api/v1/model/prediction/p1" in message
        assert "200" in message
        assert "prediction p1" in message
        assert record.__dict__["prediction_id"] == "p1"

    async def test_retries_log_a_warning_with_prediction_id(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        clock: FakeClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Every retry is a WARNING naming the failure and the prediction."""
        router.get(POLL).mock(
            side_effect=[httpx.Response(503), httpx.Response(200, json=OK_POLL)]
        )
        caplog.set_level(logging.DEBUG, logger="atlas_async")
        async with make_session() as session, clock.autojump():
            await session.request(
                "GET", POLL, retry=RetryMode.IDEMPOTENT, prediction_id="p1"
            )
        [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert "503" in warning.getMessage()
        assert "retry 1 of 4" in warning.getMessage()
        assert "prediction p1" in warning.getMessage()
        assert warning.__dict__["prediction_id"] == "p1"

    async def test_transport_failures_are_logged_by_type(
        self,
        router: respx.Router,
        make_session: SessionFactory,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A failed attempt logs the httpx error's type, not its details."""
        router.get(POLL).mock(side_effect=httpx.ConnectError("refused"))
        caplog.set_level(logging.DEBUG, logger="atlas_async")
        async with make_session() as session:
            with pytest.raises(TransportError):
                await session.request("GET", POLL, retry=RetryMode.NONE)
        assert "ConnectError" in caplog.records[0].getMessage()

    async def test_query_strings_are_not_logged(
        self, make_session: SessionFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A signed URL's query (a token) stays out of the logs."""
        seen, transport = TestAuthorization.capture()
        caplog.set_level(logging.DEBUG, logger="atlas_async")
        async with make_session(transport=transport) as session:
            await session.request(
                "GET", "https://cdn.example/o.png?token=abc", retry=RetryMode.NONE
            )
        assert seen[0].url.query == b"token=abc"
        assert "token=abc" not in caplog.text


class TestUserAgent:
    async def test_version_falls_back_when_not_installed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Run from a bare source tree, the User-Agent still gets a version."""
        from importlib.metadata import PackageNotFoundError

        from atlas_async._net import session as _http

        def missing(name: str) -> str:
            raise PackageNotFoundError(name)

        monkeypatch.setattr(_http, "version", missing)
        assert _http.package_version() == "0+unknown"
