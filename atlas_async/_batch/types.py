"""
The batch's value types: what goes in (`GenerationRequest`), what comes out
(`BatchResult`), and what a progress callback sees (`BatchProgress`).

All three are frozen attrs classes, checked at construction, so a batch that
starts is a batch whose every request could be sent: a bad kind, an empty model
or a parameter that is not JSON is refused up front with a `ConfigurationError`
that names the problem, before anything is paid for.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from .._core.errors import AtlasError, BudgetExceededError, ConfigurationError
from .._core.models import Kind, Prediction
from .._core.validate import check_params

__all__ = ["BatchProgress", "BatchResult", "GenerationRequest"]


def _to_kind(value: Kind | str) -> Kind:
    return Kind.coerce(value)


def _to_paths(value: Iterable[str | os.PathLike[str]]) -> tuple[Path, ...]:
    return tuple(Path(item) for item in value)


def _check_model(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"model must be a non-empty string such as "
            f"'google/nano-banana-2/text-to-image', got {value!r}"
        )


def _to_params(value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            "params must be a mapping of parameter names to values, "
            f"got {type(value).__name__}"
        )
    # A copy: a frozen request must not change when the caller's dict does.
    return dict(value)


def _check_params(
    _: object, __: attrs.Attribute[Any], value: Mapping[str, Any]
) -> None:
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise ConfigurationError(f"parameter names must be strings, got {bad!r}")
    if "model" in value:
        raise ConfigurationError(
            "'model' given as a parameter: pass it only as the model argument"
        )
    # Bounded, typed, and finite numbers only (json.dumps would recurse).
    check_params(value)


@attrs.frozen
class GenerationRequest:
    """
    One item of a batch: a kind, a model, and the parameters sent flat.

    Example::

        GenerationRequest("image", "google/nano-banana-2/text-to-image",
                          {"prompt": "a red fox"})
        GenerationRequest.from_mapping({"model": "z-image/turbo", "prompt": "a fox"})

    Args:
        kind: `Kind` or ``"image"``, ``"video"``, ``"audio"`` (coerced).
        model: the model id.
        params: the parameters, sent next to ``model`` in the body; JSON values
            with string names (copied).

    Raises:
        ConfigurationError: an unknown kind, an empty model, a ``model``
            parameter, or a parameter that is not JSON.
    """

    kind: Kind = attrs.field(converter=_to_kind)
    model: str = attrs.field(validator=_check_model)
    # Not hashed (a dict is not hashable); equal requests still hash equal.
    params: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_to_params, validator=_check_params, hash=False
    )

    @classmethod
    def from_mapping(
        cls,
        item: Mapping[str, Any],
        *,
        kind: Kind | str = Kind.IMAGE,
        model: str | None = None,
    ) -> GenerationRequest:
        """
        Build a request from ``{"kind": ..., "model": ..., **params}``.

        ``kind`` and ``model`` are the defaults for an item that has none.

        Raises:
            ConfigurationError: not a mapping, no model, or a bad field.
        """
        if not isinstance(item, Mapping):
            raise ConfigurationError(
                'a request must be an object like {"model": ..., "prompt": ...}, '
                f"got {type(item).__name__}"
            )
        params = dict(item)
        item_kind = params.pop("kind", kind)
        item_model = params.pop("model", model)
        if item_model is None:
            raise ConfigurationError('the request has no "model"')
        return cls(item_kind, item_model, params)


@attrs.frozen
class BatchResult:
    """
    The outcome of one batch item: exactly one of ``prediction`` / ``error``.

    Attributes:
        index: the item's position in the requests.
        request: the `GenerationRequest`.
        prediction: the completed prediction, when it succeeded.
        error: why it did not (an `AtlasError`), otherwise None.
        files: the saved outputs when ``download_to`` was given.
        resumed: True when the outcome was recorded by an earlier run's journal.
        quoted: the item's price at the catalog's prices, when the batch quoted
            it (a budget or a balance check), else None.
    """

    index: int
    request: GenerationRequest
    prediction: Prediction | None = None
    error: AtlasError | None = None
    files: tuple[Path, ...] = attrs.field(default=(), kw_only=True, converter=_to_paths)
    resumed: bool = attrs.field(default=False, kw_only=True)
    quoted: Decimal | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if (self.prediction is None) == (self.error is None):
            raise ConfigurationError(
                "a BatchResult has exactly one of prediction and error"
            )

    @property
    def ok(self) -> bool:
        """True when the item completed (``prediction`` is set)."""
        return self.error is None

    @property
    def not_submitted(self) -> bool:
        """True when the budget kept the item from being sent (not a failure:
        a later run with a larger budget sends it)."""
        return isinstance(self.error, BudgetExceededError)

    @property
    def cost(self) -> Decimal | None:
        """
        What the item cost: its prediction's ``price`` when the server said,
        else its quoted price; None when it did not complete.
        """
        if self.prediction is None:
            return None
        actual = self.prediction.cost
        return actual if actual is not None else self.quoted


@attrs.frozen(kw_only=True)
class BatchProgress:
    """
    Where a batch stands; ``on_progress`` gets a new one after each change.

    Attributes:
        total: items in the batch.
        done: items with an outcome (``ok + failed + not_submitted``).
        ok: items completed (and saved, with ``download_to``).
        failed: items that ended with an error.
        in_flight: items submitted or attached and not done yet.
        submitted: submits the server accepted in this run.
        resumed: outcomes replayed from the journal, without a request.
        not_submitted: items the budget kept from being sent.
        spent: what the completed items cost (`BatchResult.cost`), exact.
    """

    total: int
    done: int = 0
    ok: int = 0
    failed: int = 0
    in_flight: int = 0
    submitted: int = 0
    resumed: int = 0
    not_submitted: int = 0
    spent: Decimal = Decimal(0)

    @property
    def pending(self) -> int:
        """Items not started yet."""
        return self.total - self.done - self.in_flight
