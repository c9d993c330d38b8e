"""The journal's records: the pure codec of ``_wire.convert`` that writes them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from atlas_async import (
    APIError,
    AtlasError,
    Kind,
    NotFoundError,
    Prediction,
    PredictionError,
    PredictionFailedError,
    PredictionStatus,
    SubmissionUnknownError,
)
from atlas_async._wire.records import (
    ERROR_TYPES,
    error_from_record,
    error_record_from_text,
    error_to_record,
    prediction_from_record,
    prediction_to_record,
)

SNAPSHOT = Prediction(
    id="p-1",
    status=PredictionStatus.FAILED,
    status_raw="error",
    model="m",
    outputs=("https://cdn.example/a.png",),
    error="content policy",
    error_code=1039,
    created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    has_nsfw_contents=(True,),
    urls={"get": "https://api.example/p-1"},
    metrics={"predict_time": 1.5},
    raw={"not": "kept"},
)


def through_json(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record))


def test_a_prediction_record_is_plain_json_without_outputs_and_raw() -> None:
    """Enums by value, dates in ISO 8601; outputs have their own column."""
    record = prediction_to_record(SNAPSHOT)
    assert record == {
        "id": "p-1",
        "status": "failed",
        "status_raw": "error",
        "model": "m",
        "error": "content policy",
        "error_code": 1039,
        "created_at": "2026-01-02T03:04:05+00:00",
        "has_nsfw_contents": [True],
        "urls": {"get": "https://api.example/p-1"},
        "metrics": {"predict_time": 1.5},
    }
    again = prediction_from_record(through_json(record), SNAPSHOT.outputs)
    assert again == SNAPSHOT
    assert again.raw == {}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param({"status": "succeeded"}, "$.status", id="status-not-a-value"),
        pytest.param({"has_nsfw_contents": ["yes"]}, "true or false", id="flag"),
        pytest.param({"created_at": 20260102}, "ISO date", id="date"),
        pytest.param({"id": {"x": 1}}, "$.id", id="id"),
    ],
)
def test_a_wrong_prediction_record_is_a_value_error_with_its_path(
    change: dict[str, Any], problem: str
) -> None:
    """The record is ours: what does not fit is an error, never a silent guess."""
    record = {**prediction_to_record(SNAPSHOT), **change}
    with pytest.raises(ValueError, match=problem.replace("$", r"\$")):
        prediction_from_record(record, ())


def sample(cls: type[AtlasError]) -> AtlasError:
    """An instance of ``cls`` built from its message (and an id when required)."""
    if issubclass(cls, PredictionError):
        return cls("it broke", prediction_id="p-1")
    return cls("it broke")


@pytest.mark.parametrize("name", sorted(ERROR_TYPES))
def test_every_class_of_the_tree_round_trips(name: str) -> None:
    """Each error class comes back as itself, with the same text and fields."""
    error = sample(ERROR_TYPES[name])
    again = error_from_record(through_json(error_to_record(error)))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert vars(again) == vars(error)


def test_fields_of_the_error_are_kept_and_unset_ones_left_out() -> None:
    """Only the fields an error has set are written; enums by value."""
    error = SubmissionUnknownError("no answer", method="POST", kind=Kind.VIDEO)
    record = error_to_record(error)
    assert record == {
        "type": "SubmissionUnknownError",
        "message": "no answer",
        "method": "POST",
        "kind": "video",
    }
    again = error_from_record(through_json(record))
    assert isinstance(again, SubmissionUnknownError)
    assert again.kind is Kind.VIDEO


def test_the_snapshot_is_attached_to_a_prediction_error() -> None:
    """The snapshot lives in its own column and is handed back to the error."""
    error = PredictionFailedError("failed", prediction_id="p-1", prediction=SNAPSHOT)
    again = error_from_record(error_to_record(error), prediction=SNAPSHOT)
    assert isinstance(again, PredictionFailedError)
    assert again.prediction is SNAPSHOT


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        pytest.param({"type": "Nope", "message": "x"}, "unknown error type", id="type"),
        pytest.param({"type": "APIError"}, "missing", id="no-message"),
        pytest.param(
            {"type": "APIError", "message": "x", "retry_after": "soon"},
            "retry_after",
            id="field-type",
        ),
        pytest.param("APIError", "expected a JSON object", id="not-an-object"),
    ],
)
def test_a_wrong_error_record_is_a_value_error(record: object, problem: str) -> None:
    """An unknown type or a field of the wrong type is a ValueError saying which."""
    with pytest.raises(ValueError, match=problem):
        error_from_record(record)


class TestFromText:
    """Failures known by name and text: schema 1 rows, or a name given by hand."""

    def test_an_api_error_text_gives_back_its_status_code(self) -> None:
        """str(APIError) leads with the code: it becomes the field again."""
        record = error_record_from_text("NotFoundError", "404: gone", "p-1")
        again = error_from_record(record)
        assert isinstance(again, NotFoundError)
        assert (again.status_code, again.message, again.prediction_id) == (
            404,
            "gone",
            "p-1",
        )

    @pytest.mark.parametrize("text", ["4040: x", "abc: x", "no code here", "40: x"])
    def test_text_without_a_leading_status_is_kept_whole(self, text: str) -> None:
        """Only three digits and a colon are read as the code."""
        again = error_from_record(error_record_from_text("APIError", text))
        assert isinstance(again, APIError)
        assert (again.status_code, again.message) == (None, text)

    def test_a_prediction_failure_takes_its_details_from_the_snapshot(self) -> None:
        """The v1 snapshot JSON gives the error, its code and the status."""
        text = json.dumps(prediction_to_record(SNAPSHOT))
        record = error_record_from_text("PredictionFailedError", "failed", None, text)
        again = error_from_record(record, prediction=SNAPSHOT)
        assert isinstance(again, PredictionFailedError)
        assert (again.prediction_id, again.error, again.error_code) == (
            "p-1",
            "content policy",
            1039,
        )
        assert again.status is PredictionStatus.FAILED

    def test_a_broken_snapshot_only_loses_the_details(self) -> None:
        """A damaged snapshot is reported when the row is read, not here."""
        record = error_record_from_text("PredictionFailedError", "failed", "p", "{x")
        assert record == {
            "type": "PredictionFailedError",
            "message": "failed",
            "prediction_id": "p",
        }

    def test_a_name_outside_the_tree_is_a_plain_atlas_error(self) -> None:
        """A label (any other name) still gives an error that can be raised."""
        again = error_from_record(error_record_from_text("EmulatorStopped", "gone"))
        assert type(again) is AtlasError
        assert str(again) == "gone"
