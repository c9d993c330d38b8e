"""
`ApiSession`: one HTTP request to the Atlas API, with auth, error mapping and
the retry rules. Everything above this module sees an `Answer` (decoded once) or an
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
  Waits between retries happen outside the slot, on the injected `Clock`. A
  poll (`ApiSession.poll`, the hot path) is first offered ``gate.admit_now``:
  a free slot the rate lets go at once, with no await; only a full gate or a
  binding rate sends it through ``slot()`` to wait like any request.
* **Bounded answers, bounded time.** Each answer is streamed and read by
  `BodyReader` (``_wire.answer``), which undoes ``Content-Encoding`` itself in
  bounded steps and stops at ``max_answer_bytes`` decoded bytes; a
  ``Content-Length`` past it is refused unread. Each attempt runs under the
  overall deadline (``Timeouts.total``) from the moment it has its slot:
  connect, send and the whole body. The retries of one request stop at the
  same deadline, so no ``Retry-After`` is waited for past it. A sent submit
  whose answer is unusable (past the cap, broken, out of time, a 5xx other
  than 503) is `SubmissionUnknownError`.
* **Only typed errors leave.** Whatever the HTTP library raises, its own bugs
  included, becomes a `TransportError` (a submit's: `SubmissionUnknownError`);
  a redirect, whatever its ``Location``, is `UnexpectedResponseError` (the
  client built here hides an API redirect's ``Location`` from httpx, which
  would otherwise parse it, and choke on odd ones, before returning).
* **Logs carry no secrets.** DEBUG per attempt (method, path, status, elapsed),
  WARNING per retry; never headers, never query strings, never the key. Records
  about a prediction carry its id in the text and in ``extra``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Mapping
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any

import httpx
import sniffio

from .._core.clock import Clock
from .._core.config import DEFAULT_TIMEOUTS, ClientConfig, Origin, origin_of
from .._core.errors import (
    AtlasError,
    ConfigurationError,
    SubmissionUnknownError,
)
from .._core.models import Kind
from .._core.sending import send_hook
from .._core.windows import RequestKind
from .._wire.answer import ACCEPT_ENCODING, Answer, BodyRefusedError
from .._wire.multipart import encode_multipart
from .attempt import (
    Call,
    Outcomes,
    RetryMode,
    redact,
    short,
    unusable_submit,
)
from .clock import AnyioClock
from .deadline import Deadline
from .exchange import (
    Backend,
    HttpxBackend,
    Progress,
    RawAnswer,
    build_httpx_client,
    encode_json,
    httpx_timeout,
)
from .gate import Admission, NullGate
from .retrying import retrying
from .transport import (
    TransportOption,
    build_transport,
    check_transport,
    choose_transport,
)
from .wheel import DeadlineWheel, Expired, Watch, wheel_available

__all__ = [
    "USER_AGENT",
    "Answer",
    "ApiSession",
    "RetryMode",
    "check_session_options",
    "package_version",
    "logger",
]

logger = logging.getLogger("atlas_async")


def package_version() -> str:
    """The installed version of atlas-async, or ``0+unknown`` from a source tree."""
    try:
        return version("atlas-async")
    except PackageNotFoundError:  # running from a source tree, not installed
        return "0+unknown"


USER_AGENT = f"atlas-async/{package_version()}"


def check_session_options(
    http_client: httpx.AsyncClient | None, transport: TransportOption
) -> None:
    """
    Validate the session's options when the client is built, before it opens.

    Raises:
        ConfigurationError: both ``http_client`` and a transport, or a bad
            ``transport``.
    """
    if http_client is not None and transport not in (None, "auto"):
        raise ConfigurationError(
            "pass http_client or transport, not both (a transport goes inside"
            " the client)"
        )
    check_transport(transport)


class ApiSession:
    """
    Sends requests to the Atlas API through one ``httpx.AsyncClient``.

    The session builds and owns a client unless one is injected: with
    ``http_client=`` it uses that client as is and never closes it; otherwise it
    builds one around the transport that ``transport=`` names (see `_transport`:
    ``"auto"``, ``"httpx"``, ``"aiohttp"``, or an httpx transport) and owns both.

    Example::

        async with ApiSession(config) as session:
            raw = await session.request("GET", "/models", retry=RetryMode.IDEMPOTENT,
                                        auth=False)

    Args:
        config: the resolved client settings.
        http_client: an ``httpx.AsyncClient`` to use and leave open.
        transport: ``"auto"`` (None), ``"httpx"``, ``"aiohttp"``, or an httpx
            transport for the client the session builds.
        clock: where retries wait (default: the real clock).
        rng: jitter for retry delays (default: a fresh ``random.Random()``).
        gate: admission for every attempt (default: `NullGate`): the client's
            `RequestGate`, built before the session.

    Attributes:
        attempts: HTTP attempts made (each retry counts).
        retries: attempts that were retries.
        transport_name: the transport in use once open: ``"httpx"``,
            ``"aiohttp"``, ``"custom"`` (one passed in) or ``"injected"`` (the
            ``http_client``'s own); None before `open`.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: TransportOption = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        gate: Admission | None = None,
    ) -> None:
        check_session_options(http_client, transport)
        self._config = config
        self._origin: Origin = config.origin
        self._injected = http_client
        self._transport = transport
        self._backend: Backend | None = None
        # Every attempt's deadlines on one loop timer (asyncio, Python 3.11+).
        self._wheel: DeadlineWheel | None = None
        # The read deadline the wheel keeps for the backend (aiohttp's own
        # would re-arm a loop timer for each piece of each answer).
        self._read_by_wheel: float | None = None
        # The httpx client downloads stream through: the backend's own, or one
        # built on the first download when the backend is aiohttp.
        self._client: httpx.AsyncClient | None = http_client
        self._download_client_owned = False
        # Every request's headers, prepared once: the backends never mutate them.
        self._plain_headers = {
            "User-Agent": USER_AGENT,
            # Only the encodings the body reader undoes in bounded steps.
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        self._with_key: dict[str, str] | None = None
        self.transport_name: str | None = None
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._rng = rng if rng is not None else random.Random()
        self.gate: Admission = gate if gate is not None else NullGate()
        # Counters for ClientStatistics: every attempt, and the retries among them.
        self.attempts = 0
        self.retries = 0
        total = config.total_timeout
        self._total = math.inf if total is None else total
        self._outcomes = Outcomes(
            api_key=config.api_key, clock=self._clock, total=self._total
        )
        self._max_bytes = config.max_answer_bytes
        # Per-request timeouts only when the user chose them; otherwise an injected
        # client keeps its own, and the client we build carries the defaults.
        self._timeout: httpx.Timeout | Any = (
            httpx_timeout(config.timeout)
            if config.timeout is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        # The longest a sent request can take to reach the server: its overall
        # deadline, else its phases' timeouts end to end (10 minutes when one
        # is unbounded).
        phases = config.timeout or DEFAULT_TIMEOUTS
        spans = (phases.connect, phases.write, phases.read)
        self._send_window = (
            self._total
            if self._total != math.inf
            else 600.0
            if None in spans
            else sum(x for x in spans if x is not None)
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """
        The ``httpx.AsyncClient`` downloads stream through: the injected one,
        the session's own, or (with the aiohttp backend) one built on first use.
        """
        if self._backend is None:
            raise RuntimeError("ApiSession.open() was not called")
        if self._client is None:
            transport, _ = build_transport(
                self._transport, max_connections=self._config.max_concurrent_requests
            )
            self._client = build_httpx_client(
                transport,
                self._config.timeout or DEFAULT_TIMEOUTS,
                self._config.max_concurrent_requests,
            )
            self._download_client_owned = True
        return self._client

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``https://api.atlascloud.ai/api/v1``."""
        return self._config.base_url

    @property
    def owns_client(self) -> bool:
        """True when the session built the httpx client and will close it."""
        return self._injected is None

    async def open(self) -> None:
        """Open the backend: the injected client, or one the session owns."""
        if self._injected is not None:
            self._backend = HttpxBackend(
                self._injected, name="injected", owned=False, timeout=self._timeout
            )
            self.transport_name = "injected"
            if wheel_available():
                self._wheel = DeadlineWheel()
            return
        limit = self._config.max_concurrent_requests
        # Chosen now, not in __init__: "auto" depends on the running event loop.
        name: str
        if self._transport is None or isinstance(self._transport, str):
            name = choose_transport(self._transport, sniffio.current_async_library())
        else:
            name = "custom"
        if wheel_available():
            self._wheel = DeadlineWheel()
        if name == "aiohttp":
            from .aiohttp_backend import AiohttpBackend

            timeouts = self._config.timeout or DEFAULT_TIMEOUTS
            if self._wheel is not None:
                self._read_by_wheel = self._outcomes.read_timeout = timeouts.read
            self._backend = AiohttpBackend(
                max_connections=limit,
                timeouts=timeouts,
                https=self._config.base_url.startswith("https:"),
                read_by_caller=self._wheel is not None,
            )
        else:
            transport, name = build_transport(self._transport, max_connections=limit)
            self._client = build_httpx_client(
                transport,
                self._config.timeout or DEFAULT_TIMEOUTS,
                self._config.max_concurrent_requests,
            )
            await self._client.__aenter__()
            self._backend = HttpxBackend(self._client, name=name, owned=True)
        self.transport_name = name

    async def aclose(self) -> None:
        """Close what the session owns; an injected client stays open."""
        if self._wheel is not None:
            self._wheel.close()
        if self._backend is not None:
            await self._backend.aclose()
        if self._download_client_owned and self._client is not None:
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

    def request(
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
        purpose: RequestKind = RequestKind.OTHER,
    ) -> Awaitable[Answer]:
        """
        Send one request, retrying as ``retry`` allows: await it for its 2xx
        answer (``answer = await session.request(...)``).

        ``path_or_url`` is an API path (``/models``) or an absolute URL, which
        gets the key only on the API origin. ``files`` maps multipart fields to
        ``(filename, data, content_type)``. ``prediction_id`` labels errors and
        logs; ``kind`` and ``model`` label a `SubmissionUnknownError`;
        ``purpose`` tells the gate what the request is (a poll goes before a
        submit when the rate is scarce; a 429 is attributed by it).

        Raises:
            ConfigurationError: the key is needed and none was configured.
            APIError: an error answer, also inside a 2xx (subclass per status).
            UnexpectedResponseError: the API answered with a redirect.
            SubmissionUnknownError: a ``SUBMIT`` was sent and no answer came.
            TransportError: no usable answer after the allowed retries.
        """
        backend = self._backend
        if backend is None:
            raise RuntimeError("ApiSession.open() was not called")
        url = self.url_for(path_or_url)
        # An API path is on the API origin by construction: only absolute URLs
        # need their origin checked before they get the key.
        if auth and (path_or_url.startswith("/") or self._is_api_origin(url)):
            headers = self._api_headers()
        else:
            headers = self._plain_headers
        body: bytes | None = None
        if files is not None:
            body, content_type = encode_multipart(files)
            headers = {**headers, "Content-Type": content_type}
        elif json is not None:
            body = encode_json(json)
            headers = {**headers, "Content-Type": "application/json"}
        call = Call(
            method,
            url,
            headers,
            body,
            retry,
            prediction_id,
            kind,
            model,
            purpose,
        )
        # The attempt itself (or the retry loop) is what the caller awaits:
        # no coroutine of this method's own sits in every poll's await chain.
        if call.retry is RetryMode.NONE:
            return self._attempt(backend, call)
        plan = self._config.retry
        if self._total != math.inf:
            # No retry starts, and no Retry-After is waited for, past the
            # request's own deadline.
            plan = plan.until(self._clock.now() + self._total)
        return retrying(
            lambda: self._attempt(backend, call),
            retry=plan,
            clock=self._clock,
            rng=self._rng,
            on_retry=lambda error, retry, delay: self._on_retry(
                call, error, retry, delay
            ),
        )

    def _on_retry(self, call: Call, error: Exception, retry: int, delay: float) -> None:
        self.retries += 1
        logger.warning(
            "%s failed (%s); retry %d of %d in %.2fs",
            call.label,
            short(error),
            retry,
            self._config.retry.retries,
            delay,
            extra=call.extra,
        )

    def poll(self, path: str, prediction_id: str, seen: int = 0) -> Awaitable[Answer]:
        """
        One poll: ``GET path`` (`_wire.parse.prediction_path`), never retried
        (the scheduler decides when to try again); await it for the answer.

        The hot path of a client: the request is prepared, the gate admits it
        without waiting when it can, and an answer byte for byte the one of
        fingerprint ``seen`` comes back as `Answer.same_as_seen`, undecoded.
        Raises as `request` does.
        """
        backend = self._backend
        if backend is None:
            raise RuntimeError("ApiSession.open() was not called")
        return self._poll(backend, self._config.base_url + path, prediction_id, seen)

    async def _poll(
        self, backend: Backend, url: str, prediction_id: str, seen: int
    ) -> Answer:
        clock, gate = self._clock, self.gate
        started = clock.now()
        if not gate.admit_now(RequestKind.POLL, started):
            # The gate is full or the rate binds: wait there the usual way.
            return await self._attempt(
                backend, self._poll_call(url, prediction_id, seen)
            )
        try:
            self.attempts += 1
            outcome, expired = await self._send(
                backend, "GET", url, self._api_headers(), None
            )
        finally:
            gate.leave()
        now = clock.now()
        if seen and type(outcome) is RawAnswer:
            answer = self._outcomes.same_as_seen(
                gate, outcome, seen, now - started, now
            )
            if answer is not None:
                return answer
        return self._outcomes.conclude(
            gate,
            self._poll_call(url, prediction_id, seen),
            outcome,
            expired,
            started,
            now,
        )

    def _poll_call(self, url: str, prediction_id: str, seen: int) -> Call:
        # Built only off the fast path: a wait at the gate, or an answer
        # that is new or an error.
        return Call(
            "GET",
            url,
            self._api_headers(),
            None,
            RetryMode.NONE,
            prediction_id,
            None,
            None,
            RequestKind.POLL,
            seen,
        )

    async def _attempt(self, backend: Backend, call: Call) -> Answer:
        started = self._clock.now()
        hook = send_hook() if call.purpose is RequestKind.SUBMIT else None
        async with self.gate.slot(call.purpose):
            if hook is not None:
                # It has its slot and its token: it goes out now. The server may
                # receive it until the request's own deadline.
                wall = self._clock.wall()
                await hook(wall, wall + self._send_window)
            self.attempts += 1
            outcome, expired = await self._send(
                backend, call.method, call.url, call.headers, call.body
            )
        return self._outcomes.conclude(
            self.gate, call, outcome, expired, started, self._clock.now()
        )

    async def _send(
        self,
        backend: Backend,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> tuple[RawAnswer | Exception | None, Expired | bool]:
        """One exchange under the attempt's deadlines: the answer, or what failed."""
        # The overall deadline runs from the slot (the queue before it is
        # flow control's, not the server's), over connect, send and body.
        wheel = self._wheel
        deadline: Deadline | Watch
        progress: Progress | None = None
        if wheel is None:
            deadline = Deadline(self._total)
        else:
            deadline = progress = wheel.watch(self._total, self._read_by_wheel)
        outcome: RawAnswer | Exception | None = None
        with deadline:
            try:
                outcome = await backend.exchange(
                    method,
                    url,
                    headers,
                    body,
                    max_bytes=self._max_bytes,
                    progress=progress,
                )
            except (httpx.HTTPError, BodyRefusedError, httpx.InvalidURL) as exc:
                outcome = exc
            except AtlasError:
                raise
            # An HTTP library's own bug is still no answer: typed below.
            except Exception as exc:  # noqa: BLE001
                outcome = exc
        return outcome, deadline.expired

    def unusable_submit(
        self,
        error: Exception,
        path: str,
        *,
        kind: Kind | None,
        model: str | None,
    ) -> SubmissionUnknownError:
        """
        The `SubmissionUnknownError` for a submit whose 2xx answer could not be
        read as a prediction (``error``, redacted, is its cause): it was sent,
        so the prediction may exist and bill.
        """
        redact(error, self._config.api_key)
        unknown = unusable_submit(
            error,
            method="POST",
            url=self.url_for(path),
            kind=kind,
            model=model,
        )
        return redact(unknown, self._config.api_key)

    def _is_api_origin(self, url: str) -> bool:
        return origin_of(url) == self._origin

    def _api_headers(self) -> dict[str, str]:
        # Built once, on the first request that needs the key (a client may
        # run without one until then), and shared: no request mutates it.
        headers = self._with_key
        if headers is None:
            headers = self._with_key = {
                **self._plain_headers,
                "Authorization": self._authorization(),
            }
        return headers

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
