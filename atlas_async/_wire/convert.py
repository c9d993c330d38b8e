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

The batch journal's records are read and written here too, with a second
converter of their own (`prediction_to_record`, `error_to_record` and their
inverses): those are our own JSON, so they are strict and round-trip exactly,
where the wire is lenient and one-way.
"""

from __future__ import annotations

import functools
import inspect
import json
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception, transform_error

from .._core import errors as _errors
from .._core.errors import (
    APIError,
    AtlasError,
    PredictionError,
    PredictionFailedError,
    UnexpectedResponseError,
)
from .._core.models import (
    LIVE_FIELDS,
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
    "ERROR_TYPES",
    "converter",
    "error_from_record",
    "error_record_from_text",
    "error_to_record",
    "make_converter",
    "prediction_from_record",
    "prediction_to_record",
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
        data = _require_mapping(value)
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


def _format_problem(exc: BaseException, type_: type | None) -> str:
    # Our own hooks explain themselves; cattrs' words are kept for the rest.
    if isinstance(exc, _v.ShapeError):
        return str(exc)
    return format_exception(exc, type_)


# --- the journal's records ----------------------------------------------------

#: The classes of the `AtlasError` tree by name: the types a record may name.
ERROR_TYPES: Mapping[str, type[AtlasError]] = {
    name: cls
    for name in ("AtlasError", *_errors.__all__)
    if isinstance(cls := getattr(_errors, name), type) and issubclass(cls, AtlasError)
}


@attrs.frozen(kw_only=True)
class _ErrorRecord:
    # Every field an error of the tree carries that can be stored as JSON; a
    # record holds those its error had (None is left out). ``body`` is not
    # kept: it can be large, and the message already says what went wrong.
    type: str
    message: str
    prediction_id: str | None = None
    status_code: int | None = None
    request_id: str | None = None
    retry_after: float | None = None
    error: str | None = None
    error_code: int | None = None
    status: PredictionStatus | None = None
    last_status: PredictionStatus | None = None
    timeout: float | None = None
    method: str | None = None
    url: str | None = None
    kind: Kind | None = None
    model: str | None = None
    output_index: int | None = None


_ERROR_FIELDS = tuple(a.name for a in attrs.fields(_ErrorRecord))[2:]


def _exact_bool(value: object, _type: object) -> bool:
    # cattrs' default is bool(value): any string would read as True.
    if isinstance(value, bool):
        return value
    raise _v.ShapeError(f"expected true or false, got {_v.type_name(value)}")


def _iso_datetime(value: object, _type: object) -> datetime:
    if not isinstance(value, str):
        raise _v.ShapeError(f"expected an ISO date, got {_v.type_name(value)}")
    return datetime.fromisoformat(value)


@functools.cache
def _records() -> cattrs.Converter:
    # Built on first use: `import atlas_async` does not pay for it.
    c = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    c.register_structure_hook(str, _v.strict_str)
    c.register_structure_hook(bool, _exact_bool)
    c.register_structure_hook(datetime, _iso_datetime)
    c.register_unstructure_hook(datetime, datetime.isoformat)
    # A str enum would pass through as itself, both ways: records hold plain
    # values, and read back as the enum (or fail).
    c.register_unstructure_hook(PredictionStatus, operator.attrgetter("value"))
    c.register_structure_hook(PredictionStatus, lambda v, _t: PredictionStatus(v))
    # `outputs` has a column of its own; `raw` is not ours to keep (and may
    # repeat large base64 outputs), except the live fields the views read.
    c.register_unstructure_hook(
        Prediction,
        make_dict_unstructure_fn(
            Prediction, c, outputs=override(omit=True), raw=override(omit=True)
        ),
    )
    c.register_structure_hook(
        Prediction, make_dict_structure_fn(Prediction, c, raw=override(omit=True))
    )
    c.register_unstructure_hook(
        _ErrorRecord,
        make_dict_unstructure_fn(_ErrorRecord, c, _cattrs_omit_if_default=True),
    )
    return c


def _record_problem(exc: Exception) -> ValueError:
    return ValueError("; ".join(transform_error(exc, "$", _format_problem)))


def prediction_to_record(prediction: Prediction) -> dict[str, Any]:
    """
    Return the journal's record of ``prediction``: every modelled field as JSON
    values (enums by value, dates in ISO 8601), without ``outputs`` and ``raw``;
    the live fields its views read (``price``, ``latency_ms``, ``stt_result``
    ...) are kept under ``live``, when it has any.
    """
    record: dict[str, Any] = _records().unstructure(prediction)
    raw = prediction.raw
    live = {key: _plain(raw[key]) for key in LIVE_FIELDS if key in raw}
    if live:
        record["live"] = live
    return record


def prediction_from_record(record: object, outputs: Sequence[str]) -> Prediction:
    """
    Rebuild the `Prediction` that `prediction_to_record` wrote, with ``outputs``;
    its ``raw`` holds the ``live`` fields, so its views read as they did.

    Raises:
        ValueError: ``record`` is not such a record; the text lists each problem.
    """
    try:
        data = {**_require_mapping(record), "outputs": list(outputs)}
        live = data.pop("live", None)
        if live is not None and not isinstance(live, Mapping):
            raise _v.ShapeError(f"expected live fields, got {_v.type_name(live)}")
        prediction = _records().structure(data, Prediction)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise _record_problem(exc) from None
    return attrs.evolve(prediction, raw=live) if live else prediction


def _plain(value: object) -> object:
    # Frozen values back to what JSON writes: a record is plain data.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def error_to_record(error: AtlasError) -> dict[str, Any]:
    """
    Return the journal's record of ``error``: ``type`` (the nearest class of the
    `AtlasError` tree), ``message``, and the fields it carries that are set
    (``status_code``, ``request_id``, ``retry_after``, ``prediction_id``, ...).
    """
    name = next(
        c.__name__ for c in type(error).__mro__ if ERROR_TYPES.get(c.__name__) is c
    )
    record = _ErrorRecord(
        type=name,
        message=getattr(error, "message", str(error)),
        **{field: getattr(error, field, None) for field in _ERROR_FIELDS},
    )
    fields: dict[str, Any] = _records().unstructure(record)
    return fields


@functools.cache
def _keywords(name: str) -> frozenset[str]:
    parameters = inspect.signature(ERROR_TYPES[name]).parameters.values()
    return frozenset(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def error_from_record(
    record: object, *, prediction: Prediction | None = None
) -> AtlasError:
    """
    Rebuild the error `error_to_record` wrote: the same class, message and fields;
    ``prediction`` is the snapshot to attach to a `PredictionError`.

    Raises:
        ValueError: ``record`` is not such a record, or names no class of the
            tree; the text says what is wrong.
    """
    try:
        data = _records().structure(_require_mapping(record), _ErrorRecord)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise _record_problem(exc) from None
    cls = ERROR_TYPES.get(data.type)
    if cls is None:
        raise ValueError(f"unknown error type {data.type!r}")
    accepted = _keywords(data.type)
    kwargs: dict[str, Any] = {
        field: value
        for field in _ERROR_FIELDS
        if field in accepted and (value := getattr(data, field)) is not None
    }
    if issubclass(cls, PredictionError):
        kwargs["prediction"] = prediction
        kwargs.setdefault("prediction_id", prediction.id if prediction else "")
    return cls(data.message, **kwargs)


def error_record_from_text(
    name: str,
    message: str | None,
    prediction_id: str | None = None,
    snapshot: Prediction | str | None = None,
) -> dict[str, Any]:
    """
    Return the error record of a failure known only by its type's name and its
    text: a schema 1 journal row, or a failure recorded by name.

    A name outside the `AtlasError` tree is a label, recorded as an `AtlasError`.
    ``snapshot`` is the last `Prediction` (or its record's JSON text, as a schema
    1 row holds it): a `PredictionFailedError` takes its error, code and status.
    """
    cls = ERROR_TYPES.get(name, AtlasError)
    record: dict[str, Any] = {"type": cls.__name__, "message": message or ""}
    code, colon, rest = record["message"].partition(": ")
    if issubclass(cls, APIError) and colon and len(code) == 3 and code.isdigit():
        # The text is str(APIError), "404: text (...)": the status code leads it.
        record.update(status_code=int(code), message=rest)
    details = _snapshot_details(snapshot)
    prediction_id = prediction_id or details.get("id")
    if prediction_id or issubclass(cls, PredictionError):
        record["prediction_id"] = prediction_id or ""
    if cls is PredictionFailedError:
        found = {k: details.get(k) for k in ("error", "error_code", "status")}
        record.update({k: v for k, v in found.items() if v is not None})
    return record


def _snapshot_details(snapshot: Prediction | str | None) -> Mapping[str, Any]:
    if isinstance(snapshot, Prediction):
        return prediction_to_record(snapshot)
    try:
        details = json.loads(snapshot) if snapshot else {}
    except ValueError:  # a damaged row: the journal reports it when it reads it
        return {}
    return details if isinstance(details, Mapping) else {}
