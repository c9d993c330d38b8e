"""
The package's own cattrs converter: ``data`` mappings in, model snapshots out.

Theory of operation
-------------------
`_wire` decodes a body and unwraps its envelope; it hands this module the
``data`` object and gets back a `Prediction`, `UploadedMedia` or `ModelInfo`.
The models never see JSON.

Each model is read in two steps:

1. cattrs structures the mapping into a private *wire class* whose fields mirror
   the JSON (``predictionId``, ``displayName``, ``output`` ...). The generated code
   runs with detailed validation, so a wrong type is reported with its JSON path:
   ``expected a list of output URLs, got int @ $.data.outputs``.
2. A hook folds the wire class into the public model: status synonyms, output
   entries, dates and codes.

Strict where the SDK acts, lenient where it only reports. A wrong type in a field
the SDK makes decisions on (id, status, model, outputs, an upload's URL, a catalog
entry's model id) raises `UnexpectedResponseError` with the raw body attached. A
wrong shape in a field it only reports (``created_at``, ``has_nsfw_contents``,
``urls``, ``metrics``, ``error_code``, ``size`` ...) becomes None or empty, so one
odd decoration never fails a finished prediction; ``raw`` keeps what came.
Unknown keys are ignored for forward compatibility.

The field readers and the status synonyms are in `_wire_values`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception, transform_error

from .._core.errors import UnexpectedResponseError
from .._core.models import ModelInfo, Prediction, PredictionStatus, UploadedMedia
from . import values as _v

__all__ = [
    "converter",
    "make_converter",
    "structure",
    "structure_prediction",
]

T = TypeVar("T")

# Where a prediction id may sit in `data`, first choice first (atlas-api.md 4.2).
_ID_KEYS = ("id", "prediction_id", "predictionId", "request_id")

# --- wire classes: the JSON as it comes ---------------------------------------


@attrs.frozen(kw_only=True)
class _PredictionData:
    id: str | None = None
    prediction_id: str | None = None
    prediction_id_camel: str | None = None  # "predictionId"
    request_id: str | None = None
    status: str | None = None
    model: str | None = None
    outputs: tuple[str, ...] | None = None
    output: tuple[str, ...] | None = None  # the Replicate-style singular (F19)
    error: str | None = None
    error_code: int | None = None
    created_at: datetime | None = None
    has_nsfw_contents: tuple[bool, ...] | None = None
    urls: dict[str, str] = attrs.field(factory=dict)
    metrics: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class _UploadData:
    download_url: str | None = None
    url: str | None = None
    filename: str | None = None
    size: int | None = None
    type: str | None = None
    content_type: str | None = None


@attrs.frozen(kw_only=True)
class _ModelData:
    model: str | None = None
    type: str | None = None
    display_name: str | None = None
    display_name_camel: str | None = None  # "displayName"
    categories: tuple[str, ...] = ()


# --- model hooks --------------------------------------------------------------


def _require_mapping(value: object) -> Mapping[str, Any]:
    # cattrs' generated code tests keys with "in", so a list or a string would
    # silently structure as an object with every field missing.
    if not isinstance(value, Mapping):
        raise _v.ShapeError(f"expected a JSON object, got {_v.type_name(value)}")
    return value


# Snapshots are kept per prediction in flight (thousands at once): the key
# strings JSON decoding makes afresh for every answer, and values every
# snapshot repeats, are shared instead (docs/performance.md, memory).
_REPEATED_VALUES = frozenset({"status", "model"})


def _shared(text: str | None) -> str | None:
    return sys.intern(text) if type(text) is str else text


def _compact(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with interned keys, nested objects alike, and shared status/model."""
    return {
        (sys.intern(k) if type(k) is str else k): (
            _compact(v)
            if type(v) is dict
            else sys.intern(v)
            if k in _REPEATED_VALUES and type(v) is str
            else v
        )
        for k, v in data.items()
    }


def _prediction_hook(c: cattrs.Converter) -> Callable[[object, object], Prediction]:
    def hook(value: object, _type: object) -> Prediction:
        data = _require_mapping(value)
        wire = c.structure(data, _PredictionData)
        ids = (wire.id, wire.prediction_id, wire.prediction_id_camel, wire.request_id)
        prediction_id = next((i for i in ids if i), None)
        if prediction_id is None:
            raise _v.ShapeError("no prediction id (expected data.id)")
        outputs = wire.outputs if wire.outputs is not None else wire.output
        return Prediction(
            id=prediction_id,
            status=_v.parse_status(wire.status),
            status_raw=_shared(wire.status) or "",
            model=_shared(wire.model),
            outputs=outputs or (),
            error=wire.error,
            error_code=wire.error_code,
            created_at=wire.created_at,
            has_nsfw_contents=wire.has_nsfw_contents,
            urls=wire.urls,
            metrics=wire.metrics,
            raw=_compact(data),
        )

    return hook


def _upload_hook(c: cattrs.Converter) -> Callable[[object, object], UploadedMedia]:
    def hook(value: object, _type: object) -> UploadedMedia:
        data = _require_mapping(value)
        wire = c.structure(data, _UploadData)
        url = wire.download_url or wire.url
        if not url:
            raise _v.ShapeError("no file URL (expected data.download_url or url)")
        return UploadedMedia(
            url=url,
            filename=wire.filename,
            size=wire.size,
            content_type=wire.content_type or wire.type,
            raw=data,
        )

    return hook


def _model_hook(c: cattrs.Converter) -> Callable[[object, object], ModelInfo]:
    def hook(value: object, _type: object) -> ModelInfo:
        data = _require_mapping(value)
        wire = c.structure(data, _ModelData)
        if not wire.model:
            raise _v.ShapeError("catalog entry without a model id")
        return ModelInfo(
            model=wire.model,
            type=wire.type,
            display_name=wire.display_name_camel or wire.display_name,
            categories=wire.categories,
            raw=data,
        )

    return hook


def make_converter() -> cattrs.Converter:
    """
    Build a converter with every hook this package needs.

    The package uses one instance, `converter`; never the cattrs global one, so an
    application's own hooks cannot change how the SDK reads the wire.
    """
    c = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    c.register_structure_hook(str, _v.strict_str)
    c.register_structure_hook(PredictionStatus, lambda v, _t: _v.parse_status(v))
    c.register_structure_hook(
        _PredictionData,
        make_dict_structure_fn(
            _PredictionData,
            c,
            prediction_id_camel=override(rename="predictionId"),
            outputs=override(struct_hook=_v.output_urls),
            output=override(struct_hook=_v.output_urls),
            error=override(struct_hook=_v.error_text),
            error_code=override(struct_hook=_v.lenient_int),
            created_at=override(struct_hook=_v.lenient_datetime),
            has_nsfw_contents=override(struct_hook=_v.nsfw_flags),
            urls=override(struct_hook=_v.str_mapping),
            metrics=override(struct_hook=_v.any_mapping),
        ),
    )
    c.register_structure_hook(
        _UploadData,
        make_dict_structure_fn(
            _UploadData,
            c,
            filename=override(struct_hook=_v.lenient_str),
            size=override(struct_hook=_v.lenient_int),
            type=override(struct_hook=_v.lenient_str),
            content_type=override(struct_hook=_v.lenient_str),
        ),
    )
    c.register_structure_hook(
        _ModelData,
        make_dict_structure_fn(
            _ModelData,
            c,
            type=override(struct_hook=_v.lenient_str),
            display_name=override(struct_hook=_v.lenient_str),
            display_name_camel=override(
                rename="displayName", struct_hook=_v.lenient_str
            ),
            categories=override(struct_hook=_v.str_tuple),
        ),
    )
    c.register_structure_hook(Prediction, _prediction_hook(c))
    c.register_structure_hook(UploadedMedia, _upload_hook(c))
    c.register_structure_hook(ModelInfo, _model_hook(c))
    return c


converter = make_converter()


def structure(
    value: object,
    cls: type[T],
    *,
    body: object,
    status_code: int | None = None,
    prediction_id: str | None = None,
    path: str = "$",
) -> T:
    """
    Structure ``value`` (a decoded ``data`` object) as ``cls`` with `converter`.

    Args:
        value: the decoded JSON to read.
        cls: `Prediction`, `UploadedMedia`, `ModelInfo`, or ``list`` of one.
        body: the whole decoded body, attached to the error.
        status_code: the HTTP status, attached to the error.
        prediction_id: the id the caller asked about, attached to the error.
        path: where ``value`` sits in the body, for messages (``"$.data"``).

    Raises:
        UnexpectedResponseError: ``value`` does not have the shape of ``cls``;
            the message lists every problem with its JSON path.
    """
    try:
        return converter.structure(value, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        problems = "; ".join(transform_error(exc, path, _format_problem))
        raise UnexpectedResponseError(
            f"unexpected answer shape: {problems}",
            status_code=status_code,
            body=body,
            prediction_id=prediction_id,
        ) from exc


def structure_prediction(
    value: object,
    *,
    fallback_id: str | None,
    body: object,
    status_code: int | None = None,
    prediction_id: str | None = None,
    path: str = "$",
) -> Prediction:
    """
    `structure` a `Prediction`, using ``fallback_id`` when ``value`` has no id.

    ``fallback_id`` comes from outside ``data``: the envelope's top-level ``id``,
    a webhook's ``session_id``, or the id that was polled (the Korean seed's bare
    failed body has none). ``raw`` stays the mapping as received.

    Raises:
        UnexpectedResponseError: as `structure`, also when no id is found at all.
    """
    original: Mapping[str, Any] | None = None
    source = value
    if (
        fallback_id is not None
        and isinstance(value, Mapping)
        and all(value.get(key) in (None, "") for key in _ID_KEYS)
    ):
        original, source = value, {**value, "id": fallback_id}
    prediction = structure(
        source,
        Prediction,
        body=body,
        status_code=status_code,
        prediction_id=prediction_id,
        path=path,
    )
    return prediction if original is None else attrs.evolve(prediction, raw=original)


def _format_problem(exc: BaseException, type_: type | None) -> str:
    # Our own hooks explain themselves; cattrs' words are kept for the rest.
    if isinstance(exc, _v.ShapeError):
        return str(exc)
    return format_exception(exc, type_)
