"""`ClientStatistics`: what a client has done so far, as one immutable snapshot."""

from __future__ import annotations

import attrs

__all__ = ["ClientStatistics"]


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
