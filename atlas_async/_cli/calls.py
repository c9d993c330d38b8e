"""
The one-request commands: ``generate``, ``get``, ``wait``, ``upload``, ``models``.

Each is a coroutine that opens a client (`open_client`), makes its call, and
prints the answer: readable lines by default, one JSON object per line with
``--json``. Errors are not handled here: they propagate to `_cli_run.run`, which
prints one line and picks the exit code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._batch.input import DEFAULT_MODELS
from .._batch.types import GenerationRequest
from .._client import AtlasClient
from .._core.errors import ConfigurationError
from .._core.models import Kind, Prediction
from .._ops.download import prepare_directory
from .live import show_wait
from .run import (
    EXIT_OK,
    Connection,
    json_line,
    on_interrupt,
    prediction_json,
    shown_path,
    with_client,
)

__all__ = [
    "UPLOAD_LIMIT_BYTES",
    "parse_params",
    "run_generate",
    "run_get",
    "run_models",
    "run_upload",
    "run_wait",
]


UPLOAD_LIMIT_BYTES = 50 * 2**20  # above this Atlas answers 413 (docs/wire.md)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """
    Turn ``KEY=VALUE`` options into parameters; a VALUE that parses as JSON is
    used as such (``num_images=2``, ``seed=null``), otherwise it is a string.

    Raises:
        ConfigurationError: an item without ``=`` or with an empty name.
    """
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"--param wants NAME=VALUE, got {item!r}")
        try:
            params[name.strip()] = json.loads(raw)
        except ValueError:
            params[name.strip()] = raw
    return params


def _print_prediction(prediction: Prediction, as_json: bool, **extra: Any) -> None:
    if as_json:
        json_line({**prediction_json(prediction), **extra})
        return
    console = _console()
    console.print(
        f"{prediction.id}  {prediction.status.value}  {prediction.model or ''}"
    )
    for output in prediction.outputs:
        console.print(
            f"  {escape(output if len(output) < 200 else output[:200] + '…')}"
        )
    if prediction.error:
        console.print(f"  error: {escape(prediction.error)}")


async def run_generate(
    conn: Connection,
    prompt: str,
    *,
    kind: str,
    model: str | None,
    out: Path,
    timeout: float | None,
    params: Sequence[str],
    as_json: bool,
) -> int:
    """Submit one prompt, wait, save the outputs, print their paths."""
    chosen = Kind.coerce(kind)
    request = GenerationRequest(
        chosen,
        model or DEFAULT_MODELS[chosen],
        {"prompt": prompt, **parse_params(params)},
    )
    conn.require_key()
    directory = await anyio.to_thread.run_sync(prepare_directory, out)

    async def call(client: AtlasClient) -> tuple[Prediction, list[Path]]:
        future = await client.submit(
            request.kind, request.model, timeout=timeout, params=request.params
        )
        on_interrupt(_follow_up(conn, future.id, request.kind))
        await show_wait(future, conn.clock)
        prediction = await future
        return prediction, await client.download(prediction, directory)

    prediction, files = await with_client(conn, call)
    if as_json:
        json_line({**prediction_json(prediction), "files": [str(f) for f in files]})
    else:
        console = _console()
        for file in files:
            console.print(escape(shown_path(file)))
    return EXIT_OK


def _follow_up(conn: Connection, prediction_id: str, kind: Kind) -> str:
    """What to do about a submitted prediction whose wait was interrupted."""
    if conn.emulator is not None:
        return f"prediction {prediction_id} was on this run's emulator, gone with it"
    kind_option = "" if kind is Kind.IMAGE else f" --kind {kind.value}"
    return (
        f"prediction {prediction_id} goes on at Atlas, and is billed: follow it"
        f" with  atlas-async wait {prediction_id}{kind_option}"
    )


async def run_get(conn: Connection, prediction_id: str, *, as_json: bool) -> int:
    """Print a prediction's current state (one GET, no waiting)."""
    prediction = await with_client(
        conn, lambda client: client.get_prediction(prediction_id)
    )
    _print_prediction(prediction, as_json)
    return EXIT_OK


async def run_wait(
    conn: Connection,
    prediction_id: str,
    *,
    kind: str,
    timeout: float | None,
    as_json: bool,
) -> int:
    """Follow a prediction until it ends; print it (a failure is exit 1)."""

    async def call(client: AtlasClient) -> Prediction:
        future = client.attach(prediction_id, kind=kind, timeout=timeout)
        on_interrupt(
            "the prediction goes on at Atlas: run the same command again to wait"
        )
        await show_wait(future, conn.clock, submitted=False)
        return await future

    prediction = await with_client(conn, call)
    _print_prediction(prediction, as_json)
    return EXIT_OK


async def run_upload(conn: Connection, file: Path, *, as_json: bool) -> int:
    """Upload a local file and print the URL to pass as a model input."""
    conn.require_key()
    size = (await anyio.to_thread.run_sync(file.stat)).st_size
    if size > UPLOAD_LIMIT_BYTES:
        # Atlas reads the whole body before its 413: refuse before sending it.
        raise ConfigurationError(
            f"{file} is {size / 2**20:.1f} MB, over the API's upload limit of"
            f" {UPLOAD_LIMIT_BYTES // 2**20} MB: send a smaller file, or pass a"
            " URL where the model takes one"
        )
    media = await with_client(conn, lambda client: client.upload_media(file))
    if as_json:
        json_line(
            {
                "url": media.url,
                "filename": media.filename,
                "size": media.size,
                "content_type": media.content_type,
            }
        )
    else:
        _console().print(escape(media.url))
    return EXIT_OK


async def run_models(conn: Connection, *, kind: str | None, as_json: bool) -> int:
    """List the model catalog (no key needed), optionally one kind only."""
    wanted = None if kind is None else Kind.coerce(kind)
    models = await with_client(
        conn, lambda client: client.list_models(), needs_key=False
    )
    chosen = [m for m in models if wanted is None or m.kind is wanted]
    if as_json:
        for info in chosen:
            json_line(
                {
                    "model": info.model,
                    "kind": None if info.kind is None else info.kind.value,
                    "type": info.type,
                    "display_name": info.display_name,
                }
            )
        return EXIT_OK
    table = Table("model", "kind", "name", box=None, pad_edge=False)
    for info in chosen:
        table.add_row(
            escape(info.model),
            "" if info.kind is None else info.kind.value,
            escape(info.display_name or ""),
        )
    _console().print(table)
    return EXIT_OK
