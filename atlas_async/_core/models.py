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
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from .frozen import EMPTY as _EMPTY, FrozenDict, freeze, frozen_mapping
from .pricing import ModelPrice
from .views import (
    LIVE_FIELDS,
    Lyrics,
    Transcript,
    Views,
    is_text_output,
    read_datetime,
    read_views,
)

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


class Kind(str, enum.Enum):
    """
    What a prediction generates; it picks the submit endpoint and the poll defaults.

    A ``str`` enum, like `PredictionStatus`: ``kind == "image"`` holds and
    ``str(kind)`` is ``"image"``. Functions that take a kind also accept its
    value (``"image"``, ``"video"``, ``"audio"``).
    """

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        # As for PredictionStatus: the value on every Python version.
        return format(self.value, spec)

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
    def _views(self) -> Views:
        # Read from raw on first use and kept (one slot that __init__ leaves
        # empty, as for _hash): a snapshot per poll answer pays nothing for
        # views nobody reads.
        return read_views(self.raw)

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
    ``price`` is the catalog's ``price.actual`` (`ModelPrice`), None when the
    entry has none; like ``raw`` it is not compared by ``==``.
    """

    model: str
    type: str | None = None
    display_name: str | None = None
    categories: tuple[str, ...] = ()
    price: ModelPrice | None = attrs.field(default=None, eq=False)
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
