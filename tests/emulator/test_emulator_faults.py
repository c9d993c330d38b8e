"""Each fault of the emulator, and whether a submit meets it before or after create."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from atlas_async.emulator import ConnectionDroppedError, EmulatorConfig, Faults

from .conftest import WireFactory

pytestmark = pytest.mark.asyncio

IMAGE = "google/nano-banana-2/text-to-image"
BODY = {"model": IMAGE, "prompt": "a fox"}


def _config(**faults: object) -> EmulatorConfig:
    return EmulatorConfig(seed=3, faults=Faults(**faults))  # type: ignore[arg-type]


class TestRateLimits:
    async def test_rps_over_the_bucket_is_429_without_retry_after(
        self, in_process: WireFactory
    ) -> None:
        """Past rps (burst = rps) a key gets 429 rate limit exceeded, no Retry-After."""
        async with in_process(_config(rps=2)) as wire:
            statuses = [
                (await wire.http.get("/model/prediction/x")).status_code
                for _ in range(3)
            ]
            assert statuses == [404, 404, 429]
            response = await wire.http.get("/model/prediction/x")
            assert response.json() == {
                "code": 429,
                "msg": "rate limit exceeded",
                "request_id": response.headers["x-request-id"],
                "data": None,
            }
            assert "retry-after" not in response.headers
            wire.clock.advance(0.5)  # one token back at 2 per second
            assert (await wire.http.get("/model/prediction/x")).status_code == 404
            assert wire.emulator.stats.snapshot().faults == {"rate_limit": 2}

    async def test_rps_is_per_key(self, in_process: WireFactory) -> None:
        """One key's empty bucket does not limit another key."""
        async with in_process(_config(rps=1)) as wire:
            assert (await wire.http.get("/model/prediction/x")).status_code == 404
            assert (await wire.http.get("/model/prediction/x")).status_code == 429
            other = {"Authorization": "Bearer other"}
            response = await wire.http.get("/model/prediction/x", headers=other)
            assert response.status_code == 404

    async def test_retry_after_header_when_configured(
        self, in_process: WireFactory
    ) -> None:
        """With retry_after set, 429 answers carry Retry-After."""
        async with in_process(_config(rps=1, retry_after=3)) as wire:
            await wire.http.get("/models")  # no key: not rate limited
            await wire.http.get("/model/prediction/x")
            response = await wire.http.get("/model/prediction/x")
            assert response.status_code == 429
            assert response.headers["retry-after"] == "3"

    async def test_in_flight_limit_refuses_before_create(
        self, in_process: WireFactory
    ) -> None:
        """Over max_in_flight a submit gets 429 and no prediction is created."""
        config = EmulatorConfig(
            faults=Faults(max_in_flight=1), latency={"image": (5, 5)}
        )
        async with in_process(config) as wire:
            await wire.submit(**BODY)
            response = await wire.http.post("/model/generateImage", json=BODY)
            assert response.status_code == 429
            assert response.json()["msg"] == "rate limit exceeded"
            stats = wire.emulator.stats.snapshot()
            assert stats.predictions_created == 1
            assert stats.faults == {"in_flight_limit": 1}
            wire.clock.advance(5.0)  # the first one is done: room again
            await wire.submit(**BODY)


class TestFailures:
    async def test_error_rate_one_fails_every_prediction(
        self, in_process: WireFactory
    ) -> None:
        """error_rate=1 with no moderation fails everything with code 1000."""
        async with in_process(_config(error_rate=1.0, moderation_fraction=0.0)) as wire:
            ids = [await wire.submit(**BODY) for _ in range(5)]
            wire.clock.advance(10.0)
            for prediction_id in ids:
                data = await wire.poll(prediction_id)
                assert (data["status"], data["error_code"]) == ("failed", 1000)
            assert wire.emulator.stats.snapshot().faults == {"failure": 5}

    async def test_moderation_fraction_one_gives_code_1039(
        self, in_process: WireFactory
    ) -> None:
        """moderation_fraction=1 makes every failure a 1039 content-policy one."""
        async with in_process(_config(error_rate=1.0, moderation_fraction=1.0)) as wire:
            prediction_id = await wire.submit(**BODY)
            wire.clock.advance(10.0)
            data = await wire.poll(prediction_id)
            assert data["error_code"] == 1039
            assert "content policy" in str(data["error"])
            assert wire.emulator.stats.snapshot().faults == {"moderation": 1}

    async def test_error_rate_is_a_fraction(self, in_process: WireFactory) -> None:
        """About error_rate of the predictions fail (seeded, so exactly repeatable)."""
        async with in_process(_config(error_rate=0.3)) as wire:
            ids = [await wire.submit(**BODY) for _ in range(200)]
            records = [wire.emulator.prediction(i) for i in ids]
            failed = sum(
                1 for record in records if record is not None and record.failed
            )
            assert 40 <= failed <= 80


class TestHttpFaults:
    async def test_server_error_on_submit_refuses_before_create(
        self, in_process: WireFactory
    ) -> None:
        """A 5xx submit creates nothing: retrying it cannot double-bill."""
        async with in_process(_config(server_error_rate=1.0)) as wire:
            response = await wire.http.post("/model/generateImage", json=BODY)
            assert response.status_code in {500, 502, 503}
            assert response.json()["code"] == response.status_code
            assert response.json()["data"] is None
            stats = wire.emulator.stats.snapshot()
            assert stats.predictions_created == 0
            assert stats.faults == {"server_error": 1}

    async def test_server_error_codes_are_configurable(
        self, in_process: WireFactory
    ) -> None:
        """server_error_codes picks which 5xx statuses are drawn."""
        async with in_process(
            _config(server_error_rate=1.0, server_error_codes=(503,))
        ) as wire:
            for _ in range(3):
                response = await wire.http.get("/model/prediction/x")
                assert response.status_code == 503
                assert response.json()["msg"] == "service unavailable"

    async def test_dropped_submit_still_creates_the_prediction(
        self, in_process: WireFactory
    ) -> None:
        """A dropped submit raises RemoteProtocolError, but the prediction exists."""
        async with in_process(_config(drop_rate=1.0)) as wire:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
                await wire.http.post("/model/generateImage", json=BODY)
            stats = wire.emulator.stats.snapshot()
            assert stats.predictions_created == 1
            assert stats.faults == {"drop": 1}
            assert stats.responses_by_status == {}

    async def test_dropped_connection_over_a_socket(
        self, wire_factory: WireFactory
    ) -> None:
        """Over a real socket the connection closes without an answer."""
        async with wire_factory(_config(drop_rate=1.0, targets=("poll",))) as wire:
            with pytest.raises(httpx.RemoteProtocolError):
                await wire.http.get("/model/prediction/x")
            assert (await wire.http.get("/models")).status_code == 200

    async def test_slow_answers_wait_on_the_sleep_hook(
        self, in_process: WireFactory
    ) -> None:
        """slow_rate delays the answer by slow_seconds of the emulator's sleep."""
        async with in_process(_config(slow_rate=1.0, slow_seconds=2.5)) as wire:
            async with wire.clock.autojump():
                response = await wire.http.get("/model/prediction/x")
            assert response.status_code == 404
            assert wire.clock.now() == 2.5
            assert wire.emulator.stats.snapshot().faults == {"slow": 1}

    async def test_slow_answer_is_pending_until_time_passes(
        self, in_process: WireFactory
    ) -> None:
        """The slow answer does not arrive before the clock moves."""
        async with in_process(_config(slow_rate=1.0, slow_seconds=1.0)) as wire:
            results: list[int] = []

            async def fetch() -> None:
                results.append((await wire.http.get("/model/prediction/x")).status_code)

            async with anyio.create_task_group() as tg:
                tg.start_soon(fetch)
                await anyio.wait_all_tasks_blocked()
                assert results == []
                wire.clock.advance(1.0)
            assert results == [404]

    async def test_malformed_submit_is_200_not_json_and_created(
        self, in_process: WireFactory
    ) -> None:
        """A malformed answer is a 200 that is not JSON; the prediction exists."""
        async with in_process(_config(malformed_rate=1.0)) as wire:
            response = await wire.http.post("/model/generateImage", json=BODY)
            assert response.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(response.content)
            assert response.headers["content-length"] == str(len(response.content))
            assert wire.emulator.stats.snapshot().predictions_created == 1

    async def test_warmup_window_answers_404_for_fresh_ids(
        self, in_process: WireFactory
    ) -> None:
        """Within warmup_404_seconds (Atlas time, scaled) a fresh id is 404."""
        config = EmulatorConfig(time_scale=10, faults=Faults(warmup_404_seconds=5))
        async with in_process(config) as wire:
            prediction_id = await wire.submit(**BODY)
            response = await wire.http.get(f"/model/prediction/{prediction_id}")
            assert response.json()["msg"] == "not found"
            wire.clock.advance(0.5)
            assert (await wire.poll(prediction_id))["id"] == prediction_id
            assert wire.emulator.stats.snapshot().faults == {"warmup_404": 1}

    async def test_targets_limit_which_endpoints_fail(
        self, in_process: WireFactory
    ) -> None:
        """With targets=poll, submits and uploads never meet the HTTP faults."""
        async with in_process(
            _config(server_error_rate=1.0, targets=("poll",))
        ) as wire:
            prediction_id = await wire.submit(**BODY)
            response = await wire.http.get(f"/model/prediction/{prediction_id}")
            assert response.status_code >= 500

    @pytest.mark.parametrize(
        ("target", "method", "path"),
        [
            pytest.param("models", "GET", "/models", id="models"),
            pytest.param("upload", "POST", "/model/uploadMedia", id="upload"),
            pytest.param("files", "GET", "http://127.0.0.1/files/x.png", id="files"),
        ],
    )
    async def test_other_targets_can_fail_too(
        self, in_process: WireFactory, target: str, method: str, path: str
    ) -> None:
        """models, upload and files fail like the rest when targeted."""
        async with in_process(
            _config(server_error_rate=1.0, targets=(target,))
        ) as wire:
            response = await wire.http.request(method, path)
            assert response.status_code >= 500

    async def test_malformed_and_slow_on_untargeted_routes(
        self, in_process: WireFactory
    ) -> None:
        """Faults after the work also apply to the catalog when targeted."""
        async with in_process(_config(malformed_rate=1.0, targets=("models",))) as wire:
            response = await wire.http.get("/models")
            with pytest.raises(json.JSONDecodeError):
                response.json()

    async def test_faults_do_not_shift_ids(self, in_process: WireFactory) -> None:
        """Faults draw from their own stream: ids match a fault-free run."""
        async with in_process(EmulatorConfig(seed=9)) as plain:
            expected = [await plain.submit(**BODY) for _ in range(3)]
        config = EmulatorConfig(seed=9, faults=Faults(slow_rate=0.5, slow_seconds=0))
        async with in_process(config) as faulty:
            assert [await faulty.submit(**BODY) for _ in range(3)] == expected

    async def test_asgi_app_raises_connection_dropped_elsewhere(self) -> None:
        """Under a foreign ASGI server, a drop raises ConnectionDroppedError."""
        from atlas_async.emulator import Emulator

        emulator = Emulator(_config(drop_rate=1.0))
        transport = httpx.ASGITransport(app=emulator.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1/api/v1"
        ) as http:
            with pytest.raises(ConnectionDroppedError):
                await http.get(
                    "/model/prediction/x", headers={"Authorization": "Bearer k"}
                )
