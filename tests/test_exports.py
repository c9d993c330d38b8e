"""The public surface: what `import atlas_async` offers, and that it is documented."""

from __future__ import annotations

import inspect

import atlas_async


class TestExports:
    def test_all_lists_exactly_the_public_names(self) -> None:
        """Every public name of the package (loaded or lazy) is in __all__, and no
        more."""
        public = {
            name
            for name in dir(atlas_async)
            if not name.startswith("_")
            and not inspect.ismodule(getattr(atlas_async, name))
            and name != "annotations"
        }
        assert sorted(public) == sorted(atlas_async.__all__)

    def test_every_name_in_all_resolves(self) -> None:
        """Lazy or not, each exported name gives an object, also by from-import."""
        from atlas_async import AtlasClient, Journal, as_completed

        assert all(
            getattr(atlas_async, name) is not None for name in atlas_async.__all__
        )
        assert (AtlasClient, Journal, as_completed) == (
            atlas_async.AtlasClient,
            atlas_async.Journal,
            atlas_async.as_completed,
        )

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
        """Module __getattr__ serves only __version__ and the lazy names."""
        import pytest

        with pytest.raises(AttributeError, match="no_such_name"):
            _ = atlas_async.no_such_name
