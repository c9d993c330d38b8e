"""
The poll's fast snapshot path and the converter agree (issue: the hot path).

`read_prediction_fast` builds a `Prediction` field by field with the same hooks
the cattrs converter uses. For every literal body of the contract, and for odd
shapes of each field, it gives the very snapshot the converter gives, or
declines (None) where the converter reports a problem.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from atlas_async._core.models import Prediction
from atlas_async._wire.convert import converter, read_prediction_fast

from . import literals


def data_objects() -> list[tuple[str, dict[str, Any]]]:
    """Every ``data`` object (or bare object) among the literal bodies."""
    found = []
    for name in dir(literals):
        value = getattr(literals, name)
        if not isinstance(value, bytes):
            continue
        try:
            body = json.loads(value)
        except ValueError:
            continue
        if isinstance(body, dict):
            data = body.get("data")
            found.append((name, data if isinstance(data, dict) else body))
    return found


ODD_FIELDS: list[dict[str, Any]] = [
    {"id": 7, "status": "processing"},
    {"id": "a", "status": 3},
    {"id": "a", "status": None, "model": None},
    {"id": "a", "outputs": "https://x/1.png"},
    {"id": "a", "outputs": [{"url": "https://x/1.png"}, "https://x/2.png"]},
    {"id": "a", "outputs": None, "output": ["https://x/o.png"]},
    {"id": "a", "error": {"message": "boom", "code": 5}},
    {"id": "a", "error": ""},
    {"id": "a", "error_code": "1039"},
    {"id": "a", "error_code": 3.0},
    {"id": "a", "error_code": True},
    {"id": "a", "created_at": "2024-01-01T00:00:00Z"},
    {"id": "a", "created_at": "yesterday"},
    {"id": "a", "has_nsfw_contents": [True, False]},
    {"id": "a", "has_nsfw_contents": "no"},
    {"id": "a", "urls": {"get": "https://x", "n": 3}},
    {"id": "a", "urls": None},
    {"id": "a", "metrics": {"predict_time": 1.5, "nested": {"a": [1, 2]}}},
    {"id": "", "prediction_id": "b"},
    {"predictionId": "c", "status": "completed", "outputs": ["https://x"]},
    {"request_id": "d"},
    {"id": "a", "unknown": {"deep": [1, {"x": None}]}, "status": "succeeded"},
]

DECLINED: list[dict[str, Any]] = [
    {"status": "processing"},  # no id anywhere
    {"id": {"x": 1}},
    {"id": "a", "status": ["processing"]},
    {"id": "a", "outputs": 5},
    {"id": "a", "outputs": [{"nope": 1}]},
    {"id": "a", "model": 1.5},
]


def fields(prediction: Prediction | None) -> dict[str, Any] | None:
    """Every attribute, ``raw`` included (``==`` compares fewer)."""
    if prediction is None:
        return None
    return {f.name: getattr(prediction, f.name) for f in attrs.fields(Prediction)}


def converted(data: dict[str, Any]) -> Prediction:
    result = converter.structure(data, Prediction)
    assert isinstance(result, Prediction)
    return result


@pytest.mark.parametrize(("name", "data"), data_objects())
def test_every_literal_body_gives_the_converters_snapshot(
    name: str, data: dict[str, Any]
) -> None:
    try:
        expected: Prediction | None = converted(data)
    except Exception:  # noqa: BLE001  # the converter refuses: so must the fast path
        expected = None
    assert fields(read_prediction_fast(data)) == fields(expected), name


@pytest.mark.parametrize("data", ODD_FIELDS, ids=repr)
def test_odd_fields_read_the_same_on_both_paths(data: dict[str, Any]) -> None:
    fast = read_prediction_fast(data)
    assert fast is not None
    assert fields(fast) == fields(converted(data))


@pytest.mark.parametrize("data", DECLINED, ids=repr)
def test_what_the_converter_refuses_the_fast_path_declines(
    data: dict[str, Any],
) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011  # cattrs' own error types
        converted(data)
    assert read_prediction_fast(data) is None


def test_a_mapping_that_is_not_a_plain_dict_takes_the_converter() -> None:
    class Odd(dict[str, Any]):
        pass

    assert read_prediction_fast(Odd(id="a")) is None
    assert read_prediction_fast(["id", "a"]) is None
