"""
One journal row, as the journal reads and writes it: the item states and the
transitions between them (`TRANSITIONS`), the columns a step writes, and the reading
of a stored row back into a `JournalEntry`, refusing one that cannot be true.

Part of `journal` (which re-exports `ItemState` and `JournalEntry`); kept apart
so each module stays readable.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._core.errors import AtlasError
from .._core.models import Kind, Prediction
from .._core.safety import redact_text
from .._wire import records as codec
from .keys import canonical

__all__ = [
    "BUMP",
    "FAILURE_COLUMNS",
    "NO_ERROR",
    "NULL",
    "TRANSITIONS",
    "ItemState",
    "JournalEntry",
    "error_columns",
    "paths_column",
    "read_row",
    "snapshot_columns",
]

_MAX_MESSAGE = 2000
#: Column values for the journal's updates: store NULL, add one.
NULL, BUMP = object(), object()
#: The columns of a failure, and their values for an item without one.
FAILURE_COLUMNS = ("error_type", "error_message", "error")
NO_ERROR = dict.fromkeys(FAILURE_COLUMNS, NULL)


class ItemState(enum.Enum):
    """Where one batch item is; the module docstring draws the transitions."""

    PENDING = "pending"  # not sent yet
    SUBMITTING = "submitting"  # committed just before the POST; answer due
    SUBMITTED = "submitted"  # the server gave an id: attach to it, never resend
    COMPLETED = "completed"  # snapshot and outputs recorded, files not saved (yet)
    SAVED = "saved"  # completed, and its outputs saved to the files recorded
    FAILED = "failed"  # refused, or failed on the server
    UNKNOWN = "unknown"  # sent with no answer: may exist and bill


_S = ItemState
_DONE = frozenset({_S.SUBMITTED, _S.COMPLETED, _S.SAVED})
#: The states each state can be entered from (the journal's docstring draws them).
TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    _S.SUBMITTING: frozenset({_S.PENDING}),
    _S.SUBMITTED: frozenset({_S.SUBMITTING, _S.UNKNOWN}),
    # From completed or saved again: a fresh snapshot (new output URLs).
    _S.COMPLETED: _DONE,
    _S.SAVED: _DONE,
    # From completed or saved: its outputs are gone for good.
    _S.FAILED: frozenset(
        {_S.PENDING, _S.SUBMITTING, _S.SUBMITTED, _S.UNKNOWN, _S.COMPLETED, _S.SAVED}
    ),
    _S.UNKNOWN: frozenset({_S.SUBMITTING}),
    _S.PENDING: frozenset({_S.SUBMITTING, _S.UNKNOWN, _S.FAILED}),
}


def _redact(text: str, secret: str | None) -> str:
    return redact_text(text, secret)[:_MAX_MESSAGE]


def _redact_all(value: object, secret: str | None) -> object:
    """``value`` (decoded JSON) with every string in it redacted, keys too."""
    if isinstance(value, str):
        return redact_text(value, secret)
    if isinstance(value, Mapping):
        return {
            redact_text(str(k), secret): _redact_all(v, secret)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact_all(v, secret) for v in value]
    return value


def error_columns(
    error: AtlasError | str,
    message: str = "",
    snapshot: Prediction | None = None,
    *,
    secret: str | None = None,
) -> dict[str, object]:
    """The `FAILURE_COLUMNS` of ``error`` (or of a failure known by name and
    ``message``), redacted of ``secret`` and bounded."""
    if isinstance(error, AtlasError):
        name, text = type(error).__name__, str(error)
        record = codec.error_to_record(error)
    else:  # a failure known by name and text only
        name, text = error, message
        record = codec.error_record_from_text(name, text, snapshot=snapshot)
    fields = {
        k: _redact(v, secret) if isinstance(v, str) else v for k, v in record.items()
    }
    texts = (_redact(name, secret), _redact(text, secret), canonical(fields))
    return dict(zip(FAILURE_COLUMNS, texts, strict=True))


def paths_column(files: Sequence[str | os.PathLike[str]]) -> str:
    """The ``files`` column for these paths."""
    return canonical([os.fspath(f) for f in files])


def snapshot_columns(
    prediction: Prediction, secret: str | None = None
) -> dict[str, object]:
    """The columns of a snapshot (id, record, outputs), redacted of ``secret``."""
    record = _redact_all(codec.prediction_to_record(prediction), secret)
    return {
        "prediction_id": redact_text(prediction.id, secret),
        "prediction": canonical(record),
        "outputs": canonical(list(prediction.outputs)),
    }


def _stored_key(request: Mapping[str, Any]) -> str:
    # `request_key` of the request a row stores (already in `request_dict` form).
    return hashlib.sha256(canonical(request).encode()).hexdigest()


def _type_name(value: object) -> str:
    return "NULL" if value is None else type(value).__name__


def _text(row: Mapping[str, Any], column: str, *, optional: bool = False) -> Any:
    value = row[column]
    if (value is None and optional) or isinstance(value, str):
        return value
    raise ValueError(f"{column} is {_type_name(value)}, not text")


def _count(row: Mapping[str, Any], column: str) -> int:
    value = row[column]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"{column} is {value!r}, not a count")


def _moment(row: Mapping[str, Any], column: str) -> float:
    value = row[column]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value):
        return float(value)
    raise ValueError(f"{column} is {value!r}, not a time")


def _json(row: Mapping[str, Any], column: str) -> Any:
    try:
        return json.loads(_text(row, column))
    except ValueError as exc:
        raise ValueError(f"{column}: {exc}") from None


def _texts(row: Mapping[str, Any], column: str) -> tuple[str, ...]:
    value = _json(row, column)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{column} is {_type_name(value)}, not a list of texts")


@attrs.frozen(kw_only=True)
class JournalEntry:
    """
    One item as the journal last recorded it.

    Attributes:
        index: position in the batch the journal last began (its requests in
            order, then items of earlier batches that this one lacks).
        key: `request_key` of the request; kind, model, params: the request.
        state: the `ItemState`.
        prediction_id: the server's id, from ``submitted`` on.
        prediction: the snapshot recorded at completion (or failure), rebuilt.
        outputs: the outputs recorded at completion.
        files: the downloaded outputs' paths, once recorded (``saved``).
        error_type, error_message: why it failed or is unknown (no secrets).
        error: that error rebuilt, same class and fields (not compared by ==).
        attempts: how many times it entered ``submitting``.
        created_at, updated_at: wall-clock epoch seconds.
        sent_after, sent_before: the last submit's send window (wall-clock
            epoch seconds: when it went out, and the last moment the server
            can have received it), from ``submitting`` on; what settles an
            ``unknown`` item from the account's history.
    """

    index: int
    key: str
    kind: Kind
    model: str
    params: Mapping[str, Any]
    state: ItemState
    prediction_id: str | None = None
    prediction: Prediction | None = None
    outputs: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    error_type: str | None = None
    error_message: str | None = None
    error: AtlasError | None = attrs.field(default=None, eq=False)
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    sent_after: float | None = None
    sent_before: float | None = None


def read_row(d: Mapping[str, Any]) -> JournalEntry:
    """One row as a `JournalEntry`; ValueError, TypeError or KeyError if damaged."""
    index, key = _count(d, "index"), _text(d, "key")
    request = _json(d, "request")
    if not isinstance(request, dict):
        raise ValueError("request is not a JSON object")
    for name in ("kind", "model", "params"):
        if name not in request:
            raise KeyError(name)
    if len(request) != 3:
        raise ValueError(f"request has other fields: {sorted(request)}")
    kind, model, params = request["kind"], request["model"], request["params"]
    if not isinstance(kind, str) or not isinstance(model, str) or not model:
        raise ValueError("request kind or model is not text")
    if not isinstance(params, dict):
        raise ValueError("request params is not a JSON object")
    kind = Kind(kind)
    if _stored_key(request) != key:
        raise ValueError("its key is not the hash of its request")
    state = ItemState(_text(d, "state"))
    prediction_id = _text(d, "prediction_id", optional=True)
    outputs, files = _texts(d, "outputs"), _texts(d, "files")
    prediction = error = None
    if d["prediction"] is not None:
        snapshot = _json(d, "prediction")
        prediction = codec.prediction_from_record(snapshot, outputs)
    if d["error"] is not None:
        error = codec.error_from_record(_json(d, "error"), prediction=prediction)
    entry = JournalEntry(
        index=index,
        key=key,
        kind=kind,
        model=model,
        params=params,
        state=state,
        prediction_id=prediction_id,
        prediction=prediction,
        outputs=outputs,
        files=tuple(Path(f) for f in files),
        error_type=_text(d, "error_type", optional=True),
        error_message=_text(d, "error_message", optional=True),
        error=error,
        attempts=_count(d, "attempts"),
        created_at=_moment(d, "created_at"),
        updated_at=_moment(d, "updated_at"),
        sent_after=_moment(d, "sent_after") if d["sent_after"] is not None else None,
        sent_before=(
            _moment(d, "sent_before") if d["sent_before"] is not None else None
        ),
    )
    _check_state(entry)
    return entry


def _check_state(entry: JournalEntry) -> None:
    """Refuse a row whose columns cannot all be true of one item: see `TRANSITIONS`."""
    state, pid, snapshot = entry.state, entry.prediction_id, entry.prediction
    if state in (_S.PENDING, _S.SUBMITTING) and (pid or snapshot or entry.files):
        raise ValueError(f"a {state.value} item has a prediction recorded")
    if state in _DONE and not pid:
        raise ValueError(f"a {state.value} item has no prediction id")
    if state in (_S.COMPLETED, _S.SAVED) and snapshot is None:
        raise ValueError(f"a {state.value} item has no snapshot")
    if entry.files and state is not _S.SAVED:
        raise ValueError(f"a {state.value} item has files")
    if snapshot is not None and pid is not None and snapshot.id != pid:
        raise ValueError(f"its snapshot is of another prediction than {pid!r}")
    if state in (_S.FAILED, _S.UNKNOWN) and entry.error_type is None:
        raise ValueError(f"a {state.value} item has no error recorded")
