"""The `python` examples of docs/testing.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    """docs/testing.md keeps its runnable examples."""
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(
    "source", BLOCKS, ids=[f"block-{i}" for i in range(len(BLOCKS))]
)
def test_example_runs(source: str) -> None:
    """Each python block runs to the end without an error."""
    exec(compile(source, str(DOC), "exec"), {"__name__": "__docs__"})
