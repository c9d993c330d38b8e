"""
The scheduler core: which prediction to poll when, and what each answer means.

Pure (sans-I/O, after h11's ``Connection``): every time-dependent method takes
``now``, jitter comes from an injected `random.Random`; nothing sleeps or sends.

Theory of operation
-------------------
Each registered prediction has one state record (id, kind, model, its frozen
`PollPlan`, registration time, absolute deadline, polls made, last status,
consecutive errors, end of its 404 grace window) and at most two entries in one
heap of due events: its next poll, and its deadline. Entries are never removed
from the middle of the heap; a stale one (cancelled, superseded) is skipped at
the top (lazy deletion); the heap is rebuilt when more than half is stale.

Invariants:

* a prediction is *in flight* from the moment `PollCore.due` hands it out until
  `PollCore.record` gets its answer; it has no poll entry meanwhile, so it is
  never polled twice at once;
* its deadline entry stays in the heap while it lives, so a deadline passes on
  time even while a poll is in flight or waiting for the rate budget;
* every answer becomes exactly one `Decision`; a prediction that reached
  `Resolved`, `Failed` or `Expired` is forgotten, and a late answer for it
  returns None.

`PollCore.due` pops the polls due within `GROUPING` (4 ms) and the deadlines
passed within `TIMER_SLACK` (1 ms: uvloop rounds timers to the millisecond, and
a driver woken a hair early must not spin). Polls that fall due close together
thus go out in one pass of the driver and their answers tend to come back in
one turn of the event loop: at 2,000 polls a second spread evenly, a 4 ms
group costs about a tenth less CPU than 1 ms groups did, and the tail of the
lateness is steadier (docs/performance.md). Polling a few
milliseconds early is invisible beside poll intervals of seconds and their
jitter; a deadline is the user's timeout, and that is never cut short.

Learning and the cold start
---------------------------
A completion teaches its model the duration the server reported, when that is
credible (`reported_duration`), else the midpoint between the last poll that
saw it running and the one that saw it done. Plans are frozen per prediction
(see ``_core.policies``), with two cold-start exceptions:

* *probes*: a prediction whose policy offers a `PollPolicy.probe` earlier than
  its plan's first poll is polled then too (for `AdaptivePolicy`, the first
  three predictions of a model with no completion yet); a running answer sends
  it on to the plan's own first poll, which the probe does not count as made;
* *re-plans*: when a completion brings a model's typical duration below half
  of what a pending sibling was planned with, that sibling is reviewed: if its
  plan has not polled yet, or its next poll lies beyond twice the new typical
  duration, the new estimate plans its next poll, which is taken only if it is
  earlier (and never before ``now``). A sibling in flight is reviewed when its
  answer comes, one backing off after an error is left alone, and a reviewed
  sibling is not reviewed again until the estimate halves once more. One check
  per completion (the highest estimate a model's pending predictions were
  planned with) keeps the scan of all predictions to those rare moves. A
  re-planned sibling that outlives the new estimate returns to its frozen plan
  (`RevisedPlan`): the long half of a mixed batch is not polled by the short
  half's statistics for long.

A driver must re-read `PollCore.next_wakeup` after `record`: a re-plan may
bring a sibling's poll forward. The decisions themselves live in
``_core.decisions`` and are re-exported here.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable

from .decisions import (
    TRANSIENT,
    Decision,
    Due,
    Expired,
    Failed,
    Rescheduled,
    Resolved,
    default_failure,
    settle,
)
from .durations import DurationBook, DurationModel, reported_duration
from .errors import AtlasError, NotFoundError
from .models import Kind, Prediction
from .policies import PollPlan, PollPolicy, RevisedPlan
from .pollstate import ModelWatch, PollState
from .retry import BackoffPolicy, Retry

__all__ = [
    "Decision",
    "Due",
    "Expired",
    "Failed",
    "PollCore",
    "Rescheduled",
    "Resolved",
    "default_failure",
    "settle",
]

# Re-plan a pending sibling when its model's typical duration fell below half of
# what it was planned with, and a polled one only if its next poll lies beyond
# twice the new typical duration: smaller moves are the usual spread of a batch,
# whose short jobs finish first (the frozen rule).
_REPLAN_FACTOR = 2.0
_REPLAN_LOG = math.log(_REPLAN_FACTOR)
# A re-planned sibling goes back to its frozen plan once it has run longer than
# this many times the new estimate's upper end, exp(mu + 2 sigma): it is not
# like the completions that moved the estimate (the long mode of a batch).
_OUTLIVE = 1.5


#: Polls due within this many seconds of now go out together (`PollCore.due`).
GROUPING = 0.004
#: Deadlines pass within this many seconds of their time: a timer's resolution.
TIMER_SLACK = 0.001

# A heap entry is one int: its time in microseconds (floored) above a sequence
# number, which makes it unique and keeps ties first come, first served; a dict
# maps it to its state, and the state's own exact time decides. Ints are not
# tracked by the garbage collector, where a tuple holding the state was: with
# 100,000 in flight every poll's new tuple lived for a whole poll interval, was
# promoted to the oldest generation, and brought a full collection (about a
# second at that size) every minute or two.
_TICKS = 1_000_000
_SEQ_BITS = 40
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_NEVER = 1 << 300  # the tick of a time at infinity


def _key_bound(limit: float) -> int:
    """The least key whose time is surely past ``limit``."""
    if limit == math.inf:
        return (_NEVER + 1) << _SEQ_BITS
    return (math.floor(limit * _TICKS) + 1) << _SEQ_BITS


class PollCore:
    """
    The pure scheduler core: a heap of due polls and deadlines, and decisions.

    Example::

        core = PollCore(random.Random(7))
        core.add("p1", 0.0, kind=Kind.IMAGE, model="m", policy=FixedPolicy(2.0),
                 deadline=60.0)
        assert core.due(1.9) == [] and core.due(2.0) == [Due("p1")]
        core.record("p1", snapshot, 2.1)   # Resolved | Failed | Rescheduled | Expired

    Args:
        rng: the source of all jitter.
        durations: learned durations per model (a fresh `DurationBook` if None).
        retry: the retry of a failed poll: a `Retry` (its ``attempts`` bound
            the polls in a row that may fail transiently before the prediction
            fails with the last error), or a `BackoffPolicy` for the spacing
            alone (then ``max_consecutive_errors`` bounds them).
        not_found_grace: seconds after registration during which a 404 means
            "not visible yet" and is retried.
        max_consecutive_errors: with a bare `BackoffPolicy`, transient poll
            failures in a row before the prediction fails.
        failure: maps a terminal prediction to its error (None: success).
        hurry: the share of the plan's poll interval for a model now (given
            its id), below 1 while submits wait for its window
            (``_core.windows.hurry_share``); the first poll keeps its time.
    """

    __slots__ = (
        "_failure",
        "_grace",
        "_heap",
        "_hurry",
        "_keyed",
        "_live",
        "_retry",
        "_rng",
        "_seq",
        "_states",
        "_watch",
        "durations",
        "retries",
    )

    def __init__(
        self,
        rng: random.Random,
        *,
        durations: DurationBook | None = None,
        retry: Retry | BackoffPolicy | None = None,
        not_found_grace: float = 30.0,
        max_consecutive_errors: int = 20,
        failure: Callable[[Prediction], AtlasError | None] = default_failure,
        hurry: Callable[[str | None], float] | None = None,
    ) -> None:
        self._rng = rng
        self._hurry = hurry
        self.durations = durations if durations is not None else DurationBook()
        if not isinstance(retry, Retry):
            retry = Retry(
                attempts=max_consecutive_errors + 1,
                backoff=retry if retry is not None else BackoffPolicy(),
            )
        self._retry = retry
        self._grace = not_found_grace
        self._failure = failure
        self._states: dict[str, PollState] = {}
        self._heap: list[int] = []
        self._keyed: dict[int, PollState] = {}
        self._seq = 0
        self._live = 0  # heap entries that are not stale
        #: Polls handed out again after a failed one (`due`).
        self.retries = 0
        self._watch: dict[tuple[Kind, str], ModelWatch] = {}

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, prediction_id: object) -> bool:
        return prediction_id in self._states

    def add(
        self,
        prediction_id: str,
        now: float,
        *,
        kind: Kind,
        model: str | None,
        policy: PollPolicy,
        deadline: float = math.inf,
        timeout: float | None = None,
        learn: bool = True,
        first_poll: float | None = None,
    ) -> float:
        """
        Register a prediction; return the time of its first poll.

        Args:
            prediction_id: the id; must not be registered already.
            now: the registration time (durations are measured from it).
            kind: the prediction's kind (picks the duration prior).
            model: the model id, or None when unknown.
            policy: its poll policy; planned here (see the module docstring
                for the early probe and the re-plans of a cold start).
            deadline: absolute time after which it expires (``inf``: never).
            timeout: the relative timeout, for the error message only.
            learn: feed its duration to the model's statistics when it completes
                (False for predictions whose start we did not see).
            first_poll: poll first at this absolute time instead of the plan's.

        Raises:
            ValueError: if the id is registered already.
        """
        if prediction_id in self._states:
            raise ValueError(f"prediction {prediction_id} is already scheduled")
        durations = self.durations.get(kind, model)
        watch = self._watch.get((kind, model or ""))
        if watch is None:
            watch = self._watch[(kind, model or "")] = ModelWatch()
        state = PollState(
            prediction_id,
            kind,
            model,
            policy,
            durations,
            watch,
            now,
            deadline,
            timeout,
            learn,
        )
        self._states[prediction_id] = state
        if deadline < math.inf:
            state.deadline_queued = True
            self._push(deadline, state, deadline=True)
        if first_poll is None:
            at = now + state.plan.delay(0.0, 0, self._rng)
            probe = policy.probe(durations)
            if probe is not None and now + max(probe, 0.0) < at:
                durations.probes += 1
                state.first_at, state.shift = at, 1
                at = now + max(probe, 0.0)
        else:
            at = first_poll
        state.poll_queued = True
        self._push(at, state)
        return at

    def delivered(self, prediction: Prediction, now: float) -> None:
        """Forget a prediction a webhook ended; learn its duration and delay."""
        state = self._states.get(prediction.id)
        if state is not None:
            self._kill(state)
            elapsed = now - state.submitted_at
            seconds = reported_duration(prediction, state.prev_elapsed, elapsed)
            if state.learn and seconds is not None:  # the server said when
                model = self.durations.get(state.kind, state.model)
                model.observe(seconds)
                model.observe_delivery(elapsed - seconds)

    def remove(self, prediction_id: str) -> bool:
        """Forget a prediction (cancelled); return False if it was not registered."""
        state = self._states.get(prediction_id)
        if state is None:
            return False
        self._kill(state)
        return True

    def due(
        self, now: float, slack: float = GROUPING, most: float = math.inf
    ) -> list[Due]:
        """
        Pop the polls due by ``now + slack`` and the deadlines passed by ``now``
        (give or take `TIMER_SLACK`), at most ``most`` entries in all.

        A prediction handed out for polling is in flight until `record`.
        """
        limit = now + slack
        passed = now + min(slack, TIMER_SLACK)  # deadlines are never early
        top = _key_bound(limit)
        heap, keyed = self._heap, self._keyed
        out: list[Due] = []
        while heap and heap[0] < top and len(out) < most:
            key = heap[0]
            state = keyed[key]
            if not self._valid(key, state):
                del keyed[heapq.heappop(heap)]
                continue
            deadline = key == state.deadline_key
            if (state.deadline if deadline else state.at) > (
                passed if deadline else limit
            ):
                # Not yet (within the same microsecond, or a deadline that is
                # close but has not passed): what lies behind it is later.
                break
            del keyed[heapq.heappop(heap)]
            self._live -= 1
            if deadline:
                state.deadline_queued = False
            else:
                state.poll_queued = False
                if state.deadline > passed:
                    state.in_flight = True
                    self.retries += state.errors > 0  # a poll after a failed one
                    out.append(Due(state.id))
                    continue
            out.append(Due(state.id, self._expire(state)))
        return out

    @property
    def heap_size(self) -> int:
        """Entries in the heap, stale ones included: what the core's memory holds."""
        return len(self._heap)

    def next_wakeup(self) -> float:
        """The time of the earliest live entry, or ``math.inf`` when idle."""
        heap, keyed = self._heap, self._keyed
        while heap and not self._valid(heap[0], keyed[heap[0]]):
            del keyed[heapq.heappop(heap)]
        if not heap:
            return math.inf
        state = keyed[heap[0]]
        return state.deadline if heap[0] == state.deadline_key else state.at

    def polls(self, prediction_id: str) -> int:
        """Answers recorded for a prediction so far (0 if unknown)."""
        state = self._states.get(prediction_id)
        return 0 if state is None else state.polls

    def chance(self, prediction_id: str, now: float) -> float:
        """P(it ended since its last running answer | it ran then), 0 if unknown."""
        state = self._states.get(prediction_id)
        if state is None:
            return 0.0
        model = self.durations.get(state.kind, state.model)
        return model.chance(state.prev_elapsed, now - state.submitted_at)

    def errors(self, prediction_id: str) -> int:
        """Consecutive failed polls of a prediction (0 if unknown)."""
        state = self._states.get(prediction_id)
        return 0 if state is None else state.errors

    def record(
        self, prediction_id: str, outcome: Prediction | AtlasError, now: float
    ) -> Decision | None:
        """
        Turn one poll's answer into a decision.

        A completion may also re-plan pending siblings of the same model (see
        the module docstring): re-read `next_wakeup` afterwards.

        Args:
            prediction_id: the prediction that was polled.
            outcome: the snapshot fetched, or the `AtlasError` the poll raised.
            now: when the answer came.

        Returns:
            The decision, or None if the prediction is no longer in flight (it was
            cancelled or expired while the poll ran).
        """
        state = self._states.get(prediction_id)
        if state is None or not state.in_flight:
            return None
        state.in_flight = False
        state.polls += 1
        elapsed = now - state.submitted_at
        if isinstance(outcome, Prediction):
            state.errors = 0
            state.last_status = outcome.status
            final = settle(outcome, self._failure)
            if final is not None:
                if state.learn and isinstance(final, Resolved):
                    self._kill(state)
                    self._replan(state, self._learn(state, outcome, elapsed), now)
                else:
                    self._kill(state)
                return final
            if now >= state.deadline:
                return self._expire(state)
            state.prev_elapsed = elapsed
            first_at, state.first_at = state.first_at, None
            if first_at is None or first_at <= now:
                # An overdue first poll: the probe stands in for it.
                state.shift = 0 if first_at is not None else state.shift
                made = state.polls - state.shift
                delay = state.plan.delay(elapsed, made, self._rng)
                if made and self._hurry is not None:
                    delay *= self._hurry(state.model)
                first_at = now + delay
            decision = self._schedule(state, first_at)
            if state.review:
                state.review = False
                self._review(state, self.durations.get(state.kind, state.model), now)
                return Rescheduled(state.at)
            return decision
        return self._record_error(state, outcome, now)

    def _record_error(
        self, state: PollState, error: AtlasError, now: float
    ) -> Decision:
        if error.prediction_id is None:
            error.prediction_id = state.id
        state.errors += 1
        retryable = (
            # A fresh prediction may not be visible yet: 404s are retried
            # for the grace period after its registration.
            now < state.submitted_at + self._grace
            if isinstance(error, NotFoundError)
            else isinstance(error, TRANSIENT)
        )
        at = (
            self._retry.next(
                state.errors,
                now,
                rng=self._rng,
                retry_after=getattr(error, "retry_after", None),
            )
            if retryable
            else None
        )
        if at is None:
            self._kill(state)
            return Failed(error)
        if now >= state.deadline:
            return self._expire(state)
        return self._schedule(state, at)

    def _learn(
        self, state: PollState, outcome: Prediction, elapsed: float
    ) -> DurationModel:
        # The job ended between the previous poll and this one. The server's own
        # timing says when, if credible; else take the midpoint. Done at the
        # first poll, it may have ended any time since submission, and the
        # midpoint (elapsed / 2) pulls an over-slow prior down geometrically.
        previous = state.prev_elapsed
        seconds = reported_duration(outcome, previous, elapsed)
        if seconds is None:
            seconds = (previous + elapsed) / 2.0
        durations = self.durations.get(state.kind, state.model)
        durations.observe(seconds)
        return durations

    def _replan(self, done: PollState, durations: DurationModel, now: float) -> None:
        """Review the siblings planned with a typical over twice the new one."""
        watch = done.watch
        mark = durations.log_mean + _REPLAN_LOG
        if not watch.pending or watch.planned <= mark:
            return
        top = -math.inf
        for state in self._states.values():
            if state.watch is watch:
                if state.planned > mark:
                    self._review(state, durations, now)
                top = max(top, state.planned)
        watch.planned = top

    def _review(self, state: PollState, durations: DurationModel, now: float) -> None:
        # Only ever lowered, so the model's watch stays an upper bound.
        planned, state.planned = state.planned, min(state.planned, durations.log_mean)
        if state.in_flight:
            state.review = True
            return
        if not state.poll_queued or state.errors:
            return  # backing off: a failing poll is never hurried
        rng, start = self._rng, state.submitted_at
        unpolled = state.first_at is not None or state.polls <= state.shift
        if not unpolled and state.at - start <= _REPLAN_FACTOR * durations.typical:
            # Frozen, the usual case of a long sibling in a batch; reviewed again
            # once its next poll lies beyond twice the typical duration.
            state.planned = min(planned, math.log(max(state.at - start, 1e-9)))
            return
        # Revised until it outlives the new estimate, then frozen again; one
        # that has outlived it already is not like the completions that moved it.
        until = _OUTLIVE * math.exp(durations.log_mean + 2.0 * durations.sigma)
        if state.prev_elapsed >= until:
            return
        plan: PollPlan = state.policy.plan(durations)
        at = start + plan.delay(0.0, 0, rng)
        if state.polls:
            last = state.prev_elapsed
            polls = max(1, state.polls - state.shift)
            at = max(at, start + last + plan.delay(last, polls, rng))
        at = max(at, now)
        if state.first_at is None and at >= state.at:
            return  # never later than planned
        original = state.plan
        if isinstance(original, RevisedPlan):
            original = original.original
        # An original plan that has not polled yet resumes at its first poll.
        resume = (state.first_at or state.at) - start if unpolled else 0.0
        state.plan = RevisedPlan(plan, original, until, resume)
        if state.first_at is not None:
            if at >= state.at:
                # The probe stays ahead; the plan's first poll may come earlier.
                state.first_at = min(state.first_at, at)
                return
            state.first_at, state.shift = None, 0  # the new first poll replaces it
        self._push(at, state)
        self._live -= 1  # the entry it supersedes is stale

    def _schedule(self, state: PollState, at: float) -> Rescheduled:
        state.poll_queued = True
        self._push(at, state)
        return Rescheduled(at)

    def _expire(self, state: PollState) -> Expired:
        self._kill(state)
        return Expired(state.last_status, state.timeout)

    def _valid(self, key: int, state: PollState) -> bool:
        if not state.alive:
            return False
        if key == state.deadline_key:
            return state.deadline_queued
        return state.poll_queued and key == state.key

    def _push(self, at: float, state: PollState, deadline: bool = False) -> None:
        self._seq += 1
        tick = math.floor(at * _TICKS) if at < math.inf else _NEVER
        key = tick << _SEQ_BITS | self._seq & _SEQ_MASK
        if deadline:
            state.deadline_key = key
        else:
            state.at, state.key = at, key
        self._keyed[key] = state
        heapq.heappush(self._heap, key)
        self._live += 1

    def _kill(self, state: PollState) -> None:
        state.alive = False
        del self._states[state.id]
        watch = state.watch
        watch.pending -= 1
        if not watch.pending:
            del self._watch[(state.kind, state.model or "")]
        # Its entries still in the heap are stale now; count them out.
        self._live -= int(state.poll_queued) + int(state.deadline_queued)
        state.in_flight = state.poll_queued = state.deadline_queued = False
        if len(self._heap) > 2 * self._live + 64:
            keyed = self._keyed
            self._keyed = {k: s for k, s in keyed.items() if self._valid(k, s)}
            self._heap = list(self._keyed)
            heapq.heapify(self._heap)
            self._live = len(self._heap)
