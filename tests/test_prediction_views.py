"""
The typed views of a `Prediction`: ``cost``, ``latency``, ``completed_at``,
``stt_result``, ``lyrics_result`` and ``text``, read leniently from the live
poll fields (garbage is None, never an error), immutable and hashable, kept by
the journal; and `PredictionStatus` as a ``str`` enum.
"""

from __future__ import annotations

import json
import math
import pickle
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from atlas_async import Lyrics, Prediction, PredictionStatus, Transcript
from atlas_async._core.views import is_text_output
from atlas_async._wire.convert import structure_prediction
from atlas_async._wire.records import prediction_from_record, prediction_to_record

UTC = timezone.utc
PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
    "RU5ErkJggg=="
)


def read(**fields: Any) -> Prediction:
    """A completed poll's ``data`` with ``fields``, read as the client reads it."""
    data = {"id": "p1", "status": "completed", "outputs": ["https://cdn/a.png"]}
    return structure_prediction({**data, **fields}, fallback_id=None, body=None)


class TestCost:
    @pytest.mark.parametrize(
        ("price", "expected"),
        [
            pytest.param("0.035", Decimal("0.035"), id="text"),
            pytest.param(" 0.5 ", Decimal("0.5"), id="padded-text"),
            pytest.param(0.035, Decimal("0.035"), id="float-by-its-shortest-text"),
            pytest.param(2, Decimal(2), id="int"),
            pytest.param("0", Decimal(0), id="free"),
            pytest.param("1e-3", Decimal("0.001"), id="exponent"),
        ],
    )
    def test_a_price_is_an_exact_decimal(
        self, price: object, expected: Decimal
    ) -> None:
        """Text or a number: the same exact amount (0.035, not the float's binary
        value)."""
        cost = read(price=price).cost
        assert cost == expected
        assert type(cost) is Decimal
        assert str(cost) == str(expected)

    @pytest.mark.parametrize(
        "price",
        [
            pytest.param(None, id="null"),
            pytest.param("", id="empty"),
            pytest.param("free", id="word"),
            pytest.param("$0.03", id="currency-sign"),
            pytest.param("-0.5", id="negative"),
            pytest.param(-1, id="negative-number"),
            pytest.param("NaN", id="nan-text"),
            pytest.param(math.nan, id="nan"),
            pytest.param("Infinity", id="infinity"),
            pytest.param(True, id="bool"),
            pytest.param({"amount": 1}, id="object"),
            pytest.param([1], id="list"),
            pytest.param("1" * 100, id="too-long"),
        ],
    )
    def test_garbage_is_none(self, price: object) -> None:
        """Anything that is not a non-negative finite amount: None, and the
        poll reads on."""
        prediction = read(price=price)
        assert prediction.cost is None
        assert prediction.status is PredictionStatus.COMPLETED

    def test_absent_is_none(self) -> None:
        """No price field: no cost."""
        assert read().cost is None


class TestLatency:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            pytest.param({"latency_ms": 1500}, 1.5, id="latency_ms"),
            pytest.param({"latency_ms": "1500"}, 1.5, id="latency_ms-text"),
            pytest.param({"executionTime": 2500}, 2.5, id="executionTime"),
            pytest.param({"timings": {"inference": 800}}, 0.8, id="timings.inference"),
            pytest.param(
                {
                    "latency_ms": 1500,
                    "executionTime": 2500,
                    "timings": {"inference": 1},
                },
                1.5,
                id="latency_ms-first",
            ),
            pytest.param(
                {"latency_ms": "soon", "executionTime": 2500},
                2.5,
                id="garbage-falls-back",
            ),
            pytest.param({"latency_ms": 0}, 0.0, id="zero"),
        ],
    )
    def test_milliseconds_on_the_wire_are_seconds(
        self, fields: dict[str, Any], expected: float
    ) -> None:
        """latency_ms, else executionTime, else timings.inference; ms to s."""
        assert read(**fields).latency == pytest.approx(expected)

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param({}, id="absent"),
            pytest.param({"latency_ms": -1}, id="negative"),
            pytest.param({"latency_ms": math.inf}, id="infinite"),
            pytest.param({"latency_ms": math.nan}, id="nan"),
            pytest.param({"latency_ms": True}, id="bool"),
            pytest.param({"latency_ms": [1]}, id="list"),
            pytest.param({"latency_ms": 10**400}, id="too-large-for-a-float"),
            pytest.param({"executionTime": "later"}, id="word"),
            pytest.param({"timings": [800]}, id="timings-not-an-object"),
            pytest.param({"timings": {"inference": "x"}}, id="inference-garbage"),
        ],
    )
    def test_garbage_is_none(self, fields: dict[str, Any]) -> None:
        """No credible time: None."""
        assert read(**fields).latency is None


class TestCompletedAt:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(
                "2026-03-01T12:00:04.250Z",
                datetime(2026, 3, 1, 12, 0, 4, 250000, tzinfo=UTC),
                id="Z",
            ),
            pytest.param(
                "2026-03-01T12:00:04",
                datetime(2026, 3, 1, 12, 0, 4, tzinfo=UTC),
                id="naive",
            ),
            pytest.param("tomorrow", None, id="garbage"),
            pytest.param(1772366404, None, id="number-like-created_at"),
            pytest.param(None, None, id="null"),
        ],
    )
    def test_read_like_created_at(
        self, value: object, expected: datetime | None
    ) -> None:
        """ISO 8601 as an aware datetime (UTC without an offset), the same
        reading as created_at; anything else None."""
        prediction = read(completed_at=value, created_at=value)
        assert prediction.completed_at == expected
        assert prediction.completed_at == prediction.created_at


class TestTranscriptAndLyrics:
    def test_a_transcript_reads_each_member_leniently(self) -> None:
        """Wrong-shaped members are None or empty; non-object words are dropped."""
        prediction = read(
            stt_result={
                "text": "hi",
                "language": 7,
                "duration": "long",
                "words": [{"text": "hi", "start": 0}, "hi", None],
                "channels": "both",
            }
        )
        assert prediction.stt_result == Transcript(
            text="hi", words=({"text": "hi", "start": 0},)
        )
        assert prediction.stt_result.raw["language"] == 7

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(
                "just the text", Transcript(text="just the text"), id="string"
            ),
            pytest.param({}, None, id="empty-object"),
            pytest.param("  ", None, id="blank"),
            pytest.param([1, 2], None, id="list"),
            pytest.param(42, None, id="number"),
        ],
    )
    def test_other_shapes_of_stt_result(
        self, value: object, expected: Transcript | None
    ) -> None:
        """A bare string is the transcript's text; the rest is None."""
        assert read(stt_result=value).stt_result == expected

    @pytest.mark.parametrize(
        ("tags", "expected"),
        [
            pytest.param(["pop", "upbeat"], ("pop", "upbeat"), id="list"),
            pytest.param("pop, upbeat,", ("pop", "upbeat"), id="comma-text"),
            pytest.param(["pop", 3], ("pop",), id="non-strings-dropped"),
            pytest.param(7, (), id="garbage"),
        ],
    )
    def test_style_tags(self, tags: object, expected: tuple[str, ...]) -> None:
        """A list of strings or one comma-separated string."""
        lyrics = read(lyrics_result={"lyrics": "la", "style_tags": tags}).lyrics_result
        assert lyrics == Lyrics(lyrics="la", style_tags=expected)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("la la", Lyrics(lyrics="la la"), id="string"),
            pytest.param({"song_title": 5}, Lyrics(), id="garbage-members"),
            pytest.param({}, None, id="empty-object"),
            pytest.param(42, None, id="number"),
        ],
    )
    def test_other_shapes_of_lyrics_result(
        self, value: object, expected: Lyrics | None
    ) -> None:
        """A bare string is the lyrics; an empty object or a number None."""
        assert read(lyrics_result=value).lyrics_result == expected


class TestText:
    @pytest.mark.parametrize(
        ("output", "text"),
        [
            pytest.param("Hello there.", True, id="sentence"),
            pytest.param("test", True, id="short-base64-alphabet-word"),
            pytest.param("你好世界" * 20, True, id="long-without-spaces-not-ascii"),
            pytest.param("la " * 40, True, id="long-with-spaces"),
            pytest.param("https://cdn/a.png", False, id="https"),
            pytest.param("HTTP://cdn/a.png", False, id="http-any-case"),
            pytest.param("//cdn/a.png", False, id="scheme-relative"),
            pytest.param("data:text/plain,hi", False, id="data-uri"),
            pytest.param(PNG_BASE64, False, id="raw-base64"),
            pytest.param(PNG_BASE64[:40] + "\n" + PNG_BASE64[40:], False, id="wrapped"),
            pytest.param("", False, id="empty"),
            pytest.param("  \n", False, id="blank"),
        ],
    )
    def test_which_outputs_are_text(self, output: str, text: bool) -> None:
        """Text unless a URL, a data URI or raw base64 (64+ characters)."""
        assert is_text_output(output) is text

    def test_the_structured_results_come_before_the_outputs(self) -> None:
        """stt_result's text, else lyrics_result's lyrics, else text outputs."""
        both = {"stt_result": {"text": "heard"}, "lyrics_result": {"lyrics": "sung"}}
        assert read(outputs=["said"], **both).text == "heard"
        assert read(outputs=["said"], lyrics_result={"lyrics": "sung"}).text == "sung"
        assert read(outputs=["said"], stt_result={"language": "en"}).text == "said"

    def test_file_outputs_give_no_text(self) -> None:
        """URLs and raw base64 only: None."""
        assert read(outputs=["https://cdn/a.png", PNG_BASE64]).text is None
        assert read(outputs=[]).text is None


class TestImmutableHashableKept:
    def full(self) -> Prediction:
        return read(
            price="0.0125",
            latency_ms=4250,
            completed_at="2026-03-01T12:00:04Z",
            stt_result={"text": "hi", "words": [{"text": "hi", "start": 0.1}]},
            lyrics_result={"lyrics": "la", "style_tags": ["pop"]},
        )

    def test_views_are_hashable_and_like_raw_not_compared(self) -> None:
        """The views hash; read from raw, they are left out of == as raw is."""
        assert hash(self.full().stt_result) == hash(self.full().stt_result)
        assert hash(self.full()) == hash(read())
        assert self.full() == read()
        assert self.full().cost != read().cost

    def test_views_are_read_once_and_kept(self) -> None:
        """A second read gives the very same objects."""
        prediction = self.full()
        assert prediction.stt_result is prediction.stt_result
        assert prediction.cost is prediction.cost

    def test_a_snapshot_built_by_hand_reads_its_views_from_raw(self) -> None:
        """Prediction(raw=...) has the views of that raw: no parser needed."""
        prediction = Prediction(
            id="p",
            status=PredictionStatus.COMPLETED,
            outputs=("hello",),
            raw={"price": 0.5, "executionTime": 100},
        )
        assert (prediction.cost, prediction.latency, prediction.text) == (
            Decimal("0.5"),
            0.1,
            "hello",
        )

    def test_nested_results_are_read_only(self) -> None:
        """A transcript's words are read-only mappings; no view can be set."""
        prediction = self.full()
        assert prediction.stt_result is not None
        with pytest.raises(TypeError):
            prediction.stt_result.words[0]["text"] = "x"  # type: ignore[index]
        with pytest.raises(AttributeError):
            prediction.cost = Decimal(1)  # type: ignore[misc]

    def test_pickles_as_itself(self) -> None:
        """Sent to another process, the views come back equal."""
        prediction = self.full()
        assert pickle.loads(pickle.dumps(prediction)) == prediction

    def test_the_journal_keeps_the_views(self) -> None:
        """A record keeps the live fields as they came, under `live`; it reads
        back with the same views."""
        prediction = self.full()
        record = json.loads(json.dumps(prediction_to_record(prediction)))
        assert record["live"] == {
            "price": "0.0125",
            "latency_ms": 4250,
            "completed_at": "2026-03-01T12:00:04Z",
            "stt_result": {"text": "hi", "words": [{"text": "hi", "start": 0.1}]},
            "lyrics_result": {"lyrics": "la", "style_tags": ["pop"]},
        }
        again = prediction_from_record(record, prediction.outputs)
        assert again == prediction
        assert (again.cost, again.latency, again.completed_at) == (
            Decimal("0.0125"),
            4.25,
            datetime(2026, 3, 1, 12, 0, 4, tzinfo=UTC),
        )
        assert (again.stt_result, again.lyrics_result, again.text) == (
            prediction.stt_result,
            prediction.lyrics_result,
            "hi",
        )

    def test_a_record_without_live_fields_is_unchanged(self) -> None:
        """Snapshots without live fields keep the record they always had."""
        assert "live" not in prediction_to_record(read(error_code=3))

    def test_damaged_live_fields_in_a_record_are_a_value_error(self) -> None:
        """The record is ours: `live` that is not an object is refused."""
        record = {**prediction_to_record(self.full()), "live": ["price"]}
        with pytest.raises(ValueError, match="live"):
            prediction_from_record(record, ())


class TestStatusIsAStrEnum:
    def test_a_status_equals_and_prints_as_its_wire_word(self) -> None:
        """`status == "completed"`, str(), f-strings and JSON give the word."""
        status = PredictionStatus.COMPLETED
        assert status == "completed"
        assert isinstance(status, str)
        assert (str(status), f"{status}", f"{status:>10}") == (
            "completed",
            "completed",
            " completed",
        )
        assert json.dumps({"status": status}) == '{"status": "completed"}'

    def test_the_journal_reads_statuses_back_as_the_enum(self) -> None:
        """A record holds the plain word and reads back as the member."""
        record = prediction_to_record(read())
        assert type(record["status"]) is str
        assert prediction_from_record(record, ()).status is PredictionStatus.COMPLETED
