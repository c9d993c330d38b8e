"""
Every ``python`` code block in the README and docs/ runs here, against the
emulator over a real socket.

A block runs as written, with top-level ``await`` allowed, in a namespace that
holds what the surrounding prose assumes: ``atlas`` (the package), an open
``client``, a ``model``, a ``prompt``, ``prompts``, an input image ``url``, an
``httpx.AsyncClient`` named ``http``, the emulator's ``jwks_url``, and
``cat.png`` in the working directory. ``ATLASCLOUD_API_KEY`` and
``ATLASCLOUD_BASE_URL`` point at the emulator, so ``atlas.AtlasClient()`` works
as the docs show it. A block that is a whole script (it ends in
``asyncio.run(main())``) runs on its own event loop in a thread, as a user would
run it. Blocks that are not meant to run are fenced as ``text`` (signatures and
API listings); a block fenced ``python`` is a promise that it runs.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
import pytest_asyncio

import atlas_async as atlas

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
IMAGE_MODEL = "google/nano-banana-2/text-to-image"
RUNS_ITS_OWN_LOOP = re.compile(r"^(asyncio|anyio|trio)\.run\(", re.MULTILINE)


def _blocks() -> Iterator[Any]:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            rel = page.relative_to(ROOT)
            yield pytest.param(match.group(1), id=f"{rel}:{line}")


@pytest_asyncio.fixture
async def emulator_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[str]:
    """An emulator on a loopback socket, fast, and the env pointing at it."""
    from atlas_async.emulator import EmulatorConfig, serve

    async with serve(EmulatorConfig(time_scale=200.0, seed=7)) as emu:
        monkeypatch.setenv("ATLASCLOUD_API_KEY", "sk-docs-example")
        monkeypatch.setenv("ATLASCLOUD_BASE_URL", emu.base_url)
        monkeypatch.chdir(tmp_path)
        yield emu.base_url


def _png() -> bytes:
    from atlas_async.emulator._media import digest, png

    return png(digest("a cat"), 16, 16)


@pytest.mark.parametrize("source", list(_blocks()))
async def test_doc_example_runs(source: str, emulator_env: str) -> None:
    """The example runs against the emulator without raising."""
    (Path.cwd() / "cat.png").write_bytes(_png())
    if RUNS_ITS_OWN_LOOP.search(source):
        # A whole script (``asyncio.run(main())``): run it as a user would, on
        # a loop of its own in another thread, while ours serves the emulator.
        script = compile(source, "<doc example>", "exec")
        await anyio.to_thread.run_sync(exec, script, {"__name__": "__main__"})
        return
    code = compile(
        source, "<doc example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    async with atlas.AtlasClient() as client, httpx.AsyncClient() as http:
        media = await client.upload_media("cat.png")
        namespace: dict[str, Any] = {
            "__name__": "doc_example",
            "atlas": atlas,
            "client": client,
            "model": IMAGE_MODEL,
            "prompt": "a red fox in the snow",
            "prompts": ["a red fox", "a lighthouse", "a bowl of ramen"],
            "url": media.url,
            "http": http,
            "jwks_url": f"{emulator_env}/webhooks/jwks.json",
        }
        result = eval(code, namespace)
        if isinstance(result, types.CoroutineType):
            await result
