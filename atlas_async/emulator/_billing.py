"""
The billing API under ``/public/v1``: balance, daily usage, daily costs. Pure:
the handler passes the key's account and predictions, the query and ``now``.

Shapes follow the vendor's MCP server, which reads all three (docs/wire.md):

* ``GET /public/v1/balance`` answers ``{object: "balance", scope, account{id,
  name, type}, available, cash, bonus, subscription_bonus, frozen,
  credit_grant{status, granted, used, remaining_overdraft, overdrawn},
  request_id}``, every amount a money value ``{"value": "12.500000",
  "currency": "usd"}``;
* ``GET /public/v1/model-usage`` and ``/model-costs`` take ``start_date``
  (inclusive) and ``end_date`` (exclusive), UTC ``YYYY-MM-DD``, at most 180
  days apart; ``scope`` (``self`` or ``account``: one key is one account
  here); arrays written ``name[]=value`` (``group_by[]`` of ``model``,
  ``model_type``, ``api_key``; ``model_types[]``; ``model_ids[]``) and
  ``limit`` (rows per day, 1-1000, default 100). They answer ``{object:
  "list", scope, data: [bucket...], has_more, next_page, request_id}``, one
  bucket per day: ``{object: "bucket", date, start_at, end_at, partial,
  results}``. Everything fits one page (``has_more`` false).

A usage row counts the predictions *created* that day (``requests``,
``succeeded``, ``failed``, ``images``, ``videos``, ``video_seconds``,
``audio_seconds``, ``characters``); a cost row the price of the predictions
*completed* that day (``amount``, ``quantity``). Without ``group_by`` each day
has one total row; with it, one row per group that had any.

Errors are the billing API's own envelope (not the media API's):
``{"error": {"type": "invalid_request_error", "code", "message", "param"},
"request_id"}`` with HTTP 400.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

__all__ = [
    "BALANCE_PATH",
    "COSTS_PATH",
    "MAX_DAYS",
    "USAGE_PATH",
    "BillingError",
    "account_id",
    "balance_body",
    "key_id",
    "usage_body",
]

PUBLIC = "/public/v1"
BALANCE_PATH = f"{PUBLIC}/balance"
USAGE_PATH = f"{PUBLIC}/model-usage"
COSTS_PATH = f"{PUBLIC}/model-costs"
MAX_DAYS = 180
_GROUPS = ("model_type", "model", "api_key")
_SCOPES = ("self", "account")
_DEFAULT_LIMIT = 100


class BillingError(Exception):
    """A query the billing API refuses; `body` is its 400 envelope."""

    def __init__(self, code: str, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param

    def body(self, request_id: str) -> dict[str, Any]:
        """The ``{"error": {...}, "request_id"}`` envelope."""
        error = {
            "type": "invalid_request_error",
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        return {"error": error, "request_id": request_id}


class Funds(Protocol):
    """What a balance needs of an account."""

    @property
    def cash(self) -> float:
        """Start less what was charged."""
        ...

    @property
    def available(self) -> float:
        """Cash less what is frozen."""
        ...

    @property
    def frozen(self) -> float:
        """What unfinished predictions hold."""
        ...


class Billable(Protocol):
    """What usage and costs need of a prediction."""

    created: float
    ready_at: float
    price: float
    params: dict[str, Any]
    outputs: int

    @property
    def model(self) -> str:
        """The model id."""
        ...

    @property
    def model_type(self) -> str:
        """``image``, ``video`` or ``audio``."""
        ...

    @property
    def failed(self) -> bool:
        """True when it ended without being billed."""
        ...

    @property
    def billed_seconds(self) -> float:
        """Seconds of media it was billed for (0 for images)."""
        ...

    @property
    def characters(self) -> int:
        """Characters of text it was given."""
        ...


def _money(value: float) -> dict[str, str]:
    return {"value": f"{round(value, 6) + 0.0:.6f}", "currency": "usd"}


def account_id(key: str) -> str:
    """The account an API key stands for: a digest, never the key itself."""
    return "acct_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def key_id(owner: str) -> str:
    """The key's public name in usage rows grouped by ``api_key``."""
    return "key_" + owner.removeprefix("acct_")


def balance_body(funds: Funds, owner: str, request_id: str) -> dict[str, Any]:
    """The ``/public/v1/balance`` answer for one account (`account_id`)."""
    zero = _money(0.0)
    return {
        "object": "balance",
        "scope": "self",
        "account": {
            "id": owner,
            "name": "Atlas emulator account",
            "type": "personal",
        },
        "available": _money(funds.available),
        "cash": _money(funds.cash),
        "bonus": zero,
        "subscription_bonus": zero,
        "frozen": _money(funds.frozen),
        "credit_grant": {
            "status": "none",
            "granted": zero,
            "used": zero,
            "remaining_overdraft": zero,
            "overdrawn": _money(max(0.0, -funds.available)),
        },
        "request_id": request_id,
    }


def _values(query: Mapping[str, list[str]], name: str) -> list[str]:
    # Arrays travel as name[]=a&name[]=b; a bare name=a is read the same way.
    return [v for v in query.get(f"{name}[]", []) + query.get(name, []) if v]


def _day(query: Mapping[str, list[str]], name: str) -> date:
    raw = (query.get(name) or [""])[0].strip()
    if not raw:
        raise BillingError("missing_required_parameter", f"{name} is required", name)
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else _bad_day(name)
    except ValueError:
        return _bad_day(name)


def _bad_day(name: str) -> date:
    raise BillingError(
        "invalid_date", f"{name} must be a UTC date written YYYY-MM-DD", name
    )


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def _iso_day(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def usage_body(
    records: Iterable[Billable],
    owner: str,
    query: str,
    now: float,
    wall: Callable[[float], float],
    request_id: str,
    *,
    costs: bool,
) -> dict[str, Any]:
    """
    The ``/public/v1/model-usage`` (or, with ``costs``, ``/model-costs``) answer.

    Raises:
        BillingError: for a query the API refuses.
    """
    values = urllib.parse.parse_qs(query, keep_blank_values=True)
    start, end = _day(values, "start_date"), _day(values, "end_date")
    if end <= start:
        raise BillingError(
            "invalid_date_range", "end_date must be after start_date", "end_date"
        )
    if (end - start).days > MAX_DAYS:
        raise BillingError(
            "invalid_date_range",
            f"the date range may cover at most {MAX_DAYS} days",
            "end_date",
        )
    scope = (values.get("scope") or ["self"])[0] or "self"
    if scope not in _SCOPES:
        raise BillingError("invalid_scope", "scope must be self or account", "scope")
    groups = _values(values, "group_by")
    if any(group not in _GROUPS for group in groups):
        raise BillingError(
            "invalid_group_by",
            "group_by takes model_type, model and api_key",
            "group_by",
        )
    types = set(_values(values, "model_types"))
    ids = set(_values(values, "model_ids"))
    raw_limit = (values.get("limit") or [""])[0]
    try:
        limit = int(raw_limit) if raw_limit else _DEFAULT_LIMIT
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise BillingError("invalid_limit", "limit must be within 1-1000", "limit")
    wall_now = wall(now)
    rows: dict[tuple[date, tuple[str, ...]], dict[str, Any]] = {}
    for record in records:
        if (types and record.model_type not in types) or (
            ids and record.model not in ids
        ):
            continue
        if costs:
            if record.failed or record.ready_at > now:
                continue
            moment = wall(record.ready_at)
        else:
            moment = wall(record.created)
        day = datetime.fromtimestamp(moment, tz=timezone.utc).date()
        if not start <= day < end:
            continue
        labels = {
            "model_type": record.model_type,
            "model": record.model,
            "api_key": key_id(owner),
        }
        group = tuple(labels[name] for name in groups)
        row = rows.get((day, group))
        if row is None:
            row = rows[(day, group)] = _empty_row(costs, groups, group)
        _count(row, record, now, costs=costs)
    buckets = []
    day = start
    while day < end:
        following = day + timedelta(days=1)
        results = [row for (d, _), row in rows.items() if d == day]
        if not groups and not results:
            results = [_empty_row(costs, groups, ())]
        for row in results:
            if costs:
                row["amount"] = _money(row["amount"])
        buckets.append(
            {
                "object": "bucket",
                "date": day.isoformat(),
                "start_at": _iso_day(day),
                "end_at": _iso_day(following),
                "partial": wall_now < _midnight(following),
                "results": results[:limit],
            }
        )
        day = following
    return {
        "object": "list",
        "scope": scope,
        "data": buckets,
        "has_more": False,
        "next_page": None,
        "request_id": request_id,
    }


def _empty_row(
    costs: bool, groups: list[str], group: tuple[str, ...]
) -> dict[str, Any]:
    row: dict[str, Any]
    if costs:
        row = {"object": "model_cost.result", "amount": 0.0, "quantity": 0}
    else:
        row = {
            "object": "model_usage.result",
            "requests": 0,
            "succeeded": 0,
            "failed": 0,
            "images": 0,
            "videos": 0,
            "video_seconds": 0.0,
            "audio_seconds": 0.0,
            "characters": 0,
        }
    for name, value in zip(groups, group, strict=True):
        row["api_key_id" if name == "api_key" else name] = value
    return row


def _count(row: dict[str, Any], record: Billable, now: float, *, costs: bool) -> None:
    if costs:
        row["amount"] += record.price
        row["quantity"] += 1
        return
    row["requests"] += 1
    row["characters"] += record.characters
    if record.ready_at > now:
        return
    if record.failed:
        row["failed"] += 1
        return
    row["succeeded"] += 1
    if record.model_type == "image":
        row["images"] += record.outputs
    elif record.model_type == "video":
        row["videos"] += 1
        row["video_seconds"] = round(row["video_seconds"] + record.billed_seconds, 3)
    else:
        row["audio_seconds"] = round(row["audio_seconds"] + record.billed_seconds, 3)
