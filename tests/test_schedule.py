"""The pure scheduler core: due polls, deadlines and decisions, explicit ``now``."""

from __future__ import annotations

import math
import random

import pytest

from atlas_async._core.errors import (
    AtlasError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PredictionFailedError,
    RateLimitError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from atlas_async._core.models import Kind, Prediction, PredictionStatus
from atlas_async._core.policies import BackoffPolicy, FixedPolicy
from atlas_async._core.schedule import (
    GROUPING,
    TIMER_SLACK,
    Due,
    Expired,
    Failed,
    PollCore,
    Rescheduled,
    Resolved,
    default_failure,
    settle,
)
from atlas_async._core.windows import hurry_share

S = PredictionStatus


def snap(
    status: PredictionStatus = S.PROCESSING,
    outputs: tuple[str, ...] = (),
    pid: str = "p1",
    error: str | None = None,
) -> Prediction:
    """A prediction snapshot."""
    return Prediction(id=pid, status=status, outputs=outputs, error=error)


DONE = snap(S.COMPLETED, ("https://cdn/x.png",))


def make_core(**kwargs: object) -> PollCore:
    """A core with unjittered retries and a fixed seed."""
    kwargs.setdefault("retry", BackoffPolicy(jitter=0.0))
    return PollCore(random.Random(1), **kwargs)  # type: ignore[arg-type]


def add(core: PollCore, pid: str = "p1", now: float = 0.0, **kwargs: object) -> float:
    """Register ``pid`` with a fixed 2 s policy."""
    options: dict[str, object] = {
        "kind": Kind.IMAGE,
        "model": "m",
        "policy": FixedPolicy(2.0),
    }
    options.update(kwargs)
    return core.add(pid, now, **options)  # type: ignore[arg-type]


def poll(core: PollCore, now: float, pid: str = "p1") -> None:
    """Pop ``pid`` as due at ``now`` (it must be)."""
    assert [Due(pid)] == core.due(now)


class TestDue:
    def test_nothing_is_due_before_the_first_poll(self) -> None:
        """A prediction comes due at its first poll time, not before."""
        core = make_core()
        assert add(core) == 2.0
        assert core.due(1.9) == []
        assert [Due("p1")] == core.due(2.0)

    @pytest.mark.parametrize(
        ("early", "due"),
        [(GROUPING + 0.0005, False), (GROUPING - 0.0005, True), (0.0, True)],
        ids=str,
    )
    def test_polls_due_within_the_grouping_are_popped(
        self, early: float, due: bool
    ) -> None:
        """Polls due within `GROUPING` of now go out together, a little early."""
        core = make_core()
        add(core)
        assert due == bool(core.due(2.0 - early))

    def test_polls_falling_due_close_together_come_in_one_call(self) -> None:
        """One wake-up hands out the whole group, not one poll per timer."""
        core = make_core()
        for i in range(4):
            add(core, f"p{i}", first_poll=2.0 + i * GROUPING / 4)
        assert [Due(f"p{i}") for i in range(4)] == core.due(2.0)
        assert math.inf == core.next_wakeup()

    def test_all_due_items_come_in_one_call(self) -> None:
        """One call returns every due prediction, in time order."""
        core = make_core()
        add(core, "a", first_poll=3.0)
        add(core, "b", first_poll=1.0)
        add(core, "c", first_poll=9.0)
        assert [Due("b"), Due("a")] == core.due(5.0)
        assert core.next_wakeup() == 9.0

    def test_in_flight_prediction_is_not_handed_out_twice(self) -> None:
        """Between due and record there is no poll entry for it."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        assert math.inf == core.next_wakeup()
        assert core.due(100.0) == []

    def test_idle_core_wakes_never(self) -> None:
        """An empty core's next wakeup is infinity."""
        core = make_core()
        assert math.inf == core.next_wakeup()
        assert len(core) == 0

    def test_duplicate_registration_is_refused(self) -> None:
        """An id is registered once."""
        core = make_core()
        add(core)
        with pytest.raises(ValueError, match="already scheduled"):
            add(core)
        assert "p1" in core


class TestDecisions:
    @pytest.mark.parametrize(
        ("outcome", "expected"),
        [
            pytest.param(snap(S.PROCESSING), Rescheduled(4.0), id="processing"),
            pytest.param(snap(S.UNKNOWN), Rescheduled(4.0), id="unknown-status"),
            pytest.param(snap(S.QUEUED), Rescheduled(4.0), id="queued"),
            pytest.param(DONE, Resolved(DONE), id="completed"),
        ],
    )
    def test_answer_becomes_a_decision(
        self, outcome: Prediction, expected: object
    ) -> None:
        """Running statuses reschedule at the policy's interval; success resolves."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        assert expected == core.record("p1", outcome, 2.0)

    @pytest.mark.parametrize(
        ("outcome", "message"),
        [
            pytest.param(snap(S.FAILED, error="bad prompt"), "failed: bad prompt"),
            pytest.param(snap(S.TIMEOUT), "p1 timed out on the server"),
            pytest.param(snap(S.CANCELED), "p1 was canceled on the server"),
            pytest.param(snap(S.COMPLETED), "completed without outputs"),
        ],
    )
    def test_server_failure_fails_the_prediction(
        self, outcome: Prediction, message: str
    ) -> None:
        """Terminal failures (and empty completions) become PredictionFailedError."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        decision = core.record("p1", outcome, 2.0)
        assert isinstance(decision, Failed)
        assert isinstance(decision.error, PredictionFailedError)
        assert message in str(decision.error)
        assert outcome.status is decision.error.status
        assert len(core) == 0

    def test_late_answer_for_a_finished_prediction_is_ignored(self) -> None:
        """Once decided, further answers return None."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        core.record("p1", DONE, 2.0)
        assert core.record("p1", DONE, 2.5) is None
        assert core.record("unknown", DONE, 2.5) is None

    def test_answer_for_a_prediction_not_in_flight_is_ignored(self) -> None:
        """An answer nobody asked for changes nothing."""
        core = make_core()
        add(core)
        assert core.record("p1", DONE, 1.0) is None
        assert len(core) == 1

    def test_custom_failure_mapping_is_used(self) -> None:
        """The injected failure function decides what a terminal snapshot means."""
        core = make_core(failure=lambda p: None)
        add(core)
        poll(core, 2.0)
        failed = snap(S.FAILED)
        assert Resolved(failed) == core.record("p1", failed, 2.0)

    def test_polls_are_counted(self) -> None:
        """Every recorded answer counts as a poll."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        core.record("p1", snap(), 2.0)
        assert core.polls("p1") == 1
        assert core.polls("other") == 0


class TestErrors:
    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(ServerError("boom", status_code=500), id="5xx"),
            pytest.param(TransportError("reset"), id="transport"),
            pytest.param(UnexpectedResponseError("junk"), id="malformed"),
        ],
    )
    def test_transient_errors_retry_with_backoff(self, error: AtlasError) -> None:
        """Consecutive transient failures back off 1, 2, 4 s, then recover."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        assert Rescheduled(3.0) == core.record("p1", error, 2.0)
        poll(core, 3.0)
        assert Rescheduled(5.0) == core.record("p1", error, 3.0)
        assert core.errors("p1") == 2
        poll(core, 5.0)
        assert Rescheduled(9.0) == core.record("p1", error, 5.0)
        poll(core, 9.0)
        assert Rescheduled(11.0) == core.record("p1", snap(), 9.0)
        assert core.errors("p1") == 0
        assert core.errors("other") == 0

    def test_rate_limit_retry_after_is_honoured(self) -> None:
        """A 429 with Retry-After 7 polls again 7 s later."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        error = RateLimitError("slow down", status_code=429, retry_after=7.0)
        assert Rescheduled(9.0) == core.record("p1", error, 2.0)

    def test_too_many_consecutive_errors_fail(self) -> None:
        """Past max_consecutive_errors the last error is the outcome."""
        core = make_core(max_consecutive_errors=2)
        add(core)
        error = ServerError("down", status_code=503)
        now = 2.0
        for _ in range(2):
            poll(core, now)
            decision = core.record("p1", error, now)
            assert isinstance(decision, Rescheduled)
            now = decision.at
        poll(core, now)
        assert Failed(error) == core.record("p1", error, now)

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(AuthenticationError("no", status_code=401), id="401"),
            pytest.param(InvalidRequestError("no", status_code=400), id="400"),
            pytest.param(AtlasError("other"), id="other"),
        ],
    )
    def test_permanent_errors_fail_at_once(self, error: AtlasError) -> None:
        """Errors a retry cannot fix fail the prediction, with its id attached."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        assert Failed(error) == core.record("p1", error, 2.0)
        assert error.prediction_id == "p1"

    def test_not_found_is_retried_within_the_grace_window(self) -> None:
        """A 404 in the first 30 s means 'not visible yet': poll again."""
        core = make_core(not_found_grace=30.0)
        add(core)
        poll(core, 2.0)
        assert Rescheduled(3.0) == core.record("p1", NotFoundError("?"), 2.0)

    def test_not_found_after_the_grace_window_fails(self) -> None:
        """A 404 after the grace window fails with NotFoundError and the id."""
        core = make_core(not_found_grace=30.0)
        add(core, first_poll=31.0)
        poll(core, 31.0)
        error = NotFoundError("not found", status_code=404)
        decision = core.record("p1", error, 31.0)
        assert Failed(error) == decision
        assert error.prediction_id == "p1"

    def test_retry_past_the_deadline_expires(self) -> None:
        """An error answered after the deadline expires instead of retrying."""
        core = make_core()
        add(core, deadline=2.5, timeout=2.5)
        poll(core, 2.0)
        error = ServerError("down", status_code=502)
        assert Expired(None, 2.5) == core.record("p1", error, 2.6)


class TestDeadlines:
    def test_deadline_expires_with_the_last_status(self) -> None:
        """At the deadline the prediction expires, naming the last status seen."""
        core = make_core()
        add(core, deadline=5.0, timeout=5.0)
        poll(core, 2.0)
        core.record("p1", snap(S.QUEUED), 2.1)
        poll(core, 4.1)
        core.record("p1", snap(S.PROCESSING), 4.2)
        assert core.due(4.9) == []
        assert [Due("p1", Expired(S.PROCESSING, 5.0))] == core.due(5.0)
        assert len(core) == 0
        assert math.inf == core.next_wakeup()

    def test_deadline_passes_while_a_poll_is_in_flight(self) -> None:
        """A hung poll does not hold the deadline back; its late answer is ignored."""
        core = make_core()
        add(core, deadline=3.0, timeout=3.0)
        poll(core, 2.0)
        assert [Due("p1", Expired(None, 3.0))] == core.due(3.0)
        assert core.record("p1", DONE, 10.0) is None

    def test_poll_due_at_the_deadline_expires_instead(self) -> None:
        """A poll that comes due at the deadline is not started."""
        core = make_core()
        add(core, deadline=2.0005, timeout=2.0, first_poll=2.0)
        due = core.due(2.0)
        assert len(due) == 1
        assert due[0].expired is not None

    def test_deadline_is_never_cut_short_by_the_grouping(self) -> None:
        """A deadline passes within the timer's resolution, not `GROUPING` early."""
        core = make_core()
        add(core, deadline=5.0, timeout=5.0, first_poll=10.0)
        assert core.due(5.0 - GROUPING / 2) == []
        assert core.next_wakeup() == 5.0
        assert [Due("p1", Expired(None, 5.0))] == core.due(5.0 - TIMER_SLACK / 2)

    def test_poll_just_before_the_deadline_is_still_made(self) -> None:
        """Taken early with its group, a poll due before the deadline is polled."""
        core = make_core()
        add(core, deadline=2.002, timeout=2.002, first_poll=2.0)
        assert [Due("p1")] == core.due(2.0 - GROUPING / 2)

    def test_near_deadline_holds_back_only_later_polls(self) -> None:
        """Polls behind a deadline not yet passed wait: they are not due yet."""
        core = make_core()
        add(core, "a", deadline=2.0015, timeout=2.0, first_poll=10.0)
        add(core, "b", first_poll=2.002)
        assert core.due(2.0) == []
        assert core.next_wakeup() == 2.0015
        assert [Due("a", Expired(None, 2.0)), Due("b")] == core.due(2.0015)

    def test_answer_after_the_deadline_still_resolves_if_terminal(self) -> None:
        """A result that arrived is a result, even a little late."""
        core = make_core()
        add(core, deadline=2.5)
        poll(core, 2.0)
        assert Resolved(DONE) == core.record("p1", DONE, 2.6)

    def test_running_answer_after_the_deadline_expires(self) -> None:
        """A still-running answer after the deadline expires it."""
        core = make_core()
        add(core, deadline=2.5, timeout=2.5)
        poll(core, 2.0)
        assert Expired(S.PROCESSING, 2.5) == core.record("p1", snap(), 2.6)


class TestRemove:
    def test_removed_prediction_is_never_due(self) -> None:
        """Cancellation drops the prediction and its heap entries."""
        core = make_core()
        add(core, deadline=50.0)
        assert core.remove("p1")
        assert not core.remove("p1")
        assert math.inf == core.next_wakeup()
        assert core.due(100.0) == []

    def test_removed_in_flight_prediction_ignores_its_answer(self) -> None:
        """An answer arriving after removal returns None."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        core.remove("p1")
        assert core.record("p1", DONE, 2.1) is None

    def test_same_id_can_be_added_again_after_removal(self) -> None:
        """Stale entries of a removed id never fire for its successor."""
        core = make_core()
        add(core, first_poll=1.0, deadline=3.0)
        core.remove("p1")
        add(core, first_poll=5.0)
        assert core.due(4.0) == []
        assert [Due("p1")] == core.due(5.0)

    def test_heap_is_compacted_when_mostly_stale(self) -> None:
        """Lazy deletion never lets stale entries outgrow the live ones."""
        core = make_core()
        for i in range(1000):
            add(core, f"p{i}", deadline=1e6)
        for i in range(990):
            core.remove(f"p{i}")
        assert core.heap_size <= 2 * 10 * 2 + 64
        assert len(core.due(2.0)) == 10


class TestLearning:
    def test_completion_teaches_the_midpoint_of_the_last_two_polls(self) -> None:
        """Done between polls at 2 s and 4 s: the model learns 3 s."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        core.record("p1", snap(), 2.0)
        poll(core, 4.0)
        core.record("p1", DONE, 4.0)
        model = core.durations.get(Kind.IMAGE, "m")
        assert (model.count, model.minimum) == (1, 3.0)

    def test_completion_at_the_first_poll_teaches_half_the_elapsed_time(self) -> None:
        """Done at the first poll, it may have ended any time: learn elapsed / 2."""
        core = make_core()
        add(core)
        poll(core, 2.0)
        core.record("p1", DONE, 2.0)
        assert core.durations.get(Kind.IMAGE, "m").minimum == 1.0

    @pytest.mark.parametrize(
        ("learn", "outcome"),
        [(False, DONE), (True, snap(S.FAILED))],
        ids=["attached", "failed"],
    )
    def test_only_observed_successes_teach(
        self, learn: bool, outcome: Prediction
    ) -> None:
        """Attached predictions and failures teach the model nothing."""
        core = make_core()
        add(core, learn=learn)
        poll(core, 2.0)
        core.record("p1", outcome, 2.0)
        assert core.durations.get(Kind.IMAGE, "m").count == 0


class TestSettle:
    @pytest.mark.parametrize(
        ("prediction", "kind"),
        [
            (snap(S.PROCESSING), type(None)),
            (DONE, Resolved),
            (snap(S.FAILED), Failed),
            (snap(S.COMPLETED), Failed),
        ],
        ids=["running", "completed", "failed", "empty"],
    )
    def test_settle_classifies_snapshots(
        self, prediction: Prediction, kind: type
    ) -> None:
        """settle returns None while running, else the final decision."""
        assert isinstance(settle(prediction), kind)

    def test_default_failure_keeps_server_details(self) -> None:
        """The failure error carries the server's text, code and snapshot."""
        failed = Prediction(
            id="p9", status=S.FAILED, error="nsfw", error_code=1039, outputs=()
        )
        error = default_failure(failed)
        assert error is not None
        assert (error.error, error.error_code, error.prediction) == (
            "nsfw",
            1039,
            failed,
        )
        assert default_failure(DONE) is None


def test_a_model_with_submits_waiting_for_its_window_is_polled_more_densely() -> None:
    share = {"busy": 0.5}
    core = make_core(hurry=lambda model: share.get(model or "", 1.0))
    fixed = FixedPolicy(2.0, jitter=0.0)
    for pid, model in (("a", "busy"), ("b", "free")):
        assert core.add(pid, 0.0, kind=Kind.VIDEO, model=model, policy=fixed) == 2.0
    assert core.due(2.0) == [Due("a"), Due("b")]
    hurried = core.record("a", snap(pid="a"), 2.0)
    calm = core.record("b", snap(pid="b"), 2.0)
    assert hurried == Rescheduled(3.0)  # 2 s apart, halved while submits wait
    assert calm == Rescheduled(4.0)
    share.clear()  # the line emptied: back to the plan's own spacing
    assert core.due(3.0) == [Due("a")]
    assert core.record("a", snap(pid="a"), 3.0) == Rescheduled(5.0)


def test_the_first_poll_keeps_its_time_while_submits_wait() -> None:
    core = make_core(hurry=lambda model: 0.35)
    fixed = FixedPolicy(2.0, jitter=0.0)
    assert core.add("a", 0.0, kind=Kind.VIDEO, model="m", policy=fixed) == 2.0


@pytest.mark.parametrize(
    ("queued", "window", "share"),
    [(0, 5, 1.0), (1, 5, 1 / math.sqrt(1.2)), (5, 5, 1 / math.sqrt(2)), (60, 5, 0.35)],
)
def test_the_hurry_share_shrinks_with_the_line_behind_the_window(
    queued: int, window: int, share: float
) -> None:
    assert hurry_share(queued, window) == pytest.approx(share)
