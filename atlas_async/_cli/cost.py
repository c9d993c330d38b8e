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
from .._batch.types import BatchProgress, BatchResult
from .._core.errors import ConfigurationError
from .._core.pricing import CURRENCY, Balance, Quote, format_money, to_amount
from .run import EXIT_OK, Connection, json_line, with_client

__all__ = [
    "EXIT_BUDGET",
    "SpendTally",
    "money_text",
    "parse_budget",
    "quote_json",
    "run_balance",
    "run_quote",
]

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


def parse_budget(text: str | None) -> Decimal | None:
    """
    ``--budget AMOUNT`` as an exact amount (``2.50``, ``$2.50``), or None.

    Raises:
        ConfigurationError: not an amount of at least 0.
    """
    if text is None:
        return None
    amount = to_amount(text.strip().removeprefix("$"))
    if amount is None:
        raise ConfigurationError(f"--budget wants an amount such as 2.50, got {text!r}")
    return amount


class SpendTally:
    """What a ``batch`` run spent and left unsent, for its progress and summary."""

    def __init__(self, budget: Decimal | None) -> None:
        self.budget = budget
        self.spent = Decimal(0)
        self.not_submitted = 0

    def add(self, result: BatchResult) -> None:
        """Count one result: its cost, or that the budget kept it back."""
        if result.cost is not None:
            self.spent += result.cost
        self.not_submitted += result.not_submitted

    def detail(self, progress: BatchProgress) -> str:
        """``"  spent $0.15 of $0.165"`` (and what was not sent) for the
        progress line."""
        limit = "" if self.budget is None else f" of {format_money(self.budget)}"
        text = f"  spent {format_money(progress.spent)}{limit}"
        if progress.not_submitted:
            text += f"  not submitted {progress.not_submitted}"
        return text

    def line(self) -> str:
        """The summary's words on money: spend, and what the budget kept back."""
        text = f"spent {format_money(self.spent)}"
        if self.not_submitted:
            limit = format_money(self.budget) if self.budget is not None else ""
            text += (
                f"; {self.not_submitted} not submitted: budget {limit} reached"
                " (run again with a larger --budget to send them)"
            )
        return text

    def json(self) -> dict[str, Any]:
        """The summary object's ``cost``, ``budget`` and ``not_submitted``."""
        return {
            "cost": money_text(self.spent),
            "currency": CURRENCY,
            "budget": money_text(self.budget),
            "not_submitted": self.not_submitted,
        }

    def exit_code(self, otherwise: int) -> int:
        """`EXIT_BUDGET` when the budget kept items back, else ``otherwise``."""
        return EXIT_BUDGET if self.not_submitted else otherwise
