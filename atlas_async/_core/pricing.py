"""
What predictions cost: the catalog's prices, a quote for requests, a budget.

Pure: prices come in as `ModelPrice` values (``_wire`` reads them from the
catalog's ``price.actual``), requests as ``(model, params)`` pairs, and nothing
here does I/O. Money is `~decimal.Decimal` throughout, so a quote adds up
exactly and ``0.03`` never becomes ``0.029999...``.

How one request is priced, by the catalog's ``unit`` (docs/cost.md):

* ``generation``: ``request_price`` (else ``base_price``), once;
* ``image``: ``output_image_price`` (else ``base_price``) times ``num_images``
  (1 when absent);
* ``second``: ``base_price`` times the request's ``duration`` in seconds;
* ``1k_chars``: ``base_price`` per thousand characters of ``text`` (else
  ``prompt``);
* ``minute``: not priced: the minutes are the length of audio the request does
  not state (a transcript's input, a song's output).

A request this cannot price (a model without a price, an unknown unit, a
video without a ``duration``) is listed as `Unpriced` with the reason; it is
never given a guessed price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from .frozen import frozen_mapping

__all__ = [
    "CURRENCY",
    "PRICE_UNITS",
    "Balance",
    "Budget",
    "ModelPrice",
    "ModelQuote",
    "Quote",
    "Unpriced",
    "format_money",
    "price_request",
    "quote_requests",
    "to_amount",
]

CURRENCY = "usd"
"""The catalog's prices are US dollars (the billing API's ``currency``)."""

PRICE_UNITS = ("generation", "image", "second", "minute", "1k_chars")
"""The catalog's ``price.actual.unit`` values."""

_ZERO = Decimal(0)
_THOUSAND = Decimal(1000)
_MAX_AMOUNT_TEXT = 64  # longer numeric text is no amount (Decimal's work grows)


def to_amount(value: object, *, signed: bool = False) -> Decimal | None:
    """
    Read an amount of money exactly: a `~decimal.Decimal`, an int, a float by
    its shortest text (``0.035``, not its binary value) or numeric text.

    Returns None for anything else, a non-finite amount, or (unless
    ``signed``: an overdrawn balance) a negative one.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        amount = Decimal(repr(value))
    elif isinstance(value, str) and len(value) <= _MAX_AMOUNT_TEXT:
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return amount if amount.is_finite() and (signed or amount >= 0) else None


def format_money(amount: Decimal, currency: str = CURRENCY) -> str:
    """
    ``Decimal("0.165")`` as ``"$0.165"``, ``Decimal("5")`` as ``"$5.00"``; a
    currency other than dollars as ``"0.165 EUR"``. Never rounds.
    """
    text = f"{amount.normalize():f}"
    if len(text.partition(".")[2]) < 2:
        text = f"{amount:.2f}"
    if currency.lower() == "usd":
        return f"${text}"
    return f"{text} {currency.upper()}"


@attrs.frozen(kw_only=True)
class ModelPrice:
    """
    One model's price, as the catalog's ``price.actual`` states it.

    Attributes:
        model: the model id.
        unit: what one ``base_price`` buys: ``generation``, ``image``,
            ``second``, ``minute``, ``1k_chars`` (or a unit this SDK does not
            know, kept as sent).
        base_price: the price per ``unit``.
        request_price: the price of one generation, when the catalog gives one.
        output_image_price: the price of one output image, when given.
    """

    model: str
    unit: str
    base_price: Decimal | None = None
    request_price: Decimal | None = None
    output_image_price: Decimal | None = None


@attrs.frozen(kw_only=True)
class Balance:
    """
    The account's balance (``client.balance()``, ``GET /public/v1/balance``).

    Attributes:
        available: what new predictions can spend: cash and bonuses, less what
            running predictions hold (``frozen``).
        currency: the amounts' currency, as sent (``"usd"``).
        cash: money paid in, less what was charged.
        bonus: bonus credit, when the API states it.
        frozen: held by predictions that have not finished yet.
        account_id: the account's id, when the API states it.
        raw: the answer as received, for fields the SDK does not model.
    """

    available: Decimal
    currency: str = CURRENCY
    cash: Decimal | None = None
    bonus: Decimal | None = None
    frozen: Decimal | None = None
    account_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(
        factory=dict, converter=frozen_mapping, repr=False, eq=False
    )


@attrs.frozen(kw_only=True)
class Unpriced:
    """A request the quote could not price, and why (it is left out of the sum)."""

    index: int
    model: str
    reason: str


@attrs.frozen(kw_only=True)
class ModelQuote:
    """One model's part of a `Quote`: its priced predictions and their cost."""

    model: str
    predictions: int
    cost: Decimal
    unit: str


@attrs.frozen(kw_only=True)
class Quote:
    """
    What a set of requests will cost, from the catalog's prices
    (``client.quote``).

    Attributes:
        predictions: the requests quoted (priced or not).
        cost: the sum over the priced ones, exact.
        currency: the prices' currency (``"usd"``).
        by_model: each model's priced predictions and cost.
        unpriced: the requests left out of ``cost``, each with its reason;
            when it is not empty ``cost`` is a lower bound.
        costs: each request's price, None where unpriced (in request order).
    """

    predictions: int
    cost: Decimal
    currency: str = CURRENCY
    by_model: Mapping[str, ModelQuote] = attrs.field(factory=dict)
    unpriced: tuple[Unpriced, ...] = ()
    costs: tuple[Decimal | None, ...] = attrs.field(default=(), repr=False)

    @property
    def complete(self) -> bool:
        """True when every request was priced (``cost`` is the whole cost)."""
        return not self.unpriced


def _count(value: object, name: str) -> int | str:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} is {value!r}, not a whole number"
    return value if value >= 1 else f"{name} is {value}, not at least 1"


def _seconds(value: object) -> Decimal | None:
    if isinstance(value, str):
        value = value.strip().removesuffix("s")
    amount = to_amount(value)
    return amount if amount is not None and amount > 0 else None


def price_request(price: ModelPrice | None, params: Mapping[str, Any]) -> Decimal | str:
    """
    Return what one request costs at ``price``, or why it cannot be priced.

    ``params`` are the request's parameters, as sent (see the module for the
    rule per unit).
    """
    if price is None:
        return "the catalog has no price for this model"
    unit, base = price.unit, price.base_price
    if unit == "generation":
        each = price.request_price or base
        return each if each is not None else "no request_price or base_price"
    if unit == "image":
        each = price.output_image_price or base
        count = _count(params.get("num_images"), "num_images")
        if isinstance(count, str):
            return count
        return each * count if each is not None else "no output_image_price"
    if base is None:
        return f"no base_price for a price per {unit}"
    if unit == "second":
        seconds = _seconds(params.get("duration"))
        if seconds is None:
            return (
                "priced per second of video and the request has no duration"
                " (the model's default is not in the catalog)"
            )
        return base * seconds
    if unit == "1k_chars":
        text = params.get("text") or params.get("prompt")
        if not isinstance(text, str):
            return "priced per 1,000 characters and the request has no text"
        return base * len(text) / _THOUSAND
    if unit == "minute":
        return "priced per minute of audio, which the request does not state"
    return f"priced per {unit!r}, a unit this SDK does not know"


def quote_requests(
    requests: Iterable[tuple[str, Mapping[str, Any]]],
    prices: Mapping[str, ModelPrice],
) -> Quote:
    """Quote ``(model, params)`` requests at ``prices`` (model id -> price)."""
    costs: list[Decimal | None] = []
    unpriced: list[Unpriced] = []
    totals: dict[str, tuple[int, Decimal, str]] = {}
    for index, (model, params) in enumerate(requests):
        price = prices.get(model)
        cost = price_request(price, params)
        if isinstance(cost, str):
            costs.append(None)
            unpriced.append(Unpriced(index=index, model=model, reason=cost))
            continue
        assert price is not None
        costs.append(cost)
        count, subtotal, _ = totals.get(model, (0, _ZERO, price.unit))
        totals[model] = (count + 1, subtotal + cost, price.unit)
    by_model = {
        model: ModelQuote(model=model, predictions=n, cost=total, unit=unit)
        for model, (n, total, unit) in sorted(totals.items())
    }
    return Quote(
        predictions=len(costs),
        cost=sum((c for c in costs if c is not None), _ZERO),
        by_model=by_model,
        unpriced=tuple(unpriced),
        costs=tuple(costs),
    )


@attrs.define
class Budget:
    """
    A spending limit that items reserve from before they are sent.

    Each item reserves its quoted price (`reserve`); what a finished item really
    cost replaces its reservation (`settle`); an item that was not billed gives
    its reservation back (`release`). ``limit`` None only counts.

    Example::

        budget = Budget(limit=Decimal("0.165"))
        if budget.reserve(7, Decimal("0.03")):
            ...  # send item 7
    """

    limit: Decimal | None = None
    spent: Decimal = _ZERO
    _held: dict[int, Decimal] = attrs.field(factory=dict, alias="_held")

    @property
    def reserved(self) -> Decimal:
        """What items sent and not finished hold."""
        return sum(self._held.values(), _ZERO)

    @property
    def committed(self) -> Decimal:
        """Spent plus reserved: what the limit is checked against."""
        return self.spent + self.reserved

    def fits(self, amount: Decimal) -> bool:
        """True when ``amount`` more stays within the limit."""
        return self.limit is None or self.committed + amount <= self.limit

    def reserve(self, key: int, amount: Decimal, *, force: bool = False) -> bool:
        """
        Hold ``amount`` for item ``key`` if it fits (always with ``force``: an
        item already sent is held whatever the limit). Returns whether it did.
        """
        if not force and not self.fits(amount):
            return False
        self._held[key] = self._held.get(key, _ZERO) + amount
        return True

    def settle(self, key: int, actual: Decimal | None) -> Decimal:
        """
        Item ``key`` finished and was billed ``actual`` (None: as reserved).
        Returns what it counts as spent.
        """
        held = self._held.pop(key, _ZERO)
        cost = held if actual is None else actual
        self.spent += cost
        return cost

    def release(self, key: int) -> None:
        """Item ``key`` was not billed (it failed, or was never sent)."""
        self._held.pop(key, None)
