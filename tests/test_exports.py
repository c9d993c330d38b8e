"""The public surface: what `import atlas_async` offers, and that it is documented."""

from __future__ import annotations

import inspect

import atlas_async


class TestExports:
    def test_all_lists_exactly_the_public_names(self) -> None:
        """Every public name in the package namespace is in __all__, and no more."""
        public = {
            name
            for name, value in vars(atlas_async).items()
            if not name.startswith("_")
            and not inspect.ismodule(value)
            and name not in {"annotations", "Any"}
        }
        assert sorted(public) == sorted(atlas_async.__all__)

    def test_all_has_no_duplicates(self) -> None:
        """Each name is exported once."""
        assert len(set(atlas_async.__all__)) == len(atlas_async.__all__)

    def test_every_export_has_a_docstring(self) -> None:
        """Each exported class or function documents itself."""
        undocumented = [
            name
            for name in atlas_async.__all__
            if not (inspect.getdoc(getattr(atlas_async, name)) or "").strip()
        ]
        assert undocumented == []

    def test_errors_derive_from_atlas_error(self) -> None:
        """Every exported exception is an AtlasError: one except clause catches all."""
        errors = [
            value
            for name in atlas_async.__all__
            if isinstance(value := getattr(atlas_async, name), type)
            and issubclass(value, BaseException)
        ]
        assert errors
        assert all(issubclass(error, atlas_async.AtlasError) for error in errors)


class TestPackaging:
    def test_version_matches_the_installed_metadata(self) -> None:
        """__version__ comes from the package metadata, not a second copy."""
        from importlib.metadata import version

        assert atlas_async.__version__ == version("atlas-async")

    def test_unknown_attribute_raises_attribute_error(self) -> None:
        """Module __getattr__ serves only __version__."""
        import pytest

        with pytest.raises(AttributeError, match="no_such_name"):
            _ = atlas_async.no_such_name

    def test_importing_the_package_needs_only_core_dependencies(self) -> None:
        """The extras (emulator, CLI, FastAPI) are not imported by the package."""
        import subprocess
        import sys

        # Block the extras' libraries outright: importing one raises ImportError.
        # (httpx itself imports rich when it happens to be installed, so a plain
        # look at sys.modules would blame us for httpx's optional CLI.)
        extras = ("starlette", "uvicorn", "fastapi", "typer", "rich", "cryptography")
        code = (
            "import sys\n"
            f"for name in {extras!r}: sys.modules[name] = None\n"
            "import atlas_async\n"
            "print(len(atlas_async.__all__))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        assert int(out.stdout) == len(atlas_async.__all__)
