"""
`FrozenDict` and `freeze`: the read-only containers every snapshot is built of.

Part of the models (`models` re-exports these names); kept apart so each module
stays readable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

__all__ = ["EMPTY", "FrozenDict", "freeze", "frozen_mapping"]

_K = TypeVar("_K")
_V = TypeVar("_V")


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


EMPTY: FrozenDict[Any, Any] = FrozenDict()
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
        return EMPTY
    return FrozenDict(
        {
            (sys.intern(k) if type(k) is str else k): (
                v if type(v) in _PLAIN else freeze(v)
            )
            for k, v in value.items()
        }
    )
