"""
"Same shape as the literal": the comparison the emulator's half of the
contract makes between what it emitted and a literal body.

Two JSON documents have the same shape when their objects have the same keys,
recursively, and every value has the same JSON type (null, boolean, number,
string, array, object; an int and a float are both numbers). Values are free
except at the paths a test pins. Paths are dotted keys, ``[]`` standing for
every element of an array: ``data.stt_result.words[]``; the root is ``""``.

A literal is a sample, so a test may loosen the rule where the wire contract
does: ``open`` paths name objects that may carry keys beyond the literal's
(a poll's ``data`` has fields the literal left out), ``optional`` paths name
keys of the literal the emitter may leave out (W6's ``timings`` come "depending
on the model"). An array is compared element by element with the literal's
first element; an empty literal array says nothing about its elements.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

MISSING = "<missing>"
"""What `value_at` gives for a path the document lacks."""


def json_type(value: object) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a decoded JSON value: {value!r}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def shape_mismatches(
    emitted: object,
    literal: object,
    *,
    open: Collection[str] = (),
    optional: Collection[str] = (),
    path: str = "",
) -> list[str]:
    """Every difference of shape between ``emitted`` and ``literal``, one line
    each, naming its path; empty when they have the same shape."""
    found, wanted = json_type(emitted), json_type(literal)
    where = path or "<root>"
    if found != wanted:
        return [f"{where}: {found} where the literal has {wanted}"]
    problems: list[str] = []
    if isinstance(literal, dict):
        assert isinstance(emitted, dict)
        for key, value in literal.items():
            inner = _join(path, key)
            if key not in emitted:
                if inner not in optional:
                    problems.append(f"{inner}: missing")
                continue
            problems += shape_mismatches(
                emitted[key], value, open=open, optional=optional, path=inner
            )
        if path not in open:
            problems += [
                f"{_join(path, key)}: not in the literal"
                for key in emitted
                if key not in literal
            ]
    elif isinstance(literal, list) and literal:
        assert isinstance(emitted, list)
        for element in emitted:
            problems += shape_mismatches(
                element, literal[0], open=open, optional=optional, path=f"{path}[]"
            )
    return problems


def value_at(document: object, path: str) -> Any:
    """The value at a dotted ``path`` (no ``[]``) of a decoded document, or
    `MISSING`."""
    for key in path.split(".") if path else ():
        if not isinstance(document, dict) or key not in document:
            return MISSING
        document = document[key]
    return document


def assert_shape(
    emitted: object,
    literal: bytes,
    *,
    pins: Collection[str] = (),
    open: Collection[str] = (),
    optional: Collection[str] = (),
) -> None:
    """
    Assert ``emitted`` (decoded JSON) has the shape of the ``literal`` body,
    and the literal's own values at the ``pins`` paths.
    """
    decoded = json.loads(literal)
    problems = shape_mismatches(emitted, decoded, open=open, optional=optional)
    problems += [
        f"{pin}: {value_at(emitted, pin)!r}, the literal pins"
        f" {value_at(decoded, pin)!r}"
        for pin in pins
        if value_at(emitted, pin) != value_at(decoded, pin)
    ]
    assert not problems, "not the literal's shape:\n  " + "\n  ".join(problems)
