"""
The request handler: one synchronous function from `Request` to `Response`.

It never sleeps and never touches a socket; it reads the clock once per request
and returns a `Response` that may ask its adapter to wait (``delay``) or to drop
the connection (``drop``). The ASGI app and the in-process transport are thin
adapters around `EmulatorCore.handle`. Bodies reach it already read: the
adapters stream an authenticated upload to disk (`form_receiver`) and cap
every other body at ``max_body_bytes`` (`too_large`).

The order of checks on every request (query strings, ``utm_*`` included, are
read only by the history and billing routes):

1. ``GET /api/v1/models``, ``GET /files/{name}``, the webhook key set
   ``GET /api/v1/webhooks/jwks.json`` and the loopback-only ``/_emulator/*``
   control routes need no key;
2. anything else needs ``Authorization: Bearer <key>``: 401 otherwise, on any
   path, known or not (the real gateway authenticates before it routes);
3. the per-key request rate (429 "rate limit exceeded", nothing created), so
   submits, polls and uploads all spend the key's budget, as on Atlas;
4. the route: unknown paths 404, wrong methods 405;
5. per route, see `_submit`, `_poll` (also under ``.../{id}/`` and
   ``/model/result/{id}``), `_upload`, ``_history`` (``GET
   /api/v1/model/history``) and `_billing` (``/public/v1/...``). A key's
   predictions and money belong to its account, named by a digest of the key
   (``_billing.account_id``). A submit is refused before
   create, in this order: a drawn 5xx, 400 (invalid), 402 (no balance), 429
   for the key's ``max_in_flight``, then 429 "too many concurrent tasks for
   this model" for the model's in-flight limit. The 402 comes for a
   ``no_balance_keys`` key, or when the key's available balance is used up
   or below the prediction's price.

A submit with ``webhook_url`` also hands its record to the `WebhookDispatcher`
(``_webhooks``), which POSTs the signed end of the prediction when it is ready;
that loop runs only while the emulator runs (``async with emulator`` or
``serve``), the handler itself stays synchronous.

A poll of a failed or timed-out prediction whose model answers verdicts
(``WireStyle.verdict_5xx_share``) is HTTP 500 with the verdict in the body
(`PredictionRecord.verdict`): a decision, not a fault, so it is not counted as
one.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import time
from collections.abc import Callable, Mapping

from ._billing import (
    BALANCE_PATH,
    COSTS_PATH,
    USAGE_PATH,
    BillingError,
    account_id,
    balance_body,
    usage_body,
)
from ._catalog import MediaKind
from ._config import EmulatorConfig, FaultTarget
from ._faults import NO_FAULTS, FaultInjector, HttpFaults, RateLimiter
from ._files import classify
from ._history import history_page
from ._http import Request, Response, error_response, json_response, success
from ._multipart import FormPart, FormReceiver, boundary_of
from ._signing import SigningKey, WebhookSigning
from ._state import (
    API,
    COMPLETED,
    CONTENT_TYPES,
    FILES_PREFIX,
    POLL_PREFIX,
    RESULT_PREFIX,
    TERMINAL,
    TIMEOUT,
    PredictionStore,
    price_of,
    requested_outputs,
)
from ._stats import EmulatorStats
from ._validate import validate_submit
from ._webhooks import WebhookDispatcher

__all__ = ["EmulatorCore"]

SUBMIT_PATHS = {
    f"{API}/model/generateImage": MediaKind.IMAGE,
    f"{API}/model/generateVideo": MediaKind.VIDEO,
    f"{API}/model/generateAudio": MediaKind.AUDIO,
}
UPLOAD_PATH = f"{API}/model/uploadMedia"
MODELS_PATH = f"{API}/models"
JWKS_PATH = f"{API}/webhooks/jwks.json"
HISTORY_PATH = f"{API}/model/history"
POLL_ROUTE = f"GET {POLL_PREFIX}{{id}}"
RESULT_ROUTE = f"GET {RESULT_PREFIX}{{id}}"
CONTROL_PREFIX = "/_emulator/"

MODEL_BUSY = "too many concurrent tasks for this model"

_BILLING_PATHS = frozenset({BALANCE_PATH, USAGE_PATH, COSTS_PATH})
_NAMED_PATHS = frozenset(
    {UPLOAD_PATH, MODELS_PATH, JWKS_PATH, HISTORY_PATH, *_BILLING_PATHS}
)
_OUTPUT_NAME = re.compile(r"^([0-9a-f]{32})-(\d+)\.(png|mp4|wav)$")


def _is_loopback(host: str | None) -> bool:
    return host is not None and (
        host.startswith("127.") or host in {"::1", "localhost", "testclient"}
    )


class EmulatorCore:
    """
    The emulator's state and its request handler.

    Args:
        config: the configuration.
        clock: returns clock seconds (``time.monotonic``, or ``FakeClock.now``).
        signer: the webhook signing key (a fresh one by default).
    """

    def __init__(
        self,
        config: EmulatorConfig,
        clock: Callable[[], float],
        *,
        signer: WebhookSigning | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        faults = config.faults
        epoch = config.epoch if config.epoch is not None else time.time()
        self.stats = EmulatorStats()
        self.store = PredictionStore(
            config, random.Random(config.seed), origin=clock(), epoch=epoch
        )
        # A separate stream, so faults never shift ids, latencies or outcomes.
        self.injector = FaultInjector(faults, random.Random(f"faults:{config.seed}"))
        self.limiter = RateLimiter(faults.rps, faults.rps_burst) if faults.rps else None
        self._request_ids = itertools.count(1)
        self._owners: dict[str, str] = {}
        self._retry_after = (
            [(b"retry-after", f"{faults.retry_after:g}".encode())]
            if faults.retry_after is not None
            else None
        )
        self.signer: WebhookSigning = (
            signer if signer is not None else SigningKey.generate()
        )
        self.webhooks = WebhookDispatcher(
            config, self.signer, clock, self.store.wall_time, self.stats
        )
        # The catalog's `code` is the string "200" (the vendor's own type for
        # this list, W12), unlike the integer of every other endpoint.
        self._catalog = {
            "code": "200",
            "message": "",
            "data": [m.to_wire() for m in config.models],
        }

    # -- entry point ---------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request (see the module docstring for the order of checks)."""
        request_id = f"req_{next(self._request_ids):016x}"
        path, method = request.path, request.method
        if path.startswith(CONTROL_PREFIX):
            return self._control(request, request_id)
        stats = self.stats
        if path.startswith(POLL_PREFIX):
            endpoint = POLL_ROUTE if method == "GET" else f"{method} <unknown>"
        elif path.startswith(RESULT_PREFIX):
            endpoint = RESULT_ROUTE if method == "GET" else f"{method} <unknown>"
        elif path in SUBMIT_PATHS or path in _NAMED_PATHS:
            endpoint = f"{method} {path}"
        elif path.startswith(FILES_PREFIX):
            endpoint = f"{method} {FILES_PREFIX}{{name}}"
        else:
            endpoint = f"{method} <unknown>"
        stats.record_request(endpoint)
        try:
            response = self._route(request, request_id, method, path)
        finally:
            if request.form is not None:  # parts not kept: their files go
                for part in request.form.values():
                    if part.path is not None:
                        with contextlib.suppress(OSError):
                            part.path.unlink()
        if not response.drop:
            stats.record_status(response.status)
        return response

    def _route(
        self, request: Request, request_id: str, method: str, path: str
    ) -> Response:
        if path == MODELS_PATH and method == "GET":
            return self._guarded(
                FaultTarget.MODELS,
                request_id,
                lambda: json_response(200, self._catalog, request_id),
            )
        if path.startswith(FILES_PREFIX) and method in ("GET", "HEAD"):
            name = path[len(FILES_PREFIX) :]
            return self._guarded(
                FaultTarget.FILES,
                request_id,
                lambda: self._file(name, request_id, head=method == "HEAD"),
            )
        if path == JWKS_PATH and method == "GET":
            return json_response(200, self.signer.jwks(), request_id)
        key = self._authenticate(request)
        if key is None:
            return error_response(401, request_id)
        now = self.clock()
        if self.limiter is not None and not self.limiter.allow(key, now):
            self.stats.record_refusal("rate")
            return error_response(429, request_id, extra=self._retry_after)
        prefix = (
            POLL_PREFIX
            if path.startswith(POLL_PREFIX)
            else RESULT_PREFIX
            if path.startswith(RESULT_PREFIX)
            else None
        )
        if prefix is not None:
            if method != "GET":
                return error_response(405, request_id)
            # Clients retry ".../{id}/" (W15); "/model/result/{id}" is the same
            # answer under the path many third-party clients poll first (W16).
            prediction_id = path[len(prefix) :].removesuffix("/")
            return self._poll(request, prediction_id, request_id, now)
        kind = SUBMIT_PATHS.get(path)
        if kind is not None or path == UPLOAD_PATH:
            if method != "POST":
                return error_response(405, request_id)
            if kind is None:
                return self._guarded(
                    FaultTarget.UPLOAD,
                    request_id,
                    lambda: self._upload(request, request_id),
                )
            return self._submit(request, key, request_id, now, kind)
        if path in _BILLING_PATHS:
            if method != "GET":
                return error_response(405, request_id)
            return self._billing(request, self._owner(key), request_id, now)
        if path == HISTORY_PATH:
            if method != "GET":
                return error_response(405, request_id)
            page = history_page(
                self.store.by_key.get(self._owner(key), ()),
                request.query,
                now,
                request.origin,
                self.store.wall_time,
            )
            return json_response(200, page, request_id)
        if path in (MODELS_PATH, JWKS_PATH):
            return error_response(405, request_id)
        return error_response(404, request_id)

    def _owner(self, key: str) -> str:
        """The account id of ``key`` (what its predictions are filed under)."""
        owner = self._owners.get(key)
        if owner is None:
            owner = account_id(key)
            if len(self._owners) < 65536:
                self._owners[key] = owner
        return owner

    def _authenticate(self, request: Request) -> str | None:
        return self._authenticate_headers(request.headers)

    def _authenticate_headers(self, headers: Mapping[str, str]) -> str | None:
        header = headers.get("authorization") or ""
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        allowed = self.config.api_keys
        return key if allowed is None or key in allowed else None

    def _guarded(
        self, target: FaultTarget, request_id: str, answer: Callable[[], Response]
    ) -> Response:
        """Answer with ``answer()``, under the HTTP faults drawn for ``target``."""
        faults = self.injector.draw(target)
        if faults is NO_FAULTS:
            return answer()
        if faults.server_error is not None:  # refused before any work
            self.stats.record_fault("server_error")
            return error_response(faults.server_error, request_id)
        return self._after(answer(), faults)

    def _after(self, response: Response, faults: HttpFaults) -> Response:
        """Apply the faults that strike after the work is done."""
        stats = self.stats
        if faults.drop:
            stats.record_fault("drop")
            return Response(0, [], b"", drop=True, delay=faults.delay)
        if faults.malformed:
            stats.record_fault("malformed")
            cut = response.body[: max(1, len(response.body) // 2)]
            headers = [(k, v) for k, v in response.headers if k != b"content-length"]
            headers.append((b"content-length", str(len(cut)).encode()))
            response = Response(200, headers, cut)
        if faults.delay:
            stats.record_fault("slow")
            response.delay = faults.delay
        return response

    # -- submit ----------------------------------------------------------------

    def _submit(
        self,
        request: Request,
        key: str,
        request_id: str,
        now: float,
        kind: MediaKind,
    ) -> Response:
        faults = self.injector.draw(FaultTarget.SUBMIT)
        if faults.server_error is not None:  # refused before create
            self.stats.record_fault("server_error")
            return error_response(faults.server_error, request_id)
        store = self.store
        params, spec, problem = validate_submit(
            request.headers, request.body, lambda model: store.resolve(model, kind)
        )
        if params is None or spec is None:
            return error_response(400, request_id, problem)
        if key in self.config.no_balance_keys:
            return error_response(402, request_id)
        # Predictions belong to the key's account, named by a digest of the key:
        # the state file never holds a key.
        owner = self._owner(key)
        available = store.account(owner, now).available
        quote = price_of(spec, params, requested_outputs(spec, params), b"")
        if available <= 0.0 or available < quote:
            self.stats.record_fault("insufficient_balance")
            return error_response(402, request_id)
        model = spec.model
        limit = self.config.faults.max_in_flight
        if limit is not None and store.in_flight(owner, now) >= limit:
            self.stats.record_refusal("in_flight")
            return error_response(429, request_id, extra=self._retry_after)
        limit = self.config.faults.model_limit(model)
        if limit is not None and store.in_flight(owner, now, model) >= limit:
            self.stats.record_refusal("model_in_flight", model)
            return error_response(429, request_id, MODEL_BUSY, self._retry_after)
        body = request.body.decode("utf-8", "replace")
        record = store.create(spec, params, owner, now, body)
        self.stats.record_created(params)
        self.stats.record_in_flight(
            model, store.in_flight(owner, now), store.in_flight(owner, now, model)
        )
        if params.get("webhook_url") is not None:
            self.webhooks.schedule(params["webhook_url"], record, request.origin)
        if record.outcome == TIMEOUT:
            self.stats.record_fault("timeout")
        elif record.failed:
            self.stats.record_fault(
                "moderation" if record.error_code == 1039 else "failure"
            )
        data = {
            "id": record.id,
            "model": spec.model,
            "status": record.status(now),
            "outputs": None,
            "urls": {"get": f"{request.origin}{POLL_PREFIX}{record.id}"},
            "created_at": record.created_at,
            "has_nsfw_contents": None,
        }
        response = success(data, request_id)
        return response if faults is NO_FAULTS else self._after(response, faults)

    # -- billing ---------------------------------------------------------------

    def _billing(
        self, request: Request, owner: str, request_id: str, now: float
    ) -> Response:
        store = self.store
        if request.path == BALANCE_PATH:
            body = balance_body(store.account(owner, now), owner, request_id)
            return json_response(200, body, request_id)
        try:
            body = usage_body(
                store.by_key.get(owner, ()),
                owner,
                request.query,
                now,
                store.wall_time,
                request_id,
                costs=request.path == COSTS_PATH,
            )
        except BillingError as exc:
            return json_response(400, exc.body(request_id), request_id)
        return json_response(200, body, request_id)

    # -- poll ------------------------------------------------------------------

    def _poll(
        self, request: Request, prediction_id: str, request_id: str, now: float
    ) -> Response:
        record = self.store.predictions.get(prediction_id)
        self.stats.record_poll(record.id if record is not None else None)
        faults = self.injector.draw(FaultTarget.POLL)
        if faults.server_error is not None:
            self.stats.record_fault("server_error")
            return error_response(faults.server_error, request_id)
        if record is None:
            response = error_response(404, request_id)
        elif now < record.warm_until:
            self.stats.record_fault("warmup_404")
            response = error_response(404, request_id)
        elif record.verdict_5xx and record.status(now) in TERMINAL:
            # The verdict is the answer: HTTP 500, but a decision, not a fault.
            body = record.verdict(now, request.origin)
            response = json_response(500, body, request_id)
        else:
            response = success(record.to_wire(now, request.origin), request_id)
        return response if faults is NO_FAULTS else self._after(response, faults)

    # -- upload and files --------------------------------------------------------

    def _upload(self, request: Request, request_id: str) -> Response:
        form = request.form
        if form is None:  # a caller that did not stream the body (handle() direct)
            if len(request.body) > self.config.max_upload_bytes:
                return error_response(413, request_id)
            form = self.read_form(request.headers, request.body)
        part = form.get("file")
        if part is None:
            return error_response(400, request_id)
        # Atlas types an upload by its name (W9), not by what the part declares.
        content_type = classify(part.filename, part.content_type)
        upload = self.store.add_upload(
            part.filename or "file", content_type, path=part.path, data=part.data
        )
        part.path = None  # moved into place: no longer the request's to delete
        self.stats.uploads += 1
        payload = {
            "type": content_type,
            "download_url": f"{request.origin}{FILES_PREFIX}{upload.name}",
            "filename": upload.filename,
            "size": upload.size,
        }
        return success(payload, request_id)

    def read_form(self, headers: Mapping[str, str], body: bytes) -> dict[str, FormPart]:
        """Parse a whole multipart body held in memory (files still go to disk)."""
        receiver = self.form_receiver(headers)
        if receiver is None:
            return {}
        receiver.feed(body)
        return receiver.finish()

    def form_receiver(self, headers: Mapping[str, str]) -> FormReceiver | None:
        """
        Return a streaming reader for an upload's body, or None if its type is
        not multipart. It raises `TooLargeError` past ``max_upload_bytes``.
        """
        boundary = boundary_of(headers.get("content-type") or "")
        if boundary is None:
            return None
        files = self.store.files
        return FormReceiver(
            boundary, lambda: files.directory, self.config.max_upload_bytes
        )

    def accepts_upload(
        self, method: str, path: str, headers: Mapping[str, str]
    ) -> bool:
        """True when this request is an upload with a valid key: its body may
        stream to disk (anything else is read into memory, capped)."""
        return (
            method == "POST"
            and path == UPLOAD_PATH
            and self._authenticate_headers(headers) is not None
        )

    def too_large(self, method: str, path: str) -> Response:
        """Answer (and count) a body the adapter stopped reading: 413."""
        request_id = f"req_{next(self._request_ids):016x}"
        self.stats.record_request(f"{method} {path}")
        self.stats.record_status(413)
        return error_response(413, request_id)

    def _file(self, name: str, request_id: str, *, head: bool) -> Response:
        upload = self.store.uploads.get(name)
        if upload is not None:
            headers = [
                (b"content-type", upload.content_type.encode("latin-1", "replace")),
                (b"content-length", str(upload.size).encode()),
                (b"x-request-id", request_id.encode()),
            ]
            return Response(200, headers, b"", file=None if head else upload.path)
        match = _OUTPUT_NAME.match(name)
        record = self.store.predictions.get(match[1]) if match else None
        extension = record.extension if record is not None else None
        if (
            match is None
            or record is None
            or extension is None
            or record.status(self.clock()) != COMPLETED
            or int(match[2]) >= record.outputs
            or match[3] != extension
        ):
            return error_response(404, request_id)
        data = record.media(int(match[2]))
        headers = [
            (b"content-type", CONTENT_TYPES[extension].encode()),
            (b"content-length", str(len(data)).encode()),
            (b"x-request-id", request_id.encode()),
        ]
        return Response(200, headers, b"" if head else data)

    # -- control ---------------------------------------------------------------

    def _control(self, request: Request, request_id: str) -> Response:
        if not _is_loopback(request.client_host):
            return error_response(403, request_id)
        route = request.path[len(CONTROL_PREFIX) :]
        if route == "stats" and request.method == "GET":
            return json_response(200, self.stats.as_dict(), request_id)
        if route == "reset" and request.method == "POST":
            self.reset(state="state=1" in request.query)
            return json_response(
                200, {"code": 200, "message": "", "data": None}, request_id
            )
        return error_response(404, request_id)

    def close(self) -> None:
        """Close the state file (if any) and delete temporary upload folders."""
        self.store.close()

    def reset(self, *, state: bool = False) -> None:
        """Zero the stats and rate-limit buckets; with ``state``, forget predictions."""
        self.stats.reset()
        if self.limiter is not None:
            self.limiter.reset()
        if state:
            self.store.clear()
            self.webhooks.clear()
