"""
`CostGate`: what a batch asks before each submit when it runs on a budget, and
where its spend is counted.

The driver calls it at four points and nowhere else:

* `CostGate.start`, once, after the journal is open and before any submit: it
  quotes every item at the catalog's prices, counts what earlier runs of the
  same journal already spent (completed items) or hold (submitted, unknown),
  and, with ``check_balance``, stops the batch when what it still has to send
  costs more than the account's available balance
  (`QuoteExceedsBalanceError`, both numbers in the message);
* `CostGate.admit`, before an item is submitted: it reserves the item's
  quoted price, or returns the `BudgetExceededError` the item ends with
  (reported as *not submitted*, never as failed; the journal keeps it pending
  so a later run with a larger budget sends it);
* `CostGate.settle` when an item completes (its actual ``price`` replaces the
  reservation) and `CostGate.release` when it ends unbilled (a refused submit,
  a failed prediction).

A budget is the batch's, across runs: a rerun with the same journal counts
what the earlier runs spent. The accounting itself is `_core.pricing.Budget`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal

from .._core.errors import (
    AtlasError,
    BudgetExceededError,
    QuoteExceedsBalanceError,
)
from .._core.models import Prediction
from .._core.pricing import (
    Balance,
    Budget,
    ModelPrice,
    Quote,
    format_money,
    quote_requests,
)
from .journal import ItemState, JournalEntry
from .types import GenerationRequest

__all__ = ["CostGate"]

logger = logging.getLogger("atlas_async")

_HELD = (ItemState.SUBMITTING, ItemState.SUBMITTED, ItemState.UNKNOWN)
_ZERO = Decimal(0)


class CostGate:
    """
    One batch run's budget and balance check (see the module).

    Args:
        prices: the catalog's prices by model (``AtlasClient.model_prices``).
        balance: the account's balance (``AtlasClient.balance``).
        budget: the most the batch may spend (None: no limit, only counted).
        check_balance: stop before submitting anything when the quote of what
            is left to send exceeds the available balance.
    """

    def __init__(
        self,
        prices: Callable[[], Awaitable[Mapping[str, ModelPrice]]],
        balance: Callable[[], Awaitable[Balance]],
        *,
        budget: Decimal | None,
        check_balance: bool,
    ) -> None:
        self._prices = prices
        self._balance = balance
        self._check_balance = check_balance
        self.budget = Budget(limit=budget)
        self.quote: Quote | None = None

    @property
    def spent(self) -> Decimal:
        """What the batch's completed items cost, this run and earlier ones."""
        return self.budget.spent

    def quoted(self, index: int) -> Decimal | None:
        """Item ``index``'s quoted price, None when unpriced or not quoted."""
        if self.quote is None or index >= len(self.quote.costs):
            return None
        return self.quote.costs[index]

    async def start(
        self,
        requests: Sequence[GenerationRequest],
        entries: Sequence[JournalEntry] | None,
    ) -> None:
        """
        Quote the batch, count what earlier runs spent or hold, and check the
        balance (see the module).

        Raises:
            QuoteExceedsBalanceError: what is left to send costs more than the
                available balance (nothing has been submitted).
            AtlasError: the catalog could not be read and a budget is set (a
                budget cannot be kept without prices).
        """
        try:
            prices = await self._prices()
        except AtlasError:
            if self.budget.limit is not None:
                raise
            logger.warning("the catalog's prices could not be read: no cost check")
            return
        quote = self.quote = quote_requests(
            ((r.model, r.params) for r in requests), prices
        )
        left = _ZERO
        for index, cost in enumerate(quote.costs):
            entry = entries[index] if entries is not None else None
            state = entry.state if entry is not None else ItemState.PENDING
            if state in (ItemState.COMPLETED, ItemState.SAVED):
                assert entry is not None
                actual = entry.prediction.cost if entry.prediction else None
                self.budget.spent += actual if actual is not None else cost or _ZERO
            elif state in _HELD:
                self.budget.reserve(index, cost or _ZERO, force=True)
            elif state is ItemState.PENDING and cost is not None:
                left += cost
        if self._check_balance:
            await self._check(left, quote.currency)

    async def _check(self, left: Decimal, currency: str) -> None:
        limit = self.budget.limit
        # A budget below the quote caps what the batch can spend.
        needed = left if limit is None else min(left, limit - self.budget.committed)
        if needed <= 0:
            return
        try:
            balance = await self._balance()
        except AtlasError as exc:
            logger.warning("the balance could not be read: no balance check (%s)", exc)
            return
        if balance.currency.lower() != currency.lower():
            return  # not comparable
        if needed > balance.available:
            raise QuoteExceedsBalanceError(
                f"the batch would cost {format_money(needed, currency)} at the"
                " catalog's prices and the account has"
                f" {format_money(balance.available, currency)} available: nothing"
                " was submitted (top up, set a lower budget, or skip this check"
                " with check_balance=False, CLI --no-balance-check)",
                quote=needed,
                available=balance.available,
                currency=currency,
            )

    def admit(self, index: int) -> BudgetExceededError | None:
        """
        Reserve item ``index``'s quoted price before it is sent; None when it
        may go, else why it may not (it is then not submitted).
        """
        limit = self.budget.limit
        if limit is None:
            return None
        price = self.quoted(index)
        committed = self.budget.committed
        if price is None:
            reason = (
                next((u.reason for u in self.quote.unpriced if u.index == index), "")
                if self.quote is not None
                else "no quote"
            )
            return BudgetExceededError(
                f"not submitted: budget: the item cannot be priced ({reason}), so"
                f" the budget of {format_money(limit)} cannot cover it",
                budget=limit,
                committed=committed,
                price=None,
            )
        if self.budget.reserve(index, price):
            return None
        return BudgetExceededError(
            f"not submitted: budget: it costs {format_money(price)} and"
            f" {format_money(committed)} of the {format_money(limit)} budget is"
            " spent or held; run again with a larger budget to send it",
            budget=limit,
            committed=committed,
            price=price,
        )

    def settle(self, index: int, prediction: Prediction) -> Decimal | None:
        """Item ``index`` completed: its actual price replaces the reservation."""
        if self.quote is None:
            return prediction.cost
        return self.budget.settle(index, prediction.cost)

    def release(self, index: int) -> None:
        """Item ``index`` ended without being billed: free its reservation."""
        self.budget.release(index)
