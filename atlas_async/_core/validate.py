"""
The checks every public call makes on its arguments before the first byte.

Pure functions of values: no client, no I/O. Each returns the value as the SDK
will use it (a plain ``dict`` of parameters, seconds as a ``float``, a `Kind`)
or raises:

* `ArgumentTypeError` (a ``TypeError`` and a ``ValueError``) for a value of the
  wrong type: ``timeout="5"``, ``params=[...]``, a ``bytes`` parameter;
* `InvalidArgumentError` (a ``ValueError``) for a value of the right type that
  no request could carry: NaN, infinity, a non-positive timeout, an id with
  ``/`` or a control character, parameters nested past `MAX_PARAM_DEPTH`.

Both are `ConfigurationError`, so code that caught that before still does. The
message names the argument (``params['size'][1]``) and shows at most a short
excerpt of the value: a 10 MB string is not repeated back.

Rules worth knowing:

* **Numbers are finite.** JSON has no NaN or infinity (the server would refuse
  the body, or a proxy would mangle it), and an infinite timeout or interval is
  a bug, not a wish: pass None where "no limit" is meant. ``bool`` is never a
  number here, although Python says it is one.
* **Parameters are JSON**, checked all the way down: strings (valid Unicode,
  no lone surrogates), finite numbers, booleans, None, lists, tuples, and
  mappings with string keys; no cycles, at most `MAX_PARAM_DEPTH` levels. The
  walk is bounded, so a pathological value fails here, not as a
  ``RecursionError`` inside the JSON encoder.
* **Prediction ids** become a path segment: a non-empty printable string of at
  most `MAX_ID_LENGTH` characters, without ``/``, ``\\``, ``..``, control or
  invisible characters, or surrounding spaces.
* **Model ids** go into the body: a non-empty printable string of at most
  `MAX_ID_LENGTH` characters, without surrounding spaces.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from .errors import ArgumentTypeError, InvalidArgumentError
from .models import Kind

__all__ = [
    "MAX_FILENAME_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_PARAM_DEPTH",
    "check_bool",
    "check_callable",
    "check_count",
    "check_duration",
    "check_filename",
    "check_instance",
    "check_iterable",
    "check_kind",
    "check_model_id",
    "check_params",
    "check_path",
    "check_prediction_id",
    "check_real",
    "describe",
]

#: The longest prediction or model id accepted (real ones are 32-100 characters).
MAX_ID_LENGTH = 256
#: The deepest nesting of parameters accepted (real ones nest 2 or 3 levels).
MAX_PARAM_DEPTH = 64
#: The longest upload file name accepted (most file systems' own limit).
MAX_FILENAME_LENGTH = 255

_T = TypeVar("_T")
_EXCERPT = 60


def describe(value: object) -> str:
    """A short repr of ``value`` for an error message: at most ~60 characters."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001  a repr that fails must not hide the error
        text = f"<{type(value).__name__}>"
    if len(text) > _EXCERPT:
        text = f"{text[: _EXCERPT - 5]}...{text[-2:]} ({len(text)} characters)"
    return text


def _type_name(value: object) -> str:
    return type(value).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_real(
    value: object,
    argument: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
    bound: str | None = None,
) -> float:
    """
    Return ``value`` as a finite ``float`` within the given bounds.

    ``minimum``/``maximum`` are inclusive, ``above``/``below`` exclusive;
    ``bound`` names the bound when it is another argument (``"initial"``).

    Raises:
        ArgumentTypeError: not an int or float (``bool`` included).
        InvalidArgumentError: NaN, infinite, or out of bounds.
    """
    if not _is_number(value):
        raise ArgumentTypeError(
            f"{argument} must be a number, not {_type_name(value)} ({describe(value)})",
            argument=argument,
        )
    number = float(value)  # type: ignore[arg-type]
    fails = not math.isfinite(number)
    fails |= minimum is not None and number < minimum
    fails |= above is not None and number <= above
    fails |= maximum is not None and number > maximum
    fails |= below is not None and number >= below
    if fails:
        raise InvalidArgumentError(
            f"{argument} must be {_wanted(minimum, above, maximum, below, bound)},"
            f" got {describe(value)}",
            argument=argument,
        )
    return number


def _wanted(
    minimum: float | None,
    above: float | None,
    maximum: float | None,
    below: float | None,
    name: str | None = None,
) -> str:
    if above == 0 and minimum is maximum is below is None:
        return "a positive finite number"
    bounds = [
        f"{sign} {name} ({bound:g})" if name else f"{sign} {bound:g}"
        for sign, bound in (
            (">=", minimum),
            (">", above),
            ("<=", maximum),
            ("<", below),
        )
        if bound is not None
    ]
    return " ".join(["a finite number", " and ".join(bounds)]).strip()


def check_count(value: object, argument: str, *, minimum: int = 1) -> int:
    """
    Return ``value``, an ``int`` (not a ``bool``) of at least ``minimum``.

    Raises:
        ArgumentTypeError: not an int.
        InvalidArgumentError: below ``minimum``.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(
            f"{argument} must be an integer, not {_type_name(value)}"
            f" ({describe(value)})",
            argument=argument,
        )
    if value < minimum:
        raise InvalidArgumentError(
            f"{argument} must be an integer >= {minimum}, got {value!r}",
            argument=argument,
        )
    return value


def check_duration(value: object, argument: str = "timeout") -> float | None:
    """
    Return a duration in seconds (None stays None): a finite number > 0.

    Accepts an int, a float or a ``datetime.timedelta``.

    Raises:
        ArgumentTypeError: a string, a ``bool`` or any other type.
        InvalidArgumentError: zero, negative, NaN or infinite.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif not _is_number(value):
        raise ArgumentTypeError(
            f"{argument} must be seconds (a number) or a timedelta, not"
            f" {_type_name(value)} ({describe(value)})",
            argument=argument,
        )
    return check_real(value, argument, above=0.0)


def check_bool(value: object, argument: str) -> bool:
    """
    Return ``value``, which must be ``True`` or ``False``.

    A string such as ``"no"`` is truthy: taking it as a flag would do the
    opposite of what was meant.

    Raises:
        ArgumentTypeError: anything but a ``bool``.
    """
    if not isinstance(value, bool):
        raise ArgumentTypeError(
            f"{argument} must be True or False, not {_type_name(value)}"
            f" ({describe(value)})",
            argument=argument,
        )
    return value


def check_callable(value: object, argument: str) -> None:
    """
    Check that ``value`` is None or callable.

    Raises:
        ArgumentTypeError: neither.
    """
    if value is not None and not callable(value):
        raise ArgumentTypeError(
            f"{argument} must be callable or None, not {_type_name(value)}",
            argument=argument,
        )


def check_instance(value: object, kind: type[_T], argument: str, what: str) -> _T:
    """
    Return ``value`` if it is a ``kind``.

    Raises:
        ArgumentTypeError: it is not; ``what`` says what was expected.
    """
    if not isinstance(value, kind):
        raise ArgumentTypeError(
            f"{argument} must be {what}, not {_type_name(value)} ({describe(value)})",
            argument=argument,
        )
    return value


def check_iterable(value: object, argument: str, what: str) -> Iterable[Any]:
    """
    Return ``value`` if it is an iterable of items: a list, a tuple, a
    generator. A string, bytes or a mapping iterate, but are never meant as
    such a collection here: they are refused.

    Raises:
        ArgumentTypeError: it is not; ``what`` says what was expected.
    """
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(
            f"{argument} must be {what}, not {_type_name(value)}",
            argument=argument,
        )
    return value


def check_path(value: object, argument: str) -> str | os.PathLike[str]:
    """
    Return ``value`` if it is a usable path: a ``str`` or ``os.PathLike``.

    Raises:
        ArgumentTypeError: another type (bytes paths included).
        InvalidArgumentError: empty, or with a NUL character.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"{argument} must be a path (str or os.PathLike), not"
            f" {_type_name(value)} ({describe(value)})",
            argument=argument,
        )
    text = os.fspath(value)
    if not isinstance(text, str):
        raise ArgumentTypeError(
            f"{argument} must be a text path, not {_type_name(text)}",
            argument=argument,
        )
    if not text or "\x00" in text:
        raise InvalidArgumentError(
            f"{argument} must be a non-empty path without NUL characters,"
            f" got {describe(text)}",
            argument=argument,
        )
    return value


def _check_id_text(value: object, argument: str, what: str) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(
            f"{argument} must be a string ({what}), not {_type_name(value)}"
            f" ({describe(value)})",
            argument=argument,
        )
    if not value or value != value.strip():
        raise InvalidArgumentError(
            f"{argument} must be a non-empty string without surrounding spaces"
            f" ({what}), got {describe(value)}",
            argument=argument,
        )
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgumentError(
            f"{argument} is {len(value)} characters long; at most {MAX_ID_LENGTH}"
            f" are accepted ({what}): {describe(value)}",
            argument=argument,
        )
    # isprintable() is False for control, format (zero-width), separator and
    # surrogate characters: NUL, tab, newline, DEL, U+2028, ...
    if not value.isprintable():
        raise InvalidArgumentError(
            f"{argument} must not contain control or invisible characters"
            f" ({what}), got {describe(value)}",
            argument=argument,
        )
    return value


def check_prediction_id(value: object, argument: str = "prediction_id") -> str:
    """
    Return ``value`` if it can name a prediction in a URL path.

    Raises:
        ArgumentTypeError: not a ``str``.
        InvalidArgumentError: empty, too long, with surrounding spaces, a
            control or invisible character, ``/``, ``\\`` or ``..``.
    """
    text = _check_id_text(value, argument, "a prediction id")
    if "/" in text or "\\" in text or ".." in text or text == ".":
        raise InvalidArgumentError(
            f"{argument} must not contain '/', '\\' or '..' (a prediction id is"
            f" one path segment), got {describe(text)}",
            argument=argument,
        )
    return text


def check_model_id(value: object, argument: str = "model") -> str:
    """
    Return ``value`` if it can name a model, e.g.
    ``"google/nano-banana-2/text-to-image"``.

    Raises:
        ArgumentTypeError: not a ``str``.
        InvalidArgumentError: empty, too long, with surrounding spaces, or a
            control or invisible character.
    """
    return _check_id_text(value, argument, "a model id")


def check_kind(value: object, argument: str = "kind") -> Kind:
    """
    Return ``value`` as a `Kind`: the enum, or ``"image"``, ``"video"``, ``"audio"``.

    Raises:
        ArgumentTypeError: neither a `Kind` nor a ``str``.
        InvalidArgumentError: an unknown name.
    """
    if isinstance(value, Kind):
        return value
    accepted = ", ".join(repr(kind.value) for kind in Kind)
    if not isinstance(value, str):
        raise ArgumentTypeError(
            f"{argument} must be a Kind or one of {accepted}, not"
            f" {_type_name(value)} ({describe(value)})",
            argument=argument,
        )
    try:
        return Kind(value.lower())
    except ValueError:
        raise InvalidArgumentError(
            f"unknown {argument} {describe(value)}: expected one of {accepted}",
            argument=argument,
        ) from None


def check_filename(value: object, argument: str = "filename") -> str | None:
    """
    Return ``value`` if it can be sent as an upload's file name (None stays None).

    The name goes into a multipart header: a line break there would end it.

    Raises:
        ArgumentTypeError: not a ``str``.
        InvalidArgumentError: empty, too long, or with a control character.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(
            f"{argument} must be a string, not {_type_name(value)} ({describe(value)})",
            argument=argument,
        )
    if not value.strip() or len(value) > MAX_FILENAME_LENGTH:
        raise InvalidArgumentError(
            f"{argument} must be 1 to {MAX_FILENAME_LENGTH} characters,"
            f" got {describe(value)}",
            argument=argument,
        )
    if not value.isprintable():
        raise InvalidArgumentError(
            f"{argument} must not contain control or invisible characters,"
            f" got {describe(value)}",
            argument=argument,
        )
    return value


def check_params(value: object, argument: str = "params") -> dict[str, Any]:
    """
    Return a model's parameters as a plain ``dict``, checked as JSON throughout.

    Raises:
        ArgumentTypeError: not a mapping; a key that is not a ``str`` (at any
            depth); a value JSON cannot carry (``bytes``, a set, a
            ``Decimal``, an arbitrary object).
        InvalidArgumentError: NaN or an infinite number, a string with a lone
            surrogate, a cycle, nesting deeper than `MAX_PARAM_DEPTH`, or a
            ``model`` parameter (the model is its own argument).
    """
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(
            f"{argument} must be a mapping of parameter names to values, not"
            f" {_type_name(value)} ({describe(value)})",
            argument=argument,
        )
    _check_json(value, argument, 0, set())
    if "model" in value:
        raise InvalidArgumentError(
            "'model' given as a parameter: pass it only as the model argument",
            argument=f"{argument}['model']",
        )
    return dict(value)


def _check_json(value: object, where: str, depth: int, active: set[int]) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(value, where)
        return
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidArgumentError(
                f"{where} must be a finite number (JSON has no NaN or infinity),"
                f" got {value!r}",
                argument=where,
            )
        return
    if not isinstance(value, (Mapping, list, tuple)):
        raise ArgumentTypeError(
            f"{where} must be a JSON value (str, int, float, bool, None, list or"
            f" mapping), not {_type_name(value)} ({describe(value)})",
            argument=where,
        )
    if depth >= MAX_PARAM_DEPTH:
        raise InvalidArgumentError(
            f"{where} nests deeper than {MAX_PARAM_DEPTH} levels",
            argument=where,
        )
    if id(value) in active:
        raise InvalidArgumentError(
            f"{where} contains itself (a circular reference)", argument=where
        )
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ArgumentTypeError(
                        f"{where} has a key of type {_type_name(key)}"
                        f" ({describe(key)}): parameter names must be strings",
                        argument=where,
                    )
                _check_text(key, where)
                _check_json(item, f"{where}[{key!r}]", depth + 1, active)
        else:
            for index, item in enumerate(value):
                _check_json(item, f"{where}[{index}]", depth + 1, active)
    finally:
        active.discard(id(value))


def _check_text(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            f"{where} is not valid Unicode text (a lone surrogate): {describe(text)}",
            argument=where,
        ) from None
