"""`ClientStatistics`: what a client has done so far, as one immutable snapshot."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["ClientStatistics", "GateFigures", "ModelFigures", "assemble_statistics"]


@attrs.frozen(kw_only=True)
class ModelFigures:
    """
    One model's flow control now (``client.statistics().models[model]``).

    Attributes:
        window: how many of its predictions may be unfinished (learned, or the
            known limit); None while no limit is known or seen.
        in_flight: its submitted predictions not yet finished.
        queued: submits waiting for a place in its window.
        refusals: submits the server refused for its concurrency.
        probes: times its window grew by one after completions.
    """

    window: int | None
    in_flight: int
    queued: int
    refusals: int
    probes: int


@attrs.frozen(kw_only=True)
class ClientStatistics:
    """
    A snapshot of a client's work (``client.statistics()``).

    Attributes:
        in_flight: predictions submitted or attached and not finished.
        submitted: predictions created by ``submit``.
        attached: predictions followed with ``attach``.
        completed: predictions that completed with outputs.
        failed: predictions that failed (on the server, or a poll error).
        timed_out: predictions whose deadline passed.
        cancelled: futures cancelled locally.
        requests_sent: HTTP attempts that passed the gate (submits, polls, retries).
        polls: polls made.
        retries: polls made after a failed poll.
        rate_limited: 429 answers.
        requests_per_second: the rate budget now (None: unlimited).
        concurrent_requests: requests holding a slot now.
        queued_polls: due polls waiting for a free worker.
        delivered: predictions ended by a delivery (a webhook, ``client.deliver``)
            before a poll saw them end; also counted in ``completed`` or ``failed``.
        rate_refusals: 429s attributed to the account's request rate.
        window_refusals: 429s attributed to a model's in-flight limit.
        submits_refused: submits refused (and tried again later).
        sent_per_second: requests actually sent over the last second.
        waited_for_slots: seconds submits spent waiting for a model's window.
        models: each model's window, in flight, queued and refusals.
    """

    in_flight: int
    submitted: int
    attached: int
    completed: int
    failed: int
    timed_out: int
    cancelled: int
    requests_sent: int
    polls: int
    retries: int
    rate_limited: int
    requests_per_second: float | None
    concurrent_requests: int
    queued_polls: int
    delivered: int = 0
    rate_refusals: int = 0
    window_refusals: int = 0
    submits_refused: int = 0
    sent_per_second: float = 0.0
    waited_for_slots: float = 0.0
    models: Mapping[str, ModelFigures] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class GateFigures:
    """What a gate has admitted: the gate's part of `ClientStatistics`."""

    requests_sent: int
    rate_limited: int
    requests_per_second: float | None
    concurrent_requests: int
    rate_refusals: int = 0
    window_refusals: int = 0
    sent_per_second: float = 0.0


#: A gate that admitted nothing (a scheduler built without one).
NO_GATE = GateFigures(
    requests_sent=0, rate_limited=0, requests_per_second=None, concurrent_requests=0
)


def assemble_statistics(
    counts: Mapping[str, int],
    gate: GateFigures,
    *,
    in_flight: int,
    queued_polls: int,
    submits_refused: int,
    waited_for_slots: float,
    models: Mapping[str, ModelFigures],
) -> ClientStatistics:
    """
    One `ClientStatistics` from a scheduler's counters (``submitted``,
    ``attached``, ``completed``, ``failed``, ``timed_out``, ``cancelled``,
    ``polls``, ``retries``, ``delivered``; missing ones are 0) and its gate's.
    """
    return ClientStatistics(
        in_flight=in_flight,
        submitted=counts.get("submitted", 0),
        attached=counts.get("attached", 0),
        completed=counts.get("completed", 0),
        failed=counts.get("failed", 0),
        timed_out=counts.get("timed_out", 0),
        cancelled=counts.get("cancelled", 0),
        requests_sent=gate.requests_sent,
        polls=counts.get("polls", 0),
        retries=counts.get("retries", 0),
        rate_limited=gate.rate_limited,
        requests_per_second=gate.requests_per_second,
        concurrent_requests=gate.concurrent_requests,
        rate_refusals=gate.rate_refusals,
        window_refusals=gate.window_refusals,
        submits_refused=submits_refused,
        sent_per_second=gate.sent_per_second,
        waited_for_slots=waited_for_slots,
        models=models,
        queued_polls=queued_polls,
        delivered=counts.get("delivered", 0),
    )
