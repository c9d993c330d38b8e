"""
Inert value types. Snapshots never do I/O and never see JSON: ``_wire`` and
``_convert`` turn bodies into these, and the client and scheduler pass them around.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = ["Kind", "ModelInfo", "Prediction", "PredictionStatus", "UploadedMedia"]


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


class PredictionStatus(enum.Enum):
    """
    A prediction's status. Wire synonyms are folded in by ``_wire``.

    ``succeeded``/``success`` arrive as COMPLETED, ``cancelled`` as CANCELED,
    ``error`` as FAILED; any other string is UNKNOWN (not terminal) and the raw
    string stays on `Prediction.status_raw`.
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


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # The snapshot keeps its own copy. Its keys are interned: JSON decoding makes
    # fresh key strings for every answer, and with 10,000 predictions in flight
    # the repeated "status", "created_at", ... were a fifth of the SDK's memory.
    if not value:
        return {}
    return {sys.intern(k) if type(k) is str else k: v for k, v in value.items()}


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

    Example::

        prediction = await client.generate_image(model, prompt="a red fox")
        if prediction.status.is_success:
            print(prediction.outputs[0])
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
    urls: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    metrics: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    raw: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=False, eq=False
    )

    @property
    def done(self) -> bool:
        """True when the status is terminal."""
        return self.status.is_terminal


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
        factory=dict, converter=_frozen_mapping, repr=False, eq=False
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
        factory=dict, converter=_frozen_mapping, repr=False, eq=False
    )

    @property
    def kind(self) -> Kind | None:
        """The `Kind` whose endpoint serves this model, or None (text models)."""
        try:
            return Kind((self.type or "").lower())
        except ValueError:
            return None
