"""
A real ``redis-server`` on loopback for the coordinator's tests: one per test
module, on a free port, with no persistence. No fake Redis stands in for it.

When ``redis-server`` is missing the tests skip, unless ``ATLAS_REQUIRE_REDIS``
is set (``.ci/run`` sets it after installing the server): CI then fails loudly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

pytest.importorskip("redis")


@attrs.define
class RedisServer:
    """A running ``redis-server``: its URL, and stop/start for outage tests."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Kill the server at once (an outage, not a clean shutdown)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty ``redis-server`` on a free loopback port."""
    if shutil.which("redis-server") is None:
        if os.environ.get("ATLAS_REQUIRE_REDIS"):
            pytest.fail("redis-server is not installed (ATLAS_REQUIRE_REDIS is set)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(port=_free_port(), directory=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
