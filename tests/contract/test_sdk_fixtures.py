"""
The SDK's half of the contract for the conformance fixtures F1-F19: each literal
body, read by the public parse functions, gives the values written out here.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from atlas_async import (
    APIError,
    AuthenticationError,
    InsufficientBalanceError,
    InvalidRequestError,
    NotFoundError,
    Prediction,
    PredictionFailedError,
    PredictionStatus,
    UploadedMedia,
)
from atlas_async._wire.parse import (
    error_from_response,
    parse_prediction,
    parse_submit,
    parse_upload,
    prediction_failure,
)

from . import literals as lit

JSON = {"content-type": "application/json"}
NOW = 1_700_000_000.0
UTC = timezone.utc


def poll(body: bytes, status_code: int = 200, polled: str | None = None) -> Prediction:
    return parse_prediction(status_code, JSON, body, now=NOW, prediction_id=polled)


class TestSubmitAnswers:
    def test_f1_starting_reads_as_its_id_and_starting(self) -> None:
        """F1: the id, status STARTING, nothing else."""
        read = parse_submit(200, JSON, lit.F1_SUBMIT_STARTING, now=NOW)
        assert read == Prediction(
            id="prediction_abc123",
            status=PredictionStatus.STARTING,
            status_raw="starting",
        )

    def test_f2_processing_reads_with_model_and_poll_url(self) -> None:
        """F2: a 32-hex id, the model, the poll URL, PROCESSING, no outputs."""
        read = parse_submit(200, JSON, lit.F2_SUBMIT_PROCESSING, now=NOW)
        pid = "8ba2926c6bd642049f4d17dd68ea6785"
        assert read == Prediction(
            id=pid,
            status=PredictionStatus.PROCESSING,
            status_raw="processing",
            model="kwaivgi/kling-v3.0-pro/image-to-video",
            urls={"get": f"https://api.atlascloud.ai/api/v1/model/prediction/{pid}"},
        )

    def test_f3_created_reads_as_created_and_not_terminal(self) -> None:
        """F3: `created` is CREATED, which is waited on like a queued one."""
        read = parse_submit(200, JSON, lit.F3_SUBMIT_CREATED, now=NOW)
        assert (read.id, read.status, read.status_raw) == (
            "prediction-id",
            PredictionStatus.CREATED,
            "created",
        )
        assert read.status == "created"
        assert not read.done
        assert prediction_failure(read) is None

    def test_f4_an_id_alone_reads_as_created(self) -> None:
        """F4: no status at all: the server just accepted it, CREATED."""
        read = parse_submit(200, JSON, lit.F4_SUBMIT_ID_ONLY, now=NOW)
        assert (read.id, read.status, read.status_raw) == (
            "prediction_id",
            PredictionStatus.CREATED,
            "",
        )


class TestPollAnswers:
    def test_f5_data_without_code_reads_as_processing(self) -> None:
        """F5: `{"data"}` with no code; a null error is no error."""
        assert poll(lit.F5_PROCESSING) == Prediction(
            id="pred-1", status=PredictionStatus.PROCESSING, status_raw="processing"
        )

    def test_f6_a_bare_body_is_its_own_data(self) -> None:
        """F6: the model-page template, unwrapped, with its creation time."""
        assert poll(lit.F6_BARE_PROCESSING) == Prediction(
            id="pred_abc123",
            status=PredictionStatus.PROCESSING,
            status_raw="processing",
            model="model-name",
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        )

    def test_f7_completed_reads_its_output(self) -> None:
        """F7: COMPLETED with its one output URL, which is a file, not text."""
        read = poll(lit.F7_COMPLETED)
        assert read == Prediction(
            id="prediction_abc123",
            status=PredictionStatus.COMPLETED,
            status_raw="completed",
            outputs=("https://cdn.atlascloud.ai/generated/xxx.png",),
        )
        assert read.text is None
        assert prediction_failure(read) is None

    def test_f8_metrics_stay_metrics_and_are_no_latency(self) -> None:
        """F8: predict_time is kept in metrics; latency comes only from the
        latency fields (none here)."""
        read = poll(lit.F8_COMPLETED_METRICS)
        assert read.metrics == {"predict_time": 45.2}
        assert read.created_at == datetime(2025, 1, 1, tzinfo=UTC)
        assert (read.latency, read.cost, read.completed_at) == (None, None, None)

    def test_f9_without_an_id_takes_the_polled_one(self) -> None:
        """F9: no id in the body: the polled id; null flags and "" error are
        nothing."""
        read = poll(lit.F9_COMPLETED_NO_ID, polled="p-9")
        assert read == Prediction(
            id="p-9",
            status=PredictionStatus.COMPLETED,
            status_raw="completed",
            outputs=("https://dashscope-result-sgp...image-url.png",),
        )

    def test_f10_the_schema_rendering_reads_with_an_unknown_status(self) -> None:
        """F10: "string" as a status is UNKNOWN: polled on, not terminal."""
        read = poll(lit.F10_SCHEMA)
        assert (read.id, read.model, read.status, read.status_raw) == (
            "string",
            "string",
            PredictionStatus.UNKNOWN,
            "string",
        )
        assert read.has_nsfw_contents == (True,)
        assert read.created_at == datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)
        assert not read.done

    def test_f11_a_failure_inside_http_200_is_a_failed_prediction(self) -> None:
        """F11: FAILED with its error and code 1039; the failure it raises
        carries both."""
        read = poll(lit.F11_FAILED)
        assert (read.status, read.error, read.error_code) == (
            PredictionStatus.FAILED,
            "…",
            1039,
        )
        failure = prediction_failure(read)
        assert isinstance(failure, PredictionFailedError)
        assert (failure.error, failure.error_code) == ("…", 1039)

    def test_f19_the_replicate_style_body_reads_its_singular_output(self) -> None:
        """F19: the singular `output`, the millisecond time, the flags."""
        read = poll(lit.F19_REPLICATE_STYLE)
        assert read == Prediction(
            id="7hm7nbwarxrm80cnq1yvmxz4m4",
            status=PredictionStatus.PROCESSING,
            status_raw="processing",
            model="black-forest-labs/flux-dev",
            outputs=("https://replicate.delivery/...",),
            created_at=datetime(2025, 3, 21, 11, 36, 30, 151000, tzinfo=UTC),
            has_nsfw_contents=(False,),
            urls={"cancel": "http://example.com", "result": "http://example.com"},
        )


class TestErrorAnswers:
    @pytest.mark.parametrize(
        ("status_code", "body", "expected", "message", "request_id"),
        [
            pytest.param(
                401, lit.F12_UNAUTHORIZED, AuthenticationError, "unauthorized", "…",
                id="F12",
            ),
            pytest.param(
                401, lit.F13_UNAUTHORIZED_LIVE, AuthenticationError, "unauthorized",
                None, id="F13",
            ),
            pytest.param(
                404, lit.F14_NOT_FOUND_LIVE, NotFoundError, "not found", None, id="F14"
            ),
            pytest.param(
                402, lit.F15_NO_BALANCE, InsufficientBalanceError,
                "insufficient balance", None, id="F15",
            ),
            pytest.param(
                400, lit.F16_BILLING_ERROR, InvalidRequestError,
                "end_date must be after start_date", "req_…", id="F16",
            ),
        ],
    )  # fmt: skip
    def test_each_error_envelope_is_its_error_with_text_and_request_id(
        self,
        status_code: int,
        body: bytes,
        expected: type[Exception],
        message: str,
        request_id: str | None,
    ) -> None:
        """The class follows the status; the text is `msg` (or the error
        object's `message`); the request id is the body's."""
        error = error_from_response(status_code, JSON, body, now=NOW)
        assert type(error) is expected
        assert (error.status_code, error.message, error.request_id) == (
            status_code,
            message,
            request_id,
        )

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            pytest.param(lit.F12_UNAUTHORIZED, AuthenticationError, id="F12"),
            pytest.param(lit.F13_UNAUTHORIZED_LIVE, AuthenticationError, id="F13"),
            pytest.param(lit.F14_NOT_FOUND_LIVE, NotFoundError, id="F14"),
            pytest.param(lit.F15_NO_BALANCE, InsufficientBalanceError, id="F15"),
            pytest.param(lit.F16_BILLING_ERROR, APIError, id="F16"),
        ],
    )
    def test_the_same_envelopes_inside_http_200_are_errors_too(
        self, body: bytes, expected: type[Exception]
    ) -> None:
        """The gateway may send an error envelope with HTTP 200: still an error,
        classed by its `code` (F16 has none: the base `APIError`)."""
        with pytest.raises(APIError) as caught:
            poll(body)
        assert type(caught.value) is expected


class TestOtherAnswers:
    def test_f17_an_upload_reads_its_download_url(self) -> None:
        """F17: download_url, filename and a numeric size."""
        read = parse_upload(200, JSON, lit.F17_UPLOAD, now=NOW)
        assert read == UploadedMedia(
            url="https://atlas-img.oss-accelerate-overseas.aliyuncs.com/media/xxx.jpg",
            filename="photo.jpg",
            size=123456,
        )

    def test_f18_a_webhook_delivery_reads_like_a_poll(self) -> None:
        """F18: the session id is the prediction id; the payload is its data."""
        assert poll(lit.F18_WEBHOOK) == Prediction(
            id="session-123",
            status=PredictionStatus.COMPLETED,
            status_raw="completed",
            model="google/nano-banana-2/text-to-image",
            outputs=("https://cdn.atlascloud.test/a.png",),
        )
