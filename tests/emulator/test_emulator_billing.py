"""``/public/v1``: a balance that goes down, 402 when it runs out, daily usage
and costs, and the billing API's own error envelope."""

from __future__ import annotations

from typing import Any

import pytest

import atlas_async.emulator.__main__ as emulator_main
from atlas_async.emulator import EmulatorConfig, config_from_options

from .conftest import Wire, WireFactory

IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
EPOCH = 1_700_000_000.0  # 2023-11-14T22:13:20Z
DAY = 86_400.0
LATENCY = {IMAGE: (4.0, 4.0), VIDEO: (60.0, 60.0)}


def money(value: str) -> dict[str, str]:
    return {"value": value, "currency": "usd"}


async def balance(wire: Wire) -> dict[str, Any]:
    response = await wire.http.get(f"{wire.origin}/public/v1/balance")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def config(**fields: Any) -> EmulatorConfig:
    return EmulatorConfig(epoch=EPOCH, model_latency=LATENCY, **fields)


@pytest.mark.asyncio
class TestBalance:
    async def test_a_fresh_account_has_the_configured_start(
        self, wire_factory: WireFactory
    ) -> None:
        """The balance answer has every field of the vendor's type."""
        async with wire_factory(config(balance=12.5)) as wire:
            body = await balance(wire)
            request_id = body["request_id"]
        assert body == {
            "object": "balance",
            "scope": "self",
            "account": {
                "id": body["account"]["id"],
                "name": "Atlas emulator account",
                "type": "personal",
            },
            "available": money("12.500000"),
            "cash": money("12.500000"),
            "bonus": money("0.000000"),
            "subscription_bonus": money("0.000000"),
            "frozen": money("0.000000"),
            "credit_grant": {
                "status": "none",
                "granted": money("0.000000"),
                "used": money("0.000000"),
                "remaining_overdraft": money("0.000000"),
                "overdrawn": money("0.000000"),
            },
            "request_id": request_id,
        }
        assert body["account"]["id"].startswith("acct_")
        assert request_id.startswith("req_")

    async def test_a_submit_freezes_its_price_and_completion_charges_it(
        self, wire_factory: WireFactory
    ) -> None:
        """Two images at 0.03 each: frozen while running, charged when done."""
        async with wire_factory(config(balance=10.0)) as wire:
            await wire.submit(model=IMAGE, prompt="a fox", num_images=2)
            running = await balance(wire)
            wire.clock.advance(4.0)
            done = await balance(wire)
        assert (running["frozen"], running["cash"], running["available"]) == (
            money("0.060000"),
            money("10.000000"),
            money("9.940000"),
        )
        assert (done["frozen"], done["cash"], done["available"]) == (
            money("0.000000"),
            money("9.940000"),
            money("9.940000"),
        )

    async def test_a_failed_prediction_is_not_billed(
        self, wire_factory: WireFactory
    ) -> None:
        """A failure's frozen price is released, not charged."""
        async with wire_factory(config(balance=10.0)) as wire:
            await wire.submit(model=IMAGE, prompt="[emulator:fail]")
            assert (await balance(wire))["frozen"] == money("0.030000")
            wire.clock.advance(4.0)
            body = await balance(wire)
        assert (body["cash"], body["frozen"]) == (money("10.000000"), money("0.000000"))

    async def test_a_submit_the_balance_cannot_cover_is_402(
        self, wire_factory: WireFactory
    ) -> None:
        """Once what is left is below a prediction's price, submits get the
        API's 402 envelope and nothing is created; cheaper ones still pass."""
        async with wire_factory(config(balance=0.05)) as wire:
            await wire.submit(model=IMAGE, prompt="one")
            refused = await wire.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "two"}
            )
            wire.clock.advance(4.0)
            still = await wire.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "three"}
            )
            stats = wire.emulator.stats.snapshot()
        for answer in (refused, still):
            assert answer.status_code == 402
            assert answer.json() == {
                "code": 402,
                "msg": "insufficient balance",
                "request_id": answer.headers["x-request-id"],
                "data": None,
            }
        assert stats.predictions_created == 1
        assert stats.faults["insufficient_balance"] == 2

    async def test_a_used_up_balance_refuses_everything(
        self, wire_factory: WireFactory
    ) -> None:
        """At zero even a free-looking submit is refused."""
        async with wire_factory(config(balance=0.0)) as wire:
            answer = await wire.http.post(
                "/model/generateImage", json={"model": IMAGE, "prompt": "x"}
            )
        assert answer.status_code == 402

    async def test_each_key_has_its_own_account(
        self, wire_factory: WireFactory
    ) -> None:
        """Spending on one key leaves another's balance whole."""
        async with wire_factory(config(balance=1.0)) as wire:
            await wire.submit(model=IMAGE, prompt="x")
            other = await wire.http.get(
                f"{wire.origin}/public/v1/balance",
                headers={"Authorization": "Bearer other"},
            )
        assert other.json()["available"] == money("1.000000")


def test_the_balance_is_a_command_line_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """config_from_options and python -m atlas_async.emulator take the start."""
    assert config_from_options(balance=3.0).balance == 3.0
    assert config_from_options().balance == EmulatorConfig().balance
    seen: list[EmulatorConfig] = []

    def run(host: str, port: int, config: EmulatorConfig, *, on_ready: object) -> None:
        seen.append(config)

    monkeypatch.setattr(emulator_main, "run_emulator", run)
    assert emulator_main.main(["--balance", "7.5"]) == 0
    assert seen[0].balance == 7.5


async def report(wire: Wire, kind: str, **query: Any) -> dict[str, Any]:
    response = await wire.http.get(f"{wire.origin}/public/v1/{kind}", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.asyncio
class TestUsageAndCosts:
    async def test_usage_has_one_total_bucket_per_day(
        self, wire_factory: WireFactory
    ) -> None:
        """Without group_by each day is one row; end_date is exclusive; a day
        not yet over is partial."""
        async with wire_factory(config()) as wire:
            await wire.submit(model=IMAGE, prompt="a", num_images=3)
            await wire.submit(model=IMAGE, prompt="[emulator:fail]")
            wire.clock.advance(DAY)  # into 2023-11-15
            await wire.submit("/model/generateVideo", model=VIDEO, prompt="waves")
            body = await report(
                wire, "model-usage", start_date="2023-11-14", end_date="2023-11-16"
            )
        assert (body["object"], body["scope"]) == ("list", "self")
        assert (body["has_more"], body["next_page"]) == (False, None)
        first, second = body["data"]
        assert (first["object"], first["date"]) == ("bucket", "2023-11-14")
        assert (first["start_at"], first["end_at"]) == (
            "2023-11-14T00:00:00Z",
            "2023-11-15T00:00:00Z",
        )
        assert (first["partial"], second["partial"]) == (False, True)
        [day_one] = first["results"]
        assert day_one == {
            "object": "model_usage.result",
            "requests": 2,
            "succeeded": 1,
            "failed": 1,
            "images": 3,
            "videos": 0,
            "video_seconds": 0.0,
            "audio_seconds": 0.0,
            "characters": len("a") + len("[emulator:fail]"),
        }
        [day_two] = second["results"]
        assert (day_two["requests"], day_two["succeeded"]) == (1, 0)  # still running

    async def test_usage_groups_by_model_and_type(
        self, wire_factory: WireFactory
    ) -> None:
        """group_by[]=model&group_by[]=model_type gives a row per model; the
        api_key group names the key by a hash, never the key itself."""
        async with wire_factory(config()) as wire:
            await wire.submit(model=IMAGE, prompt="a")
            await wire.submit(
                "/model/generateVideo", model=VIDEO, prompt="b", duration=10
            )
            wire.clock.advance(100.0)
            body = await report(
                wire,
                "model-usage",
                start_date="2023-11-14",
                end_date="2023-11-15",
                **{"group_by[]": ["model", "model_type"]},
            )
            keyed = await report(
                wire,
                "model-usage",
                start_date="2023-11-14",
                end_date="2023-11-15",
                **{"group_by[]": "api_key"},
            )
        rows = {row["model"]: row for row in body["data"][0]["results"]}
        assert rows[IMAGE]["model_type"] == "image"
        assert (rows[VIDEO]["videos"], rows[VIDEO]["video_seconds"]) == (1, 10.0)
        [row] = keyed["data"][0]["results"]
        assert row["api_key_id"].startswith("key_")
        assert "test-key" not in str(keyed)

    async def test_costs_count_what_completed_each_day(
        self, wire_factory: WireFactory
    ) -> None:
        """Cost rows hold the money of completed predictions, by completion day;
        failures and unfinished ones cost nothing."""
        async with wire_factory(config()) as wire:
            await wire.submit(model=IMAGE, prompt="a", num_images=2)
            await wire.submit(model=IMAGE, prompt="[emulator:fail]")
            await wire.submit("/model/generateVideo", model=VIDEO, prompt="b")
            wire.clock.advance(10.0)  # the video is still running
            body = await report(
                wire,
                "model-costs",
                start_date="2023-11-14",
                end_date="2023-11-15",
                **{"group_by[]": "model"},
            )
            wire.clock.advance(100.0)
            later = await report(
                wire, "model-costs", start_date="2023-11-14", end_date="2023-11-15"
            )
        assert body["data"][0]["results"] == [
            {
                "object": "model_cost.result",
                "amount": money("0.060000"),
                "quantity": 1,
                "model": IMAGE,
            }
        ]
        [total] = later["data"][0]["results"]
        assert total["amount"] == money("0.360000")  # + 5 s of video at 0.06
        assert total["quantity"] == 2

    async def test_filters_keep_only_the_named_types_and_models(
        self, wire_factory: WireFactory
    ) -> None:
        """model_types[] and model_ids[] narrow the rows."""
        async with wire_factory(config()) as wire:
            await wire.submit(model=IMAGE, prompt="a")
            await wire.submit("/model/generateVideo", model=VIDEO, prompt="b")
            dates = {"start_date": "2023-11-14", "end_date": "2023-11-15"}
            videos = await report(
                wire, "model-usage", **dates, **{"model_types[]": "video"}
            )
            images = await report(
                wire, "model-usage", **dates, **{"model_ids[]": IMAGE}
            )
        assert videos["data"][0]["results"][0]["requests"] == 1
        assert images["data"][0]["results"][0]["requests"] == 1

    @pytest.mark.parametrize(
        ("query", "code", "message", "param"),
        [
            pytest.param(
                {"start_date": "2023-11-14", "end_date": "2023-11-14"},
                "invalid_date_range",
                "end_date must be after start_date",
                "end_date",
                id="F16",
            ),
            pytest.param(
                {"end_date": "2023-11-14"},
                "missing_required_parameter",
                "start_date is required",
                "start_date",
                id="missing",
            ),
            pytest.param(
                {"start_date": "14/11/2023", "end_date": "2023-11-15"},
                "invalid_date",
                "start_date must be a UTC date written YYYY-MM-DD",
                "start_date",
                id="format",
            ),
            pytest.param(
                {"start_date": "2023-01-01", "end_date": "2023-12-01"},
                "invalid_date_range",
                "the date range may cover at most 180 days",
                "end_date",
                id="too-long",
            ),
            pytest.param(
                {"start_date": "2023-11-14", "end_date": "2023-11-15", "scope": "x"},
                "invalid_scope",
                "scope must be self or account",
                "scope",
                id="scope",
            ),
            pytest.param(
                {
                    "start_date": "2023-11-14",
                    "end_date": "2023-11-15",
                    "group_by[]": "colour",
                },
                "invalid_group_by",
                "group_by takes model_type, model and api_key",
                "group_by",
                id="group-by",
            ),
        ],
    )
    async def test_a_bad_query_is_the_billing_error_envelope(
        self, wire: Wire, query: dict[str, str], code: str, message: str, param: str
    ) -> None:
        """Refusals are 400 with {"error": {type, code, message, param},
        "request_id"}, the billing API's envelope, not the media API's."""
        for kind in ("model-usage", "model-costs"):
            response = await wire.http.get(
                f"{wire.origin}/public/v1/{kind}", params=query
            )
            assert response.status_code == 400
            assert response.json() == {
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": param,
                },
                "request_id": response.headers["x-request-id"],
            }

    async def test_billing_needs_a_key_a_get_and_ignores_tracking(
        self, wire: Wire
    ) -> None:
        """401 without a key, 405 for a POST; utm_* change nothing."""
        url = f"{wire.origin}/public/v1/balance"
        assert (
            await wire.http.get(url, headers={"Authorization": ""})
        ).status_code == (401)
        assert (await wire.http.post(url)).status_code == 405
        plain = (await wire.http.get(url)).json()
        tracked = (await wire.http.get(url, params={"utm_source": "x"})).json()
        del plain["request_id"], tracked["request_id"]
        assert plain == tracked
