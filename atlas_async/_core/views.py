"""
The typed views of a snapshot's live fields, and the rule for text outputs.

`Prediction` keeps the decoded ``data`` of its answer as ``raw``; its views
(``cost``, ``latency``, ``completed_at``, ``stt_result``, ``lyrics_result``,
``text``) are read from there by `read_views`, on first use. Every reader is
lenient: a value of a shape that makes no sense is None, never an error
(docs/wire.md, "Live fields"). Part of the models (`models` re-exports the
public names).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

import attrs

from .frozen import EMPTY, FrozenDict, frozen_mapping
from .pricing import to_amount

__all__ = [
    "LIVE_FIELDS",
    "Lyrics",
    "Transcript",
    "Views",
    "is_text_output",
    "read_datetime",
    "read_views",
]


# What W5's rule calls a locator, not text: an output that starts so is a file.
_LOCATOR_PREFIXES = ("http://", "https://", "//", "data:")
# Raw base64 (``enable_base64_output`` without a data: prefix) is a file too:
# this long, in the base64 alphabets only, with nothing but line breaks between.
_BASE64_MIN = 64
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]+={0,2}")


def is_text_output(output: str) -> bool:
    """
    True when ``output`` is text to read (a transcript, lyrics), not a file.

    An output is a file when it starts with ``http://``, ``https://``, ``//`` or
    ``data:`` (any case), or when it is raw base64 (64 or more characters of
    the base64 alphabets, line breaks aside, as ``enable_base64_output`` gives
    them); a blank string is neither. Everything else is text: speech-to-text
    and lyrics models put the text itself in ``outputs`` (docs/wire.md,
    "Outputs").
    """
    if not isinstance(output, str) or not output.strip():
        return False
    if output[:8].lower().startswith(_LOCATOR_PREFIXES):
        return False
    if len(output) >= _BASE64_MIN:
        packed = output.replace("\r", "").replace("\n", "")
        if _BASE64.fullmatch(packed):
            return False
    return True


#: The live poll fields the views of `Prediction` read from ``raw`` (the batch
#: journal keeps these with a result).
LIVE_FIELDS = (
    "price",
    "latency_ms",
    "executionTime",
    "timings",
    "completed_at",
    "stt_result",
    "lyrics_result",
)
# Longer numeric text than this is no price or duration (and Decimal's work
# grows with it): garbage.
_NUMBER_TEXT_MAX = 64
# Python 3.10's fromisoformat takes only 3 or 6 fraction digits and no "Z".
_FRACTION = re.compile(r"\.([0-9]+)")


def read_datetime(value: object) -> datetime | None:
    """
    An aware datetime from ISO-8601 text (``Z`` included), else None.

    The API speaks UTC: a time without an offset is read as UTC. The one
    reading of the wire's dates (``created_at``, ``completed_at``).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _number(value: object) -> float | None:
    # A finite, non-negative number from a JSON number or numeric text.
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > _NUMBER_TEXT_MAX:
            return None
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) and number >= 0.0 else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _frozen_entries(value: object) -> tuple[FrozenDict[str, Any], ...]:
    # A list of objects (words, channels): the objects, frozen; the rest dropped.
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(frozen_mapping(v) for v in value if isinstance(v, Mapping))


@attrs.frozen(kw_only=True)
class Transcript:
    """
    What a speech-to-text model heard (the wire's ``stt_result``).

    Attributes:
        text: the whole transcript, or None.
        language: the language the model detected (e.g. ``"English"``), or None.
        language_code: its code (e.g. ``"en"``), or None.
        duration: the audio's length in seconds, when the model said.
        words: the timed words as the model gave them, read-only mappings
            (typically ``text``/``word``, ``start``, ``end``).
        channels: per-channel results, read-only mappings.
        raw: the ``stt_result`` object as received.
    """

    text: str | None = None
    language: str | None = None
    language_code: str | None = None
    duration: float | None = None
    words: tuple[Mapping[str, Any], ...] = attrs.field(
        default=(), converter=_frozen_entries
    )
    channels: tuple[Mapping[str, Any], ...] = attrs.field(
        default=(), converter=_frozen_entries
    )
    raw: Mapping[str, Any] = attrs.field(
        default=EMPTY, converter=frozen_mapping, repr=False, eq=False
    )


@attrs.frozen(kw_only=True)
class Lyrics:
    """
    What a lyrics model wrote (the wire's ``lyrics_result``).

    Attributes:
        lyrics: the lyrics, or None.
        song_title: the title the model gave the song, or None.
        style_tags: the style words (``"pop"``, ``"upbeat"``); a comma-separated
            string on the wire is split.
        raw: the ``lyrics_result`` object as received.
    """

    lyrics: str | None = None
    song_title: str | None = None
    style_tags: tuple[str, ...] = ()
    raw: Mapping[str, Any] = attrs.field(
        default=EMPTY, converter=frozen_mapping, repr=False, eq=False
    )


def _transcript(value: object) -> Transcript | None:
    # A bare string is the text; an empty object or another value is None.
    if isinstance(value, str):
        return Transcript(text=value) if value.strip() else None
    if not isinstance(value, Mapping) or not value:
        return None
    return Transcript(
        text=_text(value.get("text")),
        language=_text(value.get("language")),
        language_code=_text(value.get("language_code")),
        duration=_number(value.get("duration")),
        words=value.get("words"),
        channels=value.get("channels"),
        raw=value,
    )


def _lyrics(value: object) -> Lyrics | None:
    # A bare string is the lyrics; style tags from a list or "a, b" text.
    if isinstance(value, str):
        return Lyrics(lyrics=value) if value.strip() else None
    if not isinstance(value, Mapping) or not value:
        return None
    tags = value.get("style_tags")
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, (list, tuple)):
        tags = ()
    return Lyrics(
        lyrics=_text(value.get("lyrics")),
        song_title=_text(value.get("song_title")),
        style_tags=tuple(t.strip() for t in tags if isinstance(t, str) and t.strip()),
        raw=value,
    )


class Views(NamedTuple):
    """The views of one snapshot, read together."""

    cost: Decimal | None
    latency: float | None
    completed_at: datetime | None
    stt_result: Transcript | None
    lyrics_result: Lyrics | None


def read_views(raw: Mapping[str, Any]) -> Views:
    """Read the views of a snapshot from its ``raw`` ``data``."""
    latency = _number(raw.get("latency_ms"))
    if latency is None:
        latency = _number(raw.get("executionTime"))
    if latency is None:
        timings = raw.get("timings")
        if isinstance(timings, Mapping):
            latency = _number(timings.get("inference"))
    return Views(
        cost=to_amount(raw.get("price")),
        latency=None if latency is None else latency / 1000.0,
        completed_at=read_datetime(raw.get("completed_at")),
        stt_result=_transcript(raw.get("stt_result")),
        lyrics_result=_lyrics(raw.get("lyrics_result")),
    )
