"""Resuming a batch whose outputs were not saved: fresh URLs, or gone for good.

The library's side of ``batch``'s resume (the CLI's is in test_batch_cli.py):
an in-process emulator on a fake clock, a transport in front of it that breaks
the downloads the way an interrupted or expired run sees them, real SQLite.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from test_batch import Harness, collect, prompts

from atlas_async._batch.journal import ItemState, Journal
from atlas_async._core.errors import DownloadError, OutputsGoneError

pytestmark = pytest.mark.asyncio


class BreakFiles(httpx.AsyncBaseTransport):
    """Wraps a transport: output downloads get ``status`` while it is set, and
    every request is counted by method and path."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.status: int | None = None
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        if self.status is not None and "/files/" in request.url.path:
            return httpx.Response(self.status, text="nope")
        return await self.inner.handle_async_request(request)

    def count(self, method: str, part: str) -> int:
        return sum(s.startswith(method) and part in s for s in self.seen)


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def files(harness: Harness) -> BreakFiles:
    wrapper = BreakFiles(harness.transport)
    harness.transport = wrapper
    return wrapper


async def states(path: Path) -> list[ItemState]:
    async with Journal(path) as journal:
        return [entry.state for entry in await journal.items()]


async def test_an_unsaved_item_is_fetched_afresh_then_downloaded(
    harness: Harness, files: BreakFiles, tmp_path: Path
) -> None:
    """Completed but not saved (the download failed): the resume GETs the
    prediction again for fresh URLs, downloads, and the item is ``saved``."""
    path, out = tmp_path / "run.db", tmp_path / "out"
    files.status = 503
    async with harness.client() as client:
        first = await collect(
            client.generate_many(prompts(2), journal=path, download_to=out)
        )
        assert all(isinstance(r.error, DownloadError) for r in first.values())
        assert await states(path) == [ItemState.COMPLETED] * 2
        files.status = None
        gets = files.count("GET", "/prediction")
        again = await collect(
            client.generate_many(prompts(2), journal=path, download_to=out)
        )
    assert all(r.ok and r.resumed and len(r.files) == 1 for r in again.values())
    assert all(f.is_file() for r in again.values() for f in r.files)
    assert files.count("GET", "/prediction") - gets == 2  # one fresh GET each
    assert harness.submits() == 2
    assert await states(path) == [ItemState.SAVED] * 2


async def test_a_saved_item_whose_file_was_deleted_is_downloaded_again(
    harness: Harness, tmp_path: Path
) -> None:
    """The journal says saved, the disk says otherwise: the disk wins."""
    path, out = tmp_path / "run.db", tmp_path / "out"
    async with harness.client() as client:
        first = await collect(
            client.generate_many(prompts(1), journal=path, download_to=out)
        )
        first[0].files[0].unlink()
        again = await collect(
            client.generate_many(prompts(1), journal=path, download_to=out)
        )
    assert again[0].ok
    assert again[0].resumed
    assert again[0].files[0].is_file()
    assert harness.submits() == 1


async def test_outputs_gone_for_good_fail_the_item_once_and_resumes_stop_trying(
    harness: Harness, files: BreakFiles, tmp_path: Path
) -> None:
    """Fresh URLs that answer 404 mean the media expired: the item becomes
    failed (OutputsGoneError), and the next resume replays that failure
    without asking the server again: resumes converge."""
    path, out = tmp_path / "run.db", tmp_path / "out"
    files.status = 503
    async with harness.client() as client:
        await collect(client.generate_many(prompts(2), journal=path, download_to=out))
        files.status = 404
        second = await collect(
            client.generate_many(prompts(2), journal=path, download_to=out)
        )
        assert all(isinstance(r.error, OutputsGoneError) for r in second.values())
        assert "gone for good" in str(second[0].error)
        assert await states(path) == [ItemState.FAILED] * 2
        before = len(files.seen)
        third = await collect(
            client.generate_many(prompts(2), journal=path, download_to=out)
        )
    assert all(isinstance(r.error, OutputsGoneError) for r in third.values())
    assert len(files.seen) == before  # nothing sent: replayed from the journal
    assert harness.submits() == 2
