"""
Signed webhook delivery: the emulator's one piece of background work.

Theory of operation
-------------------
A submit with ``webhook_url`` schedules one delivery for the moment its
prediction ends (``ready_at``, decided at creation like everything else about
it), later by ``Faults.webhook_delay`` Atlas seconds; a share
``Faults.webhook_loss`` of deliveries is dropped there (counted as
``webhooks_lost``), drawn from the seeded random source.
`WebhookDispatcher` keeps the deliveries in a heap keyed by clock time. Its
`WebhookDispatcher.run` loop sleeps until the earliest is due, woken early when
an earlier one is scheduled (as the client's scheduler is), and starts one
attempt task per due delivery, at most ``MAX_CONCURRENT_ATTEMPTS`` at once, so a
receiver that hangs delays no other delivery.

An attempt builds the body once, in Atlas's F18 shape, with the poll answer's
``data`` at ``ready_at`` as the payload: a webhook and a poll of one prediction
carry the same result. It signs ``b"<timestamp>." + body`` with the emulator's
Ed25519 key (`SigningKey`, or any `WebhookSigning`) at the attempt's own wall
time, so a redelivery has a fresh timestamp and signature. Then it POSTs the
body with the five ``X-AtlasCloud-Webhook-*`` headers. A 2xx ends the
delivery. A non-2xx, a connection error or a timeout schedules the next attempt
on Atlas's ladder (`EmulatorConfig.webhook_retry_after`: 10 s, 20 s, 40 s ...
capped at 30 min, divided by ``time_scale``) until ``webhook_max_attempts`` have
failed. Delivery is at least once, as on Atlas: a receiver that handled a
delivery and then answered 500 gets it again.

Sending is injected as a `WebhookSender`; `http_sender` wraps an
``httpx.AsyncClient`` (real sockets, or ``httpx.ASGITransport`` to call an app
in-process). Stopping `run` cancels the attempts in flight; the queue stays.

Unlike Atlas, which takes only public https URLs, the emulator accepts any
absolute http(s) URL (``_validate.webhook_url_problem``), so tests can receive
webhooks on ``http://127.0.0.1``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import attrs
import httpx

from ._catalog import MediaKind
from ._config import EmulatorConfig
from ._signing import BARE_SIGNATURE_HEADER, SIGNATURE_HEADER, WebhookSigning
from ._state import PredictionRecord
from ._stats import EmulatorStats

__all__ = [
    "EVENT_TYPES",
    "MAX_CONCURRENT_ATTEMPTS",
    "WebhookDispatcher",
    "WebhookSender",
    "http_sender",
    "webhook_body",
]

WebhookSender = Callable[[str, Mapping[str, str], bytes], Awaitable[int]]
"""``send(url, headers, body) -> status``: one POST. Raise ``httpx.HTTPError`` or
``OSError`` when no answer came (both count as a failed attempt)."""

Sleep = Callable[[float], Awaitable[None]]

EVENT_TYPES: Mapping[MediaKind, str] = {
    MediaKind.IMAGE: "image.task.terminal",
    MediaKind.VIDEO: "video.task.terminal",
    MediaKind.AUDIO: "audio.task.terminal",
}
"""The event type Atlas names a prediction's end by, per kind (``X-AtlasCloud-
Webhook-Event`` and the body's ``event_type``)."""

MAX_CONCURRENT_ATTEMPTS = 64
_SLACK = 0.001  # pop what is due within 1 ms, as the client's scheduler does


def http_sender(client: httpx.AsyncClient) -> WebhookSender:
    """
    Return a `WebhookSender` that POSTs with ``client`` (which it never closes).

    To deliver to an ASGI app in-process, give it
    ``httpx.AsyncClient(transport=httpx.ASGITransport(app,
    raise_app_exceptions=False))``: a crash in the app then counts as a 500.
    """

    async def send(url: str, headers: Mapping[str, str], body: bytes) -> int:
        response = await client.post(url, headers=dict(headers), content=body)
        return response.status_code

    return send


def webhook_body(record: PredictionRecord, origin: str, wall: float) -> bytes:
    """
    Return the F18 body Atlas sends when ``record`` ends.

    The payload is the poll answer's ``data`` at ``ready_at`` (URLs under
    ``origin``); a failed prediction's envelope says ``"ERROR"`` with its error.
    ``wall`` is the end time in unix seconds (``created_at``).
    """
    document: dict[str, Any] = {
        "session_id": record.id,
        "event_type": EVENT_TYPES[record.spec.kind],
        "status": "ERROR" if record.failed else "OK",
        "created_at": round(wall * 1000),  # epoch milliseconds on this wire
        "payload": record.to_wire(record.ready_at, origin),
        "error": record.error if record.failed else None,
    }
    # Built once per delivery: every attempt signs and sends these same bytes.
    return json.dumps(document, separators=(",", ":")).encode()


@attrs.define(eq=False)
class _Delivery:
    url: str
    record: PredictionRecord
    origin: str
    body: bytes | None = None
    attempts: int = 0


class WebhookDispatcher:
    """
    The queue of webhook deliveries and the loop that sends them.

    Args:
        config: the retry ladder and attempt limit.
        signer: the emulator's signing key.
        clock: clock seconds (the emulator's clock).
        wall: turns clock seconds into unix seconds (for the signed timestamp).
        stats: where attempts and outcomes are counted.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        signer: WebhookSigning,
        clock: Callable[[], float],
        wall: Callable[[float], float],
        stats: EmulatorStats,
    ) -> None:
        self._config = config
        self._signer = signer
        self._clock = clock
        self._wall = wall
        self._stats = stats
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._seq = itertools.count()
        self._sleep_scope: anyio.CancelScope | None = None
        self._sleeping_until = math.inf
        self._random = random.Random(f"webhooks:{config.seed}")

    @property
    def pending(self) -> int:
        """Deliveries waiting for their next attempt."""
        return len(self._heap)

    def schedule(self, url: str, record: PredictionRecord, origin: str) -> None:
        """
        Deliver ``record``'s end to ``url`` when it is ready, retrying on failure.

        Synchronous, for the request handler. The body (`webhook_body`, output
        URLs under ``origin``) is built at the first attempt, once.
        """
        self._stats.webhooks_scheduled += 1
        faults = self._config.faults
        if faults.webhook_loss and self._random.random() < faults.webhook_loss:
            self._stats.webhooks_lost += 1
            return
        delay = faults.webhook_delay / self._config.time_scale
        self._push(record.ready_at + delay, _Delivery(url, record, origin))

    def clear(self) -> None:
        """Forget every delivery not attempted yet (``reset(state=True)``)."""
        self._heap.clear()

    async def run(
        self,
        send: WebhookSender,
        sleep: Sleep,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Send deliveries as they fall due, until cancelled."""
        limiter = anyio.CapacityLimiter(MAX_CONCURRENT_ATTEMPTS)
        async with anyio.create_task_group() as tg:
            task_status.started()
            while True:
                now = self._clock()
                while self._heap and self._heap[0][0] <= now + _SLACK:
                    _, _, delivery = heapq.heappop(self._heap)
                    tg.start_soon(self._attempt, delivery, send, limiter)
                wake = self._heap[0][0] if self._heap else math.inf
                with anyio.CancelScope() as scope:
                    self._sleep_scope, self._sleeping_until = scope, wake
                    if wake == math.inf:
                        await anyio.sleep_forever()
                    else:
                        await sleep(wake - now)
                self._sleep_scope, self._sleeping_until = None, math.inf

    def _push(self, at: float, delivery: _Delivery) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), delivery))
        # Wake the loop only if this is due before it planned to wake.
        if self._sleep_scope is not None and at < self._sleeping_until:
            self._sleep_scope.cancel()
            self._sleeping_until = -math.inf

    async def _attempt(
        self, delivery: _Delivery, send: WebhookSender, limiter: anyio.CapacityLimiter
    ) -> None:
        async with limiter:
            stats = self._stats
            delivery.attempts += 1
            stats.webhook_attempts += 1
            record = delivery.record
            if delivery.body is None:
                wall = self._wall(record.ready_at)
                delivery.body = webhook_body(record, delivery.origin, wall)
            headers = self._signer.sign(
                delivery.body,
                webhook_id=record.id,
                event_type=EVENT_TYPES[record.spec.kind],
                timestamp=self._wall(self._clock()),
            )
            place = self._config.webhook_signature
            if place != "ed25519":
                # After the HMAC's retirement the bare header carries Ed25519 (W13).
                signature = headers[SIGNATURE_HEADER]
                if place == "bare":
                    del headers[SIGNATURE_HEADER]
                headers[BARE_SIGNATURE_HEADER] = signature
            headers["Content-Type"] = "application/json"
            try:
                status: int | None = await send(delivery.url, headers, delivery.body)
            except (httpx.HTTPError, OSError):
                status = None
        if status is not None and 200 <= status < 300:
            stats.webhooks_delivered += 1
            return
        stats.webhook_failures += 1
        if delivery.attempts >= self._config.webhook_max_attempts:
            stats.webhooks_abandoned += 1
            return
        delay = self._config.webhook_retry_after(delivery.attempts)
        self._push(self._clock() + delay, delivery)
