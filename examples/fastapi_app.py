"""
An image service on Atlas Cloud: submit, read, wait, stream, and signed webhooks.

Endpoints:

* ``POST /images`` ``{"prompt": ..., "model": ...?}``: submit; 202 with the id.
* ``GET /predictions/{id}``: the status, read from Atlas (one GET).
* ``GET /predictions/{id}/wait?timeout=30``: wait for the end; 200 with the
  outputs, 202 with the last status when ``timeout`` passes first, 404 at once
  for an id Atlas does not know, 422 when the prediction failed, 502 when
  Atlas could not be asked.
* ``GET /predictions/{id}/events``: each status change as a server-sent event,
  then ``done`` (or ``error``).
* ``POST /atlas/webhook``: Atlas's signed deliveries (``atlas_async.fastapi``).

Configuration, from the environment:

* ``ATLASCLOUD_API_KEY`` and ``ATLASCLOUD_BASE_URL``: read by the client;
* ``PUBLIC_WEBHOOK_URL``: the public URL of ``/atlas/webhook``; when set, every
  submit carries it as ``webhook_url`` and polling slows to a fallback;
* ``ATLASCLOUD_JWKS_URL``: Atlas's webhook keys, by default
  ``<base url>/webhooks/jwks.json``;
* ``ATLAS_IMAGE_MODEL``: the model when a request names none.

Run it against the emulator (real Atlas needs a public https webhook URL)::

    python -m atlas_async.emulator --port 8787 --time-scale 10 &
    export ATLASCLOUD_API_KEY=dev ATLASCLOUD_BASE_URL=http://127.0.0.1:8787/api/v1
    export PUBLIC_WEBHOOK_URL=http://127.0.0.1:8000/atlas/webhook
    uvicorn examples.fastapi_app:app --port 8000

One worker: the webhook always lands where the wait is. With ``--workers N``
each worker has its own client; any worker answers for any id (``/wait`` and
``/events`` attach to it and poll), but a webhook that lands on another worker
than the waiting one ends nothing there, and the wait ends at its next poll
(``docs/fastapi.md``, "Several workers", says how to size that). Unless the
workers share a coordinator: then a webhook landing on any of them ends the
waits on all of them at once, and they share the account's limits
(``docs/scaling.md``)::

    export ATLAS_ASYNC_COORDINATOR=redis://127.0.0.1:6379/0   # atlas-async[redis]
    uvicorn examples.fastapi_app:app --port 8000 --workers 4
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import attrs
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from atlas_async import (
    APIError,
    AtlasClient,
    AtlasError,
    ClientStateError,
    FixedPolicy,
    InvalidRequestError,
    Kind,
    NotFoundError,
    PollPolicy,
    Prediction,
    PredictionFailedError,
    PredictionStatus,
    PredictionTimeoutError,
    RateLimitError,
)
from atlas_async.fastapi import (
    AtlasClientDep,
    atlas_lifespan,
    follow,
    wait_done,
    webhook_router,
)
from atlas_async.webhooks import WebhookVerifier

DEFAULT_BASE_URL = "https://api.atlascloud.ai/api/v1"
DEFAULT_MODEL = "google/nano-banana-2/text-to-image"
WEBHOOK_PATH = "/atlas/webhook"


@attrs.frozen(kw_only=True)
class Settings:
    """
    What the app needs besides the client's own settings.

    Attributes:
        public_webhook_url: sent as ``webhook_url`` with every submit, or None.
        jwks_url: where the webhook router fetches Atlas's keys.
        model: the image model used when a request names none.
        fallback_poll: the poll policy while a webhook is expected (rare polls:
            the webhook usually comes first); None keeps the client's default.
    """

    public_webhook_url: str | None = None
    jwks_url: str = f"{DEFAULT_BASE_URL}/webhooks/jwks.json"
    model: str = DEFAULT_MODEL
    fallback_poll: PollPolicy | None = attrs.field(factory=lambda: FixedPolicy(30.0))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read the settings from environment variables (see the module doc)."""
        base_url = env.get("ATLASCLOUD_BASE_URL") or DEFAULT_BASE_URL
        return cls(
            public_webhook_url=env.get("PUBLIC_WEBHOOK_URL") or None,
            jwks_url=env.get("ATLASCLOUD_JWKS_URL")
            or f"{base_url.rstrip('/')}/webhooks/jwks.json",
            model=env.get("ATLAS_IMAGE_MODEL") or DEFAULT_MODEL,
        )


async def get_settings(request: Request) -> Settings:
    """The app's settings (a dependency; tests may replace ``app.state.settings``)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


class ImageRequest(BaseModel):
    """The body of ``POST /images``."""

    prompt: str = Field(min_length=1, max_length=4000)
    model: str | None = None


def create_app(
    settings: Settings | None = None,
    *,
    verifier: WebhookVerifier | None = None,
    **client_kwargs: Any,
) -> FastAPI:
    """
    Build the app.

    Args:
        settings: the app's settings (default: `Settings.from_env`).
        verifier: the webhook verifier (default: keys from ``settings.jwks_url``).
        **client_kwargs: for `AtlasClient` (``api_key``, ``base_url``,
            ``transport`` ...); by default it reads ``ATLASCLOUD_*``.
    """
    settings = settings if settings is not None else Settings.from_env()
    app = FastAPI(title="Atlas images", lifespan=atlas_lifespan(**client_kwargs))
    app.state.settings = settings
    if verifier is not None:
        app.include_router(webhook_router(WEBHOOK_PATH, verifier=verifier))
    else:
        app.include_router(webhook_router(WEBHOOK_PATH, jwks_url=settings.jwks_url))
    app.add_exception_handler(AtlasError, _atlas_error)  # type: ignore[arg-type]

    @app.post("/images", status_code=202)
    async def create_image(
        body: ImageRequest,
        client: AtlasClientDep,
        settings: SettingsDep,
        response: Response,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"prompt": body.prompt}
        poll = None
        if settings.public_webhook_url:
            params["webhook_url"] = settings.public_webhook_url
            poll = settings.fallback_poll
        model = body.model or settings.model
        # The future stays with this worker's scheduler: a webhook or a poll
        # ends it, and a /wait on this worker shares it.
        future = await client.submit(Kind.IMAGE, model, poll=poll, params=params)
        response.headers["Location"] = f"/predictions/{future.id}"
        return {"id": future.id, "status": future.status.value, "model": model}

    @app.get("/predictions/{prediction_id}")
    async def read_prediction(
        prediction_id: str, client: AtlasClientDep
    ) -> dict[str, Any]:
        return _describe(await client.get_prediction(prediction_id))

    @app.get("/predictions/{prediction_id}/wait", response_model=None)
    async def wait_prediction(
        prediction_id: str,
        request: Request,
        client: AtlasClientDep,
        timeout: Annotated[float, Query(gt=0, le=300)] = 30.0,
        kind: Kind = Kind.IMAGE,
    ) -> dict[str, Any] | JSONResponse:
        with follow(client, prediction_id, kind=kind) as future:
            if future.status is PredictionStatus.UNKNOWN and not future.done():
                # Not seen by this worker yet: one GET answers an unknown id
                # with 404 now (NotFoundError), and ends a finished one now.
                client.deliver(await client.get_prediction(prediction_id))
            if not await wait_done(future, timeout=timeout, request=request):
                # Timed out (or the caller hung up): say where it stands.
                latest = {"id": prediction_id, "status": future.status.value}
                return JSONResponse(latest, status_code=202)
            return _describe(future.result())  # raises the failure, if any

    @app.get("/predictions/{prediction_id}/events")
    async def prediction_events(
        prediction_id: str, client: AtlasClientDep, kind: Kind = Kind.IMAGE
    ) -> StreamingResponse:
        return StreamingResponse(
            _events(client, prediction_id, kind),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


async def _events(
    client: AtlasClient, prediction_id: str, kind: Kind
) -> AsyncIterator[str]:
    # follow() is entered here, in the response's own task: when the caller
    # hangs up, Starlette cancels this generator and the block exits.
    try:
        with follow(client, prediction_id, kind=kind) as future:
            async for snapshot in future.updates():
                yield _sse("status", _describe(snapshot))
            yield _sse("done", _describe(future.result()))
    except AtlasError as exc:  # the headers are sent: the error is an event
        yield _sse("error", _error_body(exc))


def _sse(event: str, data: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _describe(prediction: Prediction) -> dict[str, Any]:
    return {
        "id": prediction.id,
        "status": prediction.status.value,
        "model": prediction.model,
        "outputs": list(prediction.outputs),
        "error": prediction.error,
        "error_code": prediction.error_code,
    }


def _error_body(exc: AtlasError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "error": type(exc).__name__,
        "detail": str(exc),
        "prediction_id": exc.prediction_id,
    }
    if isinstance(exc, PredictionFailedError):
        body.update(status="failed", error_code=exc.error_code, reason=exc.error)
    if isinstance(exc, PredictionTimeoutError) and exc.last_status is not None:
        body["status"] = exc.last_status.value
    return body


def _status_for(exc: AtlasError) -> int:
    if isinstance(exc, PredictionFailedError):
        return 422  # the prediction failed on Atlas: the caller's input, mostly
    if isinstance(exc, PredictionTimeoutError):
        return 504
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InvalidRequestError):
        return 400
    if isinstance(exc, RateLimitError):
        return 429
    if isinstance(exc, ClientStateError):
        return 503  # shutting down
    return 502  # Atlas could not be asked, or answered something unusable


async def _atlas_error(request: Request, exc: AtlasError) -> JSONResponse:
    headers = {}
    if isinstance(exc, APIError) and exc.retry_after is not None:
        headers["Retry-After"] = f"{max(1, round(exc.retry_after))}"
    return JSONResponse(_error_body(exc), status_code=_status_for(exc), headers=headers)


app = create_app()
