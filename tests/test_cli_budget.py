"""
``atlas-async batch --budget`` end to end: the installed command against an
emulator served by ``atlas-async emulator`` on loopback, both real processes.

A budget of 5.5 image prices on the 22 example prompts sends five, submits no
more and exits 3; a rerun with a larger budget sends the other 17 from the
journal and resubmits none of the five; what the emulator charged is the
quote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

PROMPTS = Path(__file__).resolve().parent.parent / "examples" / "prompts.txt"
IMAGE_PRICE = Decimal("0.03")  # the stock image model's catalog price


def command() -> list[str]:
    """The installed console script (or its module, if the venv has none)."""
    script = Path(sys.executable).with_name("atlas-async")
    if script.exists():
        return [str(script)]
    found = shutil.which("atlas-async")  # pragma: no cover - venv layouts vary
    return [found] if found else [sys.executable, "-m", "atlas_async.cli"]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASCLOUD_")}
    return {**env, **extra}


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh emulator process (options from indirect parametrization); its
    origin. Each test has its own account."""
    options: list[str] = getattr(request, "param", [])
    process = subprocess.Popen(
        [*command(), "emulator", "--port", "0", "--time-scale", "400", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded: the test's own timeout
        found = re.search(r"(http://\S+)/api/v1", line)
        assert found is not None, line
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def atlas(origin: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(
            ATLASCLOUD_API_KEY="test-key", ATLASCLOUD_BASE_URL=f"{origin}/api/v1"
        ),
    )


def summary(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    last: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])["summary"]
    return last


def created(origin: str) -> tuple[int, int]:
    stats = httpx.get(f"{origin}/_emulator/stats").json()
    return stats["predictions_created"], stats["duplicates"]


def cash(origin: str) -> Decimal:
    answer = httpx.get(
        f"{origin}/public/v1/balance", headers={"Authorization": "Bearer test-key"}
    )
    return Decimal(answer.json()["cash"]["value"])


class TestBudget:
    def test_a_budget_stops_at_five_and_a_larger_one_finishes_the_rest(
        self, emulator: str, tmp_path: Path
    ) -> None:
        """5.5 image prices: 5 complete, 17 not submitted (not failed), exit 3;
        a rerun with a larger budget completes 17 more, resends none, and the
        account was charged the quote of the 22."""
        out = str(tmp_path / "out")
        quote = json.loads(atlas(emulator, "quote", str(PROMPTS), "--json").stdout)
        before = cash(emulator)
        budget = str(IMAGE_PRICE * Decimal("5.5"))

        first = atlas(emulator, "batch", str(PROMPTS), "--out", out,
                      "--budget", budget, "--json")  # fmt: skip
        assert first.returncode == 3, first.stderr
        stopped = summary(first)
        assert (stopped["ok"], stopped["failed"]) == (5, 0)
        assert stopped["not_submitted"] == 17
        assert Decimal(stopped["cost"]) == 5 * IMAGE_PRICE
        assert created(emulator) == (5, 0)
        items = [json.loads(line) for line in first.stdout.splitlines()[:-1]]
        assert sum(item["not_submitted"] for item in items) == 17

        second = atlas(emulator, "batch", str(PROMPTS), "--out", out,
                       "--budget", "1.00", "--json")  # fmt: skip
        assert second.returncode == 0, second.stderr
        done = summary(second)
        assert (done["ok"], done["resumed"], done["not_submitted"]) == (22, 5, 0)
        assert created(emulator) == (22, 0)
        charged = before - cash(emulator)
        assert charged == Decimal(quote["cost"]) == 22 * IMAGE_PRICE
        assert Decimal(done["cost"]) == charged

    def test_the_human_summary_says_how_many_were_not_submitted(
        self, emulator: str, tmp_path: Path
    ) -> None:
        """Without --json: the count, the spend and the budget, and exit 3."""
        run = atlas(emulator, "batch", str(PROMPTS), "--out", str(tmp_path / "o"),
                    "--budget", "$0.10")  # fmt: skip
        assert run.returncode == 3, run.stderr
        last = run.stdout.splitlines()[-1]
        assert "3 of 22 ok" in last
        assert "spent $0.09" in last
        assert "19 not submitted: budget $0.10 reached" in last

    @pytest.mark.parametrize("emulator", [["--balance", "1"]], indirect=True)
    def test_a_quote_above_the_balance_submits_nothing(
        self, emulator: str, tmp_path: Path
    ) -> None:
        """Ten 10-second videos at 0.06 a second on a 1.00 account: the
        pre-check names both numbers and sends nothing (exit 1);
        --no-balance-check sends, and the server's 402 stops the rest."""
        file = tmp_path / "videos.jsonl"
        video = {"kind": "video", "model": "bytedance/seedance-2.0/text-to-video",
                 "prompt": "a long take", "duration": 10}  # fmt: skip
        file.write_text((json.dumps(video) + "\n") * 10)
        batch = ("batch", str(file), "--out", str(tmp_path / "o"))
        refused = atlas(emulator, *batch)
        assert refused.returncode == 1
        assert "$6.00" in refused.stderr
        assert "$1.00 available" in refused.stderr
        assert created(emulator) == (0, 0)
        forced = atlas(emulator, *batch, "--no-balance-check", "--json")
        assert forced.returncode == 1
        assert summary(forced)["errors"].get("InsufficientBalanceError")
        assert created(emulator)[0] == 1

    def test_a_budget_that_is_no_amount_is_a_usage_error(
        self, emulator: str, tmp_path: Path
    ) -> None:
        """Exit 2, naming the option, before anything is sent."""
        run = atlas(emulator, "batch", str(PROMPTS), "--out", str(tmp_path / "o"),
                    "--budget", "ten dollars")  # fmt: skip
        assert run.returncode == 2
        assert "--budget" in run.stderr
        assert created(emulator) == (0, 0)
