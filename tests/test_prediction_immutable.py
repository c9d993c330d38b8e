"""A `Prediction` never changes: its mappings are read-only all the way down.

Snapshots are shared between the scheduler, futures and user code, so nothing
anyone does to one may change what another holder sees; and being immutable
they are hashable, usable as dict keys and in sets.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs
import cattrs
import pytest

from atlas_async import Prediction, PredictionStatus
from atlas_async._core.models import FrozenDict, freeze, frozen_mapping

RAW: dict[str, Any] = {
    "id": "p1",
    "status": "completed",
    "outputs": ["https://cdn/a.png"],
    "urls": {"get": "https://api/p1"},
    "has_nsfw_contents": [False],
    "metrics": {"predict_time": 4.2, "stages": [{"name": "queue", "s": 0.5}]},
}


def snapshot(**changes: Any) -> Prediction:
    fields: dict[str, Any] = {
        "id": "p1",
        "status": PredictionStatus.COMPLETED,
        "status_raw": "completed",
        "model": "m",
        "outputs": ("https://cdn/a.png",),
        "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "urls": {"get": "https://api/p1"},
        "metrics": {"predict_time": 4.2, "stages": [{"name": "queue", "s": 0.5}]},
        "raw": RAW,
    }
    return Prediction(**(fields | changes))


MUTATIONS: list[Any] = [
    pytest.param(lambda m: m.__setitem__("x", 1), id="setitem"),
    pytest.param(lambda m: m.__delitem__("get"), id="delitem"),
    pytest.param(lambda m: m.update(x=1), id="update"),
    pytest.param(lambda m: m.pop("get"), id="pop"),
    pytest.param(lambda m: m.popitem(), id="popitem"),
    pytest.param(lambda m: m.clear(), id="clear"),
    pytest.param(lambda m: m.setdefault("x", 1), id="setdefault"),
    pytest.param(lambda m: m.__ior__({"x": 1}), id="in-place-or"),
]


class TestMutation:
    @pytest.mark.parametrize("field", ["urls", "metrics", "raw"])
    @pytest.mark.parametrize("mutate", MUTATIONS)
    def test_every_mutating_method_raises_type_error(
        self, field: str, mutate: Callable[[Any], object]
    ) -> None:
        """urls, metrics and raw refuse every change, and stay as they were."""
        prediction = snapshot()
        before = dict(getattr(prediction, field))
        with pytest.raises(TypeError, match="read-only"):
            mutate(getattr(prediction, field))
        assert getattr(prediction, field) == before

    def test_nested_objects_are_read_only_and_arrays_are_tuples(self) -> None:
        """Freezing goes all the way down: objects in objects, objects in arrays."""
        prediction = snapshot()
        stages = prediction.metrics["stages"]
        assert isinstance(stages, tuple)
        with pytest.raises(TypeError):
            stages[0]["name"] = "run"
        with pytest.raises(TypeError):
            prediction.raw["urls"]["get"] = "https://elsewhere"
        assert prediction.raw["outputs"] == ("https://cdn/a.png",)

    def test_the_callers_dict_is_copied_not_kept(self) -> None:
        """Changing the dict a prediction was built from does not change it."""
        source = {"get": "https://api/p1", "nested": {"a": [1]}}
        prediction = snapshot(urls=source)
        source["get"] = "changed"
        source["nested"]["a"].append(2)  # type: ignore[index]
        assert prediction.urls == {"get": "https://api/p1", "nested": {"a": [1]}}

    def test_fields_cannot_be_reassigned(self) -> None:
        """The snapshot itself is frozen (attrs)."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            snapshot().urls = {}  # type: ignore[misc]

    def test_copies_and_unions_are_plain_dicts_to_change(self) -> None:
        """copy() and | give an ordinary dict; the snapshot keeps its own."""
        urls = snapshot().urls
        assert isinstance(urls, FrozenDict)
        copied = urls.copy()
        merged = urls | {"x": "y"}
        copied["x"] = "y"
        assert type(copied) is dict
        assert type(merged) is dict
        assert merged == copied
        assert urls == {"get": "https://api/p1"}


class TestHashAndEquality:
    def test_equal_predictions_hash_equal(self) -> None:
        """hash() works, and two equal snapshots give the same hash."""
        assert snapshot() == snapshot()
        assert hash(snapshot()) == hash(snapshot())

    def test_raw_is_not_part_of_equality_or_hash(self) -> None:
        """Snapshots differing only in raw are equal and hash alike, as before."""
        first, second = snapshot(), snapshot(raw={"other": [1, 2]})
        assert first == second
        assert hash(first) == hash(second)

    def test_a_modelled_field_changes_equality(self) -> None:
        """Different urls or metrics make different snapshots."""
        assert snapshot() != snapshot(urls={"get": "https://api/p2"})
        assert snapshot() != snapshot(metrics={})

    def test_predictions_work_as_keys_and_in_sets(self) -> None:
        """Immutable and hashable: a snapshot can key a dict or sit in a set."""
        seen = {snapshot(): "first"}
        seen[snapshot()] = "again"
        assert len(seen) == 1
        assert len({snapshot(), snapshot(), snapshot(status_raw="success")}) == 2

    def test_the_hash_is_computed_when_asked_for(self) -> None:
        """Building never hashes: an unhashable value fails only in hash()."""
        prediction = snapshot(metrics={"odd": bytearray(b"x")})
        with pytest.raises(TypeError, match="unhashable"):
            hash(prediction)

    def test_frozen_mappings_equal_plain_dicts_both_ways(self) -> None:
        """A snapshot's raw equals the decoded JSON it came from, lists and all."""
        raw = snapshot().raw
        assert raw == RAW
        assert RAW == raw  # noqa: SIM300 - the plain dict on the left, on purpose
        assert not raw != RAW  # noqa: SIM202 - `!=` is its own method
        assert raw != {**RAW, "id": "p2"}
        assert frozen_mapping({"a": [1]}) != {"a": [2]}
        assert frozen_mapping({"a": 1}) != ["a"]

    def test_equal_frozen_mappings_hash_equal(self) -> None:
        """Built from equal dicts, in any key order, they hash alike."""
        first = frozen_mapping({"a": 1, "b": [2, {"c": 3}]})
        second = frozen_mapping({"b": [2, {"c": 3}], "a": 1})
        assert first == second
        assert hash(first) == hash(second)


class TestSerialisation:
    def test_reads_and_prints_like_a_dict(self) -> None:
        """A read-only mapping, with a dict's repr."""
        urls = snapshot().urls
        assert isinstance(urls, Mapping)
        assert repr(urls) == "{'get': 'https://api/p1'}"
        assert list(urls.items()) == [("get", "https://api/p1")]

    def test_json_dumps_raw_as_it_came(self) -> None:
        """Tuples come out as JSON arrays: the same document goes back out."""
        assert json.loads(json.dumps(snapshot().raw)) == RAW

    def test_attrs_and_cattrs_unstructure_to_plain_dicts(self) -> None:
        """What the journal and applications serialise is ordinary data."""
        prediction = snapshot()
        for plain in (
            attrs.asdict(prediction),
            cattrs.Converter().unstructure(prediction),
        ):
            assert type(plain["urls"]) is dict
            assert type(plain["metrics"]) is dict
            assert plain["metrics"]["predict_time"] == 4.2
            json.dumps(plain, default=str)

    def test_pickling_keeps_it_frozen_and_equal(self) -> None:
        """A snapshot sent to another process is the same, and still frozen."""
        prediction = snapshot()
        restored = pickle.loads(pickle.dumps(prediction))
        assert restored == prediction
        assert restored.raw == prediction.raw
        assert hash(restored) == hash(prediction)
        with pytest.raises(TypeError):
            restored.raw["urls"]["get"] = "x"

    def test_copies_are_the_same_value(self) -> None:
        """copy() needs no copy of something immutable; deepcopy stays equal."""
        raw = snapshot().raw
        assert copy.copy(raw) is raw
        deep = copy.deepcopy(snapshot())
        assert deep == snapshot()
        assert isinstance(deep.raw["urls"], FrozenDict)


class TestFreeze:
    def test_freeze_makes_containers_immutable_and_keeps_the_rest(self) -> None:
        """dicts -> FrozenDict, lists and tuples -> tuples, sets -> frozensets."""
        when = datetime(2026, 1, 1, tzinfo=timezone.utc)
        frozen = freeze({"a": [1, {"b": {2}}], "t": (3, [4]), "when": when})
        assert frozen == {"a": (1, {"b": frozenset({2})}), "t": (3, (4,)), "when": when}
        assert type(frozen["a"][1]) is FrozenDict
        assert frozen["when"] is when

    def test_already_frozen_values_are_reused(self) -> None:
        """Freezing a FrozenDict again costs nothing: it is returned as it is."""
        frozen = frozen_mapping({"a": 1})
        assert frozen_mapping(frozen) is frozen
        assert freeze(frozen) is frozen
        assert frozen_mapping(None) == {}
