"""Import the example programs under examples/ (not a package) for tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(filename: str, module_name: str) -> ModuleType:
    """
    Import ``examples/<filename>`` as a fresh module named ``module_name``.

    Each test module loads its own copy (its own name), so app-level state such
    as the example's FastAPI app is never shared between test files.
    """
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / filename)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
