"""
`AtlasClient`: the composition root, the lifecycle, and the public calls.

Theory of operation:

* **Built one way.** Entering the client builds its parts in dependency order,
  each given what it needs and nothing above it: the `RequestGate` (one
  concurrency limit and one rate budget), the `ApiSession` that passes every
  attempt through the gate, the `Operations` (one request and one parse each),
  and the `Scheduler`, which sees the operations only as its
  `PredictionSource`. Nothing below calls back into the client.
* **Structured lifecycle** (httpx ``ClientState``, trio nurseries). A client is
  UNOPENED when built, OPENED inside ``async with``, CLOSED after. Entering opens
  the session and an anyio task group, where the poll scheduler runs; leaving
  stops the background work, waits for the task group, then closes the session.
  Using the client outside that block raises `ClientStateError`
  (`ClientClosedError` after it), never a confusing httpx error.
* **One event loop.** The loop that entered the client owns it: connections,
  anyio primitives and the task group all belong to that loop. Any call from
  another loop (or another async library) raises `ClientStateError`. No
  ``__del__`` and no module-level client: nothing closes on a loop it does not
  own.
* **One clock, one rng.** The `Clock` and the `random.Random` given here (or the
  real ones) are the only ones every part uses.
* **Nothing sent for bad input.** Every public call checks its arguments first,
  with the pure checks of ``_core.validate`` (and ``check_poll_option`` of the
  policies), and raises `InvalidArgumentError` or `ArgumentTypeError` before a
  byte leaves: a malformed submit is never billed. docs/errors.md lists them.
* **The key stays secret.** While the client is open its key is a live secret
  (``_net.redaction.guard_secret``): every error built and every log record
  written, ours or the HTTP libraries', has it replaced by ``[redacted]``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
import httpx

from .._batch.host import HostCalls
from .._core.clock import Clock
from .._core.config import (
    DEFAULT_BATCH_WORKERS,
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_PREDICTION_TIMEOUTS,
    TimeoutArg,
    resolve_config,
)
from .._core.flow import Limits, resolve_limits
from .._core.history import (
    DEFAULT_SETTLE_AFTER,
)
from .._core.models import Kind, Prediction
from .._core.outcome import prediction_failure
from .._core.policies import PollPolicy, check_poll_policy
from .._core.retry import BackoffPolicy, Retry
from .._core.statistics import ClientStatistics
from .._core.validate import (
    check_duration,
    check_instance,
    check_kind,
    check_model_id,
    check_params,
    check_prediction_id,
    check_real,
)
from .._net.clock import AnyioClock
from .._net.coordinator import SharedLimits
from .._net.gate import RequestGate
from .._net.redaction import guard_secret
from .._net.session import ApiSession, check_session_options
from .._net.transport import TransportOption
from .._ops.futures import PredictionFuture
from .._ops.lifecycle import Lifecycle
from .._ops.operations import Operations
from .._ops.scheduler import Scheduler
from .._ops.upload import FileInput
from .batch import BatchCalls
from .checks import (
    check_client_options,
)
from .coordination import resolve_coordinator
from .cost import CostCalls
from .files import FileCalls
from .history import HistoryCalls

__all__ = ["DEFAULT_PREDICTION_TIMEOUTS", "AtlasClient", "FileInput"]

Duration = float | timedelta


class AtlasClient(HistoryCalls, FileCalls, BatchCalls, CostCalls):
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
            ``httpx.Timeout``. Default: connect 10 s, read 60 s, write 60 s,
            and 300 s for the whole request (`Timeouts.total`).
        max_in_flight: predictions submitted and not yet terminal before
            further submits wait; default None: no cap of the client's own,
            only the account's flow control (its rate, each model's window)
            and memory (about 1.5 KB a prediction) bound them.
        max_concurrent_requests: HTTP requests in flight at once (submits, polls,
            uploads share it).
        requests_per_second: a known account rate; None is learned (the client
            always slows down on a refusal of the rate). The same as
            ``limits=Limits(requests_per_second=...)``.
        limits: known account limits (`Limits`): the request rate and the
            in-flight limit per model. Unknown ones are learned from refusals;
            learned values never exceed known ones.
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
        retry: the whole retry of one HTTP request, a `Retry` (attempts,
            backoff, deadline); overrides ``max_retries``.
        poll_retry: the retry of a failed poll: a `BackoffPolicy` (the spacing;
            20 failures in a row end the prediction) or a `Retry`.
        allow_insecure_http: allow plain ``http://`` to a non-loopback host.
        history_lag: seconds the account's history may lag behind a
            prediction's creation (clocks apart included), when a submit that
            got no answer is looked up there (`reconcile`, and a batch on its
            own): a submit is proven absent only once its send window closed
            this long ago. The built-in emulator needs about 1.
        max_answer_bytes: the most an API answer may weigh once decoded (gzip,
            deflate, br undone); past it the request fails with
            `UnexpectedResponseError` (default 8 MiB).
        coordinator: share the account's limits and webhook deliveries with
            the account's other processes: a ``redis://host:6379/0`` URL (the
            ``atlas-async[redis]`` extra) or a `Coordinator`; default
            ``ATLAS_ASYNC_COORDINATOR``, else none (docs/scaling.md). Entering
            the client raises `TransportError` when its server is unreachable.

    Raises:
        ArgumentTypeError: an option of the wrong type (``poll="fast"``,
            ``timeout="10"``, ``allow_insecure_http="no"``, ...).
        InvalidArgumentError: an option out of range (a NaN, infinite or
            non-positive number, an unknown transport or kind).
        ConfigurationError: for a malformed key or URL, plain http to a remote
            host, or both ``http_client`` and ``transport``. All three are
            ``ValueError``; see docs/errors.md.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: TimeoutArg = None,
        max_in_flight: int | None = DEFAULT_MAX_IN_FLIGHT,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
        requests_per_second: float | None = None,
        limits: Limits | None = None,
        poll: object = None,
        http_client: httpx.AsyncClient | None = None,
        transport: TransportOption = "auto",
        clock: Clock | None = None,
        rng: random.Random | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry: Retry | None = None,
        poll_retry: BackoffPolicy | Retry | None = None,
        allow_insecure_http: bool = False,
        history_lag: float = DEFAULT_SETTLE_AFTER,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        coordinator: object = None,
    ) -> None:
        self._coordinator = resolve_coordinator(coordinator, os.environ)
        self._shared: SharedLimits | None = None
        self._history_lag = check_real(history_lag, "history_lag", minimum=0.0)
        poll = check_client_options(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_in_flight=max_in_flight,
            max_concurrent_requests=max_concurrent_requests,
            requests_per_second=requests_per_second,
            limits=limits,
            poll=poll,
            http_client=http_client,
            transport=transport,
            clock=clock,
            rng=rng,
            max_retries=max_retries,
            retry=retry,
            poll_retry=poll_retry,
            allow_insecure_http=allow_insecure_http,
        )
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
            max_answer_bytes=max_answer_bytes,
        )
        if retry is not None:
            self._config = attrs.evolve(self._config, retry=retry)
        check_session_options(http_client, transport)
        self._limits = resolve_limits(limits, self._config.requests_per_second)
        self._poll_retry = poll_retry
        self._http_client = http_client
        self._transport = transport
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._rng = rng if rng is not None else random.Random()
        self._life = Lifecycle("AtlasClient")
        self._session: ApiSession | None = None
        self._operations: Operations | None = None
        self._scheduler: Scheduler | None = None
        self._host = HostCalls(
            clock=self._clock,
            max_in_flight=self._config.max_in_flight or DEFAULT_BATCH_WORKERS,
            start_soon=self._life.start_soon,
            submit=self.submit,
            attach=self.attach,
            download=self.download,
            settle_unknown=self._settle_unknown,
            secret=self._config.api_key,
        )

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> AtlasClient:
        await self._life.open(self._open_parts, self._start)
        return self

    async def _open_parts(self, stack: AsyncExitStack) -> None:
        config, clock, rng = self._config, self._clock, self._rng
        # First in, last out: the key is redacted until every part has closed.
        stack.enter_context(guard_secret(self, config.api_key))
        # One way, bottom up: each part gets what it needs, nothing above it.
        limits = self._limits
        if self._coordinator is not None:
            self._shared = await stack.enter_async_context(
                self._coordinator.connect(
                    account=config.api_key or "",
                    limits=limits,
                    clock=clock,
                    on_delivery=self._relayed,
                )
            )
        gate = RequestGate(
            config.max_concurrent_requests,
            limits.requests_per_second,
            clock,
            retry_after_cap=config.retry.backoff.retry_after_cap,
            shared=self._shared,
        )
        session = ApiSession(
            config,
            http_client=self._http_client,
            transport=self._transport,
            clock=clock,
            rng=rng,
            gate=gate,
        )
        operations = Operations(session, clock=clock, rng=rng)
        self._scheduler = Scheduler(
            operations,
            gate=gate,
            clock=clock,
            rng=rng,
            poll=config.poll,  # type: ignore[arg-type]  # validated by Scheduler
            retry=self._poll_retry,
            limits=limits,
            max_in_flight=config.max_in_flight,
            max_concurrent_requests=config.max_concurrent_requests,
            failure=prediction_failure,
        )
        await stack.enter_async_context(session)
        self._session, self._operations = session, operations

    async def _start(self, task_group: anyio.abc.TaskGroup) -> None:
        assert self._scheduler is not None
        await task_group.start(self._scheduler.run)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._life.close(self._drain, exc_type, exc, tb)

    async def _drain(self) -> None:
        # Pending futures fail with ClientClosedError; the server jobs live on
        # and ``attach`` resumes them.
        if self._scheduler is not None:
            await self._scheduler.aclose()

    def _require_open(self) -> None:
        self._life.require_open()

    # -- predictions, driven by the scheduler -----------------------------------

    def _running_scheduler(self) -> Scheduler:
        self._require_open()
        assert self._scheduler is not None  # set whenever open
        return self._scheduler

    def _running_operations(self) -> Operations:
        self._require_open()
        assert self._operations is not None  # set whenever open
        return self._operations

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
            InvalidArgumentError: an unknown kind, a malformed model id, a
                timeout that is not a finite number > 0, a parameter that is
                NaN, infinite, circular or nested too deep (nothing is sent).
            ArgumentTypeError: an argument of the wrong type: ``poll`` that is
                not a `PollPolicy`, ``params`` that is not a mapping, a
                parameter JSON cannot carry (nothing is sent).
            SubmissionUnknownError: sent, and no answer came (it may exist).
            APIError: the server refused the submit (400, 401, 402, ...).
        """
        scheduler = self._running_scheduler()
        kind = check_kind(kind)
        model = check_model_id(model)
        seconds = check_duration(timeout)
        policy = check_poll_policy(poll)
        if params is None:
            body = check_params(more_params)
        else:
            # Checked alone first: a non-mapping must not reach the ** below.
            check_params(params)
            body = check_params({**params, **more_params})
        return await scheduler.submit(
            kind,
            model,
            body,
            timeout=DEFAULT_PREDICTION_TIMEOUTS[kind] if seconds is None else seconds,
            policy=policy,
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

        Raises:
            InvalidArgumentError: an id that cannot be one (empty, with ``/``,
                ``..`` or a control character), an unknown kind, a bad timeout.
            ArgumentTypeError: an argument of the wrong type.
        """
        scheduler = self._running_scheduler()
        prediction_id = check_prediction_id(prediction_id)
        kind = check_kind(kind)
        if model is not None:
            model = check_model_id(model)
        seconds = check_duration(timeout)
        return scheduler.attach(
            prediction_id,
            kind=kind,
            model=model,
            timeout=DEFAULT_PREDICTION_TIMEOUTS[kind] if seconds is None else seconds,
            policy=check_poll_policy(poll),
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
            a redelivery) and for a non-terminal snapshot. With a coordinator,
            every terminal snapshot also goes to the account's other
            processes, so a future waiting there ends at once too.

        Raises:
            ArgumentTypeError: ``prediction`` is not a `Prediction`.
        """
        scheduler = self._running_scheduler()
        check_instance(prediction, Prediction, "prediction", "a Prediction")
        if self._shared is not None and prediction.done:
            # Other processes may wait for it too (a /wait on another web
            # worker attaches to the id): each resolves its own future at once.
            self._shared.publish(prediction)
        return scheduler.deliver(prediction)

    def _relayed(self, prediction: Prediction) -> None:
        """A delivery another process received (through the coordinator)."""
        if self._scheduler is not None:
            self._scheduler.deliver(prediction)

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
            NotFoundError: no such prediction (fresh ones may 404 for a since_seconds).
            APIError: another error answer.
            TransportError: no usable answer after the retries.
            InvalidArgumentError: an id that cannot be one (empty, with ``/``,
                ``..`` or a control character; nothing is sent).
            ArgumentTypeError: an id that is not a ``str``.
        """
        operations = self._running_operations()
        return await operations.get(check_prediction_id(prediction_id))

    @property
    def transport_name(self) -> str | None:
        """``"httpx"``, ``"aiohttp"``, ``"custom"`` or ``"injected"`` once open."""
        return None if self._session is None else self._session.transport_name

    def __repr__(self) -> str:
        return (
            f"AtlasClient(base_url={self._config.base_url!r},"
            f" state={self._life.state.value})"
        )
