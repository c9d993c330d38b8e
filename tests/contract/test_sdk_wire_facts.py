"""
The SDK's half of the contract for the wire facts it reads (W4-W6, W8, W12,
W16, W18), read by the public parse functions; the forms that need a client
(W1-W3, W14-W16 over HTTP) are in `test_sdk_client`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from atlas_async import (
    Kind,
    Lyrics,
    ModelInfo,
    Prediction,
    PredictionFailedError,
    PredictionStatus,
    Transcript,
)
from atlas_async._wire.parse import parse_models, parse_prediction, prediction_failure

from . import literals as lit

JSON = {"content-type": "application/json"}
NOW = 1_700_000_000.0
UTC = timezone.utc


def poll(body: bytes) -> Prediction:
    return parse_prediction(200, JSON, body, now=NOW)


class TestW4ErrorObjects:
    @pytest.mark.parametrize(
        ("error_json", "reason"),
        [
            pytest.param('{"message": "bad input"}', "bad input", id="message"),
            pytest.param('{"msg": "bad input"}', "bad input", id="msg"),
            pytest.param('{"error": "bad input"}', "bad input", id="error"),
            pytest.param('{"detail": "bad input"}', "bad input", id="detail"),
            pytest.param('{"reason": "bad input"}', "bad input", id="reason"),
            pytest.param('"bad input"', "bad input", id="string"),
        ],
    )
    def test_the_reason_is_read_from_each_key(
        self, error_json: str, reason: str
    ) -> None:
        """W4: the reason under message, msg, error, detail or reason (or the
        string itself) is the prediction's error and its failure's."""
        read = poll(lit.w4_error_object(error_json))
        assert (read.status, read.error) == (PredictionStatus.FAILED, reason)
        failure = prediction_failure(read)
        assert isinstance(failure, PredictionFailedError)
        assert failure.error == reason
        assert reason in str(failure)

    def test_an_object_without_those_keys_is_kept_as_its_json_text(self) -> None:
        """W4: none of the five keys: the object's JSON text, not nothing."""
        read = poll(lit.w4_error_object('{"code": "E42", "hint": "resize"}'))
        assert read.error is not None
        assert "E42" in read.error
        assert "resize" in read.error


class TestW5TextOutputs:
    def test_a_transcript_in_outputs_is_the_text(self) -> None:
        """W5: the text itself in `outputs` is `text`; `outputs` keeps it as
        it came."""
        read = poll(lit.W5_TRANSCRIPT_OUTPUT)
        assert read.outputs == ("Hello, and welcome to the show.",)
        assert read.text == "Hello, and welcome to the show."
        assert prediction_failure(read) is None

    def test_several_text_outputs_are_joined_by_a_blank_line(self) -> None:
        """W5: two generated lyrics are one text, a blank line between them."""
        read = poll(lit.W5_LYRICS_OUTPUTS)
        assert (
            read.text == "[Verse]\nCity lights are calling\n\n[Chorus]\nWe run, we run"
        )

    def test_urls_and_data_uris_are_files_not_text(self) -> None:
        """W5: http(s)://, // and data: outputs (any case) are no text."""
        read = poll(lit.W5_FILES_ONLY)
        assert len(read.outputs) == 4
        assert read.text is None


class TestW6LiveFields:
    def test_a_speech_to_text_answer_has_every_view(self) -> None:
        """W6: price, latency_ms, completed_at and stt_result read as typed
        views; latency_ms wins over executionTime and timings."""
        read = poll(lit.W6_LIVE_FIELDS)
        assert read.cost == Decimal("0.0125")
        assert read.latency == 4.25
        assert read.completed_at == datetime(2026, 3, 1, 12, 0, 4, 250000, tzinfo=UTC)
        assert read.created_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        assert read.stt_result == Transcript(
            text="Hello world",
            language="English",
            language_code="en",
            duration=2.5,
            words=(
                {"text": "Hello", "start": 0.1, "end": 0.6},
                {"text": "world", "start": 0.7, "end": 1.2},
            ),
            channels=(),
        )
        assert read.lyrics_result is None
        assert read.text == "Hello world"
        assert read.raw["duration"] == 2.5

    def test_a_lyrics_answer_has_its_result_price_and_execution_time(self) -> None:
        """W6: a numeric price is read exactly; executionTime (ms) is the
        latency when latency_ms is absent; style tags are split."""
        read = poll(lit.W6_LYRICS_RESULT)
        assert read.cost == Decimal("0.002")
        assert read.latency == 1.5
        assert read.lyrics_result == Lyrics(
            lyrics="[Verse]\nCity lights are calling",
            song_title="City Lights",
            style_tags=("synth-pop", "upbeat"),
        )
        assert read.text == "[Verse]\nCity lights are calling"

    def test_extras_are_kept_in_raw_and_change_nothing(self) -> None:
        """W6: thumbnail, files, layers and duration stay in `raw`; the audio
        output is the result, not text."""
        read = poll(lit.W6_EXTRAS)
        assert read.outputs == ("https://cdn.atlascloud.ai/song.mp3",)
        assert read.raw["thumbnail"] == "https://cdn.atlascloud.ai/cover.jpg"
        assert read.raw["files"] == ({"url": "https://cdn.atlascloud.ai/stem.wav"},)
        assert (read.text, read.cost, read.latency) == (None, None, None)

    def test_garbage_in_every_live_field_reads_as_none_never_an_error(
        self,
    ) -> None:
        """W6: a price object, text latency, negative time, a list of timings,
        a word for a date and results of the wrong type: each view is None and
        the completed prediction is still a success."""
        read = poll(lit.W6_GARBAGE)
        assert read.status is PredictionStatus.COMPLETED
        assert (read.cost, read.latency, read.completed_at) == (None, None, None)
        assert (read.stt_result, read.lyrics_result, read.text) == (None, None, None)
        assert prediction_failure(read) is None
        assert read.raw["price"] == {"amount": 1}


class TestW8Statuses:
    @pytest.mark.parametrize(
        ("wire", "status", "terminal"),
        [
            pytest.param("created", PredictionStatus.CREATED, False, id="created"),
            pytest.param(
                "processing", PredictionStatus.PROCESSING, False, id="processing"
            ),
            pytest.param("completed", PredictionStatus.COMPLETED, True, id="completed"),
            pytest.param("failed", PredictionStatus.FAILED, True, id="failed"),
            pytest.param("timeout", PredictionStatus.TIMEOUT, True, id="timeout"),
        ],
    )
    def test_the_server_vocabulary_reads_as_its_status(
        self, wire: str, status: PredictionStatus, terminal: bool
    ) -> None:
        """W8: each of the server's five statuses is its own `PredictionStatus`,
        equal to the wire string."""
        read = poll(lit.w8_status(wire))
        assert read.status is status
        assert read.status == wire
        assert str(read.status) == wire
        assert read.done is terminal

    def test_a_server_timeout_is_a_failed_prediction(self) -> None:
        """W8: `timeout` is the server's verdict: a PredictionFailedError with
        status TIMEOUT, not the client's own deadline error."""
        failure = prediction_failure(poll(lit.w8_status("timeout")))
        assert type(failure) is PredictionFailedError
        assert failure.status is PredictionStatus.TIMEOUT
        assert "timed out on the server" in str(failure)

    @pytest.mark.parametrize("wire", ["created", "processing"])
    def test_the_waiting_statuses_are_no_failure(self, wire: str) -> None:
        """W8: created and processing are waited on, never raised."""
        assert prediction_failure(poll(lit.w8_status(wire))) is None


class TestW12CatalogEntries:
    def test_an_entry_with_the_newer_fields_reads(self) -> None:
        """W12: null categories and tags, a string avgLatency, a price with a
        unit: the entry reads, categories empty, the rest kept in `raw`."""
        [info] = parse_models(200, JSON, lit.W12_CATALOG, now=NOW)
        assert info == ModelInfo(
            model="example/speech-to-text",
            type="Audio",
            display_name="Speech to text",
            categories=(),
        )
        assert info.kind is Kind.AUDIO
        assert info.raw["price"]["actual"]["unit"] == "minute"
        assert info.raw["avgLatency"] == "12"


class TestW16ResultPath:
    def test_the_result_path_envelope_reads_as_a_poll(self) -> None:
        """W16: `/model/result/{id}` answers the poll envelope; it reads alike."""
        assert poll(lit.W16_RESULT_PATH) == Prediction(
            id=lit.W_ID,
            status=PredictionStatus.COMPLETED,
            status_raw="completed",
            outputs=("https://cdn.atlascloud.ai/a.png",),
        )


class TestW18ErrorText:
    def test_a_code_like_error_text_reaches_the_failure(self) -> None:
        """W18: `InvalidParameter.DurationTooLong` is the failure's text."""
        failure = prediction_failure(poll(lit.W18_DURATION_TOO_LONG))
        assert isinstance(failure, PredictionFailedError)
        assert failure.error == "InvalidParameter.DurationTooLong"
        assert "InvalidParameter.DurationTooLong" in str(failure)
