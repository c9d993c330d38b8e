"""Pure modules import no I/O: no network, event loop, clock, or global random."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "atlas_async"

# The modules architecture.md calls pure, plus the helpers split out of _wire.
# Some are written by other people and may not exist yet: only present ones run.
CANDIDATES = (
    "_wire",
    "_wire_errors",
    "_wire_values",
    "_convert",
    "_models",
    "_errors",
    "_backoff",
    "_schedule",
    "_ratelimit",
    "_config",
)
# Every pure module must exist: a renamed module must not silently drop out.
PURE = list(CANDIDATES)

FORBIDDEN = frozenset({"httpx", "anyio", "asyncio", "trio", "time", "socket", "random"})


def _typing_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``, which never run."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                guarded.update(id(inner) for inner in ast.walk(statement))
    return guarded


def _only_random_class(tree: ast.Module, name: str) -> bool:
    """True when the module ``name`` is used only as ``name.Random``."""
    through_class = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == name
        and node.attr == "Random"
    }
    return all(
        id(node) in through_class
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == name
    )


def _sibling_targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules an import runs (``__init__`` for the package itself)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level == 1:
        return [node.module] if node.module else [a.name for a in node.names]
    elif node.module is not None:
        names = [node.module]
    else:  # "from .. import x" leaves the package: nothing of ours to follow
        return []
    parts = [name.split(".") for name in names]
    return [p[1] if len(p) > 1 else "__init__" for p in parts if p[0] == "atlas_async"]


def violations(
    source: str,
    *,
    resolve: dict[str, str] | None = None,
    seen: frozenset[str] = frozenset(),
) -> list[str]:
    """
    The I/O imports in ``source``, as readable strings; empty when pure.

    ``random`` is allowed only for its ``Random`` class (an injected, seeded
    generator: ``from random import Random``, or ``import random`` used only as
    ``random.Random``) or under ``TYPE_CHECKING``; its global functions are not.
    Imports of package modules are followed through ``resolve`` (module name to
    its source), transitively, so a pure module cannot reach I/O through the
    package either.
    """
    tree = ast.parse(source)
    typing_only = _typing_only(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                allowed = top == "random" and (
                    id(node) in typing_only
                    or _only_random_class(tree, alias.asname or alias.name)
                )
                if top in FORBIDDEN and not allowed:
                    found.append(f"import {alias.name}")
        elif node.level == 0 and node.module:
            top = node.module.split(".")[0]
            names = {alias.name for alias in node.names}
            allowed = top == "random" and (
                names == {"Random"} or id(node) in typing_only
            )
            if top in FORBIDDEN and not allowed:
                found.append(f"from {node.module} import {', '.join(sorted(names))}")
        if id(node) in typing_only:
            continue
        for target in _sibling_targets(node):
            sibling = (resolve or {}).get(target)
            if sibling is not None and target not in seen:
                inner = violations(sibling, resolve=resolve, seen=seen | {target})
                found += [f"{target}: {problem}" for problem in inner]
    return found


def _siblings() -> dict[str, str]:
    return {path.stem: path.read_text() for path in PACKAGE.glob("*.py")}


class TestPureImports:
    def test_wire_and_convert_are_checked(self) -> None:
        """The contract's pure modules are in the checked set, so it is never empty."""
        assert {"_wire", "_wire_errors", "_wire_values", "_convert"} <= set(PURE)

    @pytest.mark.parametrize("module", PURE)
    def test_module_imports_no_io(self, module: str) -> None:
        """The module, and the package modules it imports, import no I/O."""
        siblings = _siblings()
        assert violations(siblings[module], resolve=siblings) == []


class TestChecker:
    @pytest.mark.parametrize(
        ("source", "found"),
        [
            pytest.param("import time", ["import time"], id="time"),
            pytest.param("import asyncio.subprocess", ["import asyncio.subprocess"]),
            pytest.param("import httpx as h", ["import httpx"], id="aliased"),
            pytest.param("from anyio import sleep", ["from anyio import sleep"]),
            pytest.param("from socket import socket", ["from socket import socket"]),
            pytest.param(
                "def f():\n    import trio\n", ["import trio"], id="inside-function"
            ),
            pytest.param(
                "import random\nrandom.uniform(0, 1)\n",
                ["import random"],
                id="global-random",
            ),
            pytest.param(
                "import random as r\nx: r.Random = r.Random(r.random())\n",
                ["import random"],
                id="aliased-global-random",
            ),
            pytest.param(
                "import random\nuse(random)\n", ["import random"], id="random-module"
            ),
            pytest.param(
                "from random import Random, random",
                ["from random import Random, random"],
                id="random-function",
            ),
            pytest.param(
                "if TYPE_CHECKING:\n    import httpx\n",
                ["import httpx"],
                id="typing-only-httpx",
            ),
        ],
    )
    def test_io_imports_are_found(self, source: str, found: list[str]) -> None:
        """Each I/O import, however written, is reported."""
        assert violations(source) == found

    @pytest.mark.parametrize(
        "source",
        [
            pytest.param("from random import Random", id="injected-random"),
            pytest.param(
                "import random\ndef f(rng: random.Random) -> None: ...\n",
                id="random-in-annotations",
            ),
            pytest.param("import random\nrng = random.Random(7)\n", id="seeded"),
            pytest.param(
                "if TYPE_CHECKING:\n    import random\n", id="typing-only-random"
            ),
            pytest.param(
                "if typing.TYPE_CHECKING:\n    from random import choice\n",
                id="typing-only-from-random",
            ),
            pytest.param("import timeit, email.utils, json", id="look-alikes"),
            pytest.param("from .time import x", id="relative-unknown"),
            pytest.param("from .. import x", id="parent-package"),
        ],
    )
    def test_pure_imports_pass(self, source: str) -> None:
        """A seeded Random, typing-only imports and look-alike names are allowed."""
        assert violations(source) == []

    @pytest.mark.parametrize(
        "source",
        [
            pytest.param("from . import _clock", id="relative-module"),
            pytest.param("from ._clock import Clock", id="relative-name"),
            pytest.param("from atlas_async._clock import Clock", id="absolute"),
            pytest.param("import atlas_async._clock", id="absolute-import"),
        ],
    )
    def test_io_reached_through_a_sibling_is_found(self, source: str) -> None:
        """Importing a package module that imports anyio is reported."""
        resolve = {"_clock": "import anyio\n"}
        assert violations(source, resolve=resolve) == ["_clock: import anyio"]

    def test_io_reached_transitively_is_found(self) -> None:
        """The chain is followed: a pure-looking sibling that imports I/O counts."""
        resolve = {
            "__init__": "from ._b import x\n",
            "_b": "from . import _a\nimport time\n",
            "_a": "from ._b import y\n",  # a cycle: _b is not entered twice
        }
        assert violations("import atlas_async", resolve=resolve) == [
            "__init__: _b: import time"
        ]

    def test_typing_only_sibling_imports_are_not_followed(self) -> None:
        """A package import under TYPE_CHECKING never runs, so it is not followed."""
        resolve = {"_clock": "import anyio\n"}
        source = "if TYPE_CHECKING:\n    from ._clock import Clock\n"
        assert violations(source, resolve=resolve) == []
