"""FakeClock and the pytest plugin of atlas_async.testing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from atlas_async.testing import FakeClock


class TestFakeClockSync:
    def test_time_starts_where_asked_and_only_moves_on_advance(self) -> None:
        """now() is the start value until advance() or jump_to() moves it."""
        clock = FakeClock(start=5.0)
        assert clock.now() == 5.0
        clock.advance(2.5)
        assert clock.now() == 7.5
        clock.jump_to(10.0)
        assert clock.now() == 10.0
        clock.jump_to(3.0)  # the past: no-op
        assert clock.now() == 10.0
        assert repr(clock) == "FakeClock(now=10)"

    def test_negative_advance_raises(self) -> None:
        """Time never goes back: advance(-1) is a ValueError."""
        with pytest.raises(ValueError, match="backwards"):
            FakeClock().advance(-1.0)

    def test_next_deadline_is_inf_without_sleepers(self) -> None:
        """With nobody asleep the next deadline is infinity."""
        assert FakeClock().next_deadline() == float("inf")


@pytest.mark.asyncio
class TestFakeClockAsyncio:
    async def test_advance_wakes_due_sleepers_in_deadline_order(self) -> None:
        """advance() wakes exactly the sleepers now due, earliest first."""
        clock = FakeClock()
        woke: list[float] = []

        async def sleeper(deadline: float) -> None:
            await clock.sleep_until(deadline)
            woke.append(deadline)

        async with anyio.create_task_group() as tg:
            for deadline in (3.0, 1.0, 2.0):
                tg.start_soon(sleeper, deadline)
            await anyio.wait_all_tasks_blocked()
            assert clock.next_deadline() == 1.0
            clock.advance(2.0)
            await anyio.wait_all_tasks_blocked()
            assert woke == [1.0, 2.0]
            clock.advance(1.0)
        assert woke == [1.0, 2.0, 3.0]

    async def test_sleep_until_the_past_returns_at_once(self) -> None:
        """A deadline already reached returns without waiting."""
        clock = FakeClock(start=4.0)
        await clock.sleep_until(3.0)
        await clock.sleep(0)
        assert clock.now() == 4.0

    async def test_cancelled_sleepers_are_forgotten(self) -> None:
        """A sleeper cancelled before its deadline no longer counts."""
        clock = FakeClock()
        with anyio.move_on_after(0.01):
            await clock.sleep(100.0)
        assert clock.next_deadline() == float("inf")

    async def test_autojump_skips_to_each_deadline(self) -> None:
        """Inside autojump, sleeps of an hour finish at once, in order."""
        clock = FakeClock()
        seen: list[float] = []
        async with clock.autojump():
            for delay in (3600.0, 60.0, 0.5):
                await clock.sleep(delay)
                seen.append(clock.now())
        assert seen == [3600.0, 3660.0, 3660.5]

    async def test_autojump_waits_for_sleepers_that_come_later(self) -> None:
        """autojump idles until someone sleeps, then jumps to them."""
        clock = FakeClock()
        async with clock.autojump():
            await anyio.sleep(0.01)  # real time: autojump has nobody to wake
            await clock.sleep(5.0)
        assert clock.now() == 5.0


@pytest.fixture
def anyio_backend() -> str:
    """Run this module's anyio tests under trio."""
    return "trio"


@pytest.mark.anyio
async def test_autojump_under_trio() -> None:
    """autojump and advance work under trio as well as asyncio."""
    clock = FakeClock()
    async with clock.autojump():
        await clock.sleep(30.0)
        await clock.sleep(30.0)
    assert clock.now() == 60.0


@pytest.mark.e2e
def test_fixtures_work_as_a_plugin(tmp_path: Path) -> None:
    """`-p atlas_async.testing` gives fake_clock and the emulator fixtures."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import pytest

            pytestmark = pytest.mark.asyncio

            async def test_emulator_on_the_fake_clock(atlas_emulator, fake_clock):
                async with atlas_emulator.client() as http:
                    r = await http.post("/model/generateImage", json={
                        "model": "google/nano-banana-2/text-to-image", "prompt": "x"})
                    pid = r.json()["data"]["id"]
                    fake_clock.advance(10)
                    r = await http.get(f"/model/prediction/{pid}")
                    assert r.json()["data"]["status"] == "completed"

            async def test_server(atlas_emulator_server):
                assert atlas_emulator_server.base_url.endswith("/api/v1")
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "atlas_async.testing",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=strict",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
