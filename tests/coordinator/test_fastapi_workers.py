"""
The FastAPI example under a real ``uvicorn --workers 4`` with the coordinator
(``ATLAS_ASYNC_COORDINATOR``): whichever worker a webhook lands on, the
``/wait`` that another worker holds for that prediction answers at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from atlas_async.emulator import EmulatorConfig, WebhookSender, http_sender, serve

from .conftest import RedisServer

pytest.importorskip("uvicorn")
pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = "google/nano-banana-2/text-to-image"
WORKERS = 4
WAITS = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn(port: int, env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``uvicorn fastapi_app:app --workers 4`` on ``port``; stopped on exit."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "fastapi_app:app"),
            *("--app-dir", str(EXAMPLES), "--port", str(port)),
            *("--workers", str(WORKERS), "--log-level", "warning"),
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_every_wait_answers_within_a_second_of_its_webhook(
    redis_server: RedisServer,
) -> None:
    """16 images submitted through four uvicorn workers (each with its own
    client, all with one coordinator), each waited for on a fresh connection
    (so on any worker): every /wait answers completed less than a second after
    a worker accepted that prediction's webhook, though the fallback poll of
    the submitting worker is 30 s. (From the webhook's acceptance, not its
    sending: a worker's first delivery fetches the signing keys, which is the
    verifier's time, not the fan-out's.)"""
    sent: dict[str, float] = {}
    accepted = [anyio.Event()]  # set at each webhook the app takes

    def recording(send: WebhookSender) -> WebhookSender:
        async def post(url: str, headers: Mapping[str, str], body: bytes) -> int:
            status = await send(url, headers, body)
            if status == 200:  # the app has verified and taken it
                sent.setdefault(body.decode(), time.time())
                accepted[0].set()
            return status

        return post

    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=30) as poster:
        config = EmulatorConfig(seed=8, time_scale=1, model_latency={MODEL: (2, 5)})
        async with serve(config, webhook_sender=recording(http_sender(poster))) as emu:
            env = {
                "ATLASCLOUD_API_KEY": "sk-workers-test",
                "ATLASCLOUD_BASE_URL": emu.base_url,
                "ATLASCLOUD_JWKS_URL": emu.jwks_url,
                "PUBLIC_WEBHOOK_URL": f"{origin}/atlas/webhook",
                "ATLAS_ASYNC_COORDINATOR": redis_server.url,
            }
            with uvicorn(port, env):
                with anyio.fail_after(60):
                    while True:
                        try:
                            async with httpx.AsyncClient() as probe:
                                await probe.get(f"{origin}/openapi.json")
                            break
                        except httpx.TransportError:
                            await anyio.sleep(0.2)
                answered: dict[str, tuple[float, int, str]] = {}

                async def one(index: int) -> None:
                    # A fresh connection per call: the kernel spreads them
                    # over the four workers.
                    async with httpx.AsyncClient(base_url=origin, timeout=60) as http:
                        created = await http.post(
                            "/images", json={"prompt": f"{index}"}
                        )
                    pid = created.json()["id"]
                    async with httpx.AsyncClient(base_url=origin, timeout=60) as http:
                        waited = await http.get(
                            f"/predictions/{pid}/wait", params={"timeout": 60}
                        )
                    answered[pid] = (
                        time.time(),
                        waited.status_code,
                        waited.json().get("status", ""),
                    )

                with anyio.fail_after(90):
                    async with anyio.create_task_group() as tg:
                        for index in range(WAITS):
                            tg.start_soon(one, index)
                # The app resolves the wait before it answers the webhook, so
                # the last /wait can be back before its webhook's 200 is.
                with anyio.fail_after(10):
                    while not all(any(p in key for key in sent) for p in answered):
                        accepted[0] = anyio.Event()
                        await accepted[0].wait()
    assert len(answered) == WAITS
    assert {(code, status) for _, code, status in answered.values()} == {
        (200, "completed")
    }
    lags = {
        pid: at - min(t for key, t in sent.items() if pid in key)
        for pid, (at, _, _) in answered.items()
    }
    assert max(lags.values()) < 1.0, lags
