"""``atlas-async --coordinator URL``: every command's client shares the account."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from atlas_async import cli

from .conftest import RedisServer


def test_the_cli_coordinator_option_reaches_the_client(
    redis_server: RedisServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A generation run with ``--coordinator`` goes through that Redis: the
    account's keys are there afterwards."""
    code = cli.main(
        [
            "--coordinator",
            redis_server.url,
            "generate",
            "a red fox",
            "--emulator",
            "--time-scale",
            "200",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert os.environ["ATLAS_ASYNC_COORDINATOR"] == redis_server.url
    store = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [str(key) for key in store.keys("*")]
    finally:
        store.close()
    assert keys
    assert all(key.startswith("atlas:") for key in keys)


def test_an_unreachable_cli_coordinator_fails_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No Redis at the URL: the command fails and says which server."""
    code = cli.main(
        [
            "--coordinator",
            "redis://127.0.0.1:9/0",
            "generate",
            "a red fox",
            "--emulator",
            "--out",
            str(tmp_path),
        ]
    )
    assert code != 0
    assert "127.0.0.1:9" in capsys.readouterr().err
