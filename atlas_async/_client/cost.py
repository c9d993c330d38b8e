"""`CostCalls`: what requests will cost (`quote`), what the account has (`balance`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._batch.budget import CostGate
from .._batch.types import GenerationRequest
from .._core.errors import ArgumentTypeError, ConfigurationError, InvalidArgumentError
from .._core.pricing import Balance, ModelPrice, Quote, quote_requests, to_amount
from .._core.validate import check_iterable, describe
from .._ops.operations import Operations

__all__ = ["CostCalls", "as_requests"]


def as_requests(
    requests: Iterable[GenerationRequest | Mapping[str, Any]],
) -> list[GenerationRequest]:
    """
    ``requests`` as `GenerationRequest` values (mappings read as
    ``{"kind": ..., "model": ..., **params}``).

    Raises:
        ArgumentTypeError: ``requests`` is not an iterable of requests.
        ConfigurationError: an item is not a request (named by its index).
    """
    items = check_iterable(
        requests, "requests", "an iterable of GenerationRequest or mappings"
    )
    result = []
    for index, item in enumerate(items):
        if isinstance(item, GenerationRequest):
            result.append(item)
            continue
        try:
            result.append(GenerationRequest.from_mapping(item))
        except ConfigurationError as exc:
            raise ConfigurationError(f"request {index}: {exc}") from None
    return result


class CostCalls:
    """The cost calls of `AtlasClient` (see there)."""

    # The catalog's prices, read once per client: a batch quotes before it
    # starts and the catalog is a large answer.
    _catalog_prices: Mapping[str, ModelPrice] | None = None

    if TYPE_CHECKING:  # provided by AtlasClient

        def _running_operations(self) -> Operations: ...

    def _cost_gate(self, budget: object, check_balance: object) -> CostGate | None:
        """The batch's `CostGate`, or None when it has neither a budget nor a
        balance check. Checks both options first (nothing is sent for them).
        """
        limit = None
        if budget is not None:
            limit = to_amount(budget) if not isinstance(budget, bool) else None
            if limit is None:
                raise InvalidArgumentError(
                    "budget must be an amount of money of at least 0, such as"
                    f" 2.5 or Decimal('2.50'), not {describe(budget)}",
                    argument="budget",
                )
        if check_balance is not None and not isinstance(check_balance, bool):
            raise ArgumentTypeError(
                f"check_balance must be a bool, not {describe(check_balance)}",
                argument="check_balance",
            )
        check = limit is not None if check_balance is None else check_balance
        if limit is None and not check:
            return None
        return CostGate(
            self.model_prices, self.balance, budget=limit, check_balance=check
        )

    async def model_prices(self) -> Mapping[str, ModelPrice]:
        """
        Every catalog model's price (``price.actual``), by model id; read from
        the catalog on first use, then kept for the client's life.
        """
        operations = self._running_operations()
        if self._catalog_prices is None:
            models = await operations.list_models()
            self._catalog_prices = {
                info.model: info.price for info in models if info.price is not None
            }
        return self._catalog_prices

    async def quote(
        self, requests: Iterable[GenerationRequest | Mapping[str, Any]]
    ) -> Quote:
        """
        What ``requests`` will cost at the catalog's prices, before sending any.

        Nothing is submitted: the only request is the catalog (once per client).
        A request it cannot price (no price in the catalog, a video without a
        ``duration``, a price per minute of audio) is listed in
        ``Quote.unpriced`` with the reason, and left out of ``Quote.cost``
        (docs/cost.md).

        Example::

            quote = await client.quote(requests)
            print(quote.predictions, quote.cost, quote.currency)
            for item in quote.unpriced:
                print(item.index, item.model, item.reason)

        Args:
            requests: `GenerationRequest` values or mappings
                ``{"kind": "image", "model": ..., **params}``.

        Raises:
            ArgumentTypeError: ``requests`` is not an iterable of requests.
            ConfigurationError: an item is not a valid request.
        """
        items = as_requests(requests)
        prices = await self.model_prices()
        return quote_requests(((r.model, r.params) for r in items), prices)

    async def balance(self) -> Balance:
        """
        The account's balance (``GET /public/v1/balance``): what is available,
        in which currency, and what running predictions hold.

        Example::

            balance = await client.balance()
            print(balance.available, balance.currency)

        Raises:
            AuthenticationError: the key is not valid.
            APIError: the billing API refused (its own error envelope).
        """
        return await self._running_operations().balance()
