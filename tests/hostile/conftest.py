"""
Fixtures: the hostile server (`server.HostileServer`) in the test's event loop,
and the two transports the SDK builds its HTTP client on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from atlas_async import AtlasClient, BackoffPolicy, FixedPolicy

from .server import HostileServer

KEY = "sk-hostile-key-0123456789"
IMAGE = "google/nano-banana-2/text-to-image"
POLL_PATH = "/api/v1/model/prediction/*"
SUBMIT_PATH = "/api/v1/model/generateImage"


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    """A hostile server on loopback, routes set by the test."""
    async with HostileServer() as server:
        yield server


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs over httpx's transport and aiohttp's."""
    return str(request.param)


def client_for(
    server: HostileServer, transport: str = "httpx", **options: Any
) -> AtlasClient:
    """A client of ``server``: fast polls, quick poll retries, no HTTP retry waits."""
    options.setdefault("poll", FixedPolicy(0.01))
    options.setdefault("poll_retry", BackoffPolicy(initial=0.01, cap=0.02))
    return AtlasClient(KEY, base_url=server.base_url, transport=transport, **options)  # type: ignore[arg-type]
