"""
`BatchHost`: all the batch engine needs of a client, and nothing more.

The engine never sees `AtlasClient`; the client hands it a host (the client's
root builds one), so the batch cannot reach into the client's internals and
tests can run the engine on any host.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Mapping, Sequence, Set
from pathlib import Path
from typing import Any, Protocol

import attrs

from .._core.clock import Clock
from .._core.history import SentSubmit, Verdict
from .._core.models import Kind, Prediction
from .._ops.futures import PredictionFuture

__all__ = ["BatchHost", "HostCalls"]


class BatchHost(Protocol):
    """What the batch engine calls on the client that runs it."""

    @property
    def clock(self) -> Clock:
        """The client's clock (the batch deadline waits on it)."""
        ...

    @property
    def max_in_flight(self) -> int:
        """
        The default number of batch workers: the client's ``max_in_flight``,
        or ``DEFAULT_BATCH_WORKERS`` (1,000) when it sets none.
        """
        ...

    @property
    def secret(self) -> str | None:
        """The client's API key: a journal the batch opens redacts it."""
        ...

    def start_soon(
        self, function: Callable[[], Coroutine[Any, Any, object]], name: str
    ) -> None:
        """
        Run ``function`` in the client's task group.

        Raises:
            ClientStateError: the client is not open, or belongs to another loop.
        """
        ...

    async def submit(
        self,
        kind: Kind,
        model: str,
        *,
        timeout: float | None,
        params: Mapping[str, Any],
    ) -> PredictionFuture:
        """Submit one prediction and return its future (``AtlasClient.submit``)."""
        ...

    def attach(
        self,
        prediction_id: str,
        *,
        kind: Kind,
        model: str | None,
        timeout: float | None,
    ) -> PredictionFuture:
        """Follow an existing prediction (``AtlasClient.attach``)."""
        ...

    async def download(
        self,
        prediction: Prediction,
        directory: str | os.PathLike[str],
        **options: Any,
    ) -> list[Path]:
        """Save a prediction's outputs (``AtlasClient.download``)."""
        ...

    async def settle_unknown(
        self, sent: Sequence[SentSubmit], claimed: Set[str]
    ) -> list[Verdict]:
        """Settle submits that got no answer from the account's history."""
        ...


@attrs.frozen
class HostCalls:
    """
    A `BatchHost` made of the calls it forwards to (the client builds one).

    Example::

        host = HostCalls(clock=clock, max_in_flight=1000, start_soon=...,
                         submit=client.submit, attach=client.attach,
                         download=client.download)
    """

    clock: Clock
    max_in_flight: int
    start_soon: Callable[[Callable[[], Coroutine[Any, Any, object]], str], None]
    submit: Callable[..., Coroutine[Any, Any, PredictionFuture]]
    attach: Callable[..., PredictionFuture]
    download: Callable[..., Coroutine[Any, Any, list[Path]]]
    settle_unknown: Callable[
        [Sequence[SentSubmit], Set[str]], Coroutine[Any, Any, list[Verdict]]
    ]
    secret: str | None = attrs.field(default=None, repr=False)
