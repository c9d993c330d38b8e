"""
Bad input costs nothing: every public call refuses a malformed argument with a
documented, typed error before a single byte is sent.

One table, one row per malformed input: the call, and the SDK error it must
raise (`InvalidArgumentError` and its `ArgumentTypeError`, both
`ConfigurationError`, so ``ValueError``; the type error is also a
``TypeError``). Each row runs against a client whose transport counts requests,
and asserts the count stays at zero: a refused submit is never billed.
"""

from __future__ import annotations

import inspect
import io
import math
import random
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from atlas_async import (
    AdaptivePolicy,
    ArgumentTypeError,
    AtlasClient,
    AtlasError,
    BackoffPolicy,
    ConfigurationError,
    ExponentialPolicy,
    FixedPolicy,
    GenerationRequest,
    InvalidArgumentError,
    Kind,
    Limits,
    Prediction,
    PredictionStatus,
    Retry,
    Timeouts,
)
from atlas_async.testing import FakeClock

KEY = "sk-validation-key-0123"
MODEL = "google/nano-banana-2/text-to-image"
NAN = math.nan
INF = math.inf


class CountingTransport(httpx.AsyncBaseTransport):
    """Answers like the API and counts every request that reaches it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and "generate" in path:
            data: object = {"id": "p1", "status": "created"}
        elif path.startswith("/api/v1/model/prediction/"):
            data = {"id": "p1", "status": "processing"}
        elif path.endswith("/uploadMedia"):
            data = {"download_url": "https://cdn.example/u.png"}
        elif path.endswith("/models"):
            data = []
        else:
            return httpx.Response(200, content=b"\x89PNG\r\n\x1a\n")
        return httpx.Response(200, json={"code": 200, "message": "", "data": data})


def completed() -> Prediction:
    return Prediction(
        id="p1",
        status=PredictionStatus.COMPLETED,
        outputs=("https://cdn.example/out.png",),
    )


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"x": value}
    return value


def circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


OpenCall = Callable[[AtlasClient, Path], Awaitable[object]]
Build = Callable[[], object]


@attrs.frozen
class Row:
    """A malformed input: how to make the call, and the error it must raise."""

    call: OpenCall | None = None  # on an open client
    build: Build | None = None  # a constructor (the client's or a public type)
    error: type[BaseException] = InvalidArgumentError


def client_kwargs(**options: Any) -> Build:
    def build() -> object:
        options.setdefault("api_key", KEY)
        options.setdefault("transport", CountingTransport())
        return AtlasClient(**options)

    return build


async def drain(iterator: Any) -> None:
    async for _ in iterator:
        pass


async def first_of(iterator: Any) -> object:
    return await iterator.__anext__()


def submit(**kwargs: Any) -> OpenCall:
    kwargs.setdefault("kind", "image")
    kwargs.setdefault("model", MODEL)
    return lambda client, _: client.submit(**kwargs)


def attach(prediction_id: object, **kwargs: Any) -> OpenCall:
    async def call(client: AtlasClient, _: Path) -> object:
        return client.attach(prediction_id, **kwargs)  # type: ignore[arg-type]

    return call


def get(prediction_id: object) -> OpenCall:
    return lambda client, _: client.get_prediction(prediction_id)  # type: ignore[arg-type]


def download(prediction: object = None, **options: Any) -> OpenCall:
    def call(client: AtlasClient, tmp: Path) -> Awaitable[object]:
        target = completed() if prediction is None else prediction
        return client.download(target, tmp / "out", **options)  # type: ignore[arg-type]

    return call


def many(requests: object, **options: Any) -> OpenCall:
    async def call(client: AtlasClient, _: Path) -> object:
        await drain(client.generate_many(requests, **options))  # type: ignore[arg-type]
        return None

    return call


TYPE = ArgumentTypeError
VALUE = InvalidArgumentError
CONFIG = ConfigurationError

ROWS: dict[str, Row] = {
    # -- AtlasClient(...) -------------------------------------------------------
    "client-api-key-int": Row(build=client_kwargs(api_key=12345), error=TYPE),
    "client-api-key-empty": Row(build=client_kwargs(api_key=""), error=CONFIG),
    "client-base-url-int": Row(build=client_kwargs(base_url=8080), error=TYPE),
    "client-base-url-ftp": Row(build=client_kwargs(base_url="ftp://x"), error=CONFIG),
    "client-timeout-negative": Row(build=client_kwargs(timeout=-1)),
    "client-timeout-nan": Row(build=client_kwargs(timeout=NAN)),
    "client-timeout-inf": Row(build=client_kwargs(timeout=INF)),
    "client-timeout-str": Row(build=client_kwargs(timeout="10"), error=TYPE),
    "client-max-in-flight-zero": Row(build=client_kwargs(max_in_flight=0)),
    "client-max-in-flight-float": Row(
        build=client_kwargs(max_in_flight=1.5), error=TYPE
    ),
    "client-max-in-flight-bool": Row(
        build=client_kwargs(max_in_flight=True), error=TYPE
    ),
    "client-max-concurrent-negative": Row(
        build=client_kwargs(max_concurrent_requests=-1)
    ),
    "client-rps-nan": Row(build=client_kwargs(requests_per_second=NAN)),
    "client-rps-inf": Row(build=client_kwargs(requests_per_second=INF)),
    "client-rps-str": Row(build=client_kwargs(requests_per_second="5"), error=TYPE),
    "client-poll-str": Row(build=client_kwargs(poll="fast"), error=TYPE),
    "client-poll-int": Row(build=client_kwargs(poll=3), error=TYPE),
    "client-poll-mapping-int": Row(build=client_kwargs(poll={"image": 3}), error=TYPE),
    "client-poll-mapping-unknown-kind": Row(
        build=client_kwargs(poll={"picture": FixedPolicy(1.0)})
    ),
    # Kind.IMAGE and "image" are one key now (a str enum): the case differs.
    "client-poll-mapping-kind-twice": Row(
        build=client_kwargs(poll={"image": FixedPolicy(1.0), "IMAGE": FixedPolicy(2.0)})
    ),
    "client-poll-policy-class": Row(build=client_kwargs(poll=FixedPolicy), error=TYPE),
    "client-limits-str": Row(build=client_kwargs(limits="fast"), error=TYPE),
    "client-retry-int": Row(build=client_kwargs(retry=3), error=TYPE),
    "client-poll-retry-int": Row(build=client_kwargs(poll_retry=3), error=TYPE),
    "client-max-retries-negative": Row(build=client_kwargs(max_retries=-1)),
    "client-transport-unknown": Row(build=client_kwargs(transport="pigeon")),
    "client-http-client-str": Row(
        build=lambda: AtlasClient(KEY, http_client="x"),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "client-clock-str": Row(build=client_kwargs(clock="now"), error=TYPE),
    "client-rng-int": Row(build=client_kwargs(rng=42), error=TYPE),
    "client-allow-insecure-str": Row(
        build=client_kwargs(allow_insecure_http="no"), error=TYPE
    ),
    # -- submit / submit_* / generate_* ----------------------------------------
    "submit-kind-unknown": Row(call=submit(kind="picture")),
    "submit-kind-int": Row(call=submit(kind=3), error=TYPE),
    "submit-model-empty": Row(call=submit(model="")),
    "submit-model-none": Row(call=submit(model=None), error=TYPE),
    "submit-model-nul": Row(call=submit(model="google/x\x00y")),
    "submit-model-newline": Row(call=submit(model="google/x\ny")),
    "submit-model-huge": Row(call=submit(model="m" * 5000)),
    "submit-timeout-negative": Row(call=submit(timeout=-5)),
    "submit-timeout-nan": Row(call=submit(timeout=NAN)),
    "submit-timeout-inf": Row(call=submit(timeout=INF)),
    "submit-timeout-str": Row(call=submit(timeout="5"), error=TYPE),
    "submit-timeout-bool": Row(call=submit(timeout=True), error=TYPE),
    "submit-poll-str": Row(call=submit(poll="fast"), error=TYPE),
    "submit-poll-int": Row(call=submit(poll=3), error=TYPE),
    "submit-poll-policy-class": Row(call=submit(poll=FixedPolicy), error=TYPE),
    "submit-params-list": Row(call=submit(params=[1, 2]), error=TYPE),
    "submit-params-nan": Row(call=submit(params={"seed": NAN})),
    "submit-params-inf": Row(call=submit(params={"guidance": INF})),
    "submit-params-nested-nan": Row(call=submit(params={"x": {"y": [1, {"z": -INF}]}})),
    "submit-params-object": Row(call=submit(params={"x": object()}), error=TYPE),
    "submit-params-bytes": Row(call=submit(params={"image": b"\x89PNG"}), error=TYPE),
    "submit-params-set": Row(call=submit(params={"tags": {"a", "b"}}), error=TYPE),
    "submit-params-decimal": Row(
        call=submit(params={"strength": Decimal("0.5")}), error=TYPE
    ),
    "submit-params-int-key": Row(call=submit(params={1: "x"}), error=TYPE),
    "submit-params-nested-tuple-key": Row(
        call=submit(params={"x": {(1, 2): "y"}}), error=TYPE
    ),
    "submit-params-circular": Row(call=submit(params={"x": circular()})),
    "submit-params-deep": Row(call=submit(params={"x": nested(100_000)})),
    "submit-params-lone-surrogate": Row(call=submit(params={"prompt": "a \ud800"})),
    "submit-params-model-key": Row(call=submit(params={"model": "other"})),
    "submit-image-kwarg-nan": Row(
        call=lambda client, _: client.submit_image(MODEL, seed=NAN)
    ),
    "submit-video-timeout-str": Row(
        call=lambda client, _: client.submit_video(MODEL, timeout="x"),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "generate-image-kwarg-object": Row(
        call=lambda client, _: client.generate_image(MODEL, prompt=object()),
        error=TYPE,
    ),
    "generate-audio-model-int": Row(
        call=lambda client, _: client.generate_audio(42),  # type: ignore[arg-type]
        error=TYPE,
    ),
    # -- attach ------------------------------------------------------------------
    "attach-id-empty": Row(call=attach("")),
    "attach-id-slash": Row(call=attach("a/b")),
    "attach-id-dotdot": Row(call=attach("..")),
    "attach-id-dotdot-inside": Row(call=attach("x/../y")),
    "attach-id-nul": Row(call=attach("abc\x00")),
    "attach-id-newline": Row(call=attach("abc\ndef")),
    "attach-id-huge": Row(call=attach("a" * 10_000)),
    "attach-id-zero-width": Row(call=attach("p\u200b1")),
    "attach-id-padded": Row(call=attach(" p1 ")),
    "attach-id-none": Row(call=attach(None), error=TYPE),
    "attach-id-int": Row(call=attach(123), error=TYPE),
    "attach-kind-unknown": Row(call=attach("p1", kind="picture")),
    "attach-timeout-negative": Row(call=attach("p1", timeout=-1)),
    "attach-timeout-str": Row(call=attach("p1", timeout="5"), error=TYPE),
    "attach-poll-str": Row(call=attach("p1", poll="fast"), error=TYPE),
    "attach-model-int": Row(call=attach("p1", model=5), error=TYPE),
    # -- get_prediction ------------------------------------------------------------
    "get-id-empty": Row(call=get("")),
    "get-id-slash": Row(call=get("a/b")),
    "get-id-backslash": Row(call=get("a\\b")),
    "get-id-dotdot": Row(call=get("../models")),
    "get-id-nul": Row(call=get("a\x00b")),
    "get-id-tab": Row(call=get("a\tb")),
    "get-id-del": Row(call=get("a\x7fb")),
    "get-id-none": Row(call=get(None), error=TYPE),
    "get-id-bytes": Row(call=get(b"p1"), error=TYPE),
    # -- deliver / as_completed -----------------------------------------------
    "deliver-str": Row(call=lambda client, _: _sync(client.deliver, "p1"), error=TYPE),
    "deliver-none": Row(call=lambda client, _: _sync(client.deliver, None), error=TYPE),
    "as-completed-none": Row(
        call=lambda client, _: first_of(client.as_completed(None)),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "as-completed-ints": Row(
        call=lambda client, _: first_of(client.as_completed([1, 2])),  # type: ignore[list-item]
        error=TYPE,
    ),
    # -- upload_media --------------------------------------------------------------
    "upload-int": Row(
        call=lambda client, _: client.upload_media(123),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "upload-none": Row(
        call=lambda client, _: client.upload_media(None),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "upload-missing-path": Row(
        call=lambda client, tmp: client.upload_media(tmp / "missing.png"),
        error=CONFIG,
    ),
    "upload-path-nul": Row(call=lambda client, _: client.upload_media("cat\x00.png")),
    "upload-text-stream": Row(
        call=lambda client, _: client.upload_media(io.StringIO("text")),  # type: ignore[arg-type]
        error=CONFIG,
    ),
    "upload-filename-int": Row(
        call=lambda client, _: client.upload_media(b"x", filename=5),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "upload-filename-crlf": Row(
        call=lambda client, _: client.upload_media(b"x", filename="a\r\nX-Evil: 1")
    ),
    # -- download ----------------------------------------------------------------
    "download-prediction-str": Row(call=download("p1"), error=TYPE),
    "download-directory-int": Row(
        call=lambda client, _: client.download(completed(), 5),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "download-unknown-option": Row(call=download(colour="red"), error=TYPE),
    "download-max-bytes-negative": Row(call=download(max_bytes=-1)),
    "download-max-concurrency-zero": Row(call=download(max_concurrency=0)),
    "download-retries-str": Row(call=download(retries="3"), error=TYPE),
    "download-name-prefix-int": Row(call=download(name_prefix=3), error=TYPE),
    # -- generate_many -------------------------------------------------------------
    "many-requests-none": Row(call=many(None), error=TYPE),
    # A bad request is reported as ConfigurationError naming its index.
    "many-request-int": Row(call=many([123]), error=CONFIG),
    "many-request-empty-model": Row(call=many([{"model": ""}]), error=CONFIG),
    "many-request-nan": Row(call=many([{"model": MODEL, "seed": NAN}]), error=CONFIG),
    "many-request-deep": Row(
        call=many([{"model": MODEL, "x": nested(100_000)}]), error=CONFIG
    ),
    "many-second-request-bad": Row(
        call=many([{"model": MODEL, "prompt": "ok"}, {"model": MODEL, "x": INF}]),
        error=CONFIG,
    ),
    "many-max-in-flight-str": Row(call=many([], max_in_flight="4"), error=TYPE),
    "many-timeout-nan": Row(call=many([], timeout=NAN)),
    "many-batch-timeout-str": Row(call=many([], batch_timeout="60"), error=TYPE),
    "many-download-concurrency-zero": Row(call=many([], download_concurrency=0)),
    "many-on-progress-int": Row(call=many([], on_progress=3), error=TYPE),
    "many-journal-int": Row(call=many([], journal=3), error=TYPE),
    "many-budget-negative": Row(call=many([], budget=-1)),
    "many-budget-nan": Row(call=many([], budget=NAN)),
    "many-check-balance-str": Row(call=many([], check_balance="no"), error=TYPE),
    # -- quote ---------------------------------------------------------------------
    "quote-requests-str": Row(
        call=lambda client, _: client.quote("a fox"),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "quote-request-int": Row(call=lambda client, _: client.quote([123]), error=CONFIG),  # type: ignore[list-item]
    # -- public value types -------------------------------------------------------
    "timeouts-nan": Row(build=lambda: Timeouts(connect=NAN)),
    "timeouts-str": Row(build=lambda: Timeouts(read="5"), error=TYPE),  # type: ignore[arg-type]
    "fixed-policy-nan": Row(build=lambda: FixedPolicy(NAN)),
    "fixed-policy-inf": Row(build=lambda: FixedPolicy(INF)),
    "fixed-policy-str": Row(build=lambda: FixedPolicy("2"), error=TYPE),  # type: ignore[arg-type]
    "fixed-policy-first-nan": Row(build=lambda: FixedPolicy(2.0, first=NAN)),
    "exponential-policy-factor-nan": Row(build=lambda: ExponentialPolicy(factor=NAN)),
    "exponential-policy-jitter-str": Row(
        build=lambda: ExponentialPolicy(jitter="0.1"),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "adaptive-policy-probes-float": Row(
        build=lambda: AdaptivePolicy(probes=1.5),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "adaptive-policy-cap-inf": Row(build=lambda: AdaptivePolicy(cap=INF)),
    "backoff-policy-nan": Row(build=lambda: BackoffPolicy(initial=NAN)),
    "backoff-policy-str": Row(
        build=lambda: BackoffPolicy(cap="8"),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "retry-attempts-zero": Row(build=lambda: Retry(attempts=0)),
    "retry-attempts-str": Row(
        build=lambda: Retry(attempts="3"),  # type: ignore[arg-type]
        error=TYPE,
    ),
    "limits-rps-nan": Row(build=lambda: Limits(requests_per_second=NAN), error=CONFIG),
    "generation-request-kind": Row(
        build=lambda: GenerationRequest("picture", MODEL), error=CONFIG
    ),
    "generation-request-deep": Row(
        build=lambda: GenerationRequest(Kind.IMAGE, MODEL, {"x": nested(100_000)})
    ),
}


async def _sync(function: Callable[..., object], *args: object) -> object:
    return function(*args)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(ROWS))
async def test_malformed_input_raises_typed_error_and_sends_nothing(
    name: str, tmp_path: Path
) -> None:
    """The documented error class, raised before any request leaves."""
    row = ROWS[name]
    transport = CountingTransport()
    if row.build is not None:
        with pytest.raises(AtlasError) as info:
            row.build()
    else:
        assert row.call is not None
        clock = FakeClock()
        client = AtlasClient(
            KEY, transport=transport, clock=clock, rng=random.Random(0)
        )
        async with client:
            with pytest.raises(AtlasError) as info:
                await row.call(client, tmp_path)
    assert isinstance(info.value, row.error), repr(info.value)
    assert isinstance(info.value, (ValueError, TypeError))
    assert transport.requests == []
    assert KEY not in str(info.value)


def test_the_table_covers_at_least_fifty_inputs() -> None:
    """Issue 13 found 19 of 52 malformed inputs untyped: the table is wider."""
    assert len(ROWS) >= 50


def test_the_errors_page_covers_every_public_call() -> None:
    """docs/errors.md has a bad-input row for each client call that takes
    arguments: a new call needs its row (and rows in ROWS)."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    section = page.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    calls = [
        name
        for name, member in inspect.getmembers(AtlasClient, inspect.isfunction)
        if not name.startswith("_") and len(inspect.signature(member).parameters) > 1
    ]
    missing = [name for name in calls if not re.search(rf"`{name}\b", section)]
    assert calls
    assert missing == []
