"""Pricing, quotes and budgets: the pure rules of `_core.pricing`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from atlas_async import ModelPrice, ModelQuote, Quote, Unpriced
from atlas_async._core.pricing import (
    Budget,
    format_money,
    price_request,
    quote_requests,
    to_amount,
)

D = Decimal


def price(unit: str, base: str | None = "0.03", **extra: str) -> ModelPrice:
    amounts = {name: D(value) for name, value in extra.items()}
    return ModelPrice(
        model="m", unit=unit, base_price=None if base is None else D(base), **amounts
    )


class TestPriceRequest:
    @pytest.mark.parametrize(
        ("unit", "params", "expected"),
        [
            pytest.param("generation", {}, "0.03", id="generation-once"),
            pytest.param("image", {}, "0.03", id="image-one-by-default"),
            pytest.param("image", {"num_images": 4}, "0.12", id="image-per-output"),
            pytest.param("second", {"duration": 5}, "0.15", id="second-duration"),
            pytest.param("second", {"duration": "10"}, "0.30", id="second-text"),
            pytest.param("second", {"duration": "8s"}, "0.24", id="second-suffix"),
            pytest.param("1k_chars", {"text": "x" * 1500}, "0.045", id="chars-text"),
            pytest.param("1k_chars", {"prompt": "x" * 500}, "0.015", id="chars-prompt"),
        ],
    )
    def test_each_unit_prices_from_the_request(
        self, unit: str, params: dict[str, object], expected: str
    ) -> None:
        """The catalog's unit decides which request field multiplies the price."""
        assert price_request(price(unit), params) == D(expected)

    def test_the_specific_prices_win_over_the_base_price(self) -> None:
        """request_price prices a generation, output_image_price an image."""
        assert price_request(price("generation", request_price="0.5"), {}) == D("0.5")
        each = price("image", output_image_price="0.04")
        assert price_request(each, {"num_images": 2}) == D("0.08")

    @pytest.mark.parametrize(
        ("model_price", "params", "words"),
        [
            pytest.param(None, {}, "no price", id="no-price"),
            pytest.param(price("second"), {}, "no duration", id="video-no-duration"),
            pytest.param(
                price("second"), {"duration": "auto"}, "no duration", id="auto"
            ),
            pytest.param(price("minute"), {}, "minute", id="minute"),
            pytest.param(price("token"), {}, "'token'", id="unknown-unit"),
            pytest.param(price("second", None), {"duration": 5}, "base_price", id="nb"),
            pytest.param(price("image"), {"num_images": 0}, "at least 1", id="zero"),
            pytest.param(price("image"), {"num_images": 1.5}, "whole", id="float"),
            pytest.param(price("1k_chars"), {}, "no text", id="no-text"),
        ],
    )
    def test_what_it_cannot_price_it_says_why(
        self, model_price: ModelPrice | None, params: dict[str, object], words: str
    ) -> None:
        """No guess: the answer is the reason, as text."""
        reason = price_request(model_price, params)
        assert isinstance(reason, str)
        assert words in reason


class TestQuote:
    def test_a_quote_sums_exactly_by_model_and_lists_the_unpriced(self) -> None:
        """Exact decimal sums per model; an unpriced request is listed with its
        index and left out of the cost."""
        prices = {
            "img": ModelPrice(model="img", unit="image", base_price=D("0.03")),
            "vid": ModelPrice(model="vid", unit="second", base_price=D("0.06")),
        }
        requests: list[tuple[str, dict[str, object]]] = [
            ("img", {"prompt": "a"}),
            ("img", {"prompt": "b", "num_images": 2}),
            ("vid", {"prompt": "c", "duration": 5}),
            ("vid", {"prompt": "d"}),
            ("nope", {"prompt": "e"}),
        ]
        quote = quote_requests(requests, prices)
        assert quote == Quote(
            predictions=5,
            cost=D("0.39"),
            by_model={
                "img": ModelQuote(
                    model="img", predictions=2, cost=D("0.09"), unit="image"
                ),
                "vid": ModelQuote(
                    model="vid", predictions=1, cost=D("0.30"), unit="second"
                ),
            },
            unpriced=(
                Unpriced(index=3, model="vid", reason=quote.unpriced[0].reason),
                Unpriced(
                    index=4,
                    model="nope",
                    reason="the catalog has no price for this model",
                ),
            ),
            costs=(D("0.03"), D("0.06"), D("0.30"), None, None),
        )
        assert not quote.complete

    def test_ten_thousand_cents_add_up_to_a_hundred_dollars_exactly(self) -> None:
        """Decimal, not float: 0.01 added 10,000 times is exactly 100."""
        prices = {"m": ModelPrice(model="m", unit="generation", base_price=D("0.01"))}
        quote = quote_requests([("m", {})] * 10_000, prices)
        assert quote.cost == D("100.00")
        assert quote.complete


class TestBudget:
    def test_reservations_stop_at_the_limit(self) -> None:
        """5.5 image prices admit five images, not a sixth."""
        budget = Budget(limit=D("0.165"))
        admitted = [budget.reserve(i, D("0.03")) for i in range(7)]
        assert admitted == [True] * 5 + [False] * 2
        assert (budget.reserved, budget.spent) == (D("0.15"), D(0))

    def test_actual_prices_replace_reservations(self) -> None:
        """A settled item counts what it cost; a released one gives its
        reservation back, so another item fits."""
        budget = Budget(limit=D("0.06"))
        assert budget.reserve(0, D("0.03"))
        assert budget.reserve(1, D("0.03"))
        assert not budget.reserve(2, D("0.03"))
        assert budget.settle(0, D("0.02")) == D("0.02")
        budget.release(1)
        assert budget.committed == D("0.02")
        assert budget.reserve(2, D("0.03"))
        assert budget.settle(2, None) == D("0.03")  # no price on the wire
        assert budget.spent == D("0.05")

    def test_forced_reservations_count_past_the_limit(self) -> None:
        """An item already sent is held whatever the limit; nothing new fits."""
        budget = Budget(limit=D("0.01"))
        assert budget.reserve(0, D("0.03"), force=True)
        assert budget.committed == D("0.03")
        assert not budget.reserve(1, D("0.001"))

    def test_without_a_limit_it_only_counts(self) -> None:
        """limit None: everything fits; spend still adds up."""
        budget = Budget()
        assert all(budget.reserve(i, D("1000")) for i in range(3))
        assert budget.committed == D("3000")


class TestAmounts:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("0.035", D("0.035")),
            (0.035, D("0.035")),
            (2, D(2)),
            (" 1.5 ", D("1.5")),
            (-1, None),
            ("nan", None),
            (float("inf"), None),
            (True, None),
            ("1" * 100, None),
            ([1], None),
        ],
    )
    def test_amounts_read_exactly_or_not_at_all(
        self, value: object, expected: Decimal | None
    ) -> None:
        """Floats by their shortest text; junk, negatives and non-finite: None."""
        assert to_amount(value) == expected

    def test_a_signed_amount_may_be_negative(self) -> None:
        """An overdrawn balance is below zero."""
        assert to_amount("-0.5", signed=True) == D("-0.5")

    @pytest.mark.parametrize(
        ("amount", "currency", "text"),
        [
            (D("0.165"), "usd", "$0.165"),
            (D("5"), "usd", "$5.00"),
            (D("0.1"), "USD", "$0.10"),
            (D("0"), "usd", "$0.00"),
            (D("1.5"), "eur", "1.50 EUR"),
        ],
    )
    def test_money_is_shown_unrounded_with_cents(
        self, amount: Decimal, currency: str, text: str
    ) -> None:
        """Never rounded away; at least two decimals."""
        assert format_money(amount, currency) == text
