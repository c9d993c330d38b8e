"""
`ApiSession`: one HTTP request to the Atlas API, with auth, error mapping and
the retry rules. Everything above this module sees `RawResponse` or an
`AtlasError`, never an httpx exception.

Theory of operation:

* **One boundary.** httpx exceptions are caught here and nowhere else, and
  re-raised once as `TransportError` (``from exc``). Error answers are
  classified by ``_wire.error_from_response``; this module only decides whether
  to try again.
* **The key goes to one origin.** ``Authorization`` is added per request, only
  when the request URL's origin equals the API origin from `ClientConfig`, and
  redirects are never followed, so no header ever crosses to another host. An
  injected ``http_client`` is never mutated: headers travel on each request.
* **Never twice, for submits.** `RetryMode.SUBMIT` retries only what provably
  never reached the server (a connect failure, or no pool slot) and what the
  server explicitly refused (429, 503). A request that was sent and got no
  answer raises `SubmissionUnknownError` and is never re-sent: the prediction
  may exist and bill. `RetryMode.IDEMPOTENT` (GETs, uploads) retries 408, 429,
  5xx and network failures. `RetryMode.NONE` is for callers that schedule their
  own retries (the poll scheduler).
* **Every attempt passes the gate.** ``async with gate.slot()`` bounds the
  requests in flight and spends the shared rate budget; ``gate.record()`` then
  reports the outcome (status, ``Retry-After``), so a 429 slows the whole client.
  Waits between retries happen outside the slot, on the injected `Clock`.
* **Logs carry no secrets.** DEBUG per attempt (method, path, status, elapsed),
  WARNING per retry; never headers, never query strings, never the key. Records
  about a prediction carry its id in the text and in ``extra``.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, Protocol, TypeVar

import attrs
import httpx

from . import _wire
from ._clock import AnyioClock, Clock
from ._config import DEFAULT_TIMEOUTS, ClientConfig, Origin, Timeouts
from ._errors import (
    APIError,
    AtlasError,
    ConfigurationError,
    SubmissionUnknownError,
    TransportError,
    UnexpectedResponseError,
)
from ._models import Kind

__all__ = [
    "USER_AGENT",
    "ApiSession",
    "NullGate",
    "RawResponse",
    "RequestGate",
    "RetryMode",
    "logger",
]

logger = logging.getLogger("atlas_async")

_E = TypeVar("_E", bound="BaseException | None")


def _package_version() -> str:
    try:
        return version("atlas-async")
    except PackageNotFoundError:  # running from a source tree, not installed
        return "0+unknown"


USER_AGENT = f"atlas-async/{_package_version()}"

# Failures that prove the request never left: no connection was made, or no
# pooled connection was free to carry it. Only these may re-send a submit.
_NEVER_SENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Worth another try for an idempotent request: the network or the peer failed.
_TRANSIENT: tuple[type[httpx.HTTPError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
_IDEMPOTENT_RETRY_STATUSES = frozenset({408, 429, *range(500, 600)})
# The server refused a submit without acting on it (docs: 429 rate limit, 503
# temporarily unavailable). A 500 may have half-created it: never retried.
_SUBMIT_RETRY_STATUSES = frozenset({429, 503})


class RetryMode(enum.Enum):
    """Which failures `ApiSession.request` may retry on its own."""

    NONE = "none"
    """No retries: the caller (the poll scheduler) decides when to try again."""
    IDEMPOTENT = "idempotent"
    """Retry 408, 429, 5xx and network failures with jittered backoff."""
    SUBMIT = "submit"
    """Retry only never-sent failures and 429/503 refusals; never re-send."""


class RequestGate(Protocol):
    """
    Admission control every HTTP attempt passes: the scheduler's concurrency
    limit and shared rate budget.

    Example::

        async with gate.slot():
            response = await send()
        gate.record(response.status_code, retry_after=None)
    """

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Wait for a concurrency slot and budget; hold it for one attempt."""
        ...

    def record(self, status_code: int | None, retry_after: float | None) -> None:
        """
        Report one attempt's outcome.

        Args:
            status_code: the HTTP status, or None when no answer came.
            retry_after: the server's ``Retry-After`` in seconds, when given.
        """
        ...


class NullGate:
    """A gate that admits everything at once and ignores outcomes."""

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        yield

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Admit at once."""
        return self._slot()

    def record(self, status_code: int | None, retry_after: float | None) -> None:
        """Ignore the outcome."""

    def __repr__(self) -> str:
        return "NullGate()"


@attrs.frozen(kw_only=True)
class RawResponse:
    """
    A successful (2xx) answer, fully read: what the ``_wire`` parsers take.

    Attributes:
        status_code: the HTTP status.
        headers: the response headers (case-insensitive lookups).
        content: the body bytes.
        elapsed: seconds the last attempt took, on the session's clock.
    """

    status_code: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    content: bytes = attrs.field(repr=False)
    elapsed: float = 0.0


class _RetryableError(Exception):
    """Internal: this attempt failed in a way the retry mode allows to retry."""

    def __init__(self, error: AtlasError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class ApiSession:
    """
    Sends requests to the Atlas API through one ``httpx.AsyncClient``.

    The session builds and owns a client unless one is injected: with
    ``http_client=`` it uses that client as is and never closes it; with
    ``transport=`` it builds a client around the transport and owns both.

    Example::

        async with ApiSession(config) as session:
            raw = await session.request("GET", "/models", retry=RetryMode.IDEMPOTENT,
                                        auth=False)

    Args:
        config: the resolved client settings.
        http_client: an ``httpx.AsyncClient`` to use and leave open.
        transport: an httpx transport for a client the session builds.
        clock: where retries wait (default: the real clock).
        rng: jitter for retry delays (default: a fresh ``random.Random()``).
        gate: admission for every attempt (default: `NullGate`); assignable.
    """

    gate: RequestGate

    def __init__(
        self,
        config: ClientConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        gate: RequestGate | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ConfigurationError(
                "pass http_client or transport, not both (a transport goes inside"
                " the client)"
            )
        self._config = config
        self._origin: Origin = config.origin
        self._injected = http_client
        self._transport = transport
        self._client: httpx.AsyncClient | None = http_client
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._rng = rng if rng is not None else random.Random()
        self.gate = gate if gate is not None else NullGate()
        # Per-request timeouts only when the user chose them; otherwise an injected
        # client keeps its own, and the client we build carries the defaults.
        self._timeout: httpx.Timeout | Any = (
            _to_httpx_timeout(config.timeout)
            if config.timeout is not None
            else httpx.USE_CLIENT_DEFAULT
        )

    @property
    def owns_client(self) -> bool:
        """True when the session built the httpx client and will close it."""
        return self._injected is None

    async def open(self) -> None:
        """Build and open the owned httpx client (no-op for an injected one)."""
        if self._injected is not None:
            return
        limit = self._config.max_concurrent_requests
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=_to_httpx_timeout(self._config.timeout or DEFAULT_TIMEOUTS),
            # Keep-alive as large as the pool: a smaller keep-alive cap makes
            # httpx close and reopen connections under load (perf-limits.md 2).
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            follow_redirects=False,
        )
        await self._client.__aenter__()

    async def aclose(self) -> None:
        """Close the owned httpx client; an injected one stays open."""
        if self._injected is None and self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> ApiSession:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def url_for(self, path_or_url: str) -> str:
        """Return the absolute URL for an API path (``/models``) or a full URL."""
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        if not path_or_url.startswith("/"):
            raise ValueError(f"API paths start with '/': {path_or_url!r}")
        return self._config.base_url + path_or_url

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        retry: RetryMode,
        prediction_id: str | None = None,
        auth: bool = True,
        kind: Kind | None = None,
        model: str | None = None,
    ) -> RawResponse:
        """
        Send one request, retrying as ``retry`` allows, and return its 2xx answer.

        Args:
            method: ``"GET"`` or ``"POST"``.
            path_or_url: an API path such as ``/models``, or an absolute URL
                (which gets the key only if it is on the API origin).
            json: a JSON body.
            files: multipart fields, ``{"file": (filename, data, content_type)}``.
            retry: which failures to retry (see `RetryMode`).
            prediction_id: the prediction this is about, for errors and logs.
            auth: send the key (on the API origin only).
            kind: for a submit, recorded on `SubmissionUnknownError`.
            model: for a submit, recorded on `SubmissionUnknownError`.

        Raises:
            ConfigurationError: the key is needed and none was configured.
            APIError: the server answered with an error (subclass per status).
            UnexpectedResponseError: the API answered with a redirect.
            SubmissionUnknownError: a ``SUBMIT`` was sent and no answer came.
            TransportError: no usable answer after the allowed retries.
        """
        if self._client is None:
            raise RuntimeError("ApiSession.open() was not called")
        url = httpx.URL(self.url_for(path_or_url))
        headers = {"User-Agent": USER_AGENT}
        if auth and self._is_api_origin(url):
            headers["Authorization"] = self._authorization()
        call = _Call(
            method, url, headers, json, files, retry, prediction_id, kind, model
        )
        policy = self._config.retry
        retries = 0
        while True:
            try:
                return await self._attempt(self._client, call)
            except _RetryableError as failure:
                if retries >= policy.max_retries:
                    raise failure.error from failure.error.__cause__
                retries += 1
                delay = policy.delay(
                    retries, retry_after=failure.retry_after, rng=self._rng
                )
                logger.warning(
                    "%s failed (%s); retry %d of %d in %.2fs",
                    call.label,
                    _short(failure.error),
                    retries,
                    policy.max_retries,
                    delay,
                    extra=call.extra,
                )
                await self._clock.sleep_until(self._clock.now() + delay)

    async def _attempt(self, client: httpx.AsyncClient, call: _Call) -> RawResponse:
        started = self._clock.now()
        outcome: httpx.Response | httpx.HTTPError
        async with self.gate.slot():
            try:
                request = client.build_request(
                    call.method,
                    call.url,
                    json=call.json,
                    files=call.files,
                    headers=call.headers,
                    timeout=self._timeout,
                )
                outcome = await client.send(request, follow_redirects=False)
            except httpx.HTTPError as exc:
                outcome = exc
        elapsed = self._clock.now() - started

        if isinstance(outcome, httpx.HTTPError):
            self.gate.record(None, None)
            logger.debug(
                "%s -> %s after %.3fs",
                call.label,
                type(outcome).__name__,
                elapsed,
                extra=call.extra,
            )
            failure = _transport_failure(outcome, call)
            _redact(failure, self._config.api_key)
            raise failure from outcome

        logger.debug(
            "%s -> %d in %.3fs",
            call.label,
            outcome.status_code,
            elapsed,
            extra=call.extra,
        )
        error = _redact(_error_for(outcome, call), self._config.api_key)
        if error is None:
            self.gate.record(outcome.status_code, None)
            return RawResponse(
                status_code=outcome.status_code,
                headers=outcome.headers,
                content=outcome.content,
                elapsed=elapsed,
            )
        # Classify by the API's own code: a 429 may arrive inside an HTTP 200.
        status = outcome.status_code
        retry_after = None
        if isinstance(error, APIError):
            status = error.status_code or status
            retry_after = error.retry_after
        self.gate.record(status, retry_after)
        if (
            call.retry is RetryMode.IDEMPOTENT and status in _IDEMPOTENT_RETRY_STATUSES
        ) or (call.retry is RetryMode.SUBMIT and status in _SUBMIT_RETRY_STATUSES):
            raise _RetryableError(error, retry_after)
        raise error

    def _is_api_origin(self, url: httpx.URL) -> bool:
        scheme = url.scheme
        port = (
            url.port
            if url.port is not None
            else {"http": 80, "https": 443}.get(scheme, -1)
        )
        return Origin(scheme, url.host, port) == self._origin

    def _authorization(self) -> str:
        key = self._config.api_key
        if key is None:
            raise ConfigurationError(
                "no API key: pass AtlasClient(api_key=...) or set the"
                " ATLASCLOUD_API_KEY environment variable (list_models works"
                " without one)"
            )
        return f"Bearer {key}"

    def __repr__(self) -> str:
        owner = "owned" if self.owns_client else "injected"
        return f"ApiSession(base_url={self._config.base_url!r}, client={owner})"


def _to_httpx_timeout(timeouts: Timeouts) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeouts.connect,
        read=timeouts.read,
        write=timeouts.write,
        pool=timeouts.pool,
    )


@attrs.frozen
class _Call:
    """One logical request, the same for each of its attempts."""

    method: str
    url: httpx.URL
    headers: dict[str, str] = attrs.field(repr=False)
    json: Any = attrs.field(repr=False)
    files: Mapping[str, tuple[str, bytes, str]] | None = attrs.field(repr=False)
    retry: RetryMode
    prediction_id: str | None
    kind: Kind | None
    model: str | None

    @property
    def label(self) -> str:
        # Path only: a query string may carry a signed token.
        about = f" (prediction {self.prediction_id})" if self.prediction_id else ""
        return f"{self.method} {self.url.path}{about}"

    @property
    def public_url(self) -> str:
        return str(self.url.copy_with(query=None, fragment=None))

    @property
    def extra(self) -> dict[str, str]:
        return {"prediction_id": self.prediction_id} if self.prediction_id else {}


def _error_for(response: httpx.Response, call: _Call) -> AtlasError | None:
    """The error this answer amounts to (errors inside a 2xx too), or None."""
    status = response.status_code
    if 300 <= status < 400:
        # Following would carry the key to wherever Location points; the API
        # itself never redirects, so this is a misconfigured base_url or proxy.
        return UnexpectedResponseError(
            f"{call.method} {call.url.path} answered {status} (a redirect);"
            " atlas_async does not follow redirects from the API, so that the"
            " Authorization header never leaves its origin: check base_url",
            status_code=status,
            prediction_id=call.prediction_id,
        )
    return _wire.error_from_response(
        status,
        response.headers,
        response.content,
        now=time.time(),
        prediction_id=call.prediction_id,
    )


def _transport_failure(exc: httpx.HTTPError, call: _Call) -> Exception:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    method, url = call.method, call.public_url
    if call.retry is RetryMode.SUBMIT and not isinstance(exc, _NEVER_SENT):
        # Anything not provably unsent may have reached the server: report it and
        # never re-send (docs: "blindly retrying creates (and bills) a second task").
        unknown = SubmissionUnknownError(
            f"{method} {url} was sent and no answer came ({detail}); the"
            " prediction may exist and be billed, so it was not re-sent: check"
            " the Atlas Cloud console before submitting again",
            method=method,
            url=url,
            kind=call.kind,
            model=call.model,
        )
        unknown.__cause__ = exc
        return unknown
    error = TransportError(
        f"{method} {url} got no usable answer ({detail})",
        method=method,
        url=url,
        prediction_id=call.prediction_id,
    )
    error.__cause__ = exc
    if (call.retry is RetryMode.SUBMIT) or (
        call.retry is RetryMode.IDEMPOTENT and isinstance(exc, _TRANSIENT)
    ):
        return _RetryableError(error, None)
    return error


_REDACTED = "[redacted]"


def _redact(error: _E, secret: str | None) -> _E:
    """
    Remove the key from an error built from what the server or network said.

    A misbehaving gateway may echo the Authorization header back in its error
    text ("invalid key sk-..."); that text must not carry the key into logs or
    tracebacks.
    """
    if error is None or not secret:
        return error
    target = error.error if isinstance(error, _RetryableError) else error
    if isinstance(target, AtlasError):
        target.message = target.message.replace(secret, _REDACTED)
        target.args = (target.message,)
        if hasattr(target, "body"):
            target.body = _redact_value(target.body, secret)
    return error


def _redact_value(value: object, secret: str) -> object:
    if isinstance(value, str):
        return value.replace(secret, _REDACTED)
    if isinstance(value, Mapping):
        return {key: _redact_value(item, secret) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(item, secret) for item in value]
    return value


def _short(error: AtlasError) -> str:
    if isinstance(error, APIError) and error.status_code is not None:
        return f"{error.status_code} {type(error).__name__}"
    cause = error.__cause__
    return type(cause).__name__ if cause is not None else type(error).__name__
