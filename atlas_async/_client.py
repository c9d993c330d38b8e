"""
`AtlasClient`: the lifecycle, the raw operations, and the public one-shot calls.

Theory of operation:

* **Structured lifecycle** (httpx ``ClientState``, trio nurseries). A client is
  UNOPENED when built, OPENED inside ``async with``, CLOSED after. Entering opens
  the httpx client (if the client owns it) and an anyio task group, where the
  poll scheduler runs; leaving stops the background work, waits for the task
  group, then closes httpx. Using the client outside that block raises
  `ClientStateError` (`ClientClosedError` after it), never a confusing httpx error.
* **One event loop.** The loop that entered the client owns it: httpx
  connections, anyio primitives and the task group all belong to that loop. Any
  call from another loop (or another async library) raises `ClientStateError`.
  No ``__del__`` and no module-level client: nothing closes on a loop it does not
  own.
* **Raw operations are thin.** Each one is: check the state, one
  `ApiSession.request` with the right `RetryMode`, one ``_wire`` parser. Waiting
  for predictions lives in the scheduler, which calls `_create_prediction` and
  `_fetch_prediction` (see `_start_background`).
"""

from __future__ import annotations

import enum
import logging
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
import httpx

from ._batch.iterator import (
    BatchIterator,
    ProgressCallback,
    RequestInput,
    generate_many,
)
from ._batch.journal import Journal
from ._core.config import (
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    TimeoutArg,
    resolve_config,
)
from ._core.errors import ClientClosedError, ClientStateError
from ._core.models import Kind, ModelInfo, Prediction, UploadedMedia
from ._core.policies import PollPolicy
from ._net.clock import AnyioClock, Clock
from ._net.gate import ClientStatistics
from ._net.session import ApiSession, RetryMode
from ._net.transport import TransportOption
from ._ops.download import download_outputs
from ._ops.futures import PredictionFuture
from ._ops.scheduler import Scheduler
from ._ops.upload import FileInput, read_upload
from ._wire import parse as _wire

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["DEFAULT_PREDICTION_TIMEOUTS", "AtlasClient", "FileInput"]

logger = logging.getLogger("atlas_async")

#: The deadline a prediction gets when the call names none, per kind, in seconds.
#: Generous: the seeds' slowest video is 3 minutes, but heavy 1080p videos have
#: been seen past 15 (atlas-api.md 11.4); a deadline is a safety net, not a guess.
DEFAULT_PREDICTION_TIMEOUTS: Mapping[Kind, float] = {
    Kind.IMAGE: 600.0,
    Kind.VIDEO: 1800.0,
    Kind.AUDIO: 900.0,
}

Duration = float | timedelta


class _State(enum.Enum):
    UNOPENED = "unopened"  # built; ``async with`` not entered yet
    OPENED = "opened"  # inside ``async with``: the only state that sends requests
    CLOSED = "closed"  # ``async with`` has ended; a client is never reopened


class AtlasClient:
    """
    The Atlas Cloud client: enter it with ``async with``, then submit and poll.

    Example::

        async with AtlasClient() as client:        # key from ATLASCLOUD_API_KEY
            prediction = await client.get_prediction("8ba2926c6bd6...")
            media = await client.upload_media("cat.png")

    Args:
        api_key: the API key; default ``ATLASCLOUD_API_KEY``. Only calls that
            need it fail without one (``list_models`` does not).
        base_url: the API base; default ``ATLASCLOUD_BASE_URL``, then
            ``https://api.atlascloud.ai/api/v1``.
        timeout: per HTTP request: seconds, a ``timedelta``, `Timeouts` or an
            ``httpx.Timeout``. Default: connect 10 s, read 60 s, write 60 s.
        max_in_flight: predictions submitted and not yet terminal (default
            1000); further submits wait.
        max_concurrent_requests: HTTP requests in flight at once (submits, polls,
            uploads share it).
        requests_per_second: a request budget; None is unlimited, but the client
            always slows down on 429.
        poll: a ``PollPolicy``, or a mapping of one per `Kind`.
        http_client: an ``httpx.AsyncClient`` to use; the client never closes it
            nor changes its settings.
        transport: what carries the requests of the client the SDK builds:
            ``"auto"`` (aiohttp when the ``aiohttp`` extra is installed and the
            client runs under asyncio, else httpx's own), ``"httpx"``,
            ``"aiohttp"``, or any httpx transport (e.g. ``httpx.MockTransport``
            in tests). See ``docs/performance.md``.
        clock: where the client reads time and sleeps (tests pass a
            ``FakeClock``).
        rng: the source of jitter (tests pass a seeded ``random.Random``).
        max_retries: retries of one idempotent request (or refused submit).
        allow_insecure_http: allow plain ``http://`` to a non-loopback host.

    Raises:
        ConfigurationError: for a malformed key or URL, plain http to a remote
            host, both ``http_client`` and ``transport``, or a bad option.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: TimeoutArg = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
        requests_per_second: float | None = None,
        poll: object = None,
        http_client: httpx.AsyncClient | None = None,
        transport: TransportOption = "auto",
        clock: Clock | None = None,
        rng: random.Random | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        allow_insecure_http: bool = False,
    ) -> None:
        self._config = resolve_config(
            api_key,
            base_url,
            env=os.environ,
            timeout=timeout,
            max_retries=max_retries,
            allow_insecure_http=allow_insecure_http,
            max_in_flight=max_in_flight,
            max_concurrent_requests=max_concurrent_requests,
            requests_per_second=requests_per_second,
            poll=poll,
        )
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._rng = rng if rng is not None else random.Random()
        self._session = ApiSession(
            self._config,
            http_client=http_client,
            transport=transport,
            clock=self._clock,
            rng=self._rng,
        )
        self._state = _State.UNOPENED
        self._closing = False
        self._loop: anyio.lowlevel.EventLoopToken | None = None
        self._exit_stack: AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._scheduler: Scheduler | None = None

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> AtlasClient:
        if self._state is _State.OPENED:
            raise ClientStateError(
                "this AtlasClient is already open: enter `async with` once per client"
            )
        if self._state is _State.CLOSED:
            raise ClientClosedError(
                "this AtlasClient is closed and cannot be reopened: create a new"
                " AtlasClient"
            )
        loop = anyio.lowlevel.current_token()
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self._session)
            task_group = await stack.enter_async_context(anyio.create_task_group())
            self._loop, self._task_group = loop, task_group
            self._state = _State.OPENED
            await self._start_background(task_group)
        except BaseException:
            # A half-open client is unusable (httpx clients never reopen): stop
            # whatever background work did start, then close the rest.
            self._state = _State.CLOSED
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()
            self._task_group = None
            await stack.aclose()
            raise
        self._exit_stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack = self._exit_stack
        if self._state is not _State.OPENED or stack is None:
            raise ClientStateError("this AtlasClient is not open")
        self._closing = True
        try:
            try:
                await self._stop_background()
            finally:
                # Task group first (background work may still send), then httpx.
                suppress = await stack.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # anyio wraps the block's own exception in a group: give the caller
            # back exactly what their code raised.
            if exc is not None and list(group.exceptions) == [exc]:
                return False
            raise
        finally:
            self._state = _State.CLOSED
            self._exit_stack = self._task_group = None
        return suppress

    async def _start_background(self, task_group: anyio.abc.TaskGroup) -> None:
        """
        Start the poll scheduler; called by ``__aenter__`` once the client is open.

        The scheduler's gate goes to the HTTP session, so submits, polls, retries
        and uploads share one concurrency limit and one rate budget.
        """
        config = self._config
        scheduler = Scheduler(
            self._create_prediction,
            self._fetch_prediction,
            clock=self._clock,
            rng=self._rng,
            poll=config.poll,  # type: ignore[arg-type]  # validated by Scheduler
            max_in_flight=config.max_in_flight,
            max_concurrent_requests=config.max_concurrent_requests,
            requests_per_second=config.requests_per_second,
            failure=_wire.prediction_failure,
        )
        self._session.gate = scheduler.gate
        self._scheduler = scheduler
        await task_group.start(scheduler.run)

    async def _stop_background(self) -> None:
        """
        Stop the background work; called first by ``__aexit__``.

        The scheduler drains first: its pending futures fail with
        `ClientClosedError` (the server jobs live on; ``attach`` resumes them).
        Raw operations still work until this returns; public calls already raise
        `ClientClosedError`.
        """
        if self._scheduler is not None:
            await self._scheduler.aclose()
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    def _require_open(self, *, internal: bool = False) -> None:
        """Raise unless the client is open, on this event loop."""
        if self._state is _State.UNOPENED:
            raise ClientStateError(
                "this AtlasClient is not open yet: use"
                " `async with AtlasClient() as client:` and call it inside the block"
            )
        if self._state is _State.CLOSED or (self._closing and not internal):
            raise ClientClosedError(
                "this AtlasClient is closed: its `async with` block has ended;"
                " create a new AtlasClient"
            )
        if anyio.lowlevel.current_token() != self._loop:
            raise ClientStateError(
                "this AtlasClient belongs to another event loop: a client can only"
                " be used from the loop (and thread) that entered `async with`;"
                " create one client per event loop"
            )

    # -- raw operations for the scheduler ---------------------------------------

    async def _create_prediction(
        self, kind: Kind | str, model: str, params: Mapping[str, Any]
    ) -> Prediction:
        """
        Submit one prediction: one POST, never re-sent once it may have arrived.

        Raises:
            SubmissionUnknownError: sent, and no answer came.
            APIError: refused (429/503 only after the allowed retries).
        """
        self._require_open(internal=True)
        kind = Kind.coerce(kind)
        raw = await self._session.request(
            "POST",
            _wire.submit_path(kind),
            json=_wire.build_submit_body(model, params),
            retry=RetryMode.SUBMIT,
            kind=kind,
            model=model,
        )
        prediction = _wire.parse_submit(
            raw.status_code, raw.headers, raw.content, now=time.time()
        )
        logger.debug(
            "submitted prediction %s (%s, %s)",
            prediction.id,
            kind.value,
            model,
            extra={"prediction_id": prediction.id},
        )
        return prediction

    async def _fetch_prediction(self, prediction_id: str) -> Prediction:
        """One poll: one GET, no retry (the scheduler decides when to try again)."""
        self._require_open(internal=True)
        return await self._get(prediction_id, RetryMode.NONE)

    async def _get(self, prediction_id: str, retry: RetryMode) -> Prediction:
        raw = await self._session.request(
            "GET",
            _wire.prediction_path(prediction_id),
            retry=retry,
            prediction_id=prediction_id,
        )
        return _wire.parse_prediction(
            raw.status_code,
            raw.headers,
            raw.content,
            now=time.time(),
            prediction_id=prediction_id,
        )

    # -- predictions, driven by the scheduler -----------------------------------

    def _running_scheduler(self) -> Scheduler:
        self._require_open()
        if self._scheduler is None:  # pragma: no cover - set whenever open
            raise AssertionError("unreachable")
        return self._scheduler

    async def submit(
        self,
        kind: Kind | str,
        model: str,
        *,
        timeout: Duration | None = None,
        poll: PollPolicy | None = None,
        params: Mapping[str, Any] | None = None,
        **more_params: Any,
    ) -> PredictionFuture:
        """
        Submit one prediction and return its future at once; polling starts.

        The parameters go flat into the request body next to ``model``. The
        submit is sent once: it is retried only when it provably never reached
        the server (a connect error) or the server refused it (429, 503).
        Waits while ``max_in_flight`` predictions are pending.

        Example::

            model = "kwaivgi/kling-v3.0-std/image-to-video"
            future = await client.submit("video", model, image=url, duration=5)
            prediction = await future

        Args:
            kind: `Kind` or ``"image"``, ``"video"``, ``"audio"``.
            model: the model id, e.g. ``"google/nano-banana-2/text-to-image"``.
            timeout: seconds until the prediction's deadline (default per kind:
                `DEFAULT_PREDICTION_TIMEOUTS`); then its future raises
                `PredictionTimeoutError`.
            poll: a `PollPolicy` for this prediction (default: the client's).
            params: model parameters as a mapping (for names that clash with
                this signature, such as ``timeout``); merged with ``**more_params``.

        Raises:
            SubmissionUnknownError: sent, and no answer came (it may exist).
            APIError: the server refused the submit (400, 401, 402, ...).
        """
        scheduler = self._running_scheduler()
        kind = Kind.coerce(kind)
        body = {**(params or {}), **more_params}
        return await scheduler.submit(
            kind,
            model,
            body,
            timeout=DEFAULT_PREDICTION_TIMEOUTS[kind] if timeout is None else timeout,
            policy=poll,
        )

    async def submit_image(
        self, model: str, *, timeout: Duration | None = None, **params: Any
    ) -> PredictionFuture:
        """Submit an image prediction (``submit(Kind.IMAGE, model, ...)``)."""
        return await self.submit(Kind.IMAGE, model, timeout=timeout, **params)

    async def submit_video(
        self, model: str, *, timeout: Duration | None = None, **params: Any
    ) -> PredictionFuture:
        """Submit a video prediction (``submit(Kind.VIDEO, model, ...)``)."""
        return await self.submit(Kind.VIDEO, model, timeout=timeout, **params)

    async def submit_audio(
        self, model: str, *, timeout: Duration | None = None, **params: Any
    ) -> PredictionFuture:
        """Submit an audio prediction (``submit(Kind.AUDIO, model, ...)``)."""
        return await self.submit(Kind.AUDIO, model, timeout=timeout, **params)

    async def generate_image(
        self, model: str, *, timeout: Duration | None = None, **params: Any
    ) -> Prediction:
        """
        Submit an image prediction and wait for it.

        Example::

            prediction = await client.generate_image(
                "google/nano-banana-2/text-to-image", prompt="a red fox"
            )
            print(prediction.outputs[0])

        Raises:
            PredictionFailedError: the server failed it (``error``, ``error_code``).
            PredictionTimeoutError: the deadline passed (``attach`` resumes).
        """
        return await (await self.submit_image(model, timeout=timeout, **params))

    async def generate_video(
        self, model: str, *, timeout: Duration | None = None, **params: Any
    ) -> Prediction:
        """Submit a video prediction and wait for it (see `generate_image`)."""
        return await (await self.submit_video(model, timeout=timeout, **params))

    async def generate_audio(
        self, model: str, *, timeout: Duration | None = None, **params: Any
    ) -> Prediction:
        """Submit an audio prediction and wait for it (see `generate_image`)."""
        return await (await self.submit_audio(model, timeout=timeout, **params))

    def attach(
        self,
        prediction_id: str,
        *,
        kind: Kind | str = Kind.IMAGE,
        model: str | None = None,
        timeout: Duration | None = None,
        poll: PollPolicy | None = None,
    ) -> PredictionFuture:
        """
        Resume polling a prediction submitted elsewhere (a journal, another
        process, a webhook); attaching a pending id again returns its future.

        Example::

            future = client.attach("8ba2926c6bd642049f4d17dd68ea6785", kind="video")
            prediction = await future

        Args:
            timeout: seconds from now until its deadline (default per kind).
        """
        scheduler = self._running_scheduler()
        kind = Kind.coerce(kind)
        return scheduler.attach(
            prediction_id,
            kind=kind,
            model=model,
            timeout=DEFAULT_PREDICTION_TIMEOUTS[kind] if timeout is None else timeout,
            policy=poll,
        )

    def deliver(self, prediction: Prediction) -> bool:
        """
        End a pending prediction from a snapshot that came from outside polling.

        The hybrid wait's webhook side: pass a verified webhook's
        ``event.prediction`` (``atlas_async.fastapi.webhook_router`` does). If
        this client follows that id and the snapshot is terminal, its future
        resolves at once, exactly as if a poll had returned the snapshot
        (completed, or `PredictionFailedError`), and its polling stops.
        Otherwise nothing changes, and polling stays the fallback.

        Example::

            event = await verifier.averify(request.headers, await request.body())
            client.deliver(event.prediction)

        Returns:
            True when this call ended the prediction; False for an id this client
            does not follow (another process submitted it, or it already ended:
            a redelivery) and for a non-terminal snapshot.
        """
        return self._running_scheduler().deliver(prediction)

    def as_completed(
        self, futures: Iterable[PredictionFuture]
    ) -> AsyncIterator[PredictionFuture]:
        """
        Yield the futures as they finish, whatever their outcome.

        Example::

            futures = [await client.submit_image(model, prompt=p) for p in prompts]
            async for future in client.as_completed(futures):
                if future.exception() is None:
                    print(future.result().outputs)
        """
        return self._running_scheduler().as_completed(futures)

    def generate_many(
        self,
        requests: Iterable[RequestInput],
        *,
        journal: Journal | str | os.PathLike[str] | None = None,
        max_in_flight: int | None = None,
        on_progress: ProgressCallback | None = None,
        download_to: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        batch_timeout: float | None = None,
        resubmit_unknown: bool = False,
    ) -> BatchIterator:
        """
        Run a batch and yield a `BatchResult` per item, in completion order.

        A failed item never cancels its siblings; a 402 stops further submits.
        With a journal the run is resumable: completed items are yielded again
        without a request, submitted ones are attached by id, and an item sent
        without an answer is reported as `SubmissionUnknownError` (resent only
        with ``resubmit_unknown=True``). See ``docs/batch.md``.

        Example::

            requests = [{"model": "google/nano-banana-2/text-to-image",
                         "prompt": p} for p in prompts]
            async for result in client.generate_many(
                requests, journal="run.db", download_to="out/"
            ):
                print(result.index, result.files if result.ok else result.error)

        Args:
            requests: `GenerationRequest` values or mappings
                ``{"kind": "image", "model": ..., **params}``.
            journal: a `Journal` or its path.
            max_in_flight: items in progress at once (default: the client's).
            on_progress: called with a `BatchProgress` after each change.
            download_to: save every output there as soon as it completes.
            timeout: per item, seconds until its deadline.
            batch_timeout: seconds for the whole batch.
            resubmit_unknown: resend items whose earlier submit got no answer.

        Raises:
            ConfigurationError: an invalid request or option (nothing is sent).
        """
        self._require_open()
        return generate_many(
            self,
            requests,
            journal=journal,
            max_in_flight=max_in_flight,
            on_progress=on_progress,
            download_to=download_to,
            timeout=timeout,
            batch_timeout=batch_timeout,
            resubmit_unknown=resubmit_unknown,
        )

    def statistics(self) -> ClientStatistics:
        """
        What the client has done so far: in flight, requests, polls, retries, 429s.

        Works after close too (the last figures).
        """
        if self._scheduler is None:
            self._require_open()
        assert self._scheduler is not None
        return self._scheduler.statistics()

    # -- public one-shot calls ------------------------------------------------

    async def get_prediction(self, prediction_id: str) -> Prediction:
        """
        Fetch a prediction's current snapshot: one GET, no waiting.

        A failed prediction is returned, not raised: check ``.status``. Network
        errors, 429 and 5xx are retried a few times with backoff.

        Example::

            prediction = await client.get_prediction("8ba2926c6bd6...")
            if prediction.status.is_terminal:
                print(prediction.status, prediction.outputs)

        Raises:
            NotFoundError: no such prediction (fresh ones may 404 for a moment).
            APIError: another error answer.
            TransportError: no usable answer after the retries.
        """
        self._require_open()
        return await self._get(prediction_id, RetryMode.IDEMPOTENT)

    async def upload_media(
        self, file: FileInput, *, filename: str | None = None
    ) -> UploadedMedia:
        """
        Upload a local file; pass the returned ``url`` as a model input.

        ``file`` is a path, the bytes themselves, or a binary stream (opened with
        ``"rb"``). The content type is guessed from the filename, then from the
        first bytes. The upload is sent as multipart field ``file``.

        Example::

            media = await client.upload_media("cat.png")
            future = await client.submit_video(model, image=media.url)

        Args:
            file: what to upload.
            filename: the name the server sees; default the path's or stream's
                name, else ``upload`` plus an extension matching the content.

        Raises:
            ConfigurationError: the path does not exist or cannot be read, or the
                stream is not binary.
            APIError: the server refused it (e.g. 413 above 50 MB).
        """
        self._require_open()
        data, upload_name, content_type = await read_upload(file, filename)
        raw = await self._session.request(
            "POST",
            _wire.UPLOAD_PATH,
            files={"file": (upload_name, data, content_type)},
            # A repeated upload only leaves a second temporary file behind.
            retry=RetryMode.IDEMPOTENT,
        )
        media = _wire.parse_upload(
            raw.status_code, raw.headers, raw.content, now=time.time()
        )
        return attrs.evolve(
            media,
            filename=media.filename or upload_name,
            size=media.size if media.size is not None else len(data),
            content_type=media.content_type or content_type,
        )

    async def list_models(self) -> list[ModelInfo]:
        """
        Return the model catalog. Needs no API key; sends none.

        Example::

            models = await client.list_models()
            videos = [m.model for m in models if m.kind is Kind.VIDEO]
        """
        self._require_open()
        raw = await self._session.request(
            "GET", _wire.MODELS_PATH, retry=RetryMode.IDEMPOTENT, auth=False
        )
        return _wire.parse_models(
            raw.status_code, raw.headers, raw.content, now=time.time()
        )

    async def download(
        self,
        prediction: Prediction,
        directory: str | os.PathLike[str],
        **options: Any,
    ) -> list[Path]:
        """
        Save every output of a completed prediction into ``directory``.

        URLs are streamed, ``data:`` URIs and base64 decoded; each file is
        written atomically as ``<id>-<n>.<ext>``. The API key goes only to the
        API's own origin, never to a CDN.

        Example::

            prediction = await client.generate_image(model, prompt="a red fox")
            paths = await client.download(prediction, "out/")

        Args:
            options: ``max_concurrency``, ``max_bytes``, ``retries``,
                ``name_prefix`` (see ``docs/batch.md``, Downloads).

        Raises:
            DownloadError: an output could not be fetched or written.
            ConfigurationError: the directory cannot be created or written.
        """
        self._require_open()
        http = self._session._client
        if http is None:  # pragma: no cover - set whenever open
            raise AssertionError("unreachable")
        return await download_outputs(
            prediction,
            directory,
            http=http,
            api_origin=self._config.base_url,
            clock=self._clock,
            rng=self._rng,
            **options,
        )

    def __repr__(self) -> str:
        return (
            f"AtlasClient(base_url={self._config.base_url!r},"
            f" state={self._state.value})"
        )
