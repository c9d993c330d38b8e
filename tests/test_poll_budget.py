"""The poll budget: scarce polls go to the predictions likeliest done (pure)."""

from __future__ import annotations

import math
import random

from atlas_async._core.budget import PollBudget
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import FixedPolicy
from atlas_async._core.schedule import Due, PollCore, Resolved

POLICY = FixedPolicy(1.0)


def _core(durations: list[float]) -> PollCore:
    """A core whose model "m" has seen these durations."""
    core = PollCore(random.Random(5))
    for seconds in durations:
        core.durations.observe(Kind.IMAGE, "m", seconds)
    return core


def _add(core: PollCore, pid: str, at: float, deadline: float = math.inf) -> None:
    core.add(pid, at, kind=Kind.IMAGE, model="m", policy=POLICY, deadline=deadline)


def _ids(items: list[Due]) -> list[str]:
    return [item.prediction_id for item in items]


def test_without_a_limit_it_hands_out_what_the_core_does() -> None:
    core = _core([5.0 + 0.1 * i for i in range(20)])
    twin = _core([5.0 + 0.1 * i for i in range(20)])
    for c in (core, twin):
        _add(c, "a", 0.0)
        _add(c, "b", 0.5)
    budget = PollBudget()
    assert budget.take(core, 2.0, math.inf) == twin.due(2.0)


def test_scarce_tokens_go_to_the_likeliest_done_first() -> None:
    # Durations 5-7 s: at t = 6.5 the oldest is likeliest to have ended.
    core = _core([5.0 + 0.1 * i for i in range(20)])
    _add(core, "young", 5.0)
    _add(core, "old", 0.0)
    _add(core, "middle", 1.0)
    budget = PollBudget()
    assert _ids(budget.take(core, 6.5, 1)) == ["old"]
    assert budget.held == 2
    assert _ids(budget.take(core, 6.6, 1)) == ["middle"]
    assert _ids(budget.take(core, 6.7, 1)) == ["young"]
    assert budget.held == 0


def test_polls_below_the_least_chance_wait_until_it_grows() -> None:
    core = _core([5.0 + 0.1 * i for i in range(20)])
    _add(core, "a", 0.0)
    budget = PollBudget()
    assert budget.take(core, 1.0, math.inf, least=0.2) == []
    assert budget.held == 1
    assert budget.take(core, 4.9, math.inf, least=0.2) == []
    assert _ids(budget.take(core, 5.5, math.inf, least=0.2)) == ["a"]


def test_a_held_poll_is_answered_like_any_other() -> None:
    core = _core([5.0 + 0.1 * i for i in range(20)])
    _add(core, "a", 0.0)
    budget = PollBudget()
    budget.take(core, 1.0, math.inf, least=0.5)
    (item,) = budget.take(core, 6.5, math.inf, least=0.5)
    done = Prediction(id="a", status=PredictionStatus.COMPLETED, outputs=("x",))
    assert isinstance(core.record(item.prediction_id, done, 6.5), Resolved)


def test_expirations_are_never_held() -> None:
    core = _core([50.0] * 20)
    _add(core, "a", 0.0, deadline=3.0)
    budget = PollBudget()
    assert budget.take(core, 1.0, 0, least=0.9) == []
    (item,) = budget.take(core, 3.0, 0, least=0.9)
    assert item.expired is not None
    assert "a" not in core


def test_a_removed_prediction_leaves_the_held_polls() -> None:
    core = _core([50.0] * 20)
    _add(core, "a", 0.0)
    _add(core, "b", 0.0)
    budget = PollBudget()
    budget.take(core, 1.0, 0)
    assert budget.held == 2
    core.remove("a")
    assert _ids(budget.take(core, 60.0, math.inf)) == ["b"]


def test_most_bounds_every_answer() -> None:
    core = _core([5.0] * 20)
    for i in range(4):
        _add(core, f"p{i}", 0.0)
    budget = PollBudget()
    assert len(budget.take(core, 6.0, math.inf, most=1, least=0.1)) == 1
    assert len(budget.take(core, 6.0, math.inf, most=2, least=0.1)) == 2
    assert budget.held == 1


def test_chance_of_an_unknown_prediction_is_zero() -> None:
    core = _core([5.0] * 20)
    assert core.chance("nobody", 10.0) == 0.0
