"""
Reading a batch from a file: JSON Lines of requests, or one prompt per line.

Theory of operation
-------------------
Two formats, told apart by the suffix (``.jsonl``, ``.ndjson``, ``.json``: JSON
Lines; ``.txt``: prompts) or else by the first meaningful line (``{`` starts
JSON Lines). In both, blank lines and lines starting with ``#`` are skipped.

* JSON Lines: one object per line, ``{"kind": "video", "model": ..., **params}``.
  ``kind`` defaults to the ``kind`` option (image); ``model`` to the ``model``
  option, then to `DEFAULT_MODELS` for the kind.
* Prompts: each line is a ``prompt`` for the ``model`` option (or the kind's
  default model).

A line that cannot become a request (not UTF-8, not JSON, not an object, a bad
kind) is not fatal: it becomes a `RequestProblem` with its line number, and the
other lines still run. `load_requests` keeps the bytes that are not UTF-8 as
lone surrogates (``surrogateescape``), so one bad byte costs its line only.
Refused whole, with a `ConfigurationError`: a file with NUL bytes (not text at
all), and a file with no request and no problem at all (empty, or only
comments).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from .._core.errors import ConfigurationError
from .._core.models import Kind
from .types import GenerationRequest

__all__ = [
    "DEFAULT_MODELS",
    "ParsedRequests",
    "RequestProblem",
    "load_requests",
    "parse_requests",
]

#: The model a request gets when it names none, per kind (all in the emulator's
#: catalog, so ``--emulator`` runs need no ``--model``).
DEFAULT_MODELS: Mapping[Kind, str] = {
    Kind.IMAGE: "google/nano-banana-2/text-to-image",
    Kind.VIDEO: "bytedance/seedance-2.0/text-to-video",
    Kind.AUDIO: "bytedance/seed-audio-1.0",
}

Format = Literal["jsonl", "prompts"]
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


@attrs.frozen
class RequestProblem:
    """A line that could not become a request: its number (from 1) and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@attrs.frozen(kw_only=True)
class ParsedRequests:
    """
    What a file held.

    Attributes:
        requests: the valid requests, in file order.
        lines: the line number of each request (same order).
        problems: the lines that could not become requests.
        format: ``"jsonl"`` or ``"prompts"``.
    """

    requests: tuple[GenerationRequest, ...]
    lines: tuple[int, ...]
    problems: tuple[RequestProblem, ...]
    format: Format

    @property
    def total(self) -> int:
        """Requests plus problems: every line that meant something."""
        return len(self.requests) + len(self.problems)


def _default_model(kind: Kind, model: str | None) -> str:
    return model if model is not None else DEFAULT_MODELS[kind]


def _from_json(text: str, kind: Kind, model: str | None) -> GenerationRequest:
    try:
        item = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"not valid JSON ({exc})") from None
    if not isinstance(item, dict):
        raise ConfigurationError(
            f'expected a JSON object like {{"model": ..., "prompt": ...}}, '
            f"got {type(item).__name__}"
        )
    item_kind = Kind.coerce(item.get("kind", kind))
    return GenerationRequest.from_mapping(
        item, kind=item_kind, model=_default_model(item_kind, model)
    )


def _check_text(line: str) -> None:
    """Refuse a line holding bytes that were not UTF-8 (`load_requests` keeps
    them as lone surrogates), naming the first such byte."""
    for column, char in enumerate(line, start=1):
        if "\udc80" <= char <= "\udcff":
            byte = ord(char) - 0xDC00
            raise ConfigurationError(
                f"not UTF-8 text (byte 0x{byte:02x} at column {column}): save the"
                " file as UTF-8"
            )


def _sniff(lines: list[tuple[int, str]], suffix: str) -> Format:
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".txt" or not lines:
        return "prompts"
    return "jsonl" if lines[0][1].startswith("{") else "prompts"


def parse_requests(
    text: str,
    *,
    kind: Kind | str | None = None,
    model: str | None = None,
    format: Format | None = None,
    suffix: str = "",
) -> ParsedRequests:
    """
    Parse a batch file's text; see the module docstring for the two formats.

    Example::

        parsed = parse_requests("a red fox\\n# skipped\\na snowy owl\\n")
        assert [r.params["prompt"] for r in parsed.requests] == ["a red fox",
                                                                "a snowy owl"]

    Args:
        text: the file's content.
        kind: the default kind (image).
        model: the default model (else `DEFAULT_MODELS` for the kind).
        format: ``"jsonl"`` or ``"prompts"``; None guesses.
        suffix: the file's suffix, for guessing the format.

    Raises:
        ConfigurationError: a bad ``kind`` or ``model`` option, or no request at
            all (an empty file, or only comments).
    """
    default_kind = Kind.coerce(kind if kind is not None else Kind.IMAGE)
    if model is not None and not model.strip():
        raise ConfigurationError("the model must not be empty")
    meaningful = [
        (number, stripped)
        for number, line in enumerate(text.splitlines(), start=1)
        if (stripped := line.strip()) and not stripped.startswith("#")
    ]
    chosen = format or _sniff(meaningful, suffix.lower())
    requests: list[GenerationRequest] = []
    numbers: list[int] = []
    problems: list[RequestProblem] = []
    for number, line in meaningful:
        try:
            _check_text(line)
            if chosen == "jsonl":
                request = _from_json(line, default_kind, model)
            else:
                chosen_model = _default_model(default_kind, model)
                request = GenerationRequest(
                    default_kind, chosen_model, {"prompt": line}
                )
        except ConfigurationError as exc:
            problems.append(RequestProblem(number, str(exc)))
            continue
        requests.append(request)
        numbers.append(number)
    if not meaningful:
        raise ConfigurationError(
            "no requests: every line is blank or a # comment (expected one "
            "prompt per line, or one JSON object per line)"
        )
    return ParsedRequests(
        requests=tuple(requests),
        lines=tuple(numbers),
        problems=tuple(problems),
        format=chosen,
    )


def load_requests(
    path: str | os.PathLike[str],
    *,
    kind: Kind | str | None = None,
    model: str | None = None,
    format: Format | None = None,
) -> ParsedRequests:
    """
    Read and parse a batch file (UTF-8); see `parse_requests`.

    A line that is not UTF-8 is one problem (its line number, the byte); the
    other lines are read as usual.

    Raises:
        OSError: the file cannot be read.
        ConfigurationError: not text (NUL bytes), no request at all, or a bad
            option; the message names the file.
    """
    file = Path(path)
    data = file.read_bytes()
    if b"\x00" in data:
        raise ConfigurationError(
            f"{file} is not text (byte {data.index(0)} is NUL): expected prompts"
            " or JSON Lines, in UTF-8"
        )
    text = data.decode("utf-8-sig", errors="surrogateescape")
    try:
        return parse_requests(
            text, kind=kind, model=model, format=format, suffix=file.suffix
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"{file}: {exc}") from None
