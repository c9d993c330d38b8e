"""
Submit validation, pure: headers and body in, params or a 400 message out.

The real service validates each model against its own OpenAPI schema and
answers a bare "Invalid request parameters" that names nothing (atlas-api.md
4.1). The emulator checks only what every model shares, in this order: the
retention headers (atlas-api.md 10), a JSON object body, a catalog ``model``,
the model's `InputRule`, ``size`` written ``W*H`` (Wan's exact message for
``720x1280``), and ``num_images`` in 1-4. Everything else is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ._catalog import InputRule, ModelSpec
from ._http import REASONS

__all__ = ["validate_submit"]

_SIZE = re.compile(r"^\d+\*\d+$")
_RETENTION = {
    "x-atlascloud-object-expiration-hours": (1, 336),
    "x-atlascloud-request-retention-hours": (0, 336),
}
_IMAGE_FIELDS = ("image", "images", "image_url")

Validated = tuple[dict[str, Any] | None, ModelSpec | None, str]


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def validate_submit(
    headers: Mapping[str, str],
    body: bytes,
    find_model: Callable[[str], ModelSpec | None],
) -> Validated:
    """
    Check one submit.

    Args:
        headers: the request headers (lower-case lookups).
        body: the raw request body.
        find_model: returns the catalog entry for a model id, or None.

    Returns:
        ``(params, spec, "")`` when valid, else ``(None, None, message)``.
    """
    bad = REASONS[400]
    for header, (low, high) in _RETENTION.items():
        value = headers.get(header)
        if value is not None and not (value.isdigit() and low <= int(value) <= high):
            return None, None, f"{bad}: {header} must be an integer in [{low}, {high}]"
    try:
        params = json.loads(body)
    except ValueError:
        return None, None, bad
    if not isinstance(params, dict):
        return None, None, bad
    model = params.get("model")
    if not isinstance(model, str) or not model:
        return None, None, bad
    spec = find_model(model)
    if spec is None:
        return None, None, f"{bad}: model {model!r} is not available"
    rule = spec.input_rule
    if rule is InputRule.IMAGE:
        if not any(params.get(name) for name in _IMAGE_FIELDS):
            return None, None, bad
    elif not _non_empty(params.get("prompt")) and not (
        rule is InputRule.TEXT and _non_empty(params.get("text"))
    ):
        return None, None, bad
    size = params.get("size")
    if size is not None and not (isinstance(size, str) and _SIZE.match(size)):
        return None, None, f"Invalid size format: {size}, expected format: width*height"
    count = params.get("num_images", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 4:
        return None, None, bad
    return params, spec, ""
