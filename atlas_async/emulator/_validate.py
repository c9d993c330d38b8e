"""
Submit validation, pure: headers and body in, params or a 400 message out.

The real service validates each model against its own OpenAPI schema and
answers a bare "Invalid request parameters" that names nothing (docs/wire.md).
The emulator checks only what every model shares, in this order: the
retention headers (docs/wire.md), a JSON object body, a ``model`` it serves
(a catalog id, or any plausible id: ``_catalog.infer_spec``), the model's
`InputRule`, ``size`` written ``W*H`` (Wan's exact message for
``720x1280``), ``num_images`` in 1-4, and ``webhook_url`` (docs/wire.md: an
invalid one is a 400). Everything else is accepted.

Atlas takes only public https webhook URLs; the emulator takes any absolute
http(s) URL of at most 1024 characters, so tests can receive webhooks on
``http://127.0.0.1``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ._catalog import InputRule, ModelSpec
from ._http import REASONS

__all__ = ["MAX_WEBHOOK_URL_LENGTH", "validate_submit", "webhook_url_problem"]

MAX_WEBHOOK_URL_LENGTH = 1024

_SIZE = re.compile(r"^\d+\*\d+$")
_RETENTION = {
    "x-atlascloud-object-expiration-hours": (1, 336),
    "x-atlascloud-request-retention-hours": (0, 336),
}
_IMAGE_FIELDS = ("image", "images", "image_url")
_AUDIO_FIELDS = ("audio", "audio_url", "url", "file", "input_audio", "audio_file")
# Not inputs: settings and routing, which alone ask a model for nothing.
_NOT_INPUTS = frozenset({"model", "webhook_url"})

Validated = tuple[dict[str, Any] | None, ModelSpec | None, str]


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def webhook_url_problem(value: object) -> str | None:
    """
    Return why ``value`` is not an acceptable ``webhook_url``, or None if it is.

    Accepted: a string of at most 1024 characters, an absolute ``http`` or
    ``https`` URL with a host, and no whitespace or control characters.
    """
    if not isinstance(value, str) or not value:
        return "webhook_url must be a non-empty string"
    if len(value) > MAX_WEBHOOK_URL_LENGTH:
        return f"webhook_url is longer than {MAX_WEBHOOK_URL_LENGTH} characters"
    if any(char.isspace() or not char.isprintable() for char in value):
        return "webhook_url contains whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        return "webhook_url is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "webhook_url must be an absolute http(s) URL"
    return None


def _has_input(params: dict[str, Any]) -> bool:
    """True when some field besides model and webhook_url holds something."""
    for name, value in params.items():
        if name in _NOT_INPUTS:
            continue
        if isinstance(value, str) and value.strip():
            return True
        if isinstance(value, list | dict) and value:
            return True
    return False


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
        find_model: returns the spec a model id runs as, or None for an id the
            emulator does not serve.

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
    if rule is InputRule.ANY:
        if not _has_input(params):
            return None, None, bad
    elif rule is InputRule.IMAGE:
        if not any(params.get(name) for name in _IMAGE_FIELDS):
            return None, None, bad
    elif rule is InputRule.AUDIO:
        if not any(params.get(name) for name in _AUDIO_FIELDS):
            return None, None, bad
    elif not _non_empty(params.get("prompt")) and not (
        rule is InputRule.TEXT and _non_empty(params.get("text"))
    ):
        return None, None, bad
    size = params.get("size")
    # Models the emulator knows only by id may well write sizes "1024x1024".
    if (
        size is not None
        and rule is not InputRule.ANY
        and not (isinstance(size, str) and _SIZE.match(size))
    ):
        return None, None, f"Invalid size format: {size}, expected format: width*height"
    count = params.get("num_images", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 4:
        return None, None, bad
    webhook_url = params.get("webhook_url")
    problem = None if webhook_url is None else webhook_url_problem(webhook_url)
    if problem is not None:
        return None, None, f"{bad}: {problem}"
    return params, spec, ""
