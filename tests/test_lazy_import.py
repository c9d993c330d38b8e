"""`import atlas_async` stays light: the heavy parts load when first used.

Each test runs a fresh interpreter, so what it finds in ``sys.modules`` is what
the import under test loaded (this process has loaded everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys

import atlas_async

# What a bare import must not load: the extras' libraries, and sqlite3 (only a
# batch journal needs it). httpx imports rich (and click) for its own command
# line when they are installed, so the client is imported on first use too.
HEAVY = (
    "sqlite3",
    "rich",
    "typer",
    "fastapi",
    "starlette",
    "uvicorn",
    "cryptography",
    "redis",
)


def loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the HEAVY modules it loaded."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_package_loads_nothing_heavy() -> None:
    """No sqlite3, rich, typer, fastapi, starlette, uvicorn or cryptography."""
    assert loaded_after("import atlas_async") == []


def test_a_client_without_a_coordinator_never_imports_redis() -> None:
    """Opening and closing a client with no coordinator loads no redis-py."""
    code = (
        "import anyio\n"
        "from atlas_async import AtlasClient\n"
        "async def main():\n"
        "    async with AtlasClient('k', base_url='http://127.0.0.1:9/api/v1'):\n"
        "        pass\n"
        "anyio.run(main)\n"
    )
    assert "redis" not in loaded_after(code)


def test_importing_the_cli_face_loads_nothing_heavy() -> None:
    """atlas_async.cli imports typer and rich only when a command runs."""
    assert loaded_after("import atlas_async.cli") == []


def test_the_client_is_imported_on_first_use() -> None:
    """A lazy name is not imported by the package, and is once it is asked for."""
    out = run_python(
        "import sys, atlas_async\n"
        "print('atlas_async._client' in sys.modules)\n"
        "from atlas_async import AtlasClient\n"
        "print('atlas_async._client' in sys.modules, AtlasClient.__name__)\n"
    )
    assert out.splitlines() == ["False", "True AtlasClient"]


def test_dir_lists_the_lazy_names_before_they_load() -> None:
    """Tab completion and dir() see the whole API from the start."""
    out = run_python(
        "import atlas_async\n"
        "names = set(dir(atlas_async))\n"
        "print(sorted(set(atlas_async.__all__) - names))\n"
    )
    assert out.strip() == "[]"


def test_the_whole_api_works_without_any_extra() -> None:
    """With every extra's library blocked, each public name still resolves."""
    extras = ("starlette", "uvicorn", "fastapi", "typer", "rich", "cryptography")
    out = run_python(
        "import sys\n"
        f"for name in {extras!r}: sys.modules[name] = None\n"
        "import atlas_async\n"
        "print(sum(1 for n in atlas_async.__all__ if getattr(atlas_async, n)))\n"
    )
    assert int(out) == len(atlas_async.__all__)
