"""
The SDK's half of the contract for money: a catalog entry's price (W12,
section 13), the balance (W11) and the billing API's errors (F16), read by the
public readers and, over HTTP, by `AtlasClient.balance`.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from atlas_async import (
    AtlasClient,
    AuthenticationError,
    Balance,
    InvalidRequestError,
    ModelPrice,
)
from atlas_async._wire.answer import Answer
from atlas_async._wire.billing import balance_url, read_balance
from atlas_async._wire.parse import parse_models
from atlas_async._wire.prices import read_model_price

from . import literals as lit

JSON = {"content-type": "application/json"}
NOW = 1_700_000_000.0
D = Decimal


class TestW12Prices:
    def test_a_price_per_image_reads_its_image_price(self) -> None:
        """`actual` is what is charged; a "0" price is no price."""
        price = read_model_price("m", json.loads(lit.W12_PRICE_PER_IMAGE))
        assert price == ModelPrice(
            model="m",
            unit="image",
            base_price=D("0.03"),
            output_image_price=D("0.03"),
        )

    def test_a_price_per_second_reads_its_base_price(self) -> None:
        """The unit and the base price; request and image prices are "0"."""
        price = read_model_price("m", json.loads(lit.W12_PRICE_PER_SECOND))
        assert price == ModelPrice(model="m", unit="second", base_price=D("0.06"))

    def test_the_w12_entry_carries_its_price_on_the_model_info(self) -> None:
        """W12's entry: a discount as a number, only base_price and unit."""
        [info] = parse_models(200, JSON, lit.W12_CATALOG, now=NOW)
        assert info.price == ModelPrice(
            model="example/speech-to-text", unit="minute", base_price=D("0.0025")
        )

    @pytest.mark.parametrize(
        "price",
        [None, "0.03", {"actual": None}, {"actual": {"base_price": "0.03"}}],
    )
    def test_an_entry_without_a_readable_price_has_none(self, price: object) -> None:
        """No price object, no `actual`, no unit: unpriced, never an error."""
        assert read_model_price("m", price) is None


class TestW11Balance:
    def test_the_balance_reads_exact_amounts_and_the_currency(self) -> None:
        """Money objects {value, currency} become Decimals; the account id."""
        answer = Answer.read(200, JSON, lit.W11_BALANCE)
        assert read_balance(answer, now=NOW) == Balance(
            available=D("9.97"),
            currency="usd",
            cash=D("10"),
            bonus=D("0"),
            frozen=D("0.03"),
            account_id="acct_1234",
        )

    @pytest.mark.parametrize(
        ("base", "url"),
        [
            ("https://api.atlascloud.ai/api/v1", "https://api.atlascloud.ai/public/v1/balance"),
            ("http://127.0.0.1:8000/api/v1/", "http://127.0.0.1:8000/public/v1/balance"),
            ("https://proxy.example/atlas", "https://proxy.example/atlas/public/v1/balance"),
        ],
    )  # fmt: skip
    def test_the_billing_api_sits_beside_the_media_api(
        self, base: str, url: str
    ) -> None:
        """`/public/v1` replaces the media base's `/api/v1` on the same origin."""
        assert balance_url(base) == url


@pytest.mark.asyncio
class TestBalanceOverHttp:
    async def test_the_client_asks_the_billing_path_with_the_key(self) -> None:
        """GET /public/v1/balance with the bearer key; W11's body reads."""
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, headers=JSON, content=lit.W11_BALANCE)

        async with AtlasClient(
            "sk-test",
            base_url="https://api.atlascloud.ai/api/v1",
            transport=httpx.MockTransport(answer),
        ) as client:
            balance = await client.balance()
        assert balance.available == D("9.97")
        [request] = seen
        assert str(request.url) == "https://api.atlascloud.ai/public/v1/balance"
        assert request.headers["authorization"] == "Bearer sk-test"

    @pytest.mark.parametrize(
        ("status", "body", "expected"),
        [
            pytest.param(400, lit.F16_BILLING_ERROR, InvalidRequestError, id="F16"),
            pytest.param(
                401,
                b'{"error": {"type": "authentication_error", "code":'
                b' "invalid_api_key", "message": "invalid api key", "param": null},'
                b' "request_id": "req_9"}',
                AuthenticationError,
                id="401",
            ),
        ],
    )
    async def test_a_billing_error_envelope_is_its_error(
        self, status: int, body: bytes, expected: type[Exception]
    ) -> None:
        """The billing API's own envelope: class by status, its message and
        request id on the error."""

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, headers=JSON, content=body)

        async with AtlasClient(
            "sk-test",
            base_url="https://api.atlascloud.ai/api/v1",
            transport=httpx.MockTransport(answer),
        ) as client:
            with pytest.raises(expected) as caught:
                await client.balance()
        message = json.loads(body)["error"]["message"]
        assert message in str(caught.value)
        assert caught.value.request_id == json.loads(body)["request_id"]  # type: ignore[attr-defined]
