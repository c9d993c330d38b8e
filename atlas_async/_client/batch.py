"""`BatchCalls`: many predictions at once (`generate_many`, `as_completed`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from .._batch.budget import CostGate
from .._batch.host import HostCalls
from .._batch.iterator import (
    DEFAULT_DOWNLOAD_CONCURRENCY,
    BatchIterator,
    ProgressCallback,
    RequestInput,
    generate_many,
)
from .._batch.journal import Journal
from .._core.validate import (
    check_instance,
    check_iterable,
)
from .._ops.futures import PredictionFuture, as_completed
from .._ops.scheduler import Scheduler
from .checks import (
    check_batch_options,
)

__all__ = ["BatchCalls"]


class BatchCalls:
    """The batch calls of `AtlasClient` (see there)."""

    _host: HostCalls

    if TYPE_CHECKING:  # provided by AtlasClient

        def _cost_gate(
            self, budget: object, check_balance: object
        ) -> CostGate | None: ...

        def _running_scheduler(self) -> Scheduler: ...

        def _require_open(self) -> None: ...

    def as_completed(
        self, futures: Iterable[PredictionFuture]
    ) -> AsyncIterator[PredictionFuture]:
        """
        Yield the futures as they finish, whatever their outcome.

        Example::

            futures = [await client.submit_image(model, prompt=p) for p in prompts]
            async for future in client.as_completed(futures):
                if future.exception() is None:
                    print(future.result().outputs)

        Raises:
            ArgumentTypeError: ``futures`` is not an iterable of
                `PredictionFuture`.
        """
        self._running_scheduler()  # the client is open
        items = list(
            check_iterable(futures, "futures", "an iterable of PredictionFuture")
        )
        for index, future in enumerate(items):
            check_instance(
                future, PredictionFuture, f"futures[{index}]", "a PredictionFuture"
            )
        return as_completed(items)

    def generate_many(
        self,
        requests: Iterable[RequestInput],
        *,
        journal: Journal | str | os.PathLike[str] | None = None,
        max_in_flight: int | None = None,
        on_progress: ProgressCallback | None = None,
        download_to: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        batch_timeout: float | None = None,
        resubmit_unknown: bool = False,
        download_concurrency: int = DEFAULT_DOWNLOAD_CONCURRENCY,
        budget: Decimal | float | str | None = None,
        check_balance: bool | None = None,
    ) -> BatchIterator:
        """
        Run a batch and yield a `BatchResult` per item, in completion order.

        A failed item never cancels its siblings; a 402 stops further submits.
        With a journal the run is resumable: completed items are yielded again
        without a request, submitted ones are attached by id, and an item sent
        without an answer is reported as `SubmissionUnknownError` (resent only
        with ``resubmit_unknown=True``). See ``docs/batch.md``.

        Example::

            requests = [{"model": "google/nano-banana-2/text-to-image",
                         "prompt": p} for p in prompts]
            async for result in client.generate_many(
                requests, journal="run.db", download_to="out/"
            ):
                print(result.index, result.files if result.ok else result.error)

        Args:
            requests: `GenerationRequest` values or mappings
                ``{"kind": "image", "model": ..., **params}``.
            journal: a `Journal` or its path.
            max_in_flight: items in progress at once (default: the client's).
            on_progress: called with a `BatchProgress` after each change.
            download_to: save every output there as soon as it completes.
            timeout: per item, seconds until its deadline.
            batch_timeout: seconds for the whole batch.
            resubmit_unknown: resend items whose earlier submit got no answer.
            download_concurrency: predictions downloading at once.
            budget: the most the batch may cost, in the catalog's currency:
                each submit first reserves its quoted price, and an item that
                would pass the budget is not sent (its result's error is a
                `BudgetExceededError`, ``result.not_submitted``); it stays
                pending in the journal for a run with a larger budget. Counts
                what earlier runs of the journal completed. See ``docs/cost.md``.
            check_balance: before submitting anything, stop when the quote of
                what is left to send exceeds the available balance (default:
                when a budget is set).

        Raises:
            InvalidArgumentError: an invalid request or option (nothing is
                sent); ``ArgumentTypeError`` when its type is wrong.
            ConfigurationError: from the iterator: ``download_to`` cannot be
                written.
            QuoteExceedsBalanceError: from the iterator, before any submit.
        """
        self._require_open()
        check_batch_options(
            requests,
            journal=journal,
            max_in_flight=max_in_flight,
            on_progress=on_progress,
            download_to=download_to,
            timeout=timeout,
            batch_timeout=batch_timeout,
            resubmit_unknown=resubmit_unknown,
            download_concurrency=download_concurrency,
        )
        gate = self._cost_gate(budget, check_balance)
        return generate_many(
            self._host,
            requests,
            journal=journal,
            max_in_flight=max_in_flight,
            on_progress=on_progress,
            download_to=download_to,
            timeout=timeout,
            batch_timeout=batch_timeout,
            resubmit_unknown=resubmit_unknown,
            download_concurrency=download_concurrency,
            gate=gate,
        )
