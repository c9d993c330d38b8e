"""The emulator's accounting: requests, polls, duplicate bodies, and its endpoints."""

from __future__ import annotations

import attrs
import httpx
import pytest

from atlas_async.emulator import Emulator, EmulatorConfig, Faults

from .conftest import Wire, WireFactory

pytestmark = pytest.mark.asyncio

IMAGE = "google/nano-banana-2/text-to-image"


class TestCounters:
    async def test_requests_are_counted_per_endpoint(self, wire: Wire) -> None:
        """requests_by_endpoint uses the route template, not the concrete path."""
        prediction_id = await wire.submit(model=IMAGE, prompt="a")
        await wire.poll(prediction_id)
        await wire.poll(prediction_id)
        await wire.http.get("/model/prediction/unknown")
        await wire.http.get("/models")
        await wire.http.delete("/somewhere")
        stats = wire.emulator.stats.snapshot()
        assert stats.requests == 6
        assert stats.requests_by_endpoint == {
            "POST /api/v1/model/generateImage": 1,
            "GET /api/v1/model/prediction/{id}": 3,
            "GET /api/v1/models": 1,
            "DELETE <unknown>": 1,
        }
        assert stats.responses_by_status == {200: 4, 404: 2}
        assert stats.polls == 3
        assert stats.polls_by_prediction == {prediction_id: 2}
        assert stats.polls_for(prediction_id) == 2
        assert stats.polls_for("unknown") == 0

    async def test_identical_bodies_count_as_duplicates(self, wire: Wire) -> None:
        """Bodies equal as canonical JSON are duplicates, whatever their key order."""
        for body in (
            b'{"model":"%s","prompt":"a"}',
            b'{"prompt": "a", "model": "%s"}',
            b'{"model":"%s","prompt":"a"}',
            b'{"model":"%s","prompt":"b"}',
            b'{"model":"%s","prompt":"b"}',
            b'{"model":"%s","prompt":"c"}',
        ):
            response = await wire.http.post(
                "/model/generateImage", content=body % IMAGE.encode()
            )
            assert response.status_code == 200
        stats = wire.emulator.stats.snapshot()
        assert stats.predictions_created == 6
        assert stats.unique_bodies == 3
        assert stats.duplicates == 2
        assert stats.duplicate_submissions == 3

    async def test_refused_submits_are_not_duplicates(
        self, in_process: WireFactory
    ) -> None:
        """A submit refused with 429 created nothing, so it is no duplicate."""
        config = EmulatorConfig(faults=Faults(max_in_flight=1))
        async with in_process(config) as wire:
            for _ in range(3):
                await wire.http.post(
                    "/model/generateImage", json={"model": IMAGE, "prompt": "a"}
                )
            stats = wire.emulator.stats.snapshot()
            assert (stats.predictions_created, stats.duplicates) == (1, 0)

    async def test_snapshot_is_a_frozen_copy(self, wire: Wire) -> None:
        """A snapshot does not change when the emulator keeps counting."""
        before = wire.emulator.stats.snapshot()
        await wire.http.get("/models")
        assert before.requests == 0
        assert wire.emulator.stats.snapshot().requests == 1
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            before.requests = 5  # type: ignore[misc]

    async def test_as_dict_is_json_ready(self, wire: Wire) -> None:
        """as_dict has string status keys and every field."""
        await wire.http.get("/models")
        data = wire.emulator.stats.as_dict()
        assert data["responses_by_status"] == {"200": 1}
        assert set(data) == {
            f.name for f in attrs.fields(type(wire.emulator.stats.snapshot()))
        }
        assert "requests=1" in repr(wire.emulator.stats)


class TestControlEndpoints:
    async def test_stats_endpoint_serves_the_snapshot(self, wire: Wire) -> None:
        """GET /_emulator/stats answers as_dict and is not counted itself."""
        await wire.http.get("/models")
        response = await wire.http.get(f"{wire.origin}/_emulator/stats")
        assert response.status_code == 200
        assert response.json()["requests"] == 1
        assert response.json()["requests_by_endpoint"] == {"GET /api/v1/models": 1}

    async def test_reset_zeroes_stats_and_optionally_state(self, wire: Wire) -> None:
        """POST /_emulator/reset zeroes stats; ?state=1 also forgets predictions."""
        prediction_id = await wire.submit(model=IMAGE, prompt="a")
        assert (
            await wire.http.post(f"{wire.origin}/_emulator/reset")
        ).status_code == 200
        assert wire.emulator.stats.snapshot().requests == 0
        await wire.poll(prediction_id)  # still known
        await wire.http.post(f"{wire.origin}/_emulator/reset?state=1")
        response = await wire.http.get(f"/model/prediction/{prediction_id}")
        assert response.status_code == 404

    async def test_unknown_control_route_is_404(self, wire: Wire) -> None:
        """Other /_emulator/ paths (or methods) are 404."""
        response = await wire.http.get(f"{wire.origin}/_emulator/reset")
        assert response.status_code == 404

    async def test_non_loopback_clients_get_403(self) -> None:
        """A client that is not on loopback may not read or reset the stats."""
        emulator = Emulator()
        transport = emulator.transport_from("10.1.2.3")
        async with httpx.AsyncClient(transport=transport) as http:
            for method, path in (("GET", "stats"), ("POST", "reset")):
                response = await http.request(
                    method, f"http://127.0.0.1/_emulator/{path}"
                )
                assert response.status_code == 403
                assert response.json()["msg"] == "forbidden"

    async def test_emulator_reset_method_also_refills_rate_limits(self) -> None:
        """Emulator.reset() zeroes counters and refills every rate-limit bucket."""
        emulator = Emulator(EmulatorConfig(faults=Faults(rps=1)), clock=lambda: 0.0)
        async with emulator.client() as http:
            assert (await http.get("/model/prediction/x")).status_code == 404
            assert (await http.get("/model/prediction/x")).status_code == 429
            emulator.reset(state=True)
            assert (await http.get("/model/prediction/x")).status_code == 404
            assert emulator.stats.snapshot().requests == 1
