"""Webhooks first: polls only when a delivery is overdue (pure, fake times)."""

from __future__ import annotations

import random

import pytest

from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import (
    FixedPolicy,
    WebhookPolicy,
    webhook_first,
)
from atlas_async._core.schedule import PollCore, Rescheduled

EPOCH = 1_700_000_000.0
INNER = FixedPolicy(1.0)
HOOKED = WebhookPolicy(INNER)


def _done(pid: str, created: float, completed: float) -> Prediction:
    """A terminal snapshot carrying the server's timestamps (epoch seconds)."""
    return Prediction(
        id=pid,
        status=PredictionStatus.COMPLETED,
        outputs=("x",),
        raw={"created_at": EPOCH + created, "completed_at": EPOCH + completed},
    )


def _add(core: PollCore, pid: str, now: float) -> float:
    return core.add(pid, now, kind=Kind.IMAGE, model="m", policy=HOOKED)


def test_before_any_delivery_it_polls_like_its_inner_policy() -> None:
    core = PollCore(random.Random(1))
    assert _add(core, "a", 0.0) == 1.0


def test_a_delivery_teaches_the_duration_and_the_delay() -> None:
    core = PollCore(random.Random(1))
    _add(core, "a", 0.0)
    core.delivered(_done("a", 0.0, 5.0), 6.5)
    model = core.durations.get(Kind.IMAGE, "m")
    assert model.count == 1
    assert model.delays == [pytest.approx(1.5)]
    assert "a" not in core


def test_a_delivery_without_timestamps_teaches_nothing() -> None:
    core = PollCore(random.Random(1))
    _add(core, "a", 0.0)
    bare = Prediction(id="a", status=PredictionStatus.COMPLETED, outputs=("x",))
    core.delivered(bare, 6.5)
    model = core.durations.get(Kind.IMAGE, "m")
    assert (model.count, model.delays) == (0, [])
    assert "a" not in core


def test_an_unknown_delivery_is_ignored() -> None:
    core = PollCore(random.Random(1))
    core.delivered(_done("ghost", 0.0, 1.0), 2.0)
    assert len(core) == 0


def test_after_deliveries_the_first_poll_waits_for_an_overdue_delivery() -> None:
    core = PollCore(random.Random(1))
    for i in range(20):
        pid = f"w{i}"
        _add(core, pid, 0.0)
        core.delivered(_done(pid, 0.0, 4.0 + 0.1 * i), 4.0 + 0.1 * i + 1.0)
    model = core.durations.get(Kind.IMAGE, "m")
    # Longest duration 5.9 s; longest delay 1 s, plus max(0.25, 0.5) s.
    assert model.delivery_delay == pytest.approx(1.5)
    assert _add(core, "late", 100.0) == pytest.approx(100.0 + 5.9 + 1.5)


def test_a_running_answer_at_the_overdue_poll_falls_back_to_the_schedule() -> None:
    core = PollCore(random.Random(1))
    for i in range(20):
        _add(core, f"w{i}", 0.0)
        core.delivered(_done(f"w{i}", 0.0, 4.0), 5.0)
    at = _add(core, "slow", 0.0)
    (item,) = core.due(at)
    running = Prediction(id="slow", status=PredictionStatus.PROCESSING)
    decision = core.record(item.prediction_id, running, at)
    assert decision == Rescheduled(at + 1.0)


def test_webhook_first_wraps_only_submits_with_a_webhook_url() -> None:
    assert webhook_first(INNER, {"prompt": "x"}) is INNER
    assert webhook_first(INNER, {"webhook_url": ""}) is INNER
    wrapped = webhook_first(INNER, {"webhook_url": "https://example.com/h"})
    assert wrapped == WebhookPolicy(INNER)
    assert webhook_first(wrapped, {"webhook_url": "https://example.com/h"}) is wrapped


def test_no_probe_once_deliveries_are_known() -> None:
    core = PollCore(random.Random(1))
    model = core.durations.get(Kind.IMAGE, "m")
    model.observe_delivery(1.0)
    assert HOOKED.probe(model) is None
