"""The README as a new user reads it: runnable, with the way to the emulator and help.

`test_doc_examples` runs every ``python`` block; these tests pin what a first
reader needs from the page around them: the first snippet is a whole script,
the way to reach the emulator is written down, the migration and
troubleshooting pages exist and are linked and in the site's table of contents,
and the two commands at the top (what CI and a new user run first) stay as
they are.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FIRST_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -e '.[all]' && .venv/bin/"
    "atlas-async batch examples/prompts.txt --emulator --time-scale 20 --out out/",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/"
    "python -m pytest --cov",
]


def test_the_first_python_snippet_is_a_script() -> None:
    """Problem 7: it runs with ``python fox.py``: no top-level ``async with``."""
    first = re.search(r"```python\n(.*?)```", README, re.DOTALL)
    assert first is not None
    code = first[1]
    assert code.rstrip().endswith("asyncio.run(main())")
    assert "import asyncio" in code
    assert not re.search(r"^(async with|await) ", code, re.MULTILINE)
    compile(code, "README.md", "exec")  # valid without top-level await


def test_it_says_how_to_point_at_the_emulator() -> None:
    """Problem 7: the base URL, both as an option and as the environment variable."""
    assert "ATLASCLOUD_BASE_URL=http://127.0.0.1:8787/api/v1" in README
    assert "AtlasClient(base_url=...)" in README
    assert "atlas-async emulator --port 8787" in README


def test_the_migration_and_troubleshooting_pages_are_linked_and_listed() -> None:
    """Problem 7: both pages exist, the README links them, Sphinx lists them."""
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in ("migrating", "troubleshooting"):
        assert (ROOT / "docs" / f"{page}.md").is_file()
        assert f"(docs/{page}.md)" in README
        assert re.search(rf"^{page}$", index, re.MULTILINE), page
    migrating = (ROOT / "docs" / "migrating.md").read_text(encoding="utf-8")
    assert "requests.post" in migrating
    assert "time.sleep" in migrating
    troubleshooting = (ROOT / "docs" / "troubleshooting.md").read_text("utf-8")
    for topic in ("401", "404", "402", "429", "SubmissionUnknownError", "long"):
        assert topic in troubleshooting, topic


def test_the_first_two_commands_stay_as_they_are() -> None:
    """CI and a new user start with them: they are the page's first lines of code."""
    block = re.search(r"```bash\n(.*?)```", README, re.DOTALL)
    assert block is not None
    assert block[1].splitlines() == FIRST_COMMANDS
