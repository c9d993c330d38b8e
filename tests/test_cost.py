"""
Cost against a real emulator on loopback: a quote equals what the emulator
charges, the balance reads, and the ``quote`` and ``balance`` commands print
them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from atlas_async import (
    ArgumentTypeError,
    AtlasClient,
    AtlasError,
    BatchResult,
    GenerationRequest,
    InvalidArgumentError,
    Prediction,
    PredictionStatus,
)
from atlas_async.cli import main
from atlas_async.emulator import DEFAULT_CATALOG, EmulatorConfig, model_spec, serve

IMAGE = "google/nano-banana-2/text-to-image"
VIDEO = "bytedance/seedance-2.0/text-to-video"
LYRICS = "minimax/lyrics-generation"
SPEECH = "acme-labs/voice-tts"  # priced per 1,000 characters
ASR = "bytedance/seed-asr-2.0"  # priced per minute: not quotable


def config(**options: Any) -> EmulatorConfig:
    speech = model_spec(SPEECH, "audio", price=0.02, price_unit="1k_chars")
    return EmulatorConfig(
        models=(*DEFAULT_CATALOG, speech), time_scale=400, seed=3, **options
    )


@asynccontextmanager
async def client_of(settings: EmulatorConfig) -> AsyncIterator[AtlasClient]:
    """A client of a real emulator on a loopback socket."""
    async with (
        serve(settings) as emu,
        AtlasClient("key", base_url=emu.base_url) as client,
    ):
        yield client


REQUESTS = [
    GenerationRequest("image", IMAGE, {"prompt": "a fox"}),
    GenerationRequest("image", IMAGE, {"prompt": "two owls", "num_images": 2}),
    GenerationRequest("image", IMAGE, {"prompt": "three cats", "num_images": 3}),
    GenerationRequest("video", VIDEO, {"prompt": "waves", "duration": 5}),
    GenerationRequest("video", VIDEO, {"prompt": "rain", "duration": 8}),
    GenerationRequest("audio", LYRICS, {"prompt": "a song about tea"}),
    GenerationRequest("audio", SPEECH, {"text": "hello there " * 60}),
]


@pytest.mark.asyncio
class TestQuoteAgainstTheEmulator:
    async def test_a_quote_is_what_the_emulator_charges(self) -> None:
        """Images by num_images, videos by duration, a generation, text by its
        characters: the quote, each prediction's price, and what the balance
        lost are the same amount."""
        async with client_of(config(balance=50)) as client:
            quote = await client.quote(REQUESTS)
            before = await client.balance()
            results = [r async for r in client.generate_many(REQUESTS)]
            after = await client.balance()
        assert all(result.ok for result in results)
        assert quote.complete
        charged = before.available - after.available
        paid = sum(
            r.prediction.cost for r in results if r.prediction and r.prediction.cost
        )
        # 0.03 * 6 + 0.06 * 13 + 0.01 + 0.02 * 0.72
        assert quote.cost == Decimal("0.9844")
        assert charged == quote.cost
        assert paid == quote.cost
        assert quote.by_model[VIDEO].cost == Decimal("0.78")

    async def test_what_it_cannot_price_is_listed_not_guessed(self) -> None:
        """A video with no duration, a per-minute model, a model outside the
        catalog: each named with its index, the rest still summed."""
        requests = [
            {"model": IMAGE, "prompt": "a fox"},
            {"kind": "video", "model": VIDEO, "prompt": "waves"},
            {"kind": "audio", "model": ASR, "audio": "https://example.com/a.wav"},
            {"model": "acme-labs/not-listed", "prompt": "x"},
        ]
        async with client_of(config()) as client:
            quote = await client.quote(requests)
        assert quote.cost == Decimal("0.03")
        assert quote.predictions == 4
        assert [(u.index, u.model) for u in quote.unpriced] == [
            (1, VIDEO),
            (2, ASR),
            (3, "acme-labs/not-listed"),
        ]
        assert "duration" in quote.unpriced[0].reason
        assert "minute" in quote.unpriced[1].reason

    async def test_the_catalog_is_read_once_per_client(self) -> None:
        """Two quotes, one catalog request."""
        async with client_of(config()) as client:
            await client.quote(REQUESTS[:1])
            await client.quote(REQUESTS[:2])
            assert client.statistics().requests_sent == 1


class TestCommands:
    def test_quote_json_prints_the_count_cost_and_models(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`quote FILE --json`: predictions, cost as exact text, currency,
        by_model and unpriced (with the file's line numbers)."""
        file = tmp_path / "r.jsonl"
        file.write_text(
            json.dumps({"model": IMAGE, "prompt": "a", "num_images": 2})
            + "\n"
            + json.dumps({"kind": "video", "model": VIDEO, "prompt": "b"})
            + "\n"
        )
        assert main(["quote", str(file), "--emulator", "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["predictions"] == 2
        assert printed["cost"] == "0.06"
        assert printed["currency"] == "usd"
        assert printed["by_model"] == {
            IMAGE: {"predictions": 1, "cost": "0.06", "unit": "image"}
        }
        [unpriced] = printed["unpriced"]
        assert (unpriced["index"], unpriced["line"], unpriced["model"]) == (1, 2, VIDEO)

    def test_quote_of_the_example_prompts(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """22 prompts on the stock image model at 0.03: $0.66, no key needed."""
        prompts = Path(__file__).resolve().parent.parent / "examples" / "prompts.txt"
        assert main(["quote", str(prompts), "--emulator"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == "22 predictions, $0.66"

    def test_balance_prints_what_is_available(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`balance` and `balance --json` against the emulator's account."""
        assert main(["balance", "--emulator", "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert (printed["available"], printed["currency"]) == ("1000000", "usd")
        assert main(["balance", "--emulator"]) == 0
        assert capsys.readouterr().out.startswith("available $1000000.00")


@pytest.mark.asyncio
class TestBudgetThroughTheClient:
    async def test_a_failed_item_gives_its_reservation_back(
        self, tmp_path: Path
    ) -> None:
        """Two image prices of budget, one item failing: the failure is not
        billed, so the third item fits and is sent."""
        requests = [
            {"model": IMAGE, "prompt": "[emulator:fail] a doomed fox"},
            {"model": IMAGE, "prompt": "an owl"},
            {"model": IMAGE, "prompt": "a cat"},
        ]
        async with client_of(config()) as client:
            results = [
                r
                async for r in client.generate_many(
                    requests, budget=Decimal("0.06"), max_in_flight=1
                )
            ]
        outcomes = sorted((r.index, r.ok, r.not_submitted) for r in results)
        assert outcomes == [(0, False, False), (1, True, False), (2, True, False)]

    async def test_an_item_it_cannot_price_is_not_submitted_under_a_budget(
        self,
    ) -> None:
        """No duration, no price: a budget cannot cover it, so it is not sent;
        the priced item is, and progress counts one of each."""
        requests = [
            {"kind": "video", "model": VIDEO, "prompt": "waves"},
            {"model": IMAGE, "prompt": "an owl"},
        ]
        seen: list[Any] = []
        async with (
            serve(config()) as emu,
            AtlasClient("key", base_url=emu.base_url) as client,
        ):
            results = [
                r
                async for r in client.generate_many(
                    requests, budget=10, on_progress=seen.append
                )
            ]
            sent = emu.stats.snapshot().predictions_created
        [skipped] = [r for r in results if r.not_submitted]
        assert skipped.index == 0
        assert "cannot be priced" in str(skipped.error)
        assert sent == 1
        last = seen[-1]
        assert (last.ok, last.failed, last.not_submitted) == (1, 0, 1)
        assert last.spent == Decimal("0.03")

    async def test_no_budget_and_no_check_asks_for_no_prices(self) -> None:
        """A plain batch sends nothing about money: the catalog and the balance
        are not read."""
        async with client_of(config()) as client:
            results = [r async for r in client.generate_many(REQUESTS[:1])]
            assert client.statistics().requests_sent == 1 + client.statistics().polls
        assert results[0].cost == Decimal("0.03")
        assert results[0].quoted is None

    @pytest.mark.parametrize(
        ("options", "error"),
        [
            ({"budget": -1}, InvalidArgumentError),
            ({"budget": "lots"}, InvalidArgumentError),
            ({"budget": True}, InvalidArgumentError),
            ({"check_balance": "yes"}, ArgumentTypeError),
        ],
    )
    async def test_bad_money_options_are_refused_before_anything_is_sent(
        self, options: dict[str, Any], error: type[Exception]
    ) -> None:
        """The option is named; no request leaves."""
        async with client_of(config()) as client:
            with pytest.raises(error) as caught:
                client.generate_many(REQUESTS, **options)
            assert client.statistics().requests_sent == 0
        assert next(iter(options)) in str(caught.value)


class TestBatchResultCost:
    def test_the_wire_price_wins_and_the_quote_stands_in(self) -> None:
        """`cost` is the prediction's price, else the quoted price; nothing
        for an item that did not complete."""
        request = REQUESTS[0]
        priced = Prediction(
            id="p", status=PredictionStatus.COMPLETED, raw={"price": "0.02"}
        )
        silent = Prediction(id="q", status=PredictionStatus.COMPLETED)
        quoted = Decimal("0.03")
        assert BatchResult(0, request, priced, quoted=quoted).cost == Decimal("0.02")
        assert BatchResult(0, request, silent, quoted=quoted).cost == quoted
        failed = BatchResult(0, request, error=AtlasError("no"), quoted=quoted)
        assert failed.cost is None
