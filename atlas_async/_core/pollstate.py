"""
The record `PollCore` keeps per registered prediction (`PollState`) and per
model (`ModelWatch`). Pure data; the decisions about them live in
``_core.schedule``.
"""

from __future__ import annotations

import math

from .durations import DurationModel
from .models import Kind, PredictionStatus
from .policies import PollPlan, PollPolicy

__all__ = ["ModelWatch", "PollState"]


class ModelWatch:
    """Per model: pending predictions, and the highest estimate they were planned
    with (an upper bound: it may outlive the prediction that set it)."""

    __slots__ = ("pending", "planned")

    def __init__(self) -> None:
        self.pending = 0
        self.planned = -math.inf


class PollState:
    """One registered prediction's record in `PollCore` (mutable; the core's own)."""

    __slots__ = (
        "alive",
        "at",
        "deadline",
        "deadline_key",
        "deadline_queued",
        "errors",
        "first_at",
        "id",
        "in_flight",
        "key",
        "kind",
        "last_status",
        "learn",
        "model",
        "plan",
        "planned",
        "policy",
        "poll_queued",
        "polls",
        "prev_elapsed",
        "review",
        "shift",
        "submitted_at",
        "timeout",
        "watch",
    )

    def __init__(
        self,
        prediction_id: str,
        kind: Kind,
        model: str | None,
        policy: PollPolicy,
        durations: DurationModel,
        watch: ModelWatch,
        now: float,
        deadline: float,
        timeout: float | None,
        learn: bool,
    ) -> None:
        self.id = prediction_id
        self.kind = kind
        self.model = model
        self.policy = policy
        self.plan: PollPlan = policy.plan(durations)
        # The model's log-typical duration the plan was made (or reviewed) with.
        self.planned = durations.log_mean
        self.watch = watch
        watch.pending += 1
        watch.planned = max(watch.planned, self.planned)
        self.submitted_at = now
        self.deadline = deadline
        self.timeout = timeout
        self.learn = learn
        self.polls = 0
        self.errors = 0
        self.prev_elapsed = 0.0
        self.last_status: PredictionStatus | None = None
        self.key = -1  # its queued poll's heap key
        self.deadline_key = -1
        self.in_flight = False
        self.alive = True
        self.poll_queued = False
        self.deadline_queued = False
        self.at = math.inf  # the time of the queued poll
        # The plan's first poll while an early probe runs ahead of it.
        self.first_at: float | None = None
        self.shift = 0  # polls the plan did not make (a probe)
        self.review = False  # re-plan review due when the poll in flight answers
