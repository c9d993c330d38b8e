"""
What the command line adds to an error so a person can act on it.

The SDK's errors say what happened ("401: unauthorized"); on the command line
the reader also wants to know what to change, in the words they typed: the
option names (``--time-scale``, not the ``time_scale`` field behind it), the
key's two sources, a base URL that lost its ``/api/v1``. Pure functions of the
error and the settings: no I/O, imported only when there is an error to say.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .._core.config import API_KEY_ENV, BASE_URL_ENV
from .._core.errors import AtlasError, AuthenticationError, NotFoundError

__all__ = ["API_PATH", "error_hint", "option_names"]

API_PATH = "/api/v1"  # where Atlas's generation API lives under its host

# The fields of the emulator's settings as the command line spells them.
_OPTIONS = {
    "time_scale": "--time-scale",
    "seed": "--seed",
    "balance": "--balance",
    "state": "--state",
    "latency": "--latency",
    "webhook_signature": "--webhook-signature",
    "api_keys": "--api-key",
    "no_balance_keys": "--no-balance-key",
    "faults": "--fault",
}
_FIELD = re.compile(r"(?<![\w-])(" + "|".join(_OPTIONS) + r")(?![\w=])")


def option_names(message: str) -> str:
    """``message`` with each settings field named as its option (``--time-scale``)."""
    return _FIELD.sub(lambda found: _OPTIONS[found[1]], message)


def error_hint(error: AtlasError, *, base_url: str | None) -> str | None:
    """
    What to try for ``error``, or None when the error says it all.

    Args:
        error: what the command raised.
        base_url: the base URL the command used (option or environment), or
            None for Atlas's own.
    """
    hints: list[str] = []
    if isinstance(error, AuthenticationError):
        hints.append(
            f"check the API key (--api-key or {API_KEY_ENV}): a missing"
            " character, a revoked key or another account's"
        )
    # The gateway answers a wrong path with 404, or with 401 before it routes.
    if isinstance(error, AuthenticationError | NotFoundError) and base_url:
        url = base_url.strip().rstrip("/")
        if not urlsplit(url).path.endswith(API_PATH):
            hints.append(
                f"the base URL {url} does not end in {API_PATH}: try"
                f" --base-url (or {BASE_URL_ENV}) {url}{API_PATH}"
            )
    return "; ".join(hints) or None
