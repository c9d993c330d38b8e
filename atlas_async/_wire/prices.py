"""
Reading money off the wire: amounts, money objects, a catalog entry's price.

A catalog entry's ``price`` is ``{"discount", "actual": {base_price,
request_price, output_image_price, unit, ...}, "origin": {...}}``; ``actual``
is what is charged (docs/wire.md, W12). Amounts come as text or numbers
(``"0.03"``, ``0.03``); anything else reads as absent, never as an error: a
price that cannot be read leaves the model unpriced (docs/cost.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .._core.pricing import ModelPrice, to_amount

__all__ = ["read_model_price", "read_money"]


def read_model_price(model: str, price: object) -> ModelPrice | None:
    """A catalog entry's ``price`` as a `ModelPrice`, or None when it has none."""
    if not isinstance(price, Mapping):
        return None
    actual = price.get("actual")
    if not isinstance(actual, Mapping):
        return None
    unit = actual.get("unit")
    if not isinstance(unit, str) or not unit.strip():
        return None
    return ModelPrice(
        model=model,
        unit=unit.strip(),
        base_price=to_amount(actual.get("base_price")),
        request_price=_nonzero(actual.get("request_price")),
        output_image_price=_nonzero(actual.get("output_image_price")),
    )


def _nonzero(value: object) -> Decimal | None:
    # "0" in request_price or output_image_price: not priced that way.
    amount = to_amount(value)
    return amount if amount else None


def read_money(value: object) -> tuple[Decimal | None, str | None]:
    """
    ``(amount, currency)`` of a money object ``{"value": "9.97", "currency":
    "usd"}`` or a bare amount (currency None); the amount may be negative.
    """
    if isinstance(value, Mapping):
        currency = value.get("currency")
        return to_amount(value.get("value"), signed=True), (
            currency if isinstance(currency, str) and currency else None
        )
    return to_amount(value, signed=True), None
