"""
The money commands: ``quote`` (what a batch file will cost, before sending it)
and ``balance`` (what the account has), and the exit code a budget stop gives.

``quote`` reads the file as ``batch`` does (same ``--model`` and ``--kind``
defaults) and prices it from the catalog: it needs no key and submits nothing.
A request it cannot price is listed with its reason, never guessed
(docs/cost.md). ``--json`` prints one object: ``predictions``, ``cost`` (exact
decimal text), ``currency``, ``by_model`` and ``unpriced``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._batch.input import load_requests
from .._core.pricing import Balance, Quote, format_money
from .run import EXIT_OK, Connection, json_line, with_client

__all__ = ["EXIT_BUDGET", "money_text", "quote_json", "run_balance", "run_quote"]

EXIT_BUDGET = 3
"""``batch --budget``: the budget stopped the batch; some items were not sent."""


def money_text(amount: Decimal | None) -> str | None:
    """An amount as exact decimal text for JSON (``"0.165"``), None as None."""
    return None if amount is None else f"{amount.normalize():f}"


def quote_json(quote: Quote, lines: tuple[int, ...] = ()) -> dict[str, Any]:
    """A `Quote` as the JSON object ``quote --json`` prints."""
    return {
        "predictions": quote.predictions,
        "cost": money_text(quote.cost),
        "currency": quote.currency,
        "complete": quote.complete,
        "by_model": {
            model: {
                "predictions": part.predictions,
                "cost": money_text(part.cost),
                "unit": part.unit,
            }
            for model, part in quote.by_model.items()
        },
        "unpriced": [
            {
                "index": item.index,
                "line": lines[item.index] if item.index < len(lines) else None,
                "model": item.model,
                "reason": item.reason,
            }
            for item in quote.unpriced
        ],
    }


async def run_quote(
    conn: Connection,
    file: Path,
    *,
    kind: str | None,
    model: str | None,
    as_json: bool,
) -> int:
    """Price every request of ``file`` at the catalog's prices; send nothing."""
    parsed = load_requests(file, kind=kind, model=model)
    quote = await with_client(
        conn, lambda client: client.quote(parsed.requests), needs_key=False
    )
    if as_json:
        json_line({**quote_json(quote, parsed.lines), "problems": len(parsed.problems)})
        return EXIT_OK
    console = Console(highlight=False, soft_wrap=True)
    cost = format_money(quote.cost, quote.currency)
    bound = "at least " if quote.unpriced else ""
    console.print(f"{quote.predictions} predictions, {bound}{cost}")
    table = Table("model", "predictions", "cost", "per", box=None, pad_edge=False)
    for part in quote.by_model.values():
        table.add_row(
            escape(part.model),
            str(part.predictions),
            format_money(part.cost, quote.currency),
            part.unit,
        )
    if quote.by_model:
        console.print(table)
    for item in quote.unpriced:
        line = parsed.lines[item.index]
        console.print(
            f"not priced: line {line} {escape(item.model)}: {escape(item.reason)}"
        )
    for problem in parsed.problems:
        console.print(f"not read: line {problem.line}: {escape(problem.message)}")
    return EXIT_OK


def balance_json(balance: Balance) -> dict[str, Any]:
    """A `Balance` as the JSON object ``balance --json`` prints."""
    return {
        "available": money_text(balance.available),
        "currency": balance.currency,
        "cash": money_text(balance.cash),
        "bonus": money_text(balance.bonus),
        "frozen": money_text(balance.frozen),
        "account_id": balance.account_id,
    }


async def run_balance(conn: Connection, *, as_json: bool) -> int:
    """Print the account's balance (``GET /public/v1/balance``)."""
    balance = await with_client(conn, lambda client: client.balance())
    if as_json:
        json_line(balance_json(balance))
        return EXIT_OK
    currency = balance.currency
    parts = [
        f"{name} {format_money(amount, currency)}"
        for name, amount in (("cash", balance.cash), ("frozen", balance.frozen))
        if amount is not None
    ]
    detail = f" ({', '.join(parts)})" if parts else ""
    Console(highlight=False, soft_wrap=True).print(
        f"available {format_money(balance.available, currency)}{detail}"
    )
    return EXIT_OK
