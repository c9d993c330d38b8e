"""
``GET /api/v1/model/history``: one key's predictions, newest first, a page at a
time. Pure: the handler passes the records, the query string and ``now``.

The vendor's MCP server reads this endpoint (its "list predictions" tool) and
pins the shape it measured on the live service, which this module follows:

* the query is ``no`` (page number, from 1) and ``size`` (entries per page),
  not ``page``/``pageSize``; the service answers a name it does not know, or a
  number it cannot read, with its defaults (page 1, 10 entries) rather than an
  error. Filters: ``sessionID`` (one prediction id), ``model`` (exact id),
  ``modelPrefix`` (a family), ``status`` (the server's own vocabulary:
  ``created``, ``processing``, ``completed``, ``failed``, ``timeout``) and
  ``state`` (``running``, ``succeeded``, ``failed``, the three-way filter);
* the envelope's ``code`` is the *string* ``"200"``;
* each item is ``{ID, createdAt, model, requestBody, status}`` plus ``result``
  once the prediction has ended: ``createdAt`` is a string of unix seconds,
  ``requestBody`` the submit's JSON text exactly as received, ``result`` the
  poll answer's ``data`` object;
* ``data`` is ``{items, pageNo, pageSize, total}``, ``total`` counting every
  match, not just this page.

Anything else in the query (``utm_*`` included) is ignored.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "STATES",
    "history_page",
]

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

STATES: Mapping[str, frozenset[str]] = {
    "running": frozenset({"created", "processing"}),
    "succeeded": frozenset({"completed"}),
    "failed": frozenset({"failed", "timeout"}),
}
"""The ``state`` filter's three values, and the statuses each stands for."""

_TERMINAL = frozenset({"completed", "failed", "timeout"})


class HistoryRecord(Protocol):
    """What a history item needs of a prediction."""

    id: str
    created: float
    body: str

    @property
    def model(self) -> str:
        """The model id as submitted."""
        ...

    def status(self, now: float) -> str:
        """The wire status at ``now``."""
        ...

    def to_wire(self, now: float, origin: str) -> dict[str, Any]:
        """The poll answer's ``data`` at ``now``."""
        ...


def _number(values: Mapping[str, list[str]], name: str, default: int) -> int:
    raw = (values.get(name) or [""])[0].strip()
    try:
        number = int(raw)
    except ValueError:
        return default
    return number if number >= 1 else default


def _text(values: Mapping[str, list[str]], name: str) -> str | None:
    raw = (values.get(name) or [""])[0].strip()
    return raw or None


def history_page(
    records: Sequence[HistoryRecord],
    query: str,
    now: float,
    origin: str,
    wall: Callable[[float], float],
) -> dict[str, Any]:
    """
    Return the whole answer (envelope included) for one history request.

    Args:
        records: the key's predictions, oldest first (as created).
        query: the raw query string.
        now: the clock reading statuses are taken at.
        origin: ``scheme://host[:port]`` for the URLs inside ``result``.
        wall: turns a clock reading into unix seconds (for ``createdAt``).
    """
    values = urllib.parse.parse_qs(query, keep_blank_values=True)
    page = _number(values, "no", 1)
    size = min(_number(values, "size", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    session = _text(values, "sessionID")
    model = _text(values, "model")
    prefix = _text(values, "modelPrefix")
    status = _text(values, "status")
    state = _text(values, "state")
    allowed = STATES.get(state) if state is not None else None
    if state is not None and allowed is None:
        allowed = frozenset()  # an unknown state matches nothing
    matches: list[tuple[HistoryRecord, str]] = []
    for record in _newest_first(records):
        if session is not None and record.id != session:
            continue
        if model is not None and record.model != model:
            continue
        if prefix is not None and not record.model.startswith(prefix):
            continue
        current = record.status(now)
        if status is not None and current != status:
            continue
        if allowed is not None and current not in allowed:
            continue
        matches.append((record, current))
    start = (page - 1) * size
    items = [
        _item(record, current, now, origin, wall)
        for record, current in matches[start : start + size]
    ]
    data = {"items": items, "pageNo": page, "pageSize": size, "total": len(matches)}
    return {"code": "200", "message": "", "data": data}


def _newest_first(records: Sequence[HistoryRecord]) -> Iterable[HistoryRecord]:
    return reversed(records)


def _item(
    record: HistoryRecord,
    status: str,
    now: float,
    origin: str,
    wall: Callable[[float], float],
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "ID": record.id,
        "createdAt": str(int(wall(record.created))),
        "model": record.model,
        "requestBody": record.body,
        "status": status,
    }
    if status in _TERMINAL:
        item["result"] = record.to_wire(now, origin)
    return item
