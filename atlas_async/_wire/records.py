"""
The batch journal's records: `Prediction` snapshots and `AtlasError` s as the
plain JSON the journal stores, and back.

Those are our own JSON, so this converter is strict and round-trips exactly,
where the wire's (``_wire.convert``) is lenient and one-way.
"""

from __future__ import annotations

import functools
import inspect
import json
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import transform_error

from .._core import errors as _errors
from .._core.errors import (
    APIError,
    AtlasError,
    PredictionError,
    PredictionFailedError,
)
from .._core.models import LIVE_FIELDS, Kind, Prediction, PredictionStatus
from . import values as _v
from .convert import (
    format_problem as _format_problem,
    require_mapping as _require_mapping,
)

__all__ = [
    "ERROR_TYPES",
    "error_from_record",
    "error_record_from_text",
    "error_to_record",
    "prediction_from_record",
    "prediction_to_record",
]

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
    c.register_unstructure_hook(Kind, operator.attrgetter("value"))
    c.register_structure_hook(Kind, lambda v, _t: Kind(v))
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
