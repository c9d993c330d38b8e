"""
How the journal names requests and batches: canonical JSON and its sha256.

A request's key is stable across runs and machines (sorted keys, no
whitespace), so a resumed batch finds its items by content (`placement`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from .._core.errors import ConfigurationError
from .._core.models import Kind

__all__ = [
    "JournalRequest",
    "canonical",
    "request_dict",
    "request_key",
]


class JournalRequest(Protocol):
    """What the journal needs from a request; ``GenerationRequest`` fits."""

    @property
    def kind(self) -> Kind | str:
        """The kind, or its string value."""

    @property
    def model(self) -> str:
        """The model id."""

    @property
    def params(self) -> Mapping[str, Any]:
        """The parameters sent flat in the body; JSON values only."""


def canonical(value: object) -> str:
    """
    ``value`` as canonical JSON: sorted keys, no whitespace, no NaN.

    Raises:
        ConfigurationError: ``value`` is not JSON.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"request parameters must be JSON: {exc}") from None


def request_dict(request: JournalRequest) -> dict[str, Any]:
    """The request as the journal stores it: ``{"kind", "model", "params"}``."""
    kind = Kind.coerce(request.kind).value
    return {"kind": kind, "model": request.model, "params": dict(request.params)}


def request_key(request: JournalRequest) -> str:
    """
    Return a request's stable key: the sha256 (hex) of canonical JSON (sorted
    keys, no whitespace) of its kind, model and params.

    Raises:
        ConfigurationError: the kind is unknown or a param is not JSON.
    """
    return hashlib.sha256(canonical(request_dict(request)).encode()).hexdigest()
