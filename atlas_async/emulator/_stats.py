"""
What the emulator saw: the counts tests and benchmarks assert on.

`EmulatorStats` is the live, mutable tally the request handler updates (plain
integer and dict increments: it sits on the hot path). `EmulatorStats.snapshot`
freezes a copy into a `StatsSnapshot`, which is what callers should read.

Duplicate submissions are counted per *canonical body*: the submit's JSON body
re-encoded with sorted keys and no whitespace, so ``{"a":1,"b":2}`` and
``{"b": 2, "a": 1}`` are the same body. Only submissions that created a
prediction count (a submit refused with 429 or 5xx bills nothing), and a body
is stored as its 16-byte BLAKE2 digest, not in full.

Limits are counted two ways, so a benchmark can check a client against them:
the refusals (429s) by cause, and the peak number of predictions in flight,
per key and per model, whether or not a limit is set.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["REFUSAL_CAUSES", "EmulatorStats", "StatsSnapshot", "canonical_body"]

REFUSAL_CAUSES = {
    "rate": "rate_limit",
    "in_flight": "in_flight_limit",
    "model_in_flight": "model_in_flight_limit",
}
"""Each cause of a 429, and the name it also counts under in ``faults``."""


def canonical_body(body: Mapping[str, Any]) -> bytes:
    """Return ``body`` as canonical JSON bytes (sorted keys, no whitespace)."""
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


@attrs.frozen(kw_only=True)
class StatsSnapshot:
    """
    A frozen copy of the emulator's counters.

    Attributes:
        requests: every HTTP request answered (or dropped).
        requests_by_endpoint: per ``"METHOD /route"``, e.g.
            ``"GET /api/v1/model/prediction/{id}"``; unknown paths count as
            ``"METHOD <unknown>"``.
        responses_by_status: per HTTP status (dropped requests are not here).
        predictions_created: predictions that exist.
        polls: prediction GETs, for known and unknown ids alike.
        polls_by_prediction: poll count per known prediction id.
        unique_bodies: distinct canonical submit bodies that created predictions.
        duplicates: bodies submitted (and created) more than once.
        duplicate_submissions: extra submissions beyond the first of each body.
        faults: per fault name, how many times it was injected (``rate_limit``,
            ``in_flight_limit``, ``model_in_flight_limit``, ``server_error``,
            ``drop``, ``slow``, ``malformed``, ``warmup_404``, ``failure``,
            ``moderation``, ``timeout``, ``insufficient_balance``).
        faults_injected: the sum of ``faults``.
        uploads: files stored by ``uploadMedia``.
        webhooks_scheduled: predictions created with a ``webhook_url``.
        webhook_attempts: webhook POSTs tried (first deliveries and retries).
        webhooks_delivered: webhooks a receiver acknowledged with a 2xx.
        webhook_failures: attempts answered with a non-2xx, or not at all.
        webhooks_abandoned: webhooks given up after the last attempt failed.
        webhooks_lost: webhooks dropped by the ``webhook_loss`` fault.
        refusals: 429 answers by cause, every cause present: ``rate`` (the
            key's request rate), ``in_flight`` (the key's ``max_in_flight``),
            ``model_in_flight`` (a model's in-flight limit).
        refusals_by_model: ``model_in_flight`` refusals per model id.
        peak_in_flight: the most predictions one key had unfinished at once.
        peak_in_flight_by_model: per model id, the most predictions of that
            model one key had unfinished at once (what a per-model limit caps).
    """

    requests: int
    requests_by_endpoint: Mapping[str, int]
    responses_by_status: Mapping[int, int]
    predictions_created: int
    polls: int
    polls_by_prediction: Mapping[str, int]
    unique_bodies: int
    duplicates: int
    duplicate_submissions: int
    faults: Mapping[str, int]
    faults_injected: int
    uploads: int
    webhooks_scheduled: int = 0
    webhook_attempts: int = 0
    webhooks_delivered: int = 0
    webhook_failures: int = 0
    webhooks_abandoned: int = 0
    webhooks_lost: int = 0
    refusals: Mapping[str, int] = attrs.field(
        factory=lambda: dict.fromkeys(REFUSAL_CAUSES, 0)
    )
    refusals_by_model: Mapping[str, int] = attrs.field(factory=dict)
    peak_in_flight: int = 0
    peak_in_flight_by_model: Mapping[str, int] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the snapshot as JSON-ready data (status keys become strings)."""
        data = attrs.asdict(self)
        data["responses_by_status"] = {
            str(status): count for status, count in self.responses_by_status.items()
        }
        return data

    def polls_for(self, prediction_id: str) -> int:
        """Return how many times ``prediction_id`` was polled."""
        return self.polls_by_prediction.get(prediction_id, 0)


class EmulatorStats:
    """
    The live counters; read them through `snapshot` (or `as_dict`).

    Example::

        stats = emulator.stats.snapshot()
        assert stats.duplicate_submissions == 0
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.requests = 0
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.predictions_created = 0
        self.polls = 0
        self.polls_by_prediction: Counter[str] = Counter()
        self.bodies: Counter[bytes] = Counter()
        self.faults: Counter[str] = Counter()
        self.uploads = 0
        self.webhooks_scheduled = 0
        self.webhook_attempts = 0
        self.webhooks_delivered = 0
        self.webhook_failures = 0
        self.webhooks_abandoned = 0
        self.webhooks_lost = 0
        self.refusals: Counter[str] = Counter()
        self.refusals_by_model: Counter[str] = Counter()
        self.peak_in_flight = 0
        self.peak_in_flight_by_model: dict[str, int] = {}

    def record_request(self, endpoint: str) -> None:
        """Count one request to ``endpoint`` (``"METHOD /route"``)."""
        self.requests += 1
        self.by_endpoint[endpoint] += 1

    def record_status(self, status: int) -> None:
        """Count one answer with HTTP ``status``."""
        self.by_status[status] += 1

    def record_fault(self, name: str) -> None:
        """Count one injected fault."""
        self.faults[name] += 1

    def record_refusal(self, cause: str, model: str | None = None) -> None:
        """Count one 429 by ``cause`` (a `REFUSAL_CAUSES` key), also as a fault."""
        self.refusals[cause] += 1
        self.faults[REFUSAL_CAUSES[cause]] += 1
        if model is not None:
            self.refusals_by_model[model] += 1

    def record_in_flight(self, model: str, key_count: int, model_count: int) -> None:
        """Note one key's in-flight counts just after it created a prediction."""
        # Counts only rise at a creation, so watching creations sees every peak.
        self.peak_in_flight = max(self.peak_in_flight, key_count)
        if model_count > self.peak_in_flight_by_model.get(model, 0):
            self.peak_in_flight_by_model[model] = model_count

    def record_created(self, body: Mapping[str, Any]) -> None:
        """Count one created prediction and its canonical body."""
        self.predictions_created += 1
        self.bodies[hashlib.blake2b(canonical_body(body), digest_size=16).digest()] += 1

    def record_poll(self, prediction_id: str | None) -> None:
        """Count one poll; ``None`` for an id the emulator does not know."""
        self.polls += 1
        if prediction_id is not None:
            self.polls_by_prediction[prediction_id] += 1

    def snapshot(self) -> StatsSnapshot:
        """Return a frozen copy of every counter."""
        repeated = [count for count in self.bodies.values() if count > 1]
        return StatsSnapshot(
            requests=self.requests,
            requests_by_endpoint=dict(self.by_endpoint),
            responses_by_status=dict(self.by_status),
            predictions_created=self.predictions_created,
            polls=self.polls,
            polls_by_prediction=dict(self.polls_by_prediction),
            unique_bodies=len(self.bodies),
            duplicates=len(repeated),
            duplicate_submissions=sum(count - 1 for count in repeated),
            faults=dict(self.faults),
            faults_injected=sum(self.faults.values()),
            uploads=self.uploads,
            webhooks_scheduled=self.webhooks_scheduled,
            webhook_attempts=self.webhook_attempts,
            webhooks_delivered=self.webhooks_delivered,
            webhook_failures=self.webhook_failures,
            webhooks_abandoned=self.webhooks_abandoned,
            webhooks_lost=self.webhooks_lost,
            refusals={cause: self.refusals[cause] for cause in REFUSAL_CAUSES},
            refusals_by_model=dict(self.refusals_by_model),
            peak_in_flight=self.peak_in_flight,
            peak_in_flight_by_model=dict(self.peak_in_flight_by_model),
        )

    def as_dict(self) -> dict[str, Any]:
        """Return `snapshot` as JSON-ready data."""
        return self.snapshot().as_dict()

    def __repr__(self) -> str:
        return (
            f"EmulatorStats(requests={self.requests}, "
            f"predictions_created={self.predictions_created}, polls={self.polls})"
        )
