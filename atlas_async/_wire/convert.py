"""
The package's own cattrs converter: ``data`` mappings in, model snapshots out.

Theory of operation
-------------------
`parse` decodes a body and unwraps its envelope; it hands this module the
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
odd decoration never fails a finished prediction; ``raw`` keeps what came. The
live fields (``price``, ``latency_ms``, ``completed_at``, ``stt_result`` ...) are
not read here at all: `Prediction`'s views read them from ``raw`` when asked.
Unknown keys are ignored for forward compatibility.

The field readers and the status synonyms are in `values`.

The batch journal's records (our own JSON, strict) are in `records`.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception, transform_error

from .._core.errors import (
    UnexpectedResponseError,
)
from .._core.models import (
    FrozenDict,
    Kind,
    ModelInfo,
    Prediction,
    PredictionStatus,
    UploadedMedia,
    freeze,
)
from . import values as _v
from .prices import read_model_price

__all__ = [
    "converter",
    "format_problem",
    "make_converter",
    "read_prediction_fast",
    "require_mapping",
    "structure",
    "structure_prediction",
]

T = TypeVar("T")

# Where a prediction id may sit in `data`, first choice first (docs/wire.md,
# "Where the prediction id sits").
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


def require_mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else a `ShapeError` saying what it is."""
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


def _compact(data: Mapping[str, Any]) -> FrozenDict[str, Any]:
    """``data`` frozen with interned keys, nested objects alike, and shared
    status/model: the snapshot keeps it as it is (one pass, not two)."""
    return FrozenDict(
        {
            (sys.intern(k) if type(k) is str else k): (
                _compact(v)
                if type(v) is dict
                else freeze(v)
                if type(v) is list
                else sys.intern(v)
                if k in _REPEATED_VALUES and type(v) is str
                else v
            )
            for k, v in data.items()
        }
    )


def _prediction_from_wire(wire: _PredictionData, data: Mapping[str, Any]) -> Prediction:
    ids = (wire.id, wire.prediction_id, wire.prediction_id_camel, wire.request_id)
    prediction_id = next((i for i in ids if i), None)
    if prediction_id is None:
        raise _v.ShapeError("no prediction id (expected data.id)")
    outputs = wire.outputs if wire.outputs is not None else wire.output
    raw = _compact(data)
    # ``urls`` is nearly always the raw object's own ``urls`` (strings only):
    # share that one instead of a copy of it (a tenth of a pending
    # prediction's memory).
    urls: Mapping[str, str] = wire.urls
    kept = raw.get("urls")
    if type(kept) is FrozenDict and kept == urls:
        urls = kept
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
        urls=urls,
        metrics=wire.metrics,
        raw=raw,
    )


def _prediction_hook(c: cattrs.Converter) -> Callable[[object, object], Prediction]:
    def hook(value: object, _type: object) -> Prediction:
        data = require_mapping(value)
        return _prediction_from_wire(c.structure(data, _PredictionData), data)

    return hook


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else _v.strict_str(value, str)


def _fast_prediction(data: dict[str, Any]) -> Prediction | None:
    """
    The poll's hot path: `_PredictionData` read field by field with the very
    hooks the converter uses (same keys, same defaults), without cattrs'
    dispatch and validation bookkeeping (a third of a poll's own CPU).

    None when any field fails: the converter then reads it again and reports
    every problem with its JSON path. ``tests/contract`` pins that both paths
    give equal snapshots.
    """
    get = data.get
    try:
        wire = _PredictionData(
            id=_optional_str(data, "id"),
            prediction_id=_optional_str(data, "prediction_id"),
            prediction_id_camel=_optional_str(data, "predictionId"),
            request_id=_optional_str(data, "request_id"),
            status=_optional_str(data, "status"),
            model=_optional_str(data, "model"),
            outputs=_v.output_urls(get("outputs"), None) if "outputs" in data else None,
            output=_v.output_urls(get("output"), None) if "output" in data else None,
            error=_v.error_text(get("error"), None) if "error" in data else None,
            error_code=(
                _v.lenient_int(get("error_code"), None)
                if "error_code" in data
                else None
            ),
            created_at=(
                _v.lenient_datetime(get("created_at"), None)
                if "created_at" in data
                else None
            ),
            has_nsfw_contents=(
                _v.nsfw_flags(get("has_nsfw_contents"), None)
                if "has_nsfw_contents" in data
                else None
            ),
            urls=_v.str_mapping(get("urls"), None) if "urls" in data else {},
            metrics=_v.any_mapping(get("metrics"), None) if "metrics" in data else {},
        )
        return _prediction_from_wire(wire, data)
    except (_v.ShapeError, ValueError, TypeError):
        return None


def read_prediction_fast(value: object) -> Prediction | None:
    """`_fast_prediction` for a plain decoded object, else None (for tests)."""
    return _fast_prediction(value) if type(value) is dict else None


def _upload_hook(c: cattrs.Converter) -> Callable[[object, object], UploadedMedia]:
    def hook(value: object, _type: object) -> UploadedMedia:
        data = require_mapping(value)
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
        data = require_mapping(value)
        wire = c.structure(data, _ModelData)
        if not wire.model:
            raise _v.ShapeError("catalog entry without a model id")
        return ModelInfo(
            model=wire.model,
            type=wire.type,
            display_name=wire.display_name_camel or wire.display_name,
            categories=wire.categories,
            price=read_model_price(wire.model, data.get("price")),
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
    # Kind is a str enum too: without its own hooks the str hook would take it.
    c.register_structure_hook(Kind, lambda v, _t: Kind(v))
    c.register_unstructure_hook(Kind, operator.attrgetter("value"))
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
        problems = "; ".join(transform_error(exc, path, format_problem))
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
    a webhook's ``session_id``, or the id that was polled (the Predictions
    guide's bare failed body has none; docs/wire.md, "Envelopes"). ``raw`` stays
    the mapping as received.

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
    fast = _fast_prediction(source) if type(source) is dict else None
    if fast is not None:
        return fast if original is None else attrs.evolve(fast, raw=original)
    prediction = structure(
        source,
        Prediction,
        body=body,
        status_code=status_code,
        prediction_id=prediction_id,
        path=path,
    )
    return prediction if original is None else attrs.evolve(prediction, raw=original)


def format_problem(exc: BaseException, type_: type | None) -> str:
    """One problem of a cattrs error, in words (for `transform_error`)."""
    # Our own hooks explain themselves; cattrs' words are kept for the rest.
    if isinstance(exc, _v.ShapeError):
        return str(exc)
    return format_exception(exc, type_)
