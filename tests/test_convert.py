"""The package's own cattrs converter: ``data`` mappings to models, and its readers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import cattrs
import pytest

from atlas_async._core.errors import UnexpectedResponseError
from atlas_async._core.models import (
    ModelInfo,
    Prediction,
    PredictionStatus,
    UploadedMedia,
)
from atlas_async._wire import convert as _convert

UTC = timezone.utc


def _read(data: object, **kwargs: Any) -> Prediction:
    return _convert.structure(data, Prediction, body={"data": data}, **kwargs)


def _problem(data: object, cls: type[object] = Prediction) -> UnexpectedResponseError:
    with pytest.raises(UnexpectedResponseError) as info:
        _convert.structure(data, cls, body="the body", status_code=200, path="$.data")
    return info.value


class TestConverter:
    def test_package_converter_is_not_the_global_one(self) -> None:
        """Hooks live on the package's own converter, never on cattrs' global one."""
        assert _convert.converter is not cattrs.global_converter
        assert _convert.make_converter() is not _convert.make_converter()
        data = {"id": "x", "status": "done"}
        assert _convert.converter.structure(data, Prediction).status.is_success
        with pytest.raises(cattrs.BaseValidationError):  # no hook: status "done"
            cattrs.structure(data, Prediction)

    def test_full_prediction_is_read(self) -> None:
        """Every modelled field of a data mapping lands on the Prediction."""
        data = {
            "id": "p-1",
            "status": "Succeeded",
            "model": "m",
            "outputs": ["https://a/1.png", "https://a/2.png"],
            "error": None,
            "error_code": None,
            "created_at": "2025-01-01T00:00:00Z",
            "has_nsfw_contents": [False, True],
            "urls": {"get": "https://api/p-1"},
            "metrics": {"predict_time": 4.5},
            "logs": "kept in raw only",
        }
        assert _read(data) == Prediction(
            id="p-1",
            status=PredictionStatus.COMPLETED,
            status_raw="Succeeded",
            model="m",
            outputs=("https://a/1.png", "https://a/2.png"),
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
            has_nsfw_contents=(False, True),
            urls={"get": "https://api/p-1"},
            metrics={"predict_time": 4.5},
        )
        assert _read(data).raw == data

    def test_status_as_number_is_unknown_with_its_text(self) -> None:
        """A numeric status is UNKNOWN, and its text is kept."""
        prediction = _read({"id": "x", "status": 3})
        assert (prediction.status, prediction.status_raw) == (
            PredictionStatus.UNKNOWN,
            "3",
        )

    def test_not_a_mapping_is_unexpected(self) -> None:
        """A list where a data object belongs raises instead of reading as empty."""
        error = _problem([{"id": "x"}])
        assert (
            str(error)
            == "unexpected answer shape: expected a JSON object, got list @ $.data"
        )
        assert (error.body, error.status_code) == ("the body", 200)

    def test_every_problem_is_listed_with_its_path(self) -> None:
        """Several wrong fields are all reported, each with its JSON path."""
        error = _problem({"id": "x", "model": {"name": "m"}, "status": ["done"]})
        assert str(error) == (
            "unexpected answer shape: expected a string, got list @ $.data.status; "
            "expected a string, got dict @ $.data.model"
        )

    def test_cattrs_errors_keep_cattrs_words(self) -> None:
        """A failure that is not one of ours is described by cattrs' own formatter."""
        with pytest.raises(UnexpectedResponseError, match=r"@ \$\[0\]") as info:
            _convert.structure(["x"], list[int], body=None)
        assert isinstance(info.value.__cause__, cattrs.BaseValidationError)


class TestPredictionId:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            pytest.param({"id": "a", "prediction_id": "b"}, "a", id="id-first"),
            pytest.param({"id": "", "prediction_id": "b"}, "b", id="prediction_id"),
            pytest.param({"predictionId": "c"}, "c", id="predictionId"),
            pytest.param({"request_id": "d"}, "d", id="request_id"),
            pytest.param({"id": 42}, "42", id="number"),
        ],
    )
    def test_id_is_read_from_its_names(self, data: object, expected: str) -> None:
        """The id comes from ``id``, else from the other id names clients have seen."""
        assert _read(data).id == expected

    @pytest.mark.parametrize("data", [{}, {"id": ""}, {"id": None, "status": "done"}])
    def test_missing_id_is_unexpected(self, data: object) -> None:
        """A data object with no id at all cannot become a Prediction."""
        error = _problem(data)
        assert (
            str(error)
            == "unexpected answer shape: no prediction id (expected data.id) @ $.data"
        )

    def test_bool_id_is_unexpected(self) -> None:
        """``true`` is no id."""
        assert "expected a string, got bool @ $.data.id" in str(_problem({"id": True}))

    def test_fallback_id_fills_a_missing_id_and_raw_stays_as_received(self) -> None:
        """The fallback id is used when data names none; raw does not gain it."""
        data = {"status": "failed", "error": "bad"}
        prediction = _convert.structure_prediction(
            data, fallback_id="polled", body=data
        )
        assert (prediction.id, prediction.status) == ("polled", PredictionStatus.FAILED)
        assert prediction.raw == data

    def test_fallback_id_never_replaces_an_id(self) -> None:
        """An id in the data wins over the fallback."""
        data = {"predictionId": "own"}
        prediction = _convert.structure_prediction(
            data, fallback_id="polled", body=data
        )
        assert prediction.id == "own"

    def test_fallback_id_error_carries_the_polled_id(self) -> None:
        """A wrong shape found with a fallback still raises with the ids attached."""
        with pytest.raises(UnexpectedResponseError) as info:
            _convert.structure_prediction(
                {"outputs": 1}, fallback_id="f", body=None, prediction_id="polled"
            )
        assert info.value.prediction_id == "polled"


class TestOutputs:
    @pytest.mark.parametrize(
        ("data", "outputs"),
        [
            pytest.param({"outputs": ["a", "b"]}, ("a", "b"), id="list"),
            pytest.param({"outputs": None}, (), id="null"),
            pytest.param({}, (), id="absent"),
            pytest.param({"outputs": "a"}, ("a",), id="single-string"),
            pytest.param({"output": "a"}, ("a",), id="singular-string"),
            pytest.param({"output": ["a", "b"]}, ("a", "b"), id="singular-list"),
            pytest.param({"outputs": ["a"], "output": ["b"]}, ("a",), id="plural-wins"),
            pytest.param({"outputs": [], "output": ["b"]}, (), id="empty-plural-wins"),
            pytest.param({"outputs": [{"url": "a"}]}, ("a",), id="entry-url"),
            pytest.param({"outputs": [{"image": "a"}]}, ("a",), id="entry-image"),
            pytest.param({"outputs": [{"output": "a"}]}, ("a",), id="entry-output"),
            pytest.param(
                {"outputs": [{"download_url": "a"}]}, ("a",), id="entry-download"
            ),
            pytest.param(
                {"outputs": [{"url": "", "image": "a"}]}, ("a",), id="entry-skips-empty"
            ),
            pytest.param(
                {"outputs": ["data:image/png;base64,iVBO"]},
                ("data:image/png;base64,iVBO",),
                id="data-uri",
            ),
        ],
    )
    def test_output_shapes(
        self, data: dict[str, object], outputs: tuple[str, ...]
    ) -> None:
        """Outputs come from ``outputs`` or ``output``: strings, lists, URL objects."""
        assert _read({"id": "x", **data}).outputs == outputs

    @pytest.mark.parametrize(
        ("outputs", "problem"),
        [
            pytest.param(3, "expected a list of output URLs, got int", id="int"),
            pytest.param(
                {"url": "a"}, "expected a list of output URLs, got dict", id="obj"
            ),
            pytest.param(
                ["a", 7], "expected output 1 to be a URL, got int", id="entry-int"
            ),
            pytest.param(
                [None], "expected output 0 to be a URL, got null", id="entry-null"
            ),
            pytest.param(
                ["a", {"href": "b"}],
                "output 1 has none of url, image, output, download_url",
                id="entry-without-url",
            ),
        ],
    )
    def test_wrong_outputs_are_unexpected(self, outputs: object, problem: str) -> None:
        """Outputs the SDK cannot use raise, naming the problem and its path."""
        error = _problem({"id": "x", "outputs": outputs})
        assert str(error) == f"unexpected answer shape: {problem} @ $.data.outputs"


class TestLenientFields:
    @pytest.mark.parametrize(
        ("created_at", "expected"),
        [
            pytest.param(
                "2025-01-01T00:00:00Z", datetime(2025, 1, 1, tzinfo=UTC), id="Z"
            ),
            pytest.param(
                "2025-03-21T11:36:30.151Z",
                datetime(2025, 3, 21, 11, 36, 30, 151000, tzinfo=UTC),
                id="millis",
            ),
            pytest.param(
                "2025-03-21T11:36:30.1234567z",
                datetime(2025, 3, 21, 11, 36, 30, 123456, tzinfo=UTC),
                id="seven-digits",
            ),
            pytest.param(
                "2025-01-01T02:00:00+02:00",
                datetime(2025, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
                id="offset",
            ),
            pytest.param(
                "2025-01-01T00:00:00", datetime(2025, 1, 1, tzinfo=UTC), id="naive"
            ),
            pytest.param("yesterday", None, id="garbage"),
            pytest.param("", None, id="empty"),
            pytest.param(1700000000, None, id="number"),
        ],
    )
    def test_created_at_reads_iso_8601_as_aware(
        self, created_at: object, expected: datetime | None
    ) -> None:
        """ISO-8601 becomes an aware datetime (UTC when no offset); the rest None."""
        prediction = _read({"id": "x", "created_at": created_at})
        assert prediction.created_at == expected
        assert prediction.created_at is None or prediction.created_at.tzinfo is not None
        assert prediction.raw["created_at"] == created_at

    @pytest.mark.parametrize(
        ("flags", "expected"),
        [
            pytest.param([True, False], (True, False), id="list"),
            pytest.param([], (), id="empty"),
            pytest.param(None, None, id="null"),
            pytest.param(True, (True,), id="single"),
            pytest.param([True, "no"], None, id="mixed"),
            pytest.param("false", None, id="string"),
        ],
    )
    def test_nsfw_flags(self, flags: object, expected: tuple[bool, ...] | None) -> None:
        """has_nsfw_contents is a tuple of bools, or None when it is anything else."""
        assert (
            _read({"id": "x", "has_nsfw_contents": flags}).has_nsfw_contents == expected
        )

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            pytest.param("content policy", "content policy", id="text"),
            pytest.param("", None, id="empty"),
            pytest.param("  ", None, id="blank"),
            pytest.param(None, None, id="null"),
            pytest.param({"message": "from object"}, "from object", id="object"),
            pytest.param({"msg": "from msg"}, "from msg", id="object-msg"),
            pytest.param({"code": 5}, '{"code":5}', id="object-without-text"),
            pytest.param(500, "500", id="number"),
            pytest.param(["a"], '["a"]', id="list"),
            pytest.param(False, None, id="bool"),
        ],
    )
    def test_error_text(self, error: object, expected: str | None) -> None:
        """The error text is a non-blank string, from a string or an error object
        (its reason, else its JSON text)."""
        assert _read({"id": "x", "error": error}).error == expected

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            pytest.param(1039, 1039, id="int"),
            pytest.param("1039", 1039, id="string"),
            pytest.param(" 1039 ", 1039, id="padded"),
            pytest.param("-1", -1, id="negative"),
            pytest.param(1039.0, 1039, id="integral-float"),
            pytest.param(10.5, None, id="fraction"),
            pytest.param("E1039", None, id="word"),
            pytest.param("--5", None, id="double-minus"),
            pytest.param("١٠٣٩", None, id="non-ascii-digits"),
            pytest.param(True, None, id="bool"),
            pytest.param(None, None, id="null"),
        ],
    )
    def test_error_code_is_an_int(self, code: object, expected: int | None) -> None:
        """error_code is an int even when sent as text; anything else is None."""
        assert _read({"id": "x", "error_code": code}).error_code == expected

    def test_urls_keep_only_string_links(self) -> None:
        """urls keeps string-to-string entries and drops the rest."""
        urls = {"get": "https://g", "cancel": None, "stream": {"x": 1}}
        assert _read({"id": "x", "urls": urls}).urls == {"get": "https://g"}

    @pytest.mark.parametrize("value", [["https://g"], "https://g", 3])
    def test_urls_and_metrics_of_wrong_shape_are_empty(self, value: object) -> None:
        """urls and metrics that are not objects read as empty; raw keeps them."""
        prediction = _read({"id": "x", "urls": value, "metrics": value})
        assert (prediction.urls, prediction.metrics) == ({}, {})
        # raw keeps them, frozen: a list reads back as a tuple of its items.
        assert prediction.raw["urls"] == (
            tuple(value) if isinstance(value, list) else value
        )

    def test_metrics_are_kept_as_sent(self) -> None:
        """metrics keeps every value under a string key."""
        metrics = {"predict_time": 45.2, "steps": [1, 2]}
        assert _read({"id": "x", "metrics": metrics}).metrics == metrics


class TestUploadedMedia:
    def test_download_url_wins_and_details_are_read(self) -> None:
        """download_url is preferred; content type comes from ``type`` or its name."""
        data = {
            "download_url": "https://d",
            "url": "https://u",
            "filename": "a.png",
            "size": 10,
            "content_type": "image/png",
            "type": "ignored",
        }
        media = _convert.structure(data, UploadedMedia, body=data)
        assert media == UploadedMedia(
            url="https://d", filename="a.png", size=10, content_type="image/png"
        )
        assert media.raw == data

    def test_odd_details_are_dropped(self) -> None:
        """A non-string filename or type and a non-numeric size read as None."""
        data = {"url": "https://u", "filename": 5, "size": "big", "type": ""}
        media = _convert.structure(data, UploadedMedia, body=data)
        assert (media.url, media.filename, media.size, media.content_type) == (
            "https://u",
            None,
            None,
            None,
        )

    @pytest.mark.parametrize(
        ("data", "problem"),
        [
            pytest.param(
                {}, "no file URL (expected data.download_url or url)", id="none"
            ),
            pytest.param(
                {"url": ""},
                "no file URL (expected data.download_url or url)",
                id="empty",
            ),
            pytest.param({"url": ["u"]}, "expected a string, got list", id="list"),
            pytest.param("https://u", "expected a JSON object, got str", id="string"),
        ],
    )
    def test_upload_without_url_is_unexpected(self, data: object, problem: str) -> None:
        """An upload answer without a usable URL raises."""
        assert problem in str(_problem(data, UploadedMedia))


class TestModelInfo:
    def test_display_name_prefers_the_vendor_spelling(self) -> None:
        """``displayName`` (the vendor's) wins over ``display_name``."""
        data = {"model": "m", "displayName": "Vendor", "display_name": "snake"}
        assert _convert.structure(data, ModelInfo, body=data).display_name == "Vendor"

    def test_odd_details_are_dropped(self) -> None:
        """A non-string type, non-list categories and non-string categories drop."""
        data = {"model": "m", "type": 3, "categories": "TEXT-TO-IMAGE"}
        info = _convert.structure(data, ModelInfo, body=data)
        assert (info.type, info.categories) == (None, ())
        data = {"model": "m", "categories": ["A", 1, None, "B"]}
        assert _convert.structure(data, ModelInfo, body=data).categories == ("A", "B")

    def test_bad_entries_are_reported_by_index(self) -> None:
        """In a list, each broken entry is named by its index."""
        entries = [{"model": "a"}, {"model": ""}, 7, {"model": {"id": "x"}}]
        with pytest.raises(UnexpectedResponseError) as info:
            _convert.structure(entries, list[ModelInfo], body=entries, path="$.data")
        assert str(info.value) == (
            "unexpected answer shape: catalog entry without a model id @ $.data[1]; "
            "expected a JSON object, got int @ $.data[2]; "
            "expected a string, got dict @ $.data[3].model"
        )
