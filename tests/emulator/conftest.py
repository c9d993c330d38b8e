"""
Fixtures for the emulator's own tests: plain httpx against the emulator, either
in-process or over a real loopback socket, with time driven by a FakeClock.

The fixtures of ``atlas_async.testing`` are imported here so these tests also
exercise them the way a user's suite would see them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import httpx
import pytest
import pytest_asyncio

from atlas_async.emulator import Emulator, EmulatorConfig, serve
from atlas_async.testing import (  # noqa: F401  (fixtures, registered by import)
    FakeClock,
    atlas_emulator,
    atlas_emulator_config,
    atlas_emulator_server,
    fake_clock,
)

KEY = "test-key"


@attrs.define
class Wire:
    """A plain httpx client wired to one emulator, and the emulator's clock."""

    http: httpx.AsyncClient
    clock: FakeClock
    emulator: Emulator
    base_url: str
    origin: str

    async def submit(self, path: str = "/model/generateImage", **body: object) -> str:
        """Submit ``body`` and return the new prediction's id (asserting 200)."""
        response = await self.http.post(path, json=body)
        assert response.status_code == 200, response.text
        prediction_id: str = response.json()["data"]["id"]
        return prediction_id

    async def poll(self, prediction_id: str) -> dict[str, object]:
        """Poll once and return ``data`` (asserting 200)."""
        response = await self.http.get(f"/model/prediction/{prediction_id}")
        assert response.status_code == 200, response.text
        data: dict[str, object] = response.json()["data"]
        return data


WireFactory = Callable[..., AbstractAsyncContextManager[Wire]]


@pytest.fixture(
    params=[
        pytest.param("in-process", id="in-process"),
        pytest.param("socket", id="socket", marks=pytest.mark.e2e),
    ]
)
def wire_factory(request: pytest.FixtureRequest) -> WireFactory:
    """Open emulators the parametrized way: in-process, or over a socket."""
    kind: str = request.param

    @asynccontextmanager
    async def open_wire(
        config: EmulatorConfig | None = None, *, key: str = KEY
    ) -> AsyncIterator[Wire]:
        clock = FakeClock()
        headers = {"Authorization": f"Bearer {key}"}
        if kind == "in-process":
            emulator = Emulator(config, clock=clock.now, sleep=clock.sleep)
            async with httpx.AsyncClient(
                transport=emulator.transport,
                base_url=emulator.base_url,
                headers=headers,
            ) as http:
                yield Wire(http, clock, emulator, emulator.base_url, "http://127.0.0.1")
            return
        async with (
            serve(config, clock=clock.now, sleep=clock.sleep) as running,
            httpx.AsyncClient(base_url=running.base_url, headers=headers) as http,
        ):
            yield Wire(http, clock, running.emulator, running.base_url, running.origin)

    return open_wire


@pytest_asyncio.fixture
async def wire(wire_factory: WireFactory) -> AsyncIterator[Wire]:
    """A default emulator (seed 0, real latencies, no faults) behind plain httpx."""
    async with wire_factory() as opened:
        yield opened


@pytest.fixture
def in_process() -> WireFactory:
    """Open in-process emulators only (for tests that need no socket variant)."""

    @asynccontextmanager
    async def open_wire(
        config: EmulatorConfig | None = None, *, key: str = KEY
    ) -> AsyncIterator[Wire]:
        clock = FakeClock()
        emulator = Emulator(config, clock=clock.now, sleep=clock.sleep)
        async with httpx.AsyncClient(
            transport=emulator.transport,
            base_url=emulator.base_url,
            headers={"Authorization": f"Bearer {key}"},
        ) as http:
            yield Wire(http, clock, emulator, emulator.base_url, "http://127.0.0.1")

    return open_wire
