"""
The house's dependency rules, checked from the source: every import of every
module of ``atlas_async`` points down the layer table of docs/architecture.md.

| layer        | may import                                   |
|--------------|----------------------------------------------|
| ``_core``    | stdlib, attrs (no I/O, no clock, no global random) |
| ``_wire``    | ``_core``, cattrs                            |
| ``_net``     | ``_core``, ``_wire``, httpx, anyio, ...      |
| ``_ops``     | ``_core``, ``_wire``, ``_net``               |
| ``_batch``   | the three below it                           |
| ``_client``  | every layer                                  |
| faces        | ``_client`` and every layer                  |
| ``emulator`` | nothing of ``atlas_async`` outside itself    |

Imports under ``if TYPE_CHECKING:`` never run and are not counted, except that
the emulator may not name the SDK even there. An import inside a function counts:
a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "atlas_async"

# Lower layers first; a module may import its own layer and any earlier one.
ORDER = ("_core", "_wire", "_net", "_ops", "_batch", "_client", "face")
FACES = {"__init__", "cli", "fastapi", "webhooks", "testing", "_cli"}
# What each layer may import from outside the standard library.
THIRD_PARTY: dict[str, frozenset[str]] = {
    "_core": frozenset({"attrs"}),
    "_wire": frozenset({"attrs", "cattrs"}),
}
# Never in _core, whatever the table says: the I/O and the clock.
CORE_FORBIDDEN = frozenset(
    {"httpx", "anyio", "asyncio", "trio", "time", "socket", "aiohttp", "sniffio"}
)
STDLIB_ONLY_SKIP = frozenset({"__future__", "typing", "typing_extensions"})

# Known exceptions, each with its reason; the list only ever shrinks.
ALLOWED: dict[tuple[str, str], str] = {}


def _layer(module: str) -> str:
    """``atlas_async._net.session`` -> ``_net``; faces and ``_cli`` -> ``face``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "face"
    top = parts[1]
    if top == "emulator":
        return "emulator"
    if top in FACES:
        return "face"
    return top


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _typing_only(tree: ast.AST) -> set[int]:
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                guarded.update(id(inner) for inner in ast.walk(statement))
    return guarded


def _targets(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The absolute names an import statement reaches."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        if not is_package:
            parts = parts[:-1]
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """Every name ``module`` imports, with whether it is under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _typing_only(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(module, path.name == "__init__.py", node):
                found.append((target, id(node) in typing_only))
    return found


def _owner(target: str, modules: dict[str, Path]) -> str | None:
    """The package module a dotted name lives in, or None for a third party."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def violations() -> list[str]:
    """Each import that breaks the table, as ``module -> target: why``."""
    modules = _modules()
    problems: list[str] = []
    for module, path in modules.items():
        layer = _layer(module)
        for target, typing_only in imports(module, path):
            top = target.split(".")[0]
            owner = _owner(target, modules) if top == "atlas_async" else None
            why = _why(layer, module, target, top, owner, typing_only)
            if why and (module, owner or top) not in ALLOWED:
                problems.append(f"{module} -> {owner or target}: {why}")
    return sorted(set(problems))


def _why(
    layer: str,
    module: str,
    target: str,
    top: str,
    owner: str | None,
    typing_only: bool,
) -> str | None:
    if layer == "emulator":
        if top == "atlas_async" and owner and _layer(owner) != "emulator":
            return "the emulator is a separate program"
        return None
    if typing_only:
        return None
    if top != "atlas_async":
        if layer == "_core" and top in CORE_FORBIDDEN:
            return "_core does no I/O and reads no clock"
        allowed = THIRD_PARTY.get(layer)
        if allowed is not None and top not in allowed and not _stdlib(top):
            return f"{layer} may not import {top}"
        if (
            layer in ("_core", "_wire")
            and top == "random"
            and target not in ("random", "random.Random")
        ):
            return "only an injected random.Random, never the global one"
        return None
    if owner is None or (owner == "atlas_async" and layer != "face"):
        return None if owner is None else f"{layer} imports the public face"
    target_layer = _layer(owner)
    if target_layer == "emulator":
        return None if layer == "face" else "only faces may start the emulator"
    if ORDER.index(target_layer) > ORDER.index(layer):
        return f"{layer} may not import {target_layer} (a higher layer)"
    return None


def _stdlib(name: str) -> bool:
    import sys

    return name in sys.stdlib_module_names or name in STDLIB_ONLY_SKIP


def test_every_import_points_down_the_layer_table() -> None:
    """No module imports a layer above its own; the emulator imports no SDK code."""
    assert violations() == []


def test_allowlist_entries_are_still_needed() -> None:
    """An exception that no longer happens is removed, so the list only shrinks."""
    modules = _modules()
    seen = {
        (module, _owner(target, modules) or target.split(".")[0])
        for module, path in modules.items()
        for target, _ in imports(module, path)
    }
    assert [key for key in ALLOWED if key not in seen] == []


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("atlas_async", "face"),
        ("atlas_async.webhooks", "face"),
        ("atlas_async._cli.batch", "face"),
        ("atlas_async._core.errors", "_core"),
        ("atlas_async._net.session", "_net"),
        ("atlas_async._client", "_client"),
        ("atlas_async.emulator._state", "emulator"),
    ],
)
def test_modules_map_to_their_layer(module: str, layer: str) -> None:
    """The layer of a module is read from its package path."""
    assert _layer(module) == layer


def test_a_core_module_importing_io_is_caught(tmp_path: Path) -> None:
    """The checker itself flags an I/O import in _core (it can fail)."""
    assert _why("_core", "atlas_async._core.x", "time", "time", None, False)
    assert _why("_core", "atlas_async._core.x", "attrs", "attrs", None, False) is None
    assert _why("_wire", "atlas_async._wire.x", "httpx", "httpx", None, False)
    assert (
        _why(
            "_net",
            "atlas_async._net.x",
            "atlas_async._ops.scheduler",
            "atlas_async",
            "atlas_async._ops.scheduler",
            False,
        )
        is not None
    )
    assert (
        _why(
            "emulator",
            "atlas_async.emulator._x",
            "atlas_async._core.models",
            "atlas_async",
            "atlas_async._core.models",
            True,
        )
        is not None
    )
