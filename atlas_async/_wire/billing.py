"""
Reading the billing API's balance (``GET /public/v1/balance``).

The body (docs/wire.md, W11)::

    {"object": "balance", "scope": "self", "account": {"id", "name", "type"},
     "available": {"value": "9.970000", "currency": "usd"}, "cash": {...},
     "bonus": {...}, "subscription_bonus": {...}, "frozen": {...},
     "credit_grant": {...}, "request_id": "req_..."}

Its errors are OpenAI-style ``{"error": {type, code, message, param},
"request_id"}``, which the one error reader (`errors.api_error`) already
classifies; this module reads successes only.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._core.errors import UnexpectedResponseError
from .._core.pricing import CURRENCY, Balance
from .answer import Answer
from .parse import read_json_object
from .prices import read_money
from .values import type_name

__all__ = ["BALANCE_PATH", "balance_url", "read_balance"]

BALANCE_PATH = "/public/v1/balance"
_MEDIA_BASE = "/api/v1"


def balance_url(base_url: str) -> str:
    """
    The balance's URL for a media API base: the billing API lives beside the
    media API on the same origin (``https://host/api/v1`` ->
    ``https://host/public/v1/balance``).
    """
    base = base_url.rstrip("/")
    if base.endswith(_MEDIA_BASE):
        base = base[: -len(_MEDIA_BASE)]
    return base + BALANCE_PATH


def read_balance(answer: Answer, *, now: float) -> Balance:
    """
    Read a ``/public/v1/balance`` answer.

    Raises:
        APIError: the subclass for an error answer.
        UnexpectedResponseError: not JSON, or no readable ``available``.
    """
    payload = read_json_object(answer, now=now)
    available, currency = read_money(payload.get("available"))
    if available is None:
        raise UnexpectedResponseError(
            "expected an amount at $.available, got "
            f"{type_name(payload.get('available'))}",
            status_code=answer.status_code,
            body=payload,
        )
    account = payload.get("account")
    account_id = account.get("id") if isinstance(account, Mapping) else None
    return Balance(
        available=available,
        currency=currency or CURRENCY,
        cash=read_money(payload.get("cash"))[0],
        bonus=read_money(payload.get("bonus"))[0],
        frozen=read_money(payload.get("frozen"))[0],
        account_id=account_id if isinstance(account_id, str) else None,
        raw=payload,
    )
