"""The shape comparison of the emulator's half (`shape`): it must be able
to fail, or no test that uses it could."""

from __future__ import annotations

import pytest

from .shape import assert_shape, shape_mismatches


class TestTheShapeComparison:
    """The comparison itself must be able to fail, or nothing below could."""

    def test_a_missing_key_an_extra_key_and_a_type_change_are_each_reported(
        self,
    ) -> None:
        literal = {"code": 200, "data": {"id": "x", "outputs": ["a"]}}
        emitted = {"code": "200", "data": {"outputs": [1], "more": None}}
        assert shape_mismatches(emitted, literal) == [
            "code: string where the literal has number",
            "data.id: missing",
            "data.outputs[]: number where the literal has string",
            "data.more: not in the literal",
        ]

    def test_open_and_optional_paths_loosen_only_where_named(self) -> None:
        literal = {"data": {"id": "x", "timings": {}}}
        emitted = {"data": {"id": "y", "price": 1}, "extra": True}
        assert shape_mismatches(
            emitted, literal, open={"data"}, optional={"data.timings"}
        ) == ["extra: not in the literal"]

    def test_a_pinned_value_must_equal_the_literals(self) -> None:
        with pytest.raises(AssertionError, match=r"data\.status"):
            assert_shape(
                {"code": 200, "data": {"status": "failed"}},
                b'{"code": 200, "data": {"status": "completed"}}',
                pins=["code", "data.status"],
            )
