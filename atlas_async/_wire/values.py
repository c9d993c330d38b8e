"""
How single wire values read: status synonyms, output entries, dates, codes.

Part of `_wire` (`parse` re-exports `parse_status`); `convert` plugs these readers
into its cattrs converter as field hooks, so each takes ``(value, type)``.

Strict readers raise `ShapeError` for a value the SDK cannot act on (its text is
the whole explanation, shown with the JSON path). Lenient readers return None or
an empty value for a wrong shape: they read fields the SDK only reports, and
``Prediction.raw`` keeps what came.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._core.models import PredictionStatus, read_datetime
from .errors import error_text as read_error_text

__all__ = [
    "ShapeError",
    "any_mapping",
    "error_text",
    "lenient_datetime",
    "lenient_int",
    "lenient_str",
    "nsfw_flags",
    "output_urls",
    "parse_status",
    "str_mapping",
    "str_tuple",
    "strict_str",
    "type_name",
]

# Keys are lower-case with "-" and " " folded to "_". "pending" (accepted, not
# started) joins QUEUED and "running" (a worker has it) joins PROCESSING: the
# vendor's own clients treat them so (docs/wire.md, "Statuses").
_STATUS_SYNONYMS: dict[str, PredictionStatus] = {
    "created": PredictionStatus.CREATED,
    "starting": PredictionStatus.STARTING,
    "queued": PredictionStatus.QUEUED,
    "pending": PredictionStatus.QUEUED,
    "processing": PredictionStatus.PROCESSING,
    "running": PredictionStatus.PROCESSING,
    "completed": PredictionStatus.COMPLETED,
    "complete": PredictionStatus.COMPLETED,
    "succeeded": PredictionStatus.COMPLETED,
    "success": PredictionStatus.COMPLETED,
    "done": PredictionStatus.COMPLETED,
    "failed": PredictionStatus.FAILED,
    "error": PredictionStatus.FAILED,
    "timeout": PredictionStatus.TIMEOUT,
    "timed_out": PredictionStatus.TIMEOUT,
    "canceled": PredictionStatus.CANCELED,
    "cancelled": PredictionStatus.CANCELED,
}

# Keys defensive clients read from object-shaped output entries (docs/wire.md,
# "Outputs").
_OUTPUT_ENTRY_KEYS = ("url", "image", "output", "download_url")

_INTEGER = re.compile(r"-?[0-9]+")


class ShapeError(ValueError):
    """A value of the wrong shape; its text is the whole explanation."""


def parse_status(raw: object) -> PredictionStatus:
    """
    Fold a wire status string into `PredictionStatus`, case-insensitively.

    Case is ignored, and ``-`` and spaces read as ``_`` (``Timed-Out``):

    - ``created`` is CREATED, ``starting`` is STARTING;
    - ``queued`` and ``pending`` (accepted, not started yet) are QUEUED;
    - ``processing`` and ``running`` (a worker has it) are PROCESSING;
    - ``completed``, ``succeeded``, ``success``, ``complete``, ``done`` are
      COMPLETED;
    - ``failed`` and ``error`` are FAILED;
    - ``timeout`` and ``timed_out`` are TIMEOUT;
    - ``canceled`` and ``cancelled`` are CANCELED;
    - anything else, a non-string included, is UNKNOWN.

    UNKNOWN is not terminal: the caller keeps polling, and `Prediction.status_raw`
    keeps the string.
    """
    if isinstance(raw, PredictionStatus):
        return raw
    if not isinstance(raw, str):
        return PredictionStatus.UNKNOWN
    key = raw.strip().lower().replace("-", "_").replace(" ", "_")
    return _STATUS_SYNONYMS.get(key, PredictionStatus.UNKNOWN)


# --- field hooks: strict ------------------------------------------------------


def strict_str(value: object, _type: object) -> str:
    """A string; a number is read as its text (ids may be numeric)."""
    # cattrs' default is str(value), which would turn a dict into "{...}".
    # Integers are accepted because an id or a status may come as a number.
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ShapeError(f"expected a string, got {type_name(value)}")


def output_urls(value: object, _type: object) -> tuple[str, ...] | None:
    """
    Output URLs from a list, a single string, or ``{url|image|output|download_url}``
    entries (docs/wire.md, "Outputs"); None when absent.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ShapeError(f"expected a list of output URLs, got {type_name(value)}")
    return tuple(_output_entry(index, entry) for index, entry in enumerate(value))


def _output_entry(index: int, entry: object) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        for key in _OUTPUT_ENTRY_KEYS:
            url = entry.get(key)
            if isinstance(url, str) and url:
                return url
        raise ShapeError(f"output {index} has none of {', '.join(_OUTPUT_ENTRY_KEYS)}")
    raise ShapeError(f"expected output {index} to be a URL, got {type_name(entry)}")


# --- field hooks: lenient -----------------------------------------------------


def error_text(value: object, _type: object) -> str | None:
    """The failure text from a string or an error object; None when blank."""
    # "" means "no error" on the wire (F9); the one reader of `error` decides.
    return read_error_text(value)


def lenient_int(value: object, _type: object) -> int | None:
    """An int from an int, an integral float or decimal text; else None."""
    # error_code 1039 may come as "1039"; a size may come as "123456".
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return None


def lenient_datetime(value: object, _type: object) -> datetime | None:
    """An aware datetime from ISO-8601 text (``Z`` included); else None."""
    return read_datetime(value)


def nsfw_flags(value: object, _type: object) -> tuple[bool, ...] | None:
    """One flag per output from a list of bools (or one bool); else None."""
    if isinstance(value, bool):
        return (value,)
    if isinstance(value, list) and all(isinstance(flag, bool) for flag in value):
        return tuple(value)
    return None


def str_mapping(value: object, _type: object) -> dict[str, str]:
    """The string-to-string entries of an object (``urls``); else empty."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def any_mapping(value: object, _type: object) -> dict[str, Any]:
    """The entries of an object under string keys (``metrics``); else empty."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str)}


def lenient_str(value: object, _type: object) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def str_tuple(value: object, _type: object) -> tuple[str, ...]:
    """The strings of a list (``categories``); else empty."""
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def type_name(value: object) -> str:
    """The JSON-ish name of ``value``'s type, for messages."""
    return "null" if value is None else type(value).__name__
