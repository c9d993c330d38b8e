"""The wire contract (docs/wire.md): paths, bodies, envelopes, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from atlas_async._core.errors import (
    APIError,
    AtlasError,
    AuthenticationError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PredictionFailedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from atlas_async._core.models import (
    Kind,
    ModelInfo,
    Prediction,
    PredictionStatus,
    UploadedMedia,
)
from atlas_async._wire import parse as _wire

NOW = 1_700_000_000.0
UTC = timezone.utc
Status = PredictionStatus


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _outcome(call: Callable[[], object]) -> object:
    """The call's result, or the AtlasError it raised."""
    try:
        return call()
    except AtlasError as exc:
        return exc


def _poll(payload: object, status_code: int = 200, **kwargs: Any) -> Prediction:
    return _wire.parse_prediction(status_code, {}, _json(payload), now=NOW, **kwargs)


def _prediction(**fields: Any) -> Prediction:
    return Prediction(**{"id": "p-1", "status": Status.PROCESSING, **fields})


# --- docs/wire.md, "Sample answers": the bodies verbatim -----------------------

F1 = {"code": 200, "data": {"id": "prediction_abc123", "status": "starting"}}
F2_DATA = {
    "id": "8ba2926c6bd642049f4d17dd68ea6785",
    "model": "kwaivgi/kling-v3.0-pro/image-to-video",
    "outputs": None,
    "urls": {
        "get": "https://api.atlascloud.ai/api/v1/model/prediction/8ba2926c6bd642049f4d17dd68ea6785"
    },
    "status": "processing",
}
F2 = {"code": 200, "message": "", "data": F2_DATA}
F3 = {
    "code": 200,
    "data": {
        "id": "prediction-id",
        "status": "created",
        "outputs": None,
        "urls": {"get": "https://api.atlascloud.ai/api/v1/model/prediction/{id}"},
    },
}
F4 = {"code": 200, "data": {"id": "prediction_id"}}
F5 = {"data": {"id": "pred-1", "status": "processing", "outputs": None, "error": None}}
F6 = {
    "id": "pred_abc123",
    "status": "processing",
    "model": "model-name",
    "created_at": "2025-01-01T00:00:00Z",
}
F7 = {
    "code": 200,
    "data": {
        "id": "prediction_abc123",
        "status": "completed",
        "outputs": ["https://cdn.atlascloud.ai/generated/xxx.png"],
    },
}
F8 = {
    "data": {
        "id": "pred_abc123",
        "status": "completed",
        "outputs": ["https://storage.atlascloud.ai/outputs/result.mp4"],
        "metrics": {"predict_time": 45.2},
        "created_at": "2025-01-01T00:00:00Z",
    }
}
F9 = {
    "code": 200,
    "data": {
        "status": "completed",
        "outputs": ["https://dashscope-result-sgp...image-url.png"],
        "has_nsfw_contents": None,
        "error": "",
    },
}
F10 = {
    "created_at": "2019-08-24T14:15:22Z",
    "has_nsfw_contents": [True],
    "id": "string",
    "model": "string",
    "outputs": ["string"],
    "status": "string",
    "urls": {},
}
F11 = {
    "code": 200,
    "data": {"id": "…", "status": "failed", "error": "…", "error_code": 1039},
}
F12 = {"code": 401, "msg": "unauthorized", "request_id": "…", "data": None}
F13 = {"code": 401, "msg": "unauthorized"}
F14 = {"code": 404, "msg": "not found"}
F15 = {"code": 402, "msg": "insufficient balance", "data": None}
F16 = {
    "error": {
        "type": "invalid_request_error",
        "code": "invalid_date_range",
        "message": "end_date must be after start_date",
        "param": "end_date",
    },
    "request_id": "req_…",
}
F17 = {
    "code": 200,
    "data": {
        "download_url": "https://atlas-img.oss-accelerate-overseas.aliyuncs.com/media/xxx.jpg",
        "filename": "photo.jpg",
        "size": 123456,
    },
}
F18 = {
    "session_id": "session-123",
    "event_type": "image.task.terminal",
    "status": "OK",
    "created_at": 1700000000000,
    "payload": {
        "model": "google/nano-banana-2/text-to-image",
        "status": "completed",
        "outputs": ["https://cdn.atlascloud.test/a.png"],
    },
}
F19 = {
    "id": "7hm7nbwarxrm80cnq1yvmxz4m4",
    "logs": "...",
    "urls": {"cancel": "http://example.com", "result": "http://example.com"},
    "model": "black-forest-labs/flux-dev",
    "output": ["https://replicate.delivery/..."],
    "status": "processing",
    "created_at": "2025-03-21T11:36:30.151Z",
    "has_nsfw_contents": [False],
}

# The Predictions guide's failed bodies: the Chinese copy wraps it in {"data"},
# the Korean one is bare (docs/wire.md, "Envelopes").
SEED_ERROR = "Invalid parameter: resolution not supported by this model"
SEED_ZH = {
    "data": {
        "id": "prediction-id",
        "status": "failed",
        "error": SEED_ERROR,
        "outputs": [],
    }
}
SEED_KO = {"status": "failed", "error": SEED_ERROR}

NEW_YEAR_2025 = datetime(2025, 1, 1, tzinfo=UTC)

FIXTURES = [
    pytest.param(
        _wire.parse_submit,
        200,
        F1,
        {},
        Prediction,
        {"id": "prediction_abc123", "status": Status.STARTING, "outputs": ()},
        id="F1-submit-starting",
    ),
    pytest.param(
        _wire.parse_submit,
        200,
        F2,
        {},
        Prediction,
        {
            "id": "8ba2926c6bd642049f4d17dd68ea6785",
            "status": Status.PROCESSING,
            "model": "kwaivgi/kling-v3.0-pro/image-to-video",
            "outputs": (),
            "urls": F2_DATA["urls"],
            "raw": F2_DATA,
        },
        id="F2-submit-realistic",
    ),
    pytest.param(
        _wire.parse_submit,
        200,
        F3,
        {},
        Prediction,
        {"id": "prediction-id", "status": Status.CREATED, "status_raw": "created"},
        id="F3-submit-created",
    ),
    pytest.param(
        _wire.parse_submit,
        200,
        F4,
        {},
        Prediction,
        {"id": "prediction_id", "status": Status.CREATED, "status_raw": ""},
        id="F4-submit-id-only",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F5,
        {},
        Prediction,
        {"id": "pred-1", "status": Status.PROCESSING, "error": None, "outputs": ()},
        id="F5-data-without-code",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F6,
        {},
        Prediction,
        {
            "id": "pred_abc123",
            "status": Status.PROCESSING,
            "model": "model-name",
            "created_at": NEW_YEAR_2025,
            "raw": F6,
        },
        id="F6-bare-processing",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F7,
        {},
        Prediction,
        {
            "id": "prediction_abc123",
            "status": Status.COMPLETED,
            "outputs": ("https://cdn.atlascloud.ai/generated/xxx.png",),
        },
        id="F7-completed",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F8,
        {},
        Prediction,
        {
            "status": Status.COMPLETED,
            "outputs": ("https://storage.atlascloud.ai/outputs/result.mp4",),
            "metrics": {"predict_time": 45.2},
            "created_at": NEW_YEAR_2025,
        },
        id="F8-completed-metrics",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F9,
        {"prediction_id": "polled-9"},
        Prediction,
        {
            "id": "polled-9",
            "status": Status.COMPLETED,
            "has_nsfw_contents": None,
            "error": None,
            "raw": F9["data"],
        },
        id="F9-completed-no-id",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F10,
        {},
        Prediction,
        {
            "id": "string",
            "status": Status.UNKNOWN,
            "status_raw": "string",
            "outputs": ("string",),
            "has_nsfw_contents": (True,),
            "created_at": datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC),
            "urls": {},
        },
        id="F10-schema-rendering",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F11,
        {},
        Prediction,
        {"id": "…", "status": Status.FAILED, "error": "…", "error_code": 1039},
        id="F11-failed-in-200",
    ),
    pytest.param(
        _wire.parse_prediction,
        401,
        F12,
        {"prediction_id": "p-12"},
        AuthenticationError,
        {
            "status_code": 401,
            "message": "unauthorized",
            "request_id": "…",
            "prediction_id": "p-12",
            "body": F12,
        },
        id="F12-401-envelope",
    ),
    pytest.param(
        _wire.parse_submit,
        401,
        F13,
        {},
        AuthenticationError,
        {"status_code": 401, "message": "unauthorized", "request_id": None},
        id="F13-401-live",
    ),
    pytest.param(
        _wire.parse_prediction,
        404,
        F14,
        {"prediction_id": "p-14"},
        NotFoundError,
        {"status_code": 404, "message": "not found", "prediction_id": "p-14"},
        id="F14-404-live",
    ),
    pytest.param(
        _wire.parse_submit,
        402,
        F15,
        {},
        InsufficientBalanceError,
        {"status_code": 402, "message": "insufficient balance", "body": F15},
        id="F15-402-balance",
    ),
    pytest.param(
        _wire.parse_models,
        400,
        F16,
        {},
        InvalidRequestError,
        {
            "status_code": 400,
            "message": "end_date must be after start_date",
            "request_id": "req_…",
        },
        id="F16-billing-error-object",
    ),
    pytest.param(
        _wire.parse_upload,
        200,
        F17,
        {},
        UploadedMedia,
        {
            "url": "https://atlas-img.oss-accelerate-overseas.aliyuncs.com/media/xxx.jpg",
            "filename": "photo.jpg",
            "size": 123456,
        },
        id="F17-upload",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F18,
        {},
        Prediction,
        {
            "id": "session-123",
            "status": Status.COMPLETED,
            "model": "google/nano-banana-2/text-to-image",
            "outputs": ("https://cdn.atlascloud.test/a.png",),
            "raw": F18["payload"],
        },
        id="F18-webhook-delivery",
    ),
    pytest.param(
        _wire.parse_prediction,
        200,
        F19,
        {},
        Prediction,
        {
            "id": "7hm7nbwarxrm80cnq1yvmxz4m4",
            "status": Status.PROCESSING,
            "outputs": ("https://replicate.delivery/...",),
            "has_nsfw_contents": (False,),
            "urls": {"cancel": "http://example.com", "result": "http://example.com"},
            "created_at": datetime(2025, 3, 21, 11, 36, 30, 151000, tzinfo=UTC),
        },
        id="F19-replicate-style",
    ),
]


class TestFixtures:
    @pytest.mark.parametrize(
        ("parse", "status_code", "payload", "kwargs", "expected_type", "expected"),
        FIXTURES,
    )
    def test_fixture_reads_as_pinned(
        self,
        parse: Callable[..., object],
        status_code: int,
        payload: object,
        kwargs: dict[str, Any],
        expected_type: type,
        expected: dict[str, object],
    ) -> None:
        """Each sample answer (F1-F19) parses to the pinned model or error."""
        result = _outcome(
            lambda: parse(status_code, {}, _json(payload), now=NOW, **kwargs)
        )
        assert type(result) is expected_type
        assert {name: getattr(result, name) for name in expected} == expected

    def test_fixture_without_id_and_no_polled_id_is_unexpected(self) -> None:
        """F9 names no id; without the polled id there is nothing to identify it."""
        with pytest.raises(UnexpectedResponseError, match="no prediction id") as info:
            _poll(F9)
        assert info.value.body == F9
        assert info.value.status_code == 200

    def test_failed_fixture_becomes_prediction_failed_error(self) -> None:
        """F11's failure in HTTP 200 becomes a PredictionFailedError with its code."""
        error = _wire.prediction_failure(_poll(F11))
        assert isinstance(error, PredictionFailedError)
        assert (error.error, error.error_code, error.status) == (
            "…",
            1039,
            Status.FAILED,
        )


class TestSeeds:
    def test_chinese_seed_failed_body_parses(self) -> None:
        """The Chinese guide's wrapped failed body reads as FAILED with its text."""
        prediction = _poll(SEED_ZH)
        assert (prediction.id, prediction.status, prediction.outputs) == (
            "prediction-id",
            Status.FAILED,
            (),
        )
        assert prediction.error == SEED_ERROR

    def test_korean_seed_bare_failed_body_parses_with_polled_id(self) -> None:
        """The Korean guide's bare failed body reads as FAILED under the polled id."""
        prediction = _poll(SEED_KO, prediction_id="p-ko")
        assert (prediction.id, prediction.status, prediction.error) == (
            "p-ko",
            Status.FAILED,
            SEED_ERROR,
        )
        assert prediction.raw == SEED_KO

    def test_korean_seed_bare_failed_body_is_not_an_error_answer(self) -> None:
        """A bare body's string ``error`` is a failed prediction, not an API error."""
        assert _wire.error_from_response(200, {}, _json(SEED_KO), now=NOW) is None

    @pytest.mark.parametrize(
        ("payload", "prediction_id"),
        [
            pytest.param(SEED_ZH, None, id="zh"),
            pytest.param(SEED_KO, "prediction-id", id="ko"),
        ],
    )
    def test_seed_failure_message_names_id_and_server_text(
        self, payload: object, prediction_id: str | None
    ) -> None:
        """The failure raised for a seed body is one line with the id and the text."""
        error = _wire.prediction_failure(_poll(payload, prediction_id=prediction_id))
        assert isinstance(error, PredictionFailedError)
        assert str(error) == f"prediction prediction-id failed: {SEED_ERROR}"
        assert error.prediction_id == "prediction-id"


# --- errors -------------------------------------------------------------------

STATUS_CLASSES = [
    pytest.param(400, InvalidRequestError, id="400"),
    pytest.param(401, AuthenticationError, id="401"),
    pytest.param(402, InsufficientBalanceError, id="402"),
    pytest.param(403, PermissionDeniedError, id="403"),
    pytest.param(404, NotFoundError, id="404"),
    pytest.param(413, InvalidRequestError, id="413"),
    pytest.param(422, InvalidRequestError, id="422"),
    pytest.param(429, RateLimitError, id="429"),
    pytest.param(451, PermissionDeniedError, id="451"),
    pytest.param(500, ServerError, id="500"),
    pytest.param(502, ServerError, id="502"),
    pytest.param(503, ServerError, id="503"),
    pytest.param(504, ServerError, id="504"),
]

IN_30_SECONDS = format_datetime(datetime.fromtimestamp(NOW + 30, tz=UTC), usegmt=True)

ERROR_VARIANTS = [
    pytest.param(
        {"request_id": "req-body"},
        {"X-Request-ID": "req-header"},
        "req-body",
        None,
        id="request-id-from-body",
    ),
    pytest.param({}, {"x-request-id": "req-header"}, "req-header", None, id="header"),
    pytest.param({}, {"Retry-After": "7"}, None, 7.0, id="retry-after-seconds"),
    pytest.param({}, {"Retry-After": IN_30_SECONDS}, None, 30.0, id="http-date"),
    pytest.param({"retry_after": 12.5}, {}, None, 12.5, id="retry-after-json"),
]


class TestErrorFromResponse:
    @pytest.mark.parametrize(
        ("extra", "headers", "request_id", "retry_after"), ERROR_VARIANTS
    )
    @pytest.mark.parametrize(("status_code", "error_class"), STATUS_CLASSES)
    def test_status_maps_to_error_with_its_attributes(
        self,
        status_code: int,
        error_class: type[APIError],
        extra: dict[str, object],
        headers: dict[str, str],
        request_id: str | None,
        retry_after: float | None,
    ) -> None:
        """Each documented status gives its class, status, text, request id, wait."""
        payload = {"code": status_code, "msg": "server says no", "data": None, **extra}
        error = _wire.error_from_response(
            status_code, headers, _json(payload), now=NOW, prediction_id="p-1"
        )
        assert type(error) is error_class
        assert (error.status_code, error.message, error.prediction_id) == (
            status_code,
            "server says no",
            "p-1",
        )
        assert (error.request_id, error.retry_after) == (request_id, retry_after)
        assert error.body == payload

    @pytest.mark.parametrize("status_code", [200, 201, 202, 204])
    def test_success_is_no_error(self, status_code: int) -> None:
        """A 2xx whose envelope says 200 is no error."""
        body = _json({"code": 200, "message": "", "data": {"id": "x"}})
        assert _wire.error_from_response(status_code, {}, body, now=NOW) is None

    @pytest.mark.parametrize("status_code", [301, 408, 418, 499])
    def test_other_non_2xx_is_plain_api_error(self, status_code: int) -> None:
        """A non-2xx status outside the table is an APIError, not a subclass."""
        error = _wire.error_from_response(status_code, {}, b"{}", now=NOW)
        assert type(error) is APIError
        assert error.status_code == status_code

    def test_unlisted_5xx_is_server_error(self) -> None:
        """Every 5xx is a ServerError, documented or not."""
        error = _wire.error_from_response(599, {}, b"", now=NOW)
        assert type(error) is ServerError
        assert error.message == "HTTP 599"

    @pytest.mark.parametrize(
        ("status_code", "text"),
        [
            pytest.param(400, "Insufficient balance", id="400"),
            pytest.param(403, "insufficient account balance, top up", id="403"),
            pytest.param(500, "INSUFFICIENT BALANCE", id="500"),
        ],
    )
    def test_insufficient_balance_text_wins_over_status(
        self, status_code: int, text: str
    ) -> None:
        """A message about an insufficient balance classifies whatever the status."""
        body = _json({"code": status_code, "msg": text})
        error = _wire.error_from_response(status_code, {}, body, now=NOW)
        assert type(error) is InsufficientBalanceError
        assert error.status_code == status_code

    def test_html_page_is_server_error_with_its_title(self) -> None:
        """A proxy's HTML 502 page gives a ServerError named by the page's title."""
        page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body>"
        error = _wire.error_from_response(502, {}, page.encode(), now=NOW)
        assert type(error) is ServerError
        assert (error.message, error.body) == ("502 Bad Gateway", page)

    def test_html_page_without_title_reads_as_its_text(self) -> None:
        """Markup without a title is stripped of its tags and flattened."""
        page = b"<html><body><h1>Service\nUnavailable</h1></body></html>"
        error = _wire.error_from_response(503, {}, page, now=NOW)
        assert type(error) is ServerError
        assert error.message == "Service Unavailable"

    def test_plain_text_body_is_the_message_on_one_line(self) -> None:
        """A non-JSON body's text is the message, flattened to one line."""
        error = _wire.error_from_response(500, {}, b"upstream\n  exploded\r\n", now=NOW)
        assert type(error) is ServerError
        assert (error.message, error.body) == (
            "upstream exploded",
            "upstream\n  exploded\r\n",
        )

    @pytest.mark.parametrize(
        ("status_code", "body", "message"),
        [
            pytest.param(502, b"", "HTTP 502 Bad Gateway", id="empty"),
            pytest.param(503, b"   \n", "HTTP 503 Service Unavailable", id="blank"),
            pytest.param(500, b"{}", "HTTP 500 Internal Server Error", id="empty-json"),
            pytest.param(
                504, b'{"msg": ""}', "HTTP 504 Gateway Timeout", id="empty-msg"
            ),
            pytest.param(502, b"<html></html>", "HTTP 502 Bad Gateway", id="bare-html"),
            pytest.param(429, b"[1, 2]", "HTTP 429 Too Many Requests", id="json-list"),
        ],
    )
    def test_silent_error_still_has_a_readable_message(
        self, status_code: int, body: bytes, message: str
    ) -> None:
        """An error whose body says nothing is named by its HTTP status."""
        error = _wire.error_from_response(status_code, {}, body, now=NOW)
        assert error is not None
        assert error.message == message

    def test_invalid_utf8_body_is_read_with_replacements(self) -> None:
        """Bytes that are not UTF-8 still give a message instead of a crash."""
        error = _wire.error_from_response(500, {}, b"bad \xff byte", now=NOW)
        assert error is not None
        assert error.message == "bad \ufffd byte"

    def test_long_message_is_capped(self) -> None:
        """A very long server text is cut to 300 characters, ending with an ellipsis."""
        error = _wire.error_from_response(500, {}, b"x" * 1000, now=NOW)
        assert error is not None
        assert len(error.message) == 300
        assert error.message.endswith("…")

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({"msg": "from msg", "message": "no", "error": "no"}, id="msg"),
            pytest.param({"message": "from msg", "error": "no"}, id="message"),
            pytest.param({"error": "from msg"}, id="error-string"),
            pytest.param({"error": {"message": "from msg"}}, id="error-object"),
            pytest.param({"error": {"msg": "from msg"}}, id="error-object-msg"),
            pytest.param({"msg": " ", "data": {"error": "from msg"}}, id="data-error"),
            pytest.param("from msg", id="json-string"),
        ],
    )
    def test_message_is_read_from_msg_message_or_error(self, payload: object) -> None:
        """The text comes from msg, then message, then error, then data's own."""
        error = _wire.error_from_response(400, {}, _json(payload), now=NOW)
        assert error is not None
        assert error.message == "from msg"

    def test_envelope_code_is_more_specific_than_the_proxy_status(self) -> None:
        """An HTTP 500 carrying code 402 classifies by the envelope's code."""
        error = _wire.error_from_response(500, {}, _json({"code": 402}), now=NOW)
        assert type(error) is InsufficientBalanceError
        assert error.status_code == 402

    def test_envelope_success_code_never_hides_an_http_error(self) -> None:
        """An HTTP 503 carrying code 200 is still a 503."""
        error = _wire.error_from_response(503, {}, _json({"code": 200}), now=NOW)
        assert type(error) is ServerError
        assert error.status_code == 503

    @pytest.mark.parametrize(
        ("payload", "request_id"),
        [
            pytest.param({"request_id": 12345}, "12345", id="number"),
            pytest.param({"error": {"request_id": "req-e"}}, "req-e", id="in-error"),
            pytest.param({"request_id": ""}, "req-h", id="empty-falls-back"),
            pytest.param({"request_id": True}, "req-h", id="bool-falls-back"),
        ],
    )
    def test_request_id_sources(self, payload: object, request_id: str) -> None:
        """The request id is read from the body first, else from X-Request-ID."""
        headers = {"X-REQUEST-ID": "req-h"}
        error = _wire.error_from_response(400, headers, _json(payload), now=NOW)
        assert error is not None
        assert error.request_id == request_id

    def test_non_json_error_takes_request_id_from_header(self) -> None:
        """A text body has no request id of its own; the header gives it."""
        headers = {"X-Request-ID": "req-h"}
        error = _wire.error_from_response(502, headers, b"bad gateway", now=NOW)
        assert error is not None
        assert error.request_id == "req-h"


class TestErrorsInsideHttp200:
    def test_error_envelope_in_200_raises_its_class(self) -> None:
        """F12 inside HTTP 200 raises AuthenticationError with the envelope's code."""
        with pytest.raises(AuthenticationError) as info:
            _poll(F12, prediction_id="p-1")
        assert (info.value.status_code, info.value.message) == (401, "unauthorized")
        assert info.value.prediction_id == "p-1"

    @pytest.mark.parametrize(
        ("code", "error_class"),
        [
            pytest.param("401", AuthenticationError, id="string-401"),
            pytest.param(" 429 ", RateLimitError, id="padded-429"),
            pytest.param(500, ServerError, id="500"),
            pytest.param(1039, APIError, id="platform-code"),
        ],
    )
    def test_non_2xx_code_in_200_is_an_error(
        self, code: object, error_class: type[APIError]
    ) -> None:
        """Any numeric code outside 2xx inside HTTP 200 is an error answer."""
        error = _wire.error_from_response(
            200, {}, _json({"code": code, "data": None}), now=NOW
        )
        assert type(error) is error_class
        assert error.status_code == int(str(code))

    def test_platform_code_without_text_names_the_code(self) -> None:
        """A non-HTTP code with no text reads as "error code N"."""
        error = _wire.error_from_response(200, {}, _json({"code": 1039}), now=NOW)
        assert error is not None
        assert error.message == "error code 1039"

    def test_error_object_in_200_is_an_error(self) -> None:
        """F16's OpenAI-style error object is an error even inside HTTP 200."""
        error = _wire.error_from_response(200, {}, _json(F16), now=NOW)
        assert type(error) is APIError
        assert (error.status_code, error.request_id) == (200, "req_…")

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({"code": "200", "data": {"id": "x"}}, id="string-200"),
            pytest.param({"code": True, "data": {"id": "x"}}, id="bool-code"),
            pytest.param({"code": "ok", "data": {"id": "x"}}, id="word-code"),
            pytest.param({"error": {"message": "m"}, "id": "x"}, id="error-beside-id"),
        ],
    )
    def test_success_shapes_in_200_are_no_error(self, payload: object) -> None:
        """A code "200", a non-numeric code, or an error beside a result is no error."""
        assert _wire.error_from_response(200, {}, _json(payload), now=NOW) is None

    def test_code_200_with_null_data_on_a_poll_is_unexpected(self) -> None:
        """``{"code": 200, "data": null}`` is no prediction: the contract is broken."""
        payload = {"code": 200, "data": None}
        with pytest.raises(
            UnexpectedResponseError, match=r"got null @ \$\.data"
        ) as info:
            _poll(payload, prediction_id="p-1")
        assert (info.value.body, info.value.prediction_id) == (payload, "p-1")

    def test_string_code_200_parses(self) -> None:
        """``"code": "200"`` is compared as a number and the prediction parses."""
        prediction = _poll({"code": "200", "data": {"id": "x", "status": "done"}})
        assert prediction.status is Status.COMPLETED


class TestParseRetryAfter:
    @pytest.mark.parametrize(
        ("headers", "payload", "expected"),
        [
            pytest.param({"Retry-After": "120"}, None, 120.0, id="seconds"),
            pytest.param({"retry-after": " 1.5 "}, None, 1.5, id="fraction"),
            pytest.param({"Retry-After": "-3"}, None, 0.0, id="negative"),
            pytest.param({"Retry-After": IN_30_SECONDS}, None, 30.0, id="http-date"),
            pytest.param(
                {"Retry-After": "Tue, 14 Nov 2023 22:13:50 -0000"},
                None,
                30.0,
                id="http-date-no-zone",
            ),
            pytest.param(
                {"Retry-After": "Mon, 13 Nov 2023 00:00:00 GMT"},
                None,
                0.0,
                id="http-date-past",
            ),
            pytest.param({"Retry-After": "31536000"}, None, 31536000.0, id="huge"),
            pytest.param(
                {"Retry-After": "soon"}, {"retry_after": 4}, 4.0, id="bad-hdr"
            ),
            pytest.param({"Retry-After": "5"}, {"retry_after": 9}, 5.0, id="hdr-wins"),
            pytest.param({}, {"retry_after": "6"}, 6.0, id="json-string"),
            pytest.param({}, {"error": {"retry_after": 8}}, 8.0, id="json-in-error"),
            pytest.param({}, {"retry_after": -2}, 0.0, id="json-negative"),
            pytest.param({}, {"retry_after": True}, None, id="json-bool"),
            pytest.param({}, {"retry_after": "nan"}, None, id="json-nan"),
            pytest.param({}, {"retry_after": "inf"}, None, id="json-inf"),
            pytest.param({}, {"retry_after": [1]}, None, id="json-list"),
            pytest.param({}, {"retry_after": "later"}, None, id="json-word"),
            pytest.param({}, {"error": "slow down"}, None, id="nothing"),
            pytest.param({}, "text body", None, id="text-body"),
        ],
    )
    def test_retry_after_sources(
        self, headers: dict[str, str], payload: object, expected: float | None
    ) -> None:
        """The wait comes from the header (seconds or HTTP-date), else the JSON body."""
        assert _wire.parse_retry_after(headers, payload, now=NOW) == expected

    @pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset")
    def test_http_date_without_zone_is_utc_in_any_local_zone(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A "-0000" date is read as UTC even when the machine's zone is not UTC."""
        monkeypatch.setenv("TZ", "America/New_York")
        time.tzset()
        try:
            headers = {"Retry-After": "Tue, 14 Nov 2023 22:13:50 -0000"}
            assert _wire.parse_retry_after(headers, None, now=NOW) == 30.0
        finally:
            monkeypatch.undo()
            time.tzset()


# --- statuses, paths, bodies --------------------------------------------------


class TestParseStatus:
    @pytest.mark.parametrize(
        ("raw", "status"),
        [
            ("created", Status.CREATED),
            ("starting", Status.STARTING),
            ("queued", Status.QUEUED),
            ("pending", Status.QUEUED),
            ("processing", Status.PROCESSING),
            ("running", Status.PROCESSING),
            ("completed", Status.COMPLETED),
            ("succeeded", Status.COMPLETED),
            ("success", Status.COMPLETED),
            ("complete", Status.COMPLETED),
            ("done", Status.COMPLETED),
            ("failed", Status.FAILED),
            ("error", Status.FAILED),
            ("timeout", Status.TIMEOUT),
            ("timed_out", Status.TIMEOUT),
            ("canceled", Status.CANCELED),
            ("cancelled", Status.CANCELED),
        ],
    )
    def test_synonym_folds_to_status(self, raw: str, status: PredictionStatus) -> None:
        """Each wire synonym folds to its status, in any case."""
        assert _wire.parse_status(raw) is status
        assert _wire.parse_status(f" {raw.upper()} ") is status

    @pytest.mark.parametrize("raw", ["Timed-Out", "timed out"])
    def test_dashes_and_spaces_read_as_underscores(self, raw: str) -> None:
        """``Timed-Out`` and ``timed out`` read as ``timed_out``."""
        assert _wire.parse_status(raw) is Status.TIMEOUT

    @pytest.mark.parametrize("raw", ["string", "OK", "", None, 3, ["done"]])
    def test_anything_else_is_unknown_and_not_terminal(self, raw: object) -> None:
        """An unlisted status, or a non-string, is UNKNOWN, which keeps polling."""
        status = _wire.parse_status(raw)
        assert status is Status.UNKNOWN
        assert not status.is_terminal

    def test_status_enum_passes_through(self) -> None:
        """An already folded status is returned as is."""
        assert _wire.parse_status(Status.FAILED) is Status.FAILED

    def test_unknown_status_keeps_its_raw_string(self) -> None:
        """A prediction with an unlisted status keeps the string in status_raw."""
        prediction = _poll({"data": {"id": "x", "status": "Warming_Up"}})
        assert (prediction.status, prediction.status_raw) == (
            Status.UNKNOWN,
            "Warming_Up",
        )


class TestPaths:
    @pytest.mark.parametrize(
        ("kind", "path"),
        [
            (Kind.IMAGE, "/model/generateImage"),
            (Kind.VIDEO, "/model/generateVideo"),
            (Kind.AUDIO, "/model/generateAudio"),
            ("video", "/model/generateVideo"),
        ],
    )
    def test_submit_path_per_kind(self, kind: Kind | str, path: str) -> None:
        """Each kind, or its value, picks its submit endpoint."""
        assert _wire.submit_path(kind) == path

    def test_submit_path_rejects_unknown_kind(self) -> None:
        """An unknown kind is a configuration error."""
        with pytest.raises(ConfigurationError, match="unknown kind"):
            _wire.submit_path("text")

    def test_fixed_paths(self) -> None:
        """Upload and catalog paths are relative to the media base URL."""
        assert (_wire.UPLOAD_PATH, _wire.MODELS_PATH) == (
            "/model/uploadMedia",
            "/models",
        )

    @pytest.mark.parametrize(
        ("prediction_id", "path"),
        [
            ("8ba2926c6bd6", "/model/prediction/8ba2926c6bd6"),
            ("../../models", "/model/prediction/..%2F..%2Fmodels"),
            ("a/b?c=1#d", "/model/prediction/a%2Fb%3Fc%3D1%23d"),
            ("a b", "/model/prediction/a%20b"),
        ],
    )
    def test_prediction_path_quotes_the_id(self, prediction_id: str, path: str) -> None:
        """The id is percent-encoded whole, so it cannot leave its path segment."""
        assert _wire.prediction_path(prediction_id) == path

    @pytest.mark.parametrize("prediction_id", ["", ".", "..", 7])
    def test_prediction_path_rejects_ids_that_name_no_segment(
        self, prediction_id: Any
    ) -> None:
        """Empty, dot-segment and non-string ids are refused."""
        with pytest.raises(ConfigurationError, match="invalid prediction id"):
            _wire.prediction_path(prediction_id)


class TestBuildSubmitBody:
    def test_body_is_flat_and_params_are_not_changed(self) -> None:
        """The model and the params sit side by side; params is copied."""
        params = {"prompt": "a red fox", "num_images": 2}
        body = _wire.build_submit_body("google/nano-banana-2/text-to-image", params)
        assert body == {
            "model": "google/nano-banana-2/text-to-image",
            "prompt": "a red fox",
            "num_images": 2,
        }
        assert params == {"prompt": "a red fox", "num_images": 2}

    @pytest.mark.parametrize("model", [None, 3, "", "   "])
    def test_model_must_be_a_non_empty_string(self, model: Any) -> None:
        """A missing, blank or non-string model is a configuration error."""
        with pytest.raises(ConfigurationError, match="non-empty string"):
            _wire.build_submit_body(model, {})

    def test_model_inside_params_is_refused(self) -> None:
        """A ``model`` key among the params is ambiguous and refused."""
        with pytest.raises(ConfigurationError, match="'model' given as a parameter"):
            _wire.build_submit_body("m", {"model": "other"})

    def test_non_string_parameter_names_are_refused(self) -> None:
        """JSON object keys are strings; other keys are refused, not coerced."""
        params: Mapping[Any, Any] = {1: "x"}
        with pytest.raises(ConfigurationError, match="parameter names"):
            _wire.build_submit_body("m", params)


# --- answers ------------------------------------------------------------------


class TestParseSubmit:
    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({"code": 200, "id": "p-1", "data": {}}, id="top-level-id"),
            pytest.param({"data": {"prediction_id": "p-1"}}, id="prediction_id"),
            pytest.param({"data": {"predictionId": "p-1"}}, id="predictionId"),
            pytest.param({"data": {"request_id": "p-1"}}, id="request_id"),
            pytest.param({"data": {"id": "p-1", "request_id": "r"}}, id="id-first"),
            pytest.param({"id": "p-1"}, id="bare"),
        ],
    )
    def test_id_fallbacks(self, payload: object) -> None:
        """The id is data.id, else the top-level id or data's other id names."""
        prediction = _wire.parse_submit(200, {}, _json(payload), now=NOW)
        assert prediction.id == "p-1"

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({"code": 200, "data": {"id": 123}}, id="data-id"),
            pytest.param({"code": 200, "id": 123, "data": {}}, id="top-level-id"),
        ],
    )
    def test_numeric_id_is_read_as_text(self, payload: object) -> None:
        """An id sent as a number becomes its decimal text."""
        assert _wire.parse_submit(200, {}, _json(payload), now=NOW).id == "123"

    def test_top_level_id_leaves_raw_as_received(self) -> None:
        """Using the top-level id does not write it into raw."""
        payload = {"code": 200, "id": "p-1", "data": {"status": "queued"}}
        prediction = _wire.parse_submit(200, {}, _json(payload), now=NOW)
        assert prediction.raw == {"status": "queued"}

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({"code": 200, "data": {"status": "created"}}, id="no-id"),
            pytest.param({"code": 200, "data": {"id": ""}}, id="empty-id"),
            pytest.param({"code": 200, "id": "p-1", "data": None}, id="null-data"),
        ],
    )
    def test_answer_without_id_is_unexpected_with_body(self, payload: object) -> None:
        """A submit answer with no usable id raises with the body attached."""
        with pytest.raises(UnexpectedResponseError) as info:
            _wire.parse_submit(200, {}, _json(payload), now=NOW)
        assert (info.value.body, info.value.status_code) == (payload, 200)

    def test_non_json_answer_is_unexpected_with_text(self) -> None:
        """A 2xx that is not JSON raises with the text as its body."""
        with pytest.raises(
            UnexpectedResponseError, match="expected a JSON answer"
        ) as e:
            _wire.parse_submit(200, {}, b"<html>OK</html>", now=NOW)
        assert e.value.body == "<html>OK</html>"

    def test_error_answer_raises_its_class(self) -> None:
        """A 429 to a submit raises RateLimitError with the wait."""
        headers = {"Retry-After": "2"}
        with pytest.raises(RateLimitError) as info:
            _wire.parse_submit(
                429, headers, _json({"code": 429, "msg": "slow"}), now=NOW
            )
        assert info.value.retry_after == 2.0


class TestParsePrediction:
    def test_body_id_wins_over_polled_id(self) -> None:
        """The polled id is only a fallback for a body that names none."""
        prediction = _poll({"data": {"id": "server-id"}}, prediction_id="polled")
        assert prediction.id == "server-id"

    def test_raw_is_the_data_object_and_extra_keys_survive(self) -> None:
        """raw keeps the data object as received, unknown keys included."""
        data = {"id": "x", "status": "processing", "progress": 40, "completed_at": "…"}
        assert _poll({"code": 200, "message": "", "data": data}).raw == data

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            pytest.param(b"", "expected a JSON answer, got ''", id="empty"),
            pytest.param(b"OK", "expected a JSON answer, got 'OK'", id="text"),
            pytest.param(b"[1]", "expected a JSON object, got list", id="list"),
            pytest.param(b'"done"', "expected a JSON object, got str", id="string"),
            pytest.param(b'{"data": [1]}', r"got list @ \$\.data", id="data-list"),
        ],
    )
    def test_shapeless_answers_are_unexpected(self, body: bytes, match: str) -> None:
        """A 2xx that is not a JSON object with a prediction raises, id attached."""
        with pytest.raises(UnexpectedResponseError, match=match) as info:
            _wire.parse_prediction(200, {}, body, now=NOW, prediction_id="p-1")
        assert (info.value.prediction_id, info.value.status_code) == ("p-1", 200)

    def test_wrong_field_type_is_unexpected_with_path(self) -> None:
        """``outputs`` as a number raises with its JSON path and the body."""
        payload = {"code": 200, "data": {"id": "x", "outputs": 3}}
        with pytest.raises(UnexpectedResponseError) as info:
            _poll(payload)
        assert str(info.value) == (
            "unexpected answer shape: "
            "expected a list of output URLs, got int @ $.data.outputs"
        )
        assert info.value.body == payload

    def test_webhook_delivery_is_named_by_its_session_id(self) -> None:
        """A delivery read here is the prediction its session_id names, exactly as
        WebhookVerifier reads it (the one delivery reader)."""
        payload = {
            "session_id": "session-123",
            "event_type": "image.task.terminal",
            "status": "OK",
            "payload": {"id": "pred-7", "status": "failed"},
        }
        prediction = _poll(payload)
        assert (prediction.id, prediction.status) == ("session-123", Status.FAILED)


class TestParseUpload:
    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({"code": 200, "data": {"download_url": "u"}}, id="download"),
            pytest.param({"code": 200, "data": {"url": "u"}}, id="data-url"),
            pytest.param({"url": "u"}, id="top-level-url"),
            pytest.param({"code": 200, "data": None, "url": "u"}, id="null-data"),
            pytest.param({"code": 200, "data": {"x": 1}, "url": "u"}, id="url-beside"),
            pytest.param(
                {"data": {"download_url": "u", "url": "other"}}, id="download-first"
            ),
        ],
    )
    def test_url_sources(self, payload: object) -> None:
        """The URL is data.download_url, else data.url, else a top-level url."""
        assert _wire.parse_upload(200, {}, _json(payload), now=NOW).url == "u"

    def test_upload_details_are_read(self) -> None:
        """The vendor's ``type``, ``filename`` and ``size`` (even as text) are read."""
        payload = {
            "code": 200,
            "message": "",
            "data": {
                "type": "image/png",
                "download_url": "u",
                "filename": "fox.png",
                "size": "2048",
            },
        }
        media = _wire.parse_upload(200, {}, _json(payload), now=NOW)
        assert (media.filename, media.size, media.content_type) == (
            "fox.png",
            2048,
            "image/png",
        )
        assert media.raw == payload["data"]

    def test_answer_without_url_is_unexpected(self) -> None:
        """An upload answer with no URL anywhere raises with the body attached."""
        payload = {"code": 200, "data": {"filename": "fox.png"}}
        with pytest.raises(UnexpectedResponseError, match="no file URL") as info:
            _wire.parse_upload(200, {}, _json(payload), now=NOW)
        assert info.value.body == payload

    def test_too_large_upload_is_invalid_request(self) -> None:
        """A 413 to an upload raises InvalidRequestError."""
        with pytest.raises(InvalidRequestError):
            _wire.parse_upload(413, {}, b"Request Entity Too Large", now=NOW)


CATALOG = [
    {
        "uuid": "u-1",
        "model": "google/nano-banana-2/text-to-image",
        "type": "Image",
        "displayName": "Nano Banana 2",
        "categories": ["TEXT-TO-IMAGE"],
        "display_console": True,
    },
    {"model": "bytedance/seed-audio-1.0", "type": "Audio", "display_name": "Seed"},
    {"model": "some/llm", "type": "Text", "categories": None},
]


class TestParseModels:
    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param({"code": "200", "data": CATALOG}, id="envelope-string-code"),
            pytest.param({"code": 200, "message": "", "data": CATALOG}, id="envelope"),
            pytest.param(CATALOG, id="bare-list"),
        ],
    )
    def test_catalog_entries_are_read(self, payload: object) -> None:
        """Each entry gives a ModelInfo with its type, display name and categories."""
        models = _wire.parse_models(200, {}, _json(payload), now=NOW)
        assert models == [
            ModelInfo(
                model="google/nano-banana-2/text-to-image",
                type="Image",
                display_name="Nano Banana 2",
                categories=("TEXT-TO-IMAGE",),
            ),
            ModelInfo(
                model="bytedance/seed-audio-1.0", type="Audio", display_name="Seed"
            ),
            ModelInfo(model="some/llm", type="Text"),
        ]
        assert [m.kind for m in models] == [Kind.IMAGE, Kind.AUDIO, None]
        assert models[0].raw == CATALOG[0]

    @pytest.mark.parametrize(
        ("payload", "match"),
        [
            pytest.param(
                {"code": 200, "data": None}, r"at \$\.data, got null", id="null"
            ),
            pytest.param(
                {"code": 200, "data": {}}, r"at \$\.data, got dict", id="object"
            ),
            pytest.param("models", r"at \$, got str", id="string"),
            pytest.param(
                {"data": [{"model": "a"}, {"type": "Image"}]},
                r"without a model id @ \$\.data\[1\]",
                id="entry-without-model",
            ),
        ],
    )
    def test_catalog_of_wrong_shape_is_unexpected(
        self, payload: object, match: str
    ) -> None:
        """No list, or an entry without a model id, raises with the body attached."""
        with pytest.raises(UnexpectedResponseError, match=match) as info:
            _wire.parse_models(200, {}, _json(payload), now=NOW)
        assert info.value.body == payload

    def test_catalog_error_answer_raises(self) -> None:
        """A 503 to the catalog raises ServerError."""
        with pytest.raises(ServerError):
            _wire.parse_models(503, {}, b"", now=NOW)


class TestPredictionFailure:
    @pytest.mark.parametrize(
        ("status", "words"),
        [
            (Status.FAILED, "failed"),
            (Status.TIMEOUT, "timed out on the server"),
            (Status.CANCELED, "was canceled on the server"),
        ],
    )
    def test_server_side_end_without_result_is_a_failure(
        self, status: PredictionStatus, words: str
    ) -> None:
        """FAILED, TIMEOUT and CANCELED give a failure carrying text and code."""
        prediction = _prediction(status=status, error="content policy", error_code=1039)
        error = _wire.prediction_failure(prediction)
        assert isinstance(error, PredictionFailedError)
        assert str(error) == f"prediction p-1 {words}: content policy (error code 1039)"
        assert (error.prediction_id, error.prediction, error.status) == (
            "p-1",
            prediction,
            status,
        )
        assert (error.error, error.error_code) == ("content policy", 1039)

    def test_failure_without_text_still_names_the_prediction(self) -> None:
        """A failure with no server text reads as "prediction ID failed"."""
        error = _wire.prediction_failure(_prediction(status=Status.FAILED))
        assert error is not None
        assert (str(error), error.error, error.error_code) == (
            "prediction p-1 failed",
            None,
            None,
        )

    def test_multi_line_server_text_becomes_one_line(self) -> None:
        """The message stays one line even when the server's text is not."""
        prediction = _prediction(status=Status.FAILED, error="bad\ninput\n\tsize")
        error = _wire.prediction_failure(prediction)
        assert error is not None
        assert str(error) == "prediction p-1 failed: bad input size"
        assert error.error == "bad\ninput\n\tsize"

    def test_string_error_code_arrives_as_int(self) -> None:
        """An error_code sent as "1039" is the int 1039 on the failure."""
        payload = {"data": {"id": "x", "status": "failed", "error_code": "1039"}}
        error = _wire.prediction_failure(_poll(payload))
        assert error is not None
        assert error.error_code == 1039

    def test_completed_without_outputs_is_a_failure(self) -> None:
        """A COMPLETED prediction with no outputs is a failure, not a success."""
        error = _wire.prediction_failure(_prediction(status=Status.COMPLETED))
        assert isinstance(error, PredictionFailedError)
        assert (str(error), error.status) == (
            "prediction p-1 completed without outputs",
            Status.COMPLETED,
        )

    @pytest.mark.parametrize(
        "prediction",
        [
            pytest.param(
                _prediction(status=Status.COMPLETED, outputs=("u",)), id="done"
            ),
            pytest.param(_prediction(status=Status.PROCESSING), id="processing"),
            pytest.param(_prediction(status=Status.CREATED), id="created"),
            pytest.param(_prediction(status=Status.UNKNOWN, error="?"), id="unknown"),
        ],
    )
    def test_success_or_running_is_no_failure(self, prediction: Prediction) -> None:
        """A completed prediction with outputs, or one still running, gives None."""
        assert _wire.prediction_failure(prediction) is None
