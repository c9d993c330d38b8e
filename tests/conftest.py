"""Shared fixtures: every test starts from an environment without Atlas settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_atlas_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Hide the developer's own ATLASCLOUD_* settings (and coordinator) from every
    test; what a test sets there (the CLI's ``--coordinator``) is undone after.
    """
    for name in (
        "ATLASCLOUD_API_KEY",
        "ATLASCLOUD_BASE_URL",
        "ATLAS_ASYNC_COORDINATOR",
    ):
        # Set first, so that the teardown removes whatever the test left there
        # (delenv alone records nothing for a variable that was not set).
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
