"""Settling unknown submits from history: the pure decision, explicit ``now``."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest

from atlas_async._core.history import (
    Absent,
    Attach,
    HistoryItem,
    SentSubmit,
    Undecided,
    canonical_body,
    describe,
    settle,
)

T0 = 1_800_000_000.0
BODY = {"model": "m", "prompt": "a cat", "seed": 1}


def item(pid: str, at: float, body: object = BODY, model: str = "m") -> HistoryItem:
    """A history entry created at ``at`` (Unix seconds) from ``body``."""
    text = body if isinstance(body, str) else json.dumps(body)
    stamp = datetime.fromtimestamp(at, tz=timezone.utc)
    return HistoryItem(pid, model, "completed", stamp, text)


def sent(
    key: object, at: float = T0, body: object = BODY, span: float = 5.0
) -> SentSubmit:
    """A submit that went out at ``at`` with a ``span`` s deadline."""
    return SentSubmit(key, "m", body, at, at + span)


def test_a_submit_found_in_history_is_attached_to_its_prediction() -> None:
    history = [item("p1", T0 + 1.0), item("other", T0 + 1.0, {**BODY, "seed": 2})]
    verdicts = settle([sent(0)], history, covered_since=-math.inf, now=T0 + 10)
    assert verdicts == [Attach(0, "p1")]


def test_bodies_match_as_json_values_not_as_texts() -> None:
    spaced = '{ "seed": 1, "prompt": "a cat", "model": "m" }'
    verdicts = settle([sent(0)], [item("p1", T0, spaced)], covered_since=-1, now=T0)
    assert verdicts == [Attach(0, "p1")]
    assert canonical_body(json.loads(spaced)) == canonical_body(BODY)


def test_an_entry_created_outside_the_send_window_is_not_the_submit() -> None:
    history = [item("old", T0 - 3600), item("later", T0 + 3600)]
    verdicts = settle([sent(0)], history, covered_since=-math.inf, now=T0 + 7200)
    assert verdicts == [Absent(0)]


def test_absence_is_believed_only_once_the_window_closed_long_enough_ago() -> None:
    early = settle([sent(0)], [], covered_since=-math.inf, now=T0 + 10)
    assert isinstance(early[0], Undecided)
    assert "may still appear" in early[0].reason
    late = settle([sent(0)], [], covered_since=-math.inf, now=T0 + 5 + 30 + 60)
    assert late == [Absent(0)]


def test_absence_needs_history_read_back_past_the_window() -> None:
    verdicts = settle([sent(0)], [], covered_since=T0, now=T0 + 3600)
    assert isinstance(verdicts[0], Undecided)
    assert "does not reach back" in verdicts[0].reason


def test_claimed_ids_are_never_attached_twice() -> None:
    verdicts = settle(
        [sent(0)],
        [item("p1", T0 + 1)],
        covered_since=-math.inf,
        now=T0 + 3600,
        claimed={"p1"},
    )
    assert verdicts == [Absent(0)]


def test_identical_submits_match_by_count_and_the_rest_are_absent() -> None:
    submits = [sent(0, T0), sent(1, T0 + 0.5), sent(2, T0 + 1.0)]
    history = [item("p1", T0 + 0.2), item("p2", T0 + 1.2)]
    verdicts = settle(submits, history, covered_since=-math.inf, now=T0 + 3600)
    attached = [v for v in verdicts if isinstance(v, Attach)]
    assert sorted(v.prediction_id for v in attached) == ["p1", "p2"]
    assert sum(isinstance(v, Absent) for v in verdicts) == 1
    assert describe(dict(enumerate(verdicts))) == "2 attached, 1 absent, 0 undecided"


def test_more_identical_predictions_than_submits_stay_undecided_and_name_them() -> None:
    history = [item("p1", T0 + 0.1), item("p2", T0 + 0.2)]
    verdicts = settle([sent(0)], history, covered_since=-math.inf, now=T0 + 3600)
    assert verdicts == [
        Undecided(
            0,
            "2 predictions with the same model and body were created while 1 such"
            " submit(s) were out",
            ("p1", "p2"),
        )
    ]


def test_another_models_prediction_with_the_same_body_is_not_a_candidate() -> None:
    history = [item("p1", T0 + 1, model="other")]
    verdicts = settle([sent(0)], history, covered_since=-math.inf, now=T0 + 3600)
    assert verdicts == [Absent(0)]


@pytest.mark.parametrize("garbage", ["not json", None])
def test_an_entry_without_a_readable_body_never_matches(garbage: str | None) -> None:
    entry = HistoryItem(
        "p1", "m", "completed", datetime.fromtimestamp(T0, timezone.utc), garbage
    )
    assert entry.body is None
    verdicts = settle([sent(0)], [entry], covered_since=-math.inf, now=T0 + 3600)
    assert verdicts == [Absent(0)]


def test_verdicts_come_back_in_the_order_of_the_submits() -> None:
    other = {**BODY, "seed": 9}
    submits = [sent("x", body=other), sent("y")]
    history = [item("p-y", T0 + 1), item("p-x", T0 + 1, other)]
    verdicts = settle(submits, history, covered_since=-math.inf, now=T0 + 10)
    assert verdicts == [Attach("x", "p-x"), Attach("y", "p-y")]


def test_a_whole_second_stamp_before_the_send_still_matches() -> None:
    """History truncates to whole seconds: created 0.3 s after a send at
    T0 + 0.9, it is stamped T0, before the send; still this submit's."""
    verdicts = settle(
        [sent(0, T0 + 0.9)],
        [item("p1", T0)],
        covered_since=-math.inf,
        now=T0 + 3600,
        skew=0.5,
    )
    assert verdicts == [Attach(0, "p1")]
