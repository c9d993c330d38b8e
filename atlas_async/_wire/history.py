"""
Reading a page of the account's history (``GET /api/v1/model/history``).

The answer, as the vendor's own client reads it::

    {"code": 200, "data": {"items": [{"ID": "...", "createdAt": "1767225600",
      "model": "...", "requestBody": "{...}", "status": "completed",
      "result": {...}}], "pageNo": 1, "pageSize": 20, "total": 57}}

``createdAt`` is Unix seconds (a number or its text; milliseconds are
recognised by their size), ``requestBody`` the submit's JSON text as the server
kept it. An entry without an id or a model is skipped (it cannot be attached
to anything); the page itself must be an object with a list of items.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import attrs

from .._core.errors import UnexpectedResponseError
from .._core.history import HistoryItem
from .answer import Answer
from .parse import read_json_object
from .values import lenient_datetime, type_name

__all__ = ["HISTORY_PATH", "HistoryPage", "history_path", "read_history_page"]

HISTORY_PATH = "/model/history"
# Above this a createdAt is milliseconds (Unix seconds reach it in year 5138).
_MILLIS = 1e11


@attrs.frozen(slots=True)
class HistoryPage:
    """
    One page of history.

    Attributes:
        items: the entries, in the server's order (newest first).
        page: its number, from 1.
        size: entries a page holds.
        total: entries matching the query across all pages, when said.
    """

    items: tuple[HistoryItem, ...]
    page: int
    size: int
    total: int | None


def history_path(
    page: int,
    size: int,
    *,
    model: str | None = None,
    status: str | None = None,
) -> str:
    """The path and query of one page: ``/model/history?no=1&size=50&model=m``."""
    query: dict[str, str | int] = {"no": page, "size": size}
    if model is not None:
        query["model"] = model
    if status is not None:
        query["status"] = status
    return f"{HISTORY_PATH}?{urlencode(query)}"


def read_history_page(answer: Answer, *, now: float) -> HistoryPage:
    """
    Read one page of history.

    Raises:
        APIError: the subclass for an error answer (also inside HTTP 200).
        UnexpectedResponseError: not JSON, or no list of items.
    """
    payload = read_json_object(answer, now=now)
    data = payload.get("data", payload)
    items = data.get("items") if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(items, list):
        raise UnexpectedResponseError(
            f"expected a list at $.data.items, got {type_name(items)}",
            status_code=answer.status_code,
            body=payload,
        )
    read = tuple(entry for entry in (_item(raw) for raw in items) if entry is not None)
    return HistoryPage(
        read,
        _count(data.get("pageNo")) or 1,
        _count(data.get("pageSize")) or len(items),
        _count(data.get("total")),
    )


def _item(raw: object) -> HistoryItem | None:
    if not isinstance(raw, Mapping):
        return None
    pid = _text(raw.get("ID", raw.get("id")))
    model = _text(raw.get("model"))
    if pid is None or model is None:
        return None
    status = _text(raw.get("status")) or ""
    body = raw.get("requestBody", raw.get("request_body"))
    return HistoryItem(
        pid,
        model,
        status.lower(),
        _instant(raw.get("createdAt", raw.get("created_at"))),
        body if isinstance(body, str) else None,
    )


def _text(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _count(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _instant(value: Any) -> datetime | None:
    number = _number(value)
    if number is None:
        return lenient_datetime(value, datetime)
    if number > _MILLIS:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
