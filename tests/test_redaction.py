"""
The key never leaks, even from a server that echoes it back.

A loopback server (stdlib ``http.server`` in a thread) answers every request
with the caller's key copied everywhere a real gateway or an attacker could put
it: the ``X-Request-ID`` header and other headers, the body's ``request_id``,
``msg`` and ``data.error``, a non-JSON 200 body. Each test then looks for the
key in everything the SDK hands out: the exception (str, repr, every attribute,
the traceback, its causes, a pickled copy), every log record at DEBUG with the
HTTP libraries' loggers enabled, and the command line's stdout and stderr.
"""

from __future__ import annotations

import gc
import json
import logging
import pickle
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx
import pytest

from atlas_async import (
    APIError,
    AtlasClient,
    AtlasError,
    AuthenticationError,
    PredictionFailedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    cli,
)
from atlas_async._core.safety import (
    REDACTED,
    live_secrets,
    redact_text,
    redact_value,
    register_secret,
    unregister_secrets,
)
from atlas_async._core.validate import check_prediction_id
from atlas_async._net.redaction import (
    KNOWN_LOGGERS,
    RedactingFilter,
    log_redaction_installed,
)
from atlas_async.testing import FakeClock

KEY = "sk-ECHOED-secret-key-4711"
OTHER = "sk-OTHER-client-key-0815"
TRANSPORTS: list[Literal["httpx", "aiohttp"]] = ["httpx", "aiohttp"]
HTTP_LOGGERS = ("httpx", "httpcore", "aiohttp", "hpack", "h2", "atlas_async")


# -- the echoing server ------------------------------------------------------------


def _answer(route: str, key: str) -> tuple[int, str, bytes]:
    """Status, content type and body for ``route``, with ``key`` echoed."""

    def envelope(code: int, msg: str, data: object = None) -> bytes:
        body = {"code": code, "msg": msg, "request_id": key, "data": data}
        return json.dumps(body).encode()

    if route == "failed":
        data = {
            "id": "failed",
            "status": "failed",
            "error": f"upstream rejected key {key}",
            "outputs": [],
            "echo": {"authorization": f"Bearer {key}", "nested": [key]},
        }
        return 200, "application/json", envelope(200, "", data)
    if route == "unauth":
        return 401, "application/json", envelope(401, f"invalid key {key}")
    if route == "html":
        return 200, "text/html", f"<html>your key: {key}</html>".encode()
    if route == "busy":
        return 503, "application/json", envelope(503, f"overloaded for {key}")
    if route == "limited":
        return 429, "application/json", envelope(429, f"slow down {key}")
    if route == "generateImage":
        return 500, "application/json", envelope(500, f"failed to bill {key}")
    return 404, "application/json", envelope(404, f"no such thing for {key}")


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._reply()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply()

    def _reply(self) -> None:
        authorization = self.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ")
        status, content_type, body = _answer(self.path.rsplit("/", 1)[-1], key)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-ID", key)
        self.send_header("X-Echo-Authorization", authorization)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the server's own access log is not the SDK's output


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    """The base URL of a loopback server that echoes the caller's key."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at DEBUG: ours, httpx, httpcore, aiohttp, hpack, asyncio."""
    caplog.set_level(logging.DEBUG)
    for name in HTTP_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def everything_about(error: BaseException) -> str:
    """Every text an error offers: str, repr, attributes, traceback, causes."""
    texts = [
        str(error),
        repr(error),
        repr(vars(error)),
        repr(error.args),
        "".join(traceback.format_exception(error)),
    ]
    prediction = getattr(error, "prediction", None)
    if prediction is not None:
        texts += [repr(prediction), repr(dict(prediction.raw)), str(prediction.error)]
    cause = error.__cause__ or error.__context__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, AtlasError):
        texts.append(repr(vars(pickle.loads(pickle.dumps(error)))))
    return "\n".join(texts)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every logged text as handlers would see it, tracebacks included."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return caplog.text + "\n".join(formatter.format(r) for r in caplog.records)


# -- errors built from what the server said ------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
class TestEchoingServer:
    async def test_key_in_failed_prediction_error(
        self,
        echo_server: str,
        all_logs: pytest.LogCaptureFixture,
        transport: Literal["httpx", "aiohttp"],
    ) -> None:
        """data.error, request_id and headers echo the key: PredictionFailedError
        (its error, prediction, raw) and every log line carry none of it."""
        async with AtlasClient(KEY, base_url=echo_server, transport=transport) as c:
            with pytest.raises(PredictionFailedError) as info:
                await c.attach("failed")
        error = info.value
        assert error.error == f"upstream rejected key {REDACTED}"
        assert KEY not in everything_about(error)
        assert all_logs.records, "the requests were logged at DEBUG"
        assert KEY not in logged(all_logs)

    async def test_key_in_request_id_and_message_of_an_error_answer(
        self,
        echo_server: str,
        all_logs: pytest.LogCaptureFixture,
        transport: Literal["httpx", "aiohttp"],
    ) -> None:
        """A 401 whose msg and request_id (body and header) echo the key."""
        async with AtlasClient(KEY, base_url=echo_server, transport=transport) as c:
            with pytest.raises(AuthenticationError) as info:
                await c.get_prediction("unauth")
        assert info.value.request_id == REDACTED
        assert KEY not in everything_about(info.value)
        assert KEY not in logged(all_logs)

    async def test_key_in_a_non_json_200_body(
        self,
        echo_server: str,
        all_logs: pytest.LogCaptureFixture,
        transport: Literal["httpx", "aiohttp"],
    ) -> None:
        """An HTML page that quotes the key becomes an error without it."""
        async with AtlasClient(KEY, base_url=echo_server, transport=transport) as c:
            with pytest.raises(UnexpectedResponseError) as info:
                await c.get_prediction("html")
        assert KEY not in everything_about(info.value)
        assert KEY not in logged(all_logs)

    async def test_key_in_a_submit_refusal(
        self,
        echo_server: str,
        all_logs: pytest.LogCaptureFixture,
        transport: Literal["httpx", "aiohttp"],
    ) -> None:
        """A 500 to a submit that echoes the key: the error and logs hold none."""
        async with AtlasClient(KEY, base_url=echo_server, transport=transport) as c:
            with pytest.raises(AtlasError) as info:
                await c.submit_image("m/x", prompt="a fox")
        assert KEY not in everything_about(info.value)
        assert KEY not in logged(all_logs)


def _echo_in_memory(request: httpx.Request) -> httpx.Response:
    """`_answer` without a socket, for tests on a fake clock."""
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    status, content_type, body = _answer(request.url.path.rsplit("/", 1)[-1], key)
    headers = {"Content-Type": content_type, "X-Request-ID": key}
    return httpx.Response(status, content=body, headers=headers)


@pytest.mark.asyncio
async def test_retried_poll_logs_at_info_without_the_key(
    all_logs: pytest.LogCaptureFixture,
) -> None:
    """The scheduler's INFO line for a failed poll quotes the error: no key."""
    clock = FakeClock()
    transport = httpx.MockTransport(_echo_in_memory)
    async with (
        AtlasClient(KEY, transport=transport, clock=clock) as client,
        clock.autojump(),
    ):
        # Polled until its failures in a row are spent, each one logged.
        with pytest.raises(ServerError) as info:
            await client.attach("busy", timeout=3600)
    retried = [
        r
        for r in all_logs.records
        if r.levelno == logging.INFO and "retrying" in r.getMessage()
    ]
    assert retried, "each failed poll was logged at INFO"
    assert all(REDACTED in r.getMessage() for r in retried)
    assert KEY not in everything_about(info.value)
    assert KEY not in logged(all_logs)


@pytest.mark.asyncio
async def test_httpcore_debug_headers_are_redacted(
    echo_server: str, all_logs: pytest.LogCaptureFixture
) -> None:
    """httpcore logs response headers at DEBUG as bytes: the echoed key there
    is redacted too, and the records are still logged."""
    async with AtlasClient(KEY, base_url=echo_server, transport="httpx") as client:
        with pytest.raises(AtlasError):
            await client.get_prediction("unauth")
    headers = [
        r
        for r in all_logs.records
        if r.name.startswith("httpcore") and "X-Request-ID" in r.getMessage()
    ]
    assert headers, "httpcore logged the response headers"
    assert all(REDACTED in r.getMessage() for r in headers)
    assert KEY not in logged(all_logs)


# -- several clients, and the filter's lifetime ---------------------------------------


@pytest.mark.asyncio
async def test_two_clients_with_different_keys(
    echo_server: str, all_logs: pytest.LogCaptureFixture
) -> None:
    """Each client's key is redacted from every log; closing one keeps the
    other's live; closing the last takes the filter off again."""
    stray = logging.getLogger("httpx")
    first = AtlasClient(KEY, base_url=echo_server, transport="httpx")
    second = AtlasClient(OTHER, base_url=echo_server, transport="httpx")
    async with second:
        async with first:
            stray.warning("keys %s and %s", KEY, OTHER)
            with pytest.raises(AuthenticationError) as info:
                await second.get_prediction("unauth")
            assert OTHER not in everything_about(info.value)
        stray.warning("still open: %s", OTHER)
        assert KEY not in live_secrets()
        assert log_redaction_installed("httpx")
    assert not log_redaction_installed("httpx")
    assert not log_redaction_installed("atlas_async")
    text = logged(all_logs)
    assert KEY not in text
    assert OTHER not in text
    assert f"keys {REDACTED} and {REDACTED}" in text
    assert f"still open: {REDACTED}" in text


@pytest.mark.asyncio
async def test_filter_covers_the_http_loggers_only_while_open(
    echo_server: str,
) -> None:
    """Every known logger carries the filter while a keyed client is open."""
    async with AtlasClient(KEY, base_url=echo_server, transport="httpx"):
        for name in KNOWN_LOGGERS:
            assert log_redaction_installed(name), name
    for name in KNOWN_LOGGERS:
        assert not log_redaction_installed(name), name


@pytest.mark.asyncio
async def test_a_client_without_a_key_installs_nothing(echo_server: str) -> None:
    """No key, nothing to hide: logging is left exactly as configured."""
    async with AtlasClient(base_url=echo_server, transport="httpx"):
        assert not log_redaction_installed("httpx")


def test_filter_redacts_traceback_and_stack_text() -> None:
    """A record's exception text and stack text lose the key as well."""
    owner = _Owner()
    register_secret(owner, KEY)
    try:
        try:
            raise RuntimeError(f"library said {KEY}")
        except RuntimeError as exc:
            record = logging.LogRecord(
                "httpx", logging.ERROR, __file__, 1, "boom %s", (KEY,), None
            )
            record.exc_info = (type(exc), exc, exc.__traceback__)
            record.stack_info = f"stack {KEY}"
        assert RedactingFilter().filter(record)
        text = logging.Formatter().format(record)
    finally:
        unregister_secrets(owner)
    assert KEY not in text
    assert f"boom {REDACTED}" in text
    assert "RuntimeError: library said [redacted]" in text


# -- the registry ------------------------------------------------------------------


class _Owner:
    """Something a secret belongs to."""


def test_registry_holds_owners_weakly() -> None:
    """An owner dropped without unregistering takes its secret out with it."""
    owner = _Owner()
    register_secret(owner, KEY)
    assert redact_text(f"x {KEY} y") == f"x {REDACTED} y"
    del owner
    gc.collect()
    assert KEY not in live_secrets()
    assert redact_text(f"x {KEY} y") == f"x {KEY} y"


def test_quoted_forms_of_the_key_are_redacted() -> None:
    """JSON-escaped, bytes-repr and percent-encoded copies go too."""
    key = 'sk-with"quote\\and/slash'
    owner = _Owner()
    register_secret(owner, key)
    try:
        texts = [
            json.dumps({"k": key}),
            repr(key.encode()),
            "https://x/?key=sk-with%22quote%5Cand%2Fslash",
        ]
        assert all("sk-with" not in redact_text(text) for text in texts)
    finally:
        unregister_secrets(owner)


def test_short_secrets_are_not_registered() -> None:
    """A tiny secret would redact ordinary words: it is not made live."""
    owner = _Owner()
    register_secret(owner, "key")
    assert "key" not in live_secrets()
    assert redact_text("a key", "key") == f"a {REDACTED}"  # explicit: always


def test_errors_scrub_every_attribute_wherever_they_are_built() -> None:
    """Any error built while a key is live holds it nowhere, set late or not."""
    owner = _Owner()
    register_secret(owner, KEY)
    try:
        error = RateLimitError(
            f"slow down {KEY}",
            status_code=429,
            request_id=KEY,
            body={"msg": [KEY], KEY: 1, "raw": KEY.encode()},
        )
        error.refused_by = KEY
        texts = everything_about(error)
    finally:
        unregister_secrets(owner)
    assert KEY not in texts
    assert error.body == {"msg": [REDACTED], REDACTED: 1, "raw": REDACTED.encode()}


def test_redact_value_keeps_clean_values_identical() -> None:
    """Nothing to remove: the very same object comes back."""
    body = {"a": [1, "two", {"three": (4.0, None)}]}
    assert redact_value(body) is body
    assert redact_value(body, "absent-secret") is body


def test_redact_value_survives_pathological_nesting() -> None:
    """A value nested far deeper than any answer is cut short, not recursed."""
    value: object = KEY
    for _ in range(50_000):
        value = [value]
    redacted = redact_value(value, KEY)
    assert REDACTED in repr(_first_levels(redacted, 200))


def _first_levels(value: object, levels: int) -> object:
    for _ in range(levels):
        if not isinstance(value, list):
            break
        value = value[0]
    return value


def test_an_api_error_built_without_a_live_key_still_drops_bearer_values() -> None:
    """Credentials quoted in a message go even when no key is registered."""
    error = APIError("rejected Authorization: Bearer abc.def", request_id="r1")
    assert "abc.def" not in str(error)


def test_invalid_argument_errors_do_not_repeat_a_live_key() -> None:
    """A key pasted where an id belongs is not echoed by the error either."""
    owner = _Owner()
    register_secret(owner, KEY)
    try:
        with pytest.raises(AtlasError) as info:
            check_prediction_id(f"{KEY}/x")
    finally:
        unregister_secrets(owner)
    assert KEY not in everything_about(info.value)


# -- the command line ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "failed"],
        ["get", "failed", "--json"],
        ["get", "unauth"],
        ["get", "html", "--json"],
        ["wait", "failed"],
        ["wait", "failed", "--json"],
        ["generate", "a fox", "--out", "{tmp}"],
    ],
    ids=lambda argv: "-".join(a for a in argv if a != "{tmp}"),
)
def test_cli_output_never_shows_the_key(
    argv: list[str],
    echo_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    all_logs: pytest.LogCaptureFixture,
    tmp_path: Any,
) -> None:
    """stdout and stderr of every command lack the key the server echoed."""
    monkeypatch.setenv("ATLASCLOUD_BASE_URL", echo_server)
    monkeypatch.setenv("ATLASCLOUD_API_KEY", KEY)
    code = cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    out, err = capsys.readouterr()
    assert out or err
    assert KEY not in out
    assert KEY not in err
    assert KEY not in logged(all_logs)
    assert code in (0, 1)


def test_cli_key_given_as_an_option_is_redacted_too(
    echo_server: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--api-key makes the key secret as well, not only the environment."""
    code = cli.main(["get", "failed", "--api-key", KEY, "--base-url", echo_server])
    out, err = capsys.readouterr()
    assert code == 0
    assert REDACTED in out
    assert KEY not in out + err
