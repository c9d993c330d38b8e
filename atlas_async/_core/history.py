"""
Settling submits whose answer never came, from the account's history.

A submit that was sent and got no usable answer may have created (and billed)
a prediction, or may never have reached the server. ``GET /model/history``
lists the account's predictions with the exact body each was created from and
when; `settle` decides, for a set of such submits, which history entry each
one became, or that it never arrived, or that the history cannot tell yet.

Pure: it takes the history read so far and ``now`` (wall time, Unix seconds);
the paging and the clock live in ``_ops``.

The rules
---------
A submit's *window* is from when it went out to the last moment the server can
have received it (the request's own deadline), widened by ``skew`` on both
sides: the server's clock and the client's differ, and history stamps a
prediction when it is created, which may lag the request; its lower edge moves
one more second back, as history stamps whole seconds. Its *candidates* are
history entries of the same model whose body is the same JSON value, created
inside the window, not already claimed by an id this client knows.

Submits with the same model and body are interchangeable (the same request
twice is the same work), so they are settled together:

* as many candidates as submits, or fewer: each candidate is attached to one
  submit, earliest first, when its time fits that submit's window (any such
  assignment is as good as another);
* a submit left without a candidate is **absent** when the history reaches
  back past its window and the window closed over ``settle_after`` seconds ago
  (history may show a new prediction late): safe to send again;
* otherwise it stays **unknown**, and says why;
* more candidates than submits (another process sent the same body in the
  same moments): counts prove nothing, every submit of the group stays
  unknown and names the candidate ids.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence, Set
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "Absent",
    "Attach",
    "STAMP_RESOLUTION",
    "HistoryItem",
    "SentSubmit",
    "Undecided",
    "Verdict",
    "canonical_body",
    "describe",
    "settle",
]

#: Seconds the server's and the client's clocks, and creation, may be apart.
DEFAULT_SKEW = 30.0
#: Seconds after a window closes before its absence from history is believed.
DEFAULT_SETTLE_AFTER = 60.0
#: History stamps creation in whole seconds (truncated): a prediction created
#: 0.9 s after its submit left may be stamped 0.1 s before it did.
STAMP_RESOLUTION = 1.0


@attrs.frozen(slots=True)
class HistoryItem:
    """
    One prediction in the account's history (``GET /api/v1/model/history``).

    Example::

        item = HistoryItem("p1", "m", "completed", None, '{"model":"m","n":1}')
        assert item.body == {"model": "m", "n": 1}

    Attributes:
        id: the prediction id.
        model: the model it ran on.
        status: the server's status word (``created``, ``processing``,
            ``completed``, ``failed``, ``timeout``).
        created_at: when the server created it (timezone-aware), if it said.
        request_body: the body it was created from, as the server kept it (a
            JSON text), or None.
    """

    id: str
    model: str
    status: str
    created_at: datetime | None = None
    request_body: str | None = attrs.field(default=None, repr=False)

    @property
    def body(self) -> Any:
        """``request_body`` decoded, or None when it is absent or not JSON."""
        if self.request_body is None:
            return None
        try:
            return json.loads(self.request_body)
        except ValueError:
            return None


@attrs.frozen(slots=True)
class SentSubmit:
    """
    A submit that went out and got no usable answer.

    Attributes:
        key: the caller's name for it (a batch item's index, say).
        model: the model it was sent to.
        body: the JSON value that was sent.
        sent_after: wall time (Unix seconds) before the request went out.
        sent_before: the last wall time the server can have received it (the
            request's deadline, or when the client saw it fail).
    """

    key: Hashable
    model: str
    body: Any = attrs.field(repr=False)
    sent_after: float
    sent_before: float


@attrs.frozen(slots=True)
class Attach:
    """The submit created this prediction: follow it, do not send again."""

    key: Hashable
    prediction_id: str


@attrs.frozen(slots=True)
class Absent:
    """History proves the submit never arrived: it is safe to send again."""

    key: Hashable


@attrs.frozen(slots=True)
class Undecided:
    """
    History cannot tell; ``candidates`` are ids it might be. ``retry_at``
    (wall time, Unix seconds) is when a new look can decide, if time will.
    """

    key: Hashable
    reason: str
    candidates: tuple[str, ...] = ()
    retry_at: float | None = None


Verdict = Attach | Absent | Undecided


def canonical_body(body: Any) -> str:
    """One text per JSON value: keys sorted, no spaces, so equal bodies match."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _stamp(item: HistoryItem) -> float | None:
    return item.created_at.timestamp() if item.created_at is not None else None


def settle(
    sent: Sequence[SentSubmit],
    history: Iterable[HistoryItem],
    *,
    covered_since: float,
    now: float,
    claimed: Set[str] = frozenset(),
    skew: float = DEFAULT_SKEW,
    settle_after: float = DEFAULT_SETTLE_AFTER,
) -> list[Verdict]:
    """
    One verdict per submit in ``sent`` (in its order); see the module docstring.

    Args:
        sent: the submits to settle.
        history: the entries read, of any models (filtered here).
        covered_since: history was read back to this wall time (Unix seconds):
            older entries may exist unread; ``-inf`` when it was read to the end.
        now: wall time, Unix seconds.
        claimed: ids already known to belong to other submits.
        skew: seconds the windows are widened by, on each side.
        settle_after: seconds after a window closes before absence is believed.
    """
    groups: dict[tuple[str, str], list[SentSubmit]] = {}
    for submit in sent:
        groups.setdefault((submit.model, canonical_body(submit.body)), []).append(
            submit
        )
    wanted = set(groups)
    pool: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for item in history:
        stamp = _stamp(item)
        if item.id in claimed or stamp is None:
            continue
        body = item.body
        if body is None:
            continue
        key = (item.model, canonical_body(body))
        if key in wanted:
            pool.setdefault(key, []).append((stamp, item.id))

    verdicts: dict[int, Verdict] = {}
    position = {id(submit): i for i, submit in enumerate(sent)}
    for key, submits in groups.items():
        lows = [s.sent_after - skew - STAMP_RESOLUTION for s in submits]
        highs = [s.sent_before + skew for s in submits]
        start, end = min(lows), max(highs)
        candidates = sorted(c for c in pool.get(key, ()) if start <= c[0] <= end)
        if len(candidates) > len(submits):
            ids = tuple(pid for _, pid in candidates)
            for submit in submits:
                verdicts[position[id(submit)]] = Undecided(
                    submit.key,
                    f"{len(ids)} predictions with the same model and body were"
                    f" created while {len(submits)} such submit(s) were out",
                    ids,
                )
            continue
        matched = _match(submits, candidates, skew)
        for submit in submits:
            index = position[id(submit)]
            pid = matched.get(id(submit))
            if pid is not None:
                verdicts[index] = Attach(submit.key, pid)
            else:
                verdicts[index] = _unmatched(
                    submit, covered_since, now, skew, settle_after
                )
    return [verdicts[i] for i in range(len(sent))]


def _match(
    submits: Sequence[SentSubmit],
    candidates: Sequence[tuple[float, str]],
    skew: float,
) -> dict[int, str]:
    """
    Interval-point matching, greedy: each candidate (in time order) goes to the
    open submit whose window ends first among those that contain it, which
    matches as many as any assignment can.
    """
    open_ = sorted(submits, key=lambda s: (s.sent_before, s.sent_after))
    matched: dict[int, str] = {}
    for stamp, pid in candidates:
        for submit in open_:
            low = submit.sent_after - skew - STAMP_RESOLUTION
            if low <= stamp <= submit.sent_before + skew:
                matched[id(submit)] = pid
                open_.remove(submit)
                break
    return matched


def _unmatched(
    submit: SentSubmit,
    covered_since: float,
    now: float,
    skew: float,
    settle_after: float,
) -> Verdict:
    start = submit.sent_after - skew - STAMP_RESOLUTION
    if covered_since > start:
        return Undecided(
            submit.key, "the history read does not reach back to when it was sent"
        )
    certain = submit.sent_before + skew + settle_after
    if now < certain:
        return Undecided(
            submit.key,
            "not in the history yet, and it may still appear there"
            f" (certain {certain - now:.0f} s from now)",
            retry_at=certain,
        )
    return Absent(submit.key)


def describe(verdicts: Mapping[Hashable, Verdict]) -> str:
    """A one-line count of verdicts, for logs: ``"2 attached, 1 absent"``."""
    attached = sum(isinstance(v, Attach) for v in verdicts.values())
    absent = sum(isinstance(v, Absent) for v in verdicts.values())
    undecided = len(verdicts) - attached - absent
    return f"{attached} attached, {absent} absent, {undecided} undecided"
