"""What a resume does with each journal item: `place` and `step_of`, pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas_async._batch.placement import Step, place, step_of
from atlas_async._batch.rows import ItemState, JournalEntry
from atlas_async._core.models import Kind, Prediction, PredictionStatus


def entry(index: int, key: str, state: ItemState, **fields: object) -> JournalEntry:
    return JournalEntry(
        index=index, key=key, kind=Kind.IMAGE, model="m", params={}, state=state,
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def done(
    state: ItemState, outputs: tuple[str, ...] = ("https://x/a.png",)
) -> JournalEntry:
    snapshot = Prediction(
        id="p", status=PredictionStatus.COMPLETED, model="m", outputs=outputs
    )
    files = (Path("out/a.png"),) if state is ItemState.SAVED else ()
    return entry(
        0, "k", state, prediction_id="p", prediction=snapshot, outputs=outputs,
        files=files,
    )  # fmt: skip


class TestPlace:
    def test_the_nth_copy_of_a_key_takes_the_nth_item_and_the_rest_is_leftover(
        self,
    ) -> None:
        """Matched by key in journal order; unclaimed items keep their order."""
        stored = [
            entry(0, "a", ItemState.PENDING),
            entry(1, "b", ItemState.FAILED, error_type="X"),
            entry(2, "a", ItemState.PENDING),
            entry(3, "c", ItemState.PENDING),
        ]
        placement = place(stored, ["a", "new", "a", "a"])
        assert [e.index if e else None for e in placement.items] == [0, None, 2, None]
        assert [e.index for e in placement.leftover] == [1, 3]
        assert [e.index if e else None for e in placement.order] == [
            0, None, 2, None, 1, 3,
        ]  # fmt: skip


class TestStepOf:
    @pytest.mark.parametrize(
        ("item", "downloads", "present", "step"),
        [
            pytest.param(None, True, True, Step.SEND, id="new"),
            pytest.param(done(ItemState.SAVED), True, True, Step.DONE, id="saved"),
            pytest.param(
                done(ItemState.SAVED), True, False, Step.FETCH, id="saved-deleted"
            ),
            pytest.param(
                done(ItemState.COMPLETED), True, True, Step.FETCH, id="unsaved"
            ),
            pytest.param(
                done(ItemState.COMPLETED), False, True, Step.DONE, id="no-downloads"
            ),
            pytest.param(
                done(ItemState.COMPLETED, ()), True, True, Step.DONE, id="no-outputs"
            ),
        ],
    )
    def test_each_state_has_its_step(
        self, item: JournalEntry | None, downloads: bool, present: bool, step: Step
    ) -> None:
        """A saved item whose files left the disk, or a completed one with
        outputs to save, is fetched again; with nothing to save it is done."""
        assert step_of(item, downloads=downloads, files_present=present) is step

    def test_str_is_the_word_shown(self) -> None:
        """`--status` prints the value."""
        assert str(Step.FETCH) == "files missing"
