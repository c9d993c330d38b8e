"""`CostCalls`: what requests will cost (`quote`), what the account has (`balance`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._batch.types import GenerationRequest
from .._core.errors import ConfigurationError
from .._core.pricing import Balance, ModelPrice, Quote, quote_requests
from .._core.validate import check_iterable
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
