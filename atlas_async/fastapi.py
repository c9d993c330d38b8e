"""
FastAPI integration (extra ``fastapi``): one client per app, a dependency, and a
webhook endpoint that ends waits early.

Theory of operation
-------------------
**One client per app, per process.** `atlas_lifespan` opens one `AtlasClient`
when the app starts and closes it when the app stops; handlers get it through
the `get_atlas_client` dependency (`AtlasClientDep`). The client's scheduler
polls every prediction this process follows from one task, inside one rate
budget. Under several uvicorn workers, each worker has its own client and its
own futures. Atlas stays the source of truth: any worker can answer for any id
with ``get_prediction`` (one GET) or ``attach`` (follow it until it ends).

**The hybrid wait.** A prediction submitted with ``webhook_url`` is still
polled, rarely, as the fallback. When Atlas POSTs its end to the router made by
`webhook_router`, the router verifies the signature (`WebhookVerifier`,
keys from Atlas's JWKS) and hands ``event.prediction`` to
`AtlasClient.deliver`. If this worker follows the id, its future resolves at
once, as if a poll had returned that snapshot. If it does not (another worker
submitted it, or it ended already), nothing happens and the answer is still 200:
the worker that waits will resolve it by polling. Whichever source ends a
prediction first wins, and the future resolves exactly once.

The router's answers follow Atlas's retry rules: 200 for anything handled or
ignored (redeliveries and exact replays included, so Atlas stops retrying),
401 when the delivery is not authentic (bad signature, unknown key, stale
timestamp), 400 when it is malformed, 413 when it is too large, and 503 when it
cannot be checked or handled now (the key set is unreachable, the client is
closing), so that Atlas delivers it again.

**Waiting inside a request.** `follow` attaches an id for the duration of a
``with`` block, and stops following it when the last block leaves and it has not
ended (a client that hung up leaves no polling behind). `wait_done` waits for a
future with a timeout and returns early when the HTTP client disconnects:
Starlette does not cancel a plain handler when its client goes away.

**Nothing shared between apps.** The module keeps no state of its own: the
client lives on the app (and in the lifespan state), a webhook router's
verifier on each app it is included in, and `follow`'s count of open blocks on
the future, so two apps in one process share nothing.

This module is never imported by ``atlas_async`` itself: it needs ``fastapi``
and ``cryptography``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Annotated, Any

import anyio
import attrs
import httpx

from ._core.extras import missing_extra

try:
    from fastapi import APIRouter, Depends, FastAPI, Request
    from fastapi.responses import JSONResponse, Response
except ModuleNotFoundError as exc:
    missing = (exc.name or "fastapi").partition(".")[0]
    raise missing_extra(missing, "fastapi", feature="atlas_async.fastapi") from exc

from ._client import AtlasClient, Duration
from ._core.clock import Clock
from ._core.errors import ClientStateError, ConfigurationError
from ._core.models import Kind
from ._core.policies import PollPolicy
from ._ops.futures import PredictionFuture
from .webhooks import (
    DEFAULT_JWKS_URL,
    JWKSCache,
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
)

__all__ = [
    "AtlasClientDep",
    "Lifespan",
    "atlas_lifespan",
    "follow",
    "get_atlas_client",
    "wait_done",
    "webhook_router",
]

logger = logging.getLogger("atlas_async")

Lifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]
"""A FastAPI/Starlette lifespan: ``lifespan(app)`` is an async context manager
that may yield a state mapping."""

STATE_KEY = "atlas_client"

# A delivery is one prediction's end: a few kilobytes, unless it carries
# base64 outputs. Bigger bodies are refused before they are buffered.
DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024

# Not authentic, so no retry can help: 401. The rest of the non-retryable
# reasons describe a malformed delivery: 400.
_UNAUTHORIZED = frozenset({"bad_signature", "unknown_key", "stale_timestamp"})
# Where an app keeps its webhook routers' verifiers: ``{router source: _Keys}``.
_KEYS_STATE = "atlas_webhook_keys"


# --- the client's lifecycle ----------------------------------------------------


def atlas_lifespan(
    lifespan: Lifespan | None = None, **client_kwargs: Any
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """
    Return a lifespan that opens one `AtlasClient` for the app and closes it.

    The client is entered when the app starts, before ``lifespan`` (yours, if
    any) starts, so your startup code can use it; it is closed after yours has
    stopped. It is stored as lifespan state and as ``app.state.atlas_client``;
    handlers get it with `get_atlas_client`.

    Example::

        app = FastAPI(lifespan=atlas_lifespan(max_in_flight=200))

        @app.get("/predictions/{prediction_id}")
        async def status(prediction_id: str, client: AtlasClientDep) -> dict:
            return {"status": (await client.get_prediction(prediction_id)).status}

    Args:
        lifespan: your own lifespan, run inside this one; the state it yields is
            kept, with ``atlas_client`` added.
        **client_kwargs: passed to `AtlasClient` (``api_key``, ``base_url``,
            ``poll``, ``max_in_flight`` ...); by default the client reads
            ``ATLASCLOUD_API_KEY`` and ``ATLASCLOUD_BASE_URL``.
    """

    @asynccontextmanager
    async def atlas_client_lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        async with AtlasClient(**client_kwargs) as client:
            app.state.atlas_client = client
            try:
                if lifespan is None:
                    yield {STATE_KEY: client}
                else:
                    async with lifespan(app) as state:
                        yield {**(state or {}), STATE_KEY: client}
            finally:
                if getattr(app.state, STATE_KEY, None) is client:
                    delattr(app.state, STATE_KEY)

    return atlas_client_lifespan


def _client_of(request: Request) -> AtlasClient | None:
    # Lifespan state first (what the server copied into this request), then the
    # app (servers and test transports that do not run the lifespan protocol's
    # state, e.g. httpx.ASGITransport after a manual lifespan).
    client = getattr(request.state, STATE_KEY, None)
    if client is None:
        client = getattr(request.app.state, STATE_KEY, None)
    return client if isinstance(client, AtlasClient) else None


async def get_atlas_client(request: Request) -> AtlasClient:
    """
    The dependency that hands handlers the app's `AtlasClient`.

    Async only so that FastAPI calls it on the event loop rather than in its
    thread pool: it does no I/O.

    Example::

        @app.post("/images")
        async def create(client: Annotated[AtlasClient, Depends(get_atlas_client)]):
            ...

    Raises:
        RuntimeError: the app was not built with ``lifespan=atlas_lifespan(...)``
            (or its lifespan is not running): a bug in the app, hence a 500.
    """
    client = _client_of(request)
    if client is None:
        raise RuntimeError(
            "no AtlasClient for this app: create it with"
            " FastAPI(lifespan=atlas_lifespan(...))"
        )
    return client


AtlasClientDep = Annotated[AtlasClient, Depends(get_atlas_client)]
"""``client: AtlasClientDep`` in a handler's signature receives the app's client."""


# --- waiting inside a request ----------------------------------------------------


def _follower(future: PredictionFuture) -> None:
    """One open `follow` block, as a (no-op) done callback of its future."""


@contextmanager
def follow(
    client: AtlasClient,
    prediction_id: str,
    *,
    kind: Kind | str = Kind.IMAGE,
    model: str | None = None,
    timeout: Duration | None = None,
    poll: PollPolicy | None = None,
) -> Iterator[PredictionFuture]:
    """
    Follow a prediction for the duration of a ``with`` block; yield its future.

    ``client.attach`` gives the future this process already has for the id (a
    submit's, or another request's), or starts polling it at once. When the
    last ``follow`` block of that future exits before it ended, the future is
    cancelled, so polling stops: a request whose client hung up leaves no work
    behind. The job on Atlas goes on, and any later request can follow it again.

    Example::

        with follow(client, prediction_id) as future:
            if await wait_done(future, timeout=30, request=request):
                return future.result()

    Args:
        client: the app's client.
        prediction_id: the id to follow.
        kind, model, timeout, poll: as for `AtlasClient.attach` (used only when
            this process does not follow the id yet).
    """
    future = client.attach(
        prediction_id, kind=kind, model=model, timeout=timeout, poll=poll
    )
    # The count of open blocks lives on the future itself, as registrations of
    # `_follower`: it belongs to the client (so to one app) and goes with it,
    # and this module keeps no state shared by the apps of a process.
    future.add_done_callback(_follower)
    try:
        yield future
    finally:
        others = future.remove_done_callback(_follower) - 1
        for _ in range(others):
            future.add_done_callback(_follower)
        if others <= 0:
            future.cancel()  # a no-op once it has ended


async def wait_done(
    future: PredictionFuture,
    *,
    timeout: float | None = None,
    request: Request | None = None,
) -> bool:
    """
    Wait until ``future`` ends, ``timeout`` seconds pass, or the client hangs up.

    Never raises the prediction's error: read ``future.result()`` or
    ``future.exception()`` once this returns True. With ``request``, it also
    returns (False) as soon as that request's client disconnects, which
    Starlette does not notice by itself in a plain handler. Call it from
    handlers whose request body has been read (or has none), since it listens
    on the request's ``receive`` channel.

    Returns:
        ``future.done()``.
    """
    if future.done():
        return True
    ended = anyio.Event()

    def on_done(_: PredictionFuture) -> None:
        ended.set()

    future.add_done_callback(on_done)
    try:
        with anyio.move_on_after(timeout):
            if request is None:
                await ended.wait()
            else:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(
                        _cancel_on_disconnect, request, task_group.cancel_scope
                    )
                    await ended.wait()
                    task_group.cancel_scope.cancel()
    finally:
        future.remove_done_callback(on_done)
    return future.done()


async def _cancel_on_disconnect(request: Request, scope: anyio.CancelScope) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass  # the (empty) request body; the next message is the disconnect
    scope.cancel()


# --- the webhook endpoint ------------------------------------------------------


@attrs.frozen(eq=False)
class _Source:
    """One router's configuration of its keys; each app builds its own from it."""

    verifier: WebhookVerifier | None
    jwks_url: str
    http_client: httpx.AsyncClient | None
    clock: Clock | None


class _Keys:
    """One app's verifier for one router, built on first use when it fetches
    Atlas's JWKS, with the HTTP client it may own."""

    def __init__(self, source: _Source) -> None:
        self._source = source
        self._verifier = source.verifier
        self._owned: httpx.AsyncClient | None = None

    def verifier(self) -> WebhookVerifier:
        if self._verifier is None:
            http = self._source.http_client
            if http is None:
                http = self._owned = httpx.AsyncClient(timeout=10.0)
            cache = JWKSCache(http, self._source.jwks_url, clock=self._source.clock)
            self._verifier = WebhookVerifier(cache, clock=self._source.clock)
        return self._verifier

    async def aclose(self) -> None:
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.aclose()


def _keys_of(app: Any, source: _Source) -> _Keys:
    # On the app, not in the router: a router included in two apps gives each
    # its own key cache and replay memory.
    table: dict[_Source, _Keys] | None = getattr(app.state, _KEYS_STATE, None)
    if table is None:
        table = {}
        setattr(app.state, _KEYS_STATE, table)
    keys = table.get(source)
    if keys is None:
        keys = table[source] = _Keys(source)
    return keys


def webhook_router(
    path: str = "/atlas/webhook",
    *,
    verifier: WebhookVerifier | None = None,
    jwks_url: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    clock: Clock | None = None,
    on_event: Callable[[WebhookEvent], Awaitable[None]] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    include_in_schema: bool = False,
) -> APIRouter:
    """
    Return a router whose ``POST path`` receives Atlas's webhook deliveries.

    Each delivery is verified, then its prediction goes to the app's client
    (`AtlasClient.deliver`), which resolves the waiting future at once when this
    process follows it. See the module docstring for the status codes.

    The router keeps no state of its own: each app it is included in gets its
    own verifier (key cache and replay memory), kept on the app and closed with
    it.

    Example::

        app = FastAPI(lifespan=atlas_lifespan())
        app.include_router(webhook_router(jwks_url=os.environ["ATLAS_JWKS_URL"]))

    Args:
        path: the route; the URL you submit as ``webhook_url`` ends with it.
        verifier: a configured `WebhookVerifier`; by default one whose keys come
            from ``jwks_url`` through a `JWKSCache` (fetched on the first
            delivery, refreshed on rotation).
        jwks_url: where Atlas publishes its keys (default `DEFAULT_JWKS_URL`);
            only without ``verifier``.
        http_client: the client the JWKS is fetched with (never closed here); by
            default the router opens one and closes it with the app.
        clock: the default verifier's and key cache's clock (default: the real
            one); only without ``verifier``, which has its own.
        on_event: an async hook called with each verified, non-replayed event
            after the client has seen it (at least once, as Atlas delivers: make
            it idempotent). If it raises, the answer is a 500 and Atlas retries.
        max_body_size: larger bodies get 413 without being read in full.
        include_in_schema: list the route in the OpenAPI schema.

    Raises:
        ConfigurationError: ``verifier`` with ``jwks_url`` or ``clock``.
    """
    if verifier is not None and (jwks_url is not None or clock is not None):
        raise ConfigurationError(
            "give either verifier or jwks_url/clock, not both: the verifier has"
            " its own keys and clock"
        )
    source = _Source(verifier, jwks_url or DEFAULT_JWKS_URL, http_client, clock)

    @asynccontextmanager
    async def close_keys(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            table = getattr(app.state, _KEYS_STATE, None) or {}
            keys = table.pop(source, None)
            if keys is not None:
                await keys.aclose()

    router = APIRouter(lifespan=close_keys)

    async def receive_webhook(request: Request) -> Response:
        body = await _read_body(request, max_body_size)
        if body is None:
            return _answer(413, "too_large")
        verifier = _keys_of(request.app, source).verifier()
        try:
            event = await verifier.averify(request.headers, body)
        except WebhookVerificationError as exc:
            logger.warning("webhook delivery refused (%s): %s", exc.reason, exc)
            if exc.retryable:
                return _answer(503, exc.reason)
            return _answer(401 if exc.reason in _UNAUTHORIZED else 400, exc.reason)
        if verifier.is_replay(event):
            return _answer(200, "replay")
        client = _client_of(request)
        if client is None and on_event is None:
            logger.warning(
                "webhook for %s ignored: no AtlasClient for this app (use"
                " FastAPI(lifespan=atlas_lifespan(...))) and no on_event hook",
                event.session_id,
            )
        try:
            resolved = client is not None and client.deliver(event.prediction)
        except ClientStateError:  # the app is shutting down: deliver again later
            return _answer(503, "closing")
        if on_event is not None:
            await on_event(event)
        duplicate = verifier.seen(event)
        logger.debug(
            "webhook for prediction %s (%s)",
            event.session_id,
            "resolved" if resolved else "duplicate" if duplicate else "accepted",
            extra={"prediction_id": event.session_id},
        )
        if resolved:
            return _answer(200, "resolved")
        return _answer(200, "duplicate" if duplicate else "accepted")

    router.add_api_route(
        path,
        receive_webhook,
        methods=["POST"],
        include_in_schema=include_in_schema,
        name="atlas_webhook",
    )
    return router


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status_code: int, status: str) -> JSONResponse:
    return JSONResponse({"status": status}, status_code=status_code)
