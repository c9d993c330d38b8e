"""
Inert value types. Snapshots never do I/O and never see JSON: ``_wire`` and
``_convert`` turn bodies into these, and the client and scheduler pass them around.

A snapshot keeps the decoded ``data`` it came from as ``raw``; its typed views
(``cost``, ``latency``, ``text`` ...) read the live fields from there, leniently,
on first use.

Snapshots are immutable all the way down: their mappings are `FrozenDict`
(nested objects too, and nested lists become tuples), so a snapshot can be
shared between tasks, kept as a dict key or in a set, and never changes under
whoever holds it.
"""

from __future__ import annotations

import enum
import functools
import math
import operator
import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, NoReturn, TypeVar

import attrs

__all__ = [
    "LIVE_FIELDS",
    "FrozenDict",
    "Kind",
    "Lyrics",
    "ModelInfo",
    "Prediction",
    "PredictionStatus",
    "Transcript",
    "UploadedMedia",
    "freeze",
    "frozen_mapping",
    "is_text_output",
    "read_datetime",
]

_K = TypeVar("_K")
_V = TypeVar("_V")


class Kind(enum.Enum):
    """
    What a prediction generates; it picks the submit endpoint and the poll defaults.

    Functions that take a kind also accept its value (``"image"``, ``"video"``,
    ``"audio"``).
    """

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"

    @classmethod
    def coerce(cls, value: Kind | str) -> Kind:
        """
        Return ``value`` as a `Kind`, accepting the enum or its string value.

        Raises:
            ConfigurationError: for anything else, naming the accepted values.
        """
        if isinstance(value, Kind):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            from .errors import ConfigurationError

            accepted = ", ".join(repr(k.value) for k in cls)
            raise ConfigurationError(
                f"unknown kind {value!r}: expected one of {accepted}"
            ) from None


class PredictionStatus(str, enum.Enum):
    """
    A prediction's status: a ``str`` enum, so ``status == "completed"`` holds and
    ``str(status)`` is ``"completed"``. Wire synonyms are folded in by ``_wire``.

    ``succeeded``/``success`` arrive as COMPLETED, ``cancelled`` as CANCELED,
    ``error`` as FAILED; any other string is UNKNOWN (not terminal) and the raw
    string stays on `Prediction.status_raw`.

    CREATED (accepted, not yet queued), STARTING, QUEUED and PROCESSING are not
    terminal: the prediction is polled on. TIMEOUT is the *server's* verdict
    that the prediction ran out of time: a terminal failure, raised as
    `PredictionFailedError` like FAILED and CANCELED. (The client's own
    deadline passing is a different thing, `PredictionTimeoutError`: that
    prediction may still finish.)
    """

    CREATED = "created"
    STARTING = "starting"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        # The value, on every Python version (their mixed-in enums' format()
        # differ): str() and f-strings agree.
        return format(self.value, spec)

    @property
    def is_terminal(self) -> bool:
        """True when the server will not change this prediction again."""
        return self in _TERMINAL

    @property
    def is_success(self) -> bool:
        """True only for COMPLETED."""
        return self is PredictionStatus.COMPLETED


_TERMINAL = frozenset(
    {
        PredictionStatus.COMPLETED,
        PredictionStatus.FAILED,
        PredictionStatus.TIMEOUT,
        PredictionStatus.CANCELED,
    }
)


class FrozenDict(dict[_K, _V]):
    """
    A read-only ``dict``: every mutating method raises ``TypeError``.

    A ``dict`` subclass, so it costs one C-level copy to build, reads at dict
    speed, compares equal to a plain dict with the same items, prints like one,
    and ``json.dumps``, ``attrs.asdict`` and cattrs treat it as one. Unlike a
    dict it is hashable (when its values are; the hash is computed on first use
    and kept) and pickles as itself. ``copy()`` and ``|`` return plain dicts to
    change freely.

    Build one with `frozen_mapping` (or `freeze`), which freezes nested values
    too; the constructor copies only the top level. (Calling ``dict``'s own
    methods on one, ``dict.__setitem__(frozen, k, v)``, still writes: the same
    deliberate escape hatch as ``object.__setattr__`` on a frozen attrs class.)
    """

    __slots__ = ("_hash",)
    _hash: int

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is read-only")

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __ior__(self, other: object) -> NoReturn:  # type: ignore[misc]
        self._read_only()

    def __hash__(self) -> int:  # type: ignore[override]
        try:
            return self._hash
        except AttributeError:
            self._hash = value = hash(frozenset(dict.items(self)))
            return value

    def __eq__(self, other: object) -> bool:
        # A plain mapping's nested lists equal our tuples: compare it frozen,
        # so `prediction.raw == decoded_json` holds as it did for plain dicts.
        if type(other) is not FrozenDict and isinstance(other, Mapping):
            other = frozen_mapping(other)
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __reduce__(self) -> tuple[Callable[..., FrozenDict[_K, _V]], tuple[Any, ...]]:
        # dict's own reduction re-inserts the items one by one (__setitem__).
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict[_K, _V]:
        return self


_EMPTY: FrozenDict[Any, Any] = FrozenDict()
# What JSON decoding yields besides objects and arrays: kept as they are.
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """
    Return ``value`` made immutable all the way down.

    Mappings become `FrozenDict` (`frozen_mapping`), lists and tuples tuples,
    sets frozensets, each with their items frozen; anything else (strings,
    numbers, None, datetimes, other objects) is returned as it is.
    """
    kind = type(value)
    if kind in _PLAIN or kind is FrozenDict:
        return value
    if kind is list or kind is tuple:
        return _frozen_sequence(value)
    if kind is dict or isinstance(value, Mapping):
        return frozen_mapping(value)
    if isinstance(value, list):
        return _frozen_sequence(value)
    if isinstance(value, set | frozenset):
        return frozenset([freeze(v) for v in value])
    return value


def _frozen_sequence(value: list[Any] | tuple[Any, ...]) -> tuple[Any, ...]:
    # JSON arrays hold plain values nearly always: one C-level check and copy.
    if _PLAIN.issuperset(map(type, value)):
        return value if type(value) is tuple else tuple(value)
    return tuple([v if type(v) in _PLAIN else freeze(v) for v in value])


def frozen_mapping(value: Mapping[Any, Any] | None) -> FrozenDict[Any, Any]:
    """
    Return ``value`` as a `FrozenDict`, its nested values frozen (`freeze`).

    A `FrozenDict` is returned as it is, and None or an empty mapping as one
    shared empty `FrozenDict`; anything else is copied, string keys interned.
    """
    # Snapshots are built for every poll answer and kept per prediction in
    # flight: one pass copies, freezes and interns the keys (JSON decoding makes
    # fresh key strings for every answer, and with 10,000 predictions in flight
    # the repeated "status", "created_at", ... were a fifth of the SDK's memory).
    if type(value) is FrozenDict:
        return value
    if not value:
        return _EMPTY
    return FrozenDict(
        {
            (sys.intern(k) if type(k) is str else k): (
                v if type(v) in _PLAIN else freeze(v)
            )
            for k, v in value.items()
        }
    )


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


def _price(value: object) -> Decimal | None:
    # Exact: a float by its shortest text (0.035, not its binary value).
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str) and len(value) <= _NUMBER_TEXT_MAX:
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


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
        default=_EMPTY, converter=frozen_mapping, repr=False, eq=False
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
        default=_EMPTY, converter=frozen_mapping, repr=False, eq=False
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


class _Views(NamedTuple):
    cost: Decimal | None
    latency: float | None
    completed_at: datetime | None
    stt_result: Transcript | None
    lyrics_result: Lyrics | None


def _read_views(raw: Mapping[str, Any]) -> _Views:
    latency = _number(raw.get("latency_ms"))
    if latency is None:
        latency = _number(raw.get("executionTime"))
    if latency is None:
        timings = raw.get("timings")
        if isinstance(timings, Mapping):
            latency = _number(timings.get("inference"))
    return _Views(
        cost=_price(raw.get("price")),
        latency=None if latency is None else latency / 1000.0,
        completed_at=read_datetime(raw.get("completed_at")),
        stt_result=_transcript(raw.get("stt_result")),
        lyrics_result=_lyrics(raw.get("lyrics_result")),
    )


@attrs.frozen(kw_only=True)
class Prediction:
    """
    One snapshot of a prediction, as the API last described it.

    Attributes:
        id: the prediction id (``data.id``).
        status: the status, synonyms folded (see `PredictionStatus`).
        status_raw: the status string exactly as received.
        model: the model id, when the server said.
        outputs: output URLs, or base64 / data URIs with ``enable_base64_output``.
        error: the server's failure text, or None.
        error_code: the server's numeric failure code (1039: content moderation).
        created_at: when the server created it, when it said.
        has_nsfw_contents: one flag per output, when the server said.
        urls: links the server gave, e.g. ``urls["get"]`` (the poll URL).
        metrics: server metrics such as ``predict_time``.
        raw: the ``data`` object as received, for fields the SDK does not model.

    Typed views read the live fields that ``raw`` holds: `cost` (``price``),
    `latency` (``latency_ms``, ``executionTime``), `completed_at`, `stt_result`
    and `lyrics_result`, and `text` (the plain text a speech-to-text or lyrics
    model produced). A field sent in a shape that makes no sense reads as None,
    never as an error. They are worked out on first use (the poll path never
    pays for them) and, like ``raw``, are not compared by ``==``.

    Immutable all the way down: ``urls``, ``metrics`` and ``raw`` are read-only
    mappings (`FrozenDict`; nested objects too, nested arrays are tuples) that
    compare equal to the plain dicts they came from. Snapshots are hashable:
    equal snapshots (``raw`` aside, as for ``==``) hash alike.

    Example::

        prediction = await client.generate_image(model, prompt="a red fox")
        if prediction.status.is_success:
            print(prediction.outputs[0], prediction.cost)
    """

    id: str
    status: PredictionStatus
    status_raw: str = ""
    model: str | None = None
    outputs: tuple[str, ...] = ()
    error: str | None = None
    error_code: int | None = None
    created_at: datetime | None = None
    has_nsfw_contents: tuple[bool, ...] | None = None
    urls: Mapping[str, str] = attrs.field(default=_EMPTY, converter=frozen_mapping)
    metrics: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=frozen_mapping)
    raw: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=frozen_mapping, repr=False, eq=False
    )

    @property
    def done(self) -> bool:
        """True when the status is terminal."""
        return self.status.is_terminal

    @property
    def cost(self) -> Decimal | None:
        """
        What the prediction cost: the wire's ``price`` (text or a number) as an
        exact `~decimal.Decimal`, in the account's billing currency.

        Exact, so a batch's costs add up to what is billed (``0.035`` is
        ``Decimal("0.035")``, not the float's binary value). None when the
        server did not say, or sent something that is not a non-negative amount.
        """
        return self._views.cost

    @property
    def latency(self) -> float | None:
        """
        How long the server says the prediction took, in seconds.

        Its ``latency_ms``, else ``executionTime``, else ``timings.inference``
        (all milliseconds on the wire); None when absent, negative or not a
        number. ``metrics["predict_time"]`` is another clock and stays there.
        """
        return self._views.latency

    @property
    def completed_at(self) -> datetime | None:
        """
        When the server finished the prediction: an aware datetime, read like
        `created_at` (ISO 8601, UTC when no offset); None otherwise.
        """
        return self._views.completed_at

    @property
    def stt_result(self) -> Transcript | None:
        """A speech-to-text model's `Transcript` (``stt_result``), or None."""
        return self._views.stt_result

    @property
    def lyrics_result(self) -> Lyrics | None:
        """A lyrics model's `Lyrics` (``lyrics_result``), or None."""
        return self._views.lyrics_result

    @property
    def text(self) -> str | None:
        """
        The plain text this prediction produced, or None when it made files.

        The transcript of `stt_result`, else the lyrics of `lyrics_result`, else
        the outputs that are text, not files (`is_text_output`), joined by a
        blank line when there are several.

        Example::

            prediction = await client.generate_audio(asr_model, audio=url)
            print(prediction.text)
        """
        transcript, lyrics = self._views.stt_result, self._views.lyrics_result
        if transcript is not None and transcript.text:
            return transcript.text
        if lyrics is not None and lyrics.lyrics:
            return lyrics.lyrics
        texts = [output for output in self.outputs if is_text_output(output)]
        return "\n\n".join(texts) if texts else None

    @functools.cached_property
    def _views(self) -> _Views:
        # Read from raw on first use and kept (one slot that __init__ leaves
        # empty, as for _hash): a snapshot per poll answer pays nothing for
        # views nobody reads.
        return _read_views(self.raw)

    @functools.cached_property
    def _hash(self) -> int:
        # Computed on first use and kept (attrs gives a slotted class's cached
        # property a slot that __init__ leaves empty): building a snapshot per
        # poll answer pays nothing for it.
        return hash(_eq_key(self))

    def __hash__(self) -> int:
        return self._hash


# The fields __eq__ compares (all but `raw`): what equal predictions share.
_eq_key: Callable[[Prediction], tuple[Any, ...]] = operator.attrgetter(
    *(field.name for field in attrs.fields(Prediction) if field.eq)
)


@attrs.frozen(kw_only=True)
class UploadedMedia:
    """
    A file uploaded with ``client.upload_media``; pass ``url`` as a model input.

    ``url`` comes from the wire's ``download_url`` (or ``url``). Uploaded files are
    temporary on the server side.
    """

    url: str
    filename: str | None = None
    size: int | None = None
    content_type: str | None = None
    raw: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=frozen_mapping, repr=False, eq=False
    )


@attrs.frozen(kw_only=True)
class ModelInfo:
    """
    One entry of the model catalog (``client.list_models()``).

    ``type`` is the catalog's own word (``"Image"``, ``"Video"``, ``"Audio"``,
    ``"Text"``); `kind` maps it to the submit endpoint, or None for text models.
    """

    model: str
    type: str | None = None
    display_name: str | None = None
    categories: tuple[str, ...] = ()
    raw: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=frozen_mapping, repr=False, eq=False
    )

    @property
    def kind(self) -> Kind | None:
        """The `Kind` whose endpoint serves this model, or None (text models)."""
        try:
            return Kind((self.type or "").lower())
        except ValueError:
            return None
