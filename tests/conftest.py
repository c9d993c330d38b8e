"""Shared fixtures: every test starts from an environment without Atlas settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_atlas_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the developer's own ATLASCLOUD_* settings from every test."""
    for name in ("ATLASCLOUD_API_KEY", "ATLASCLOUD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
