"""`HistoryCalls`: the account's history, and settling submits that got no answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence, Set
from datetime import datetime
from typing import TYPE_CHECKING

from .._core.clock import Clock
from .._core.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    SubmissionUnknownError,
)
from .._core.history import (
    Absent,
    Attach,
    HistoryItem,
    SentSubmit,
    Verdict,
)
from .._core.models import Prediction
from .._core.validate import (
    check_model_id,
    describe,
)
from .._ops.history import iter_history, settle_from_history
from .._ops.operations import Operations
from .checks import (
    since_seconds,
)

__all__ = ["HistoryCalls"]


class HistoryCalls:
    """The history calls of `AtlasClient` (see there)."""

    _history_lag: float
    _clock: Clock

    if TYPE_CHECKING:  # provided by AtlasClient

        def _running_operations(self) -> Operations: ...

        async def get_prediction(self, prediction_id: str) -> Prediction: ...

    async def history(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        since: datetime | float | None = None,
    ) -> AsyncIterator[HistoryItem]:
        """
        The account's predictions, newest first (``GET /model/history``), each
        once, with the body each was created from.

        Example::

            async for item in client.history(model="black-forest-labs/flux-schnell",
                                             since=time.time() - 3600):
                print(item.id, item.status, item.body)

        Args:
            model: only this model's predictions.
            status: only this status (``created``, ``processing``,
                ``completed``, ``failed``, ``timeout``).
            since: stop at the first prediction created before this since_seconds (an
                aware datetime, or Unix seconds).

        Raises:
            InvalidArgumentError: a bad model, status or since_seconds (before any
                request).
        """
        if model is not None:
            check_model_id(model)
        if status is not None and (not isinstance(status, str) or not status):
            raise ArgumentTypeError(
                f"status must be a non-empty str, not {describe(status)}",
                argument="status",
            )
        start = since_seconds(since)
        operations = self._running_operations()
        async for item in iter_history(
            operations.history_page, model=model, status=status, since=start
        ):
            yield item

    async def reconcile(self, unknown: SubmissionUnknownError) -> Prediction | None:
        """
        Settle a submit that got no answer, from the account's history.

        Looks for a prediction created from the same body while the submit was
        out. Returns it when found (follow it with `attach`: nothing is paid
        twice), None when history proves the submit never arrived (send it
        again), and raises when history cannot tell yet.

        Example::

            try:
                future = await client.submit_image(model, prompt="a cat")
            except atlas.SubmissionUnknownError as lost:
                found = await client.reconcile(lost)
                if found is None:  # it never arrived: safe to send again
                    future = await client.submit_image(model, prompt="a cat")
                else:
                    future = client.attach(found.id, kind=lost.kind, model=lost.model)

        Raises:
            SubmissionUnknownError: still undecided: the message says why (too
                soon, or several identical predictions, named in ``candidates``).
            ArgumentTypeError: not a `SubmissionUnknownError` from a submit.
        """
        if not isinstance(unknown, SubmissionUnknownError):
            raise ArgumentTypeError(
                "reconcile takes a SubmissionUnknownError, not"
                f" {type(unknown).__name__}",
                argument="unknown",
            )
        after, before = unknown.sent_after, unknown.sent_before
        if (
            unknown.model is None
            or unknown.request_body is None
            or after is None
            or before is None
        ):
            raise InvalidArgumentError(
                "this SubmissionUnknownError does not say what was sent and when"
                " (it did not come from a submit of this client)",
                argument="unknown",
            )
        sent = SentSubmit(0, unknown.model, unknown.request_body, after, before)
        [verdict] = await self._settle_unknown([sent], frozenset())
        if isinstance(verdict, Attach):
            return await self.get_prediction(verdict.prediction_id)
        if isinstance(verdict, Absent):
            return None
        undecided = SubmissionUnknownError(
            f"{unknown.message}; the history cannot tell yet: {verdict.reason}"
            + (
                f" (candidates: {', '.join(verdict.candidates)})"
                if verdict.candidates
                else ""
            ),
            method=unknown.method,
            url=unknown.url,
            kind=unknown.kind,
            model=unknown.model,
        )
        undecided.request_body = unknown.request_body
        undecided.sent_after, undecided.sent_before = after, before
        undecided.candidates = verdict.candidates
        raise undecided

    async def _settle_unknown(
        self, sent: Sequence[SentSubmit], claimed: Set[str]
    ) -> list[Verdict]:
        operations = self._running_operations()
        lag = self._history_lag
        return await settle_from_history(
            operations.history_page,
            sent,
            now=self._clock.wall,
            claimed=claimed,
            skew=lag / 2.0,
            settle_after=lag,
        )
