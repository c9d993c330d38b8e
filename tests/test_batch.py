"""generate_many: outcomes, stops, timeouts, resume, downloads, bad input.

Every test runs the client against the in-process emulator on one FakeClock
(``autojump``), so minutes of Atlas time pass in milliseconds and nothing here
depends on wall-clock speed.
"""

from __future__ import annotations

import gc
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest

from atlas_async._batch.input import load_requests
from atlas_async._batch.journal import ItemState, Journal
from atlas_async._batch.types import BatchProgress, BatchResult, GenerationRequest
from atlas_async._client import AtlasClient
from atlas_async._core.errors import (
    BatchTimeoutError,
    ClientClosedError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidRequestError,
    PredictionFailedError,
    PredictionTimeoutError,
    RateLimitError,
    ServerError,
    SubmissionUnknownError,
    TransportError,
)
from atlas_async._core.models import Kind
from atlas_async.emulator import Emulator, EmulatorConfig, Faults
from atlas_async.testing import FakeClock

pytestmark = pytest.mark.asyncio

IMAGE = "google/nano-banana-2/text-to-image"
FAST = "z-image/turbo"


def image(prompt: str, model: str = IMAGE) -> dict[str, Any]:
    return {"model": model, "prompt": prompt}


def prompts(n: int, model: str = IMAGE) -> list[dict[str, Any]]:
    return [image(f"prompt number {i}", model) for i in range(n)]


class Harness:
    """One emulator and one FakeClock; opens clients wired to both."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.clock = FakeClock()
        config = config or EmulatorConfig(seed=3)
        if config.epoch is None:
            # One wall clock for both sides: history times are compared with it.
            config = attrs.evolve(config, epoch=self.clock.wall())
        self.emulator = Emulator(
            config,
            clock=self.clock.now,
            sleep=self.clock.sleep,
        )
        self.transport: httpx.AsyncBaseTransport = self.emulator.transport

    @asynccontextmanager
    async def client(self, **options: Any) -> AsyncIterator[AtlasClient]:
        async with (
            self.clock.autojump(),
            AtlasClient(
                "test-key",
                base_url=self.emulator.base_url,
                transport=self.transport,
                clock=self.clock,
                rng=random.Random(0),
                **options,
            ) as client,
        ):
            yield client

    def stats(self) -> Any:
        return self.emulator.stats.snapshot()

    def submits(self) -> int:
        by_endpoint = self.stats().requests_by_endpoint
        return sum(n for name, n in by_endpoint.items() if name.startswith("POST"))


class SubmitFault(httpx.AsyncBaseTransport):
    """Wraps a transport: submits after the first ``allow`` get ``answer``."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        answer: Callable[[httpx.Request], httpx.Response],
        *,
        allow: int = 0,
    ) -> None:
        self.inner, self.answer, self.allow = inner, answer, allow
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/generate" in request.url.path:
            if self.allow <= 0:
                self.refused += 1
                return self.answer(request)
            self.allow -= 1
        return await self.inner.handle_async_request(request)


def refusal(status: int, message: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {"code": status, "msg": message, "request_id": "r1", "data": None}
    return lambda request: httpx.Response(status, json=body)


class Latest:
    """An on_progress callback that keeps the latest snapshot."""

    def __init__(self) -> None:
        self.last = BatchProgress(total=0)

    def __call__(self, progress: BatchProgress) -> None:
        self.last = progress


async def collect(iterator: Any) -> dict[int, BatchResult]:
    return {result.index: result async for result in iterator}


@pytest.fixture
def harness() -> Harness:
    return Harness()


class TestOutcomes:
    async def test_results_come_in_completion_order_with_their_index(self) -> None:
        """A slow first item is yielded after a fast second one, each with its index."""
        h = Harness(
            EmulatorConfig(seed=1, model_latency={IMAGE: (50, 50), FAST: (2, 2)})
        )
        requests = [image("slow one"), image("fast one", FAST)]
        async with h.client() as client:
            order = [r.index async for r in client.generate_many(requests)]
        assert order == [1, 0]

    async def test_a_failed_item_does_not_cancel_its_siblings(
        self, harness: Harness
    ) -> None:
        """A prediction failing on the server is one error result; the rest complete."""
        requests = [*prompts(4), image("[emulator:fail] doomed")]
        async with harness.client() as client:
            results = await collect(client.generate_many(requests))
        assert [results[i].ok for i in range(5)] == [True] * 4 + [False]
        assert isinstance(results[4].error, PredictionFailedError)
        assert results[4].prediction is None
        assert results[0].prediction is not None
        assert results[0].prediction.outputs
        assert results[0].request == GenerationRequest.from_mapping(requests[0])

    async def test_an_empty_batch_yields_nothing(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """No requests: the iterator ends at once and nothing is sent."""
        async with harness.client() as client:
            results = await collect(
                client.generate_many([], journal=tmp_path / "run.db")
            )
        assert results == {}
        assert harness.submits() == 0

    async def test_progress_reports_every_change_and_ends_with_all_done(
        self, harness: Harness
    ) -> None:
        """on_progress sees frozen snapshots; the last one counts every item."""
        seen: list[BatchProgress] = []
        async with harness.client() as client:
            await collect(client.generate_many(prompts(3), on_progress=seen.append))
        assert seen[0] == BatchProgress(total=3)
        assert max(p.in_flight for p in seen) >= 1
        last = seen[-1]
        assert (last.done, last.ok, last.failed, last.submitted) == (3, 3, 0, 3)
        assert last.pending == 0
        assert last.in_flight == 0

    async def test_max_in_flight_bounds_the_items_in_progress(
        self, harness: Harness
    ) -> None:
        """With max_in_flight=2, never more than two items are in flight at once."""
        seen: list[BatchProgress] = []
        async with harness.client() as client:
            results = await collect(
                client.generate_many(
                    prompts(6), max_in_flight=2, on_progress=seen.append
                )
            )
        assert len(results) == 6
        assert max(p.in_flight for p in seen) == 2

    async def test_unknown_model_is_an_invalid_request_result(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """A 400 for an unknown model is that item's error, recorded as failed."""
        requests = [image("fine"), image("no such model", "acme/nope")]
        async with harness.client() as client:
            results = await collect(
                client.generate_many(requests, journal=tmp_path / "run.db")
            )
        error = results[1].error
        assert isinstance(error, InvalidRequestError)
        assert error.status_code == 400
        assert results[0].ok
        async with Journal(tmp_path / "run.db") as journal:
            assert (await journal.get(1)).state is ItemState.FAILED

    async def test_missing_prompt_is_a_400_result(self, harness: Harness) -> None:
        """A request without its prompt fails alone, with the server's 400."""
        requests = [image("fine"), {"model": IMAGE, "size": "1024*1024"}]
        async with harness.client() as client:
            results = await collect(client.generate_many(requests))
        assert isinstance(results[1].error, InvalidRequestError)
        assert results[1].error.status_code == 400
        assert results[0].ok


class TestStops:
    async def test_402_stops_further_submissions_while_running_ones_finish(
        self, tmp_path: Path
    ) -> None:
        """After a 402 nothing more is sent; submitted items still complete."""
        h = Harness()
        fault = SubmitFault(
            h.emulator.transport, refusal(402, "insufficient balance"), allow=3
        )
        h.transport = fault
        async with h.client(max_retries=0) as client:
            results = await collect(
                client.generate_many(
                    prompts(10), max_in_flight=4, journal=tmp_path / "run.db"
                )
            )
        ok = [i for i, r in results.items() if r.ok]
        refused = [r for r in results.values() if not r.ok]
        assert len(ok) == 3
        assert len(refused) == 7
        assert all(isinstance(r.error, InsufficientBalanceError) for r in refused)
        assert fault.refused == 1  # one 402, then no more submits
        async with Journal(tmp_path / "run.db") as journal:
            summary = await journal.summary()
        # Refused and unsent items stay pending: a resume after topping up sends them.
        assert summary[ItemState.COMPLETED] == 3
        assert summary[ItemState.PENDING] == 7

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            pytest.param(429, RateLimitError, id="429"),
            pytest.param(503, ServerError, id="503"),
        ],
    )
    async def test_an_exhausted_refusal_resets_the_item_to_pending(
        self, tmp_path: Path, status: int, expected: type[Exception]
    ) -> None:
        """A submit refused with 429/503 after the retries never existed: pending."""
        h = Harness()
        h.transport = SubmitFault(h.emulator.transport, refusal(status, "refused"))
        async with h.client(max_retries=0) as client:
            results = await collect(
                client.generate_many([image("refused")], journal=tmp_path / "run.db")
            )
        assert isinstance(results[0].error, expected)
        async with Journal(tmp_path / "run.db") as journal:
            assert (await journal.get(0)).state is ItemState.PENDING

    async def test_a_connect_error_resets_the_item_to_pending(
        self, tmp_path: Path
    ) -> None:
        """A submit that could not connect provably never left: pending again."""

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        h = Harness()
        h.transport = SubmitFault(h.emulator.transport, refuse)
        async with h.client(max_retries=0) as client:
            results = await collect(
                client.generate_many([image("unsent")], journal=tmp_path / "run.db")
            )
        error = results[0].error
        assert isinstance(error, TransportError)
        assert not isinstance(error, SubmissionUnknownError)
        async with Journal(tmp_path / "run.db") as journal:
            assert (await journal.get(0)).state is ItemState.PENDING

    async def test_a_dropped_submit_is_found_in_history_and_not_resent(
        self, tmp_path: Path
    ) -> None:
        """A sent submit without an answer is looked up in the account's
        history and followed there: it completes, created once."""
        config = EmulatorConfig(
            seed=2, faults=Faults(drop_rate=1.0, targets=["submit"])
        )
        h = Harness(config)
        journal = tmp_path / "run.db"
        async with h.client() as client:
            first = await collect(
                client.generate_many([image("dropped")], journal=journal)
            )
            again = await collect(
                client.generate_many([image("dropped")], journal=journal)
            )
        assert first[0].ok, first[0].error
        assert again[0].ok
        assert again[0].resumed
        assert again[0].prediction == first[0].prediction
        assert h.stats().predictions_created == 1

    async def test_a_submit_history_cannot_place_is_sent_again_at_most_once(
        self, tmp_path: Path
    ) -> None:
        """Clocks a day apart: history never shows the dropped submits inside
        their send windows, so each is taken for absent; it is sent again once,
        then left unknown for the user, never sent in a loop."""
        config = EmulatorConfig(
            seed=2,
            faults=Faults(drop_rate=1.0, targets=["submit"]),
            epoch=FakeClock().wall() + 86_400.0,
        )
        h = Harness(config)
        async with h.client() as client:
            results = await collect(
                client.generate_many([image("dropped")], journal=tmp_path / "j")
            )
        assert isinstance(results[0].error, SubmissionUnknownError)
        assert h.stats().predictions_created == 2


class TestTimeouts:
    async def test_per_item_timeout_leaves_the_item_submitted(
        self, tmp_path: Path
    ) -> None:
        """An item past its own deadline ends with PredictionTimeoutError, resumable."""
        h = Harness(EmulatorConfig(seed=4, model_latency={IMAGE: (900, 900)}))
        requests = [image("too slow"), image("quick", FAST)]
        async with h.client() as client:
            results = await collect(
                client.generate_many(requests, timeout=60, journal=tmp_path / "j.db")
            )
        assert isinstance(results[0].error, PredictionTimeoutError)
        assert results[1].ok
        async with Journal(tmp_path / "j.db") as journal:
            assert (await journal.get(0)).state is ItemState.SUBMITTED

    async def test_batch_timeout_ends_the_unfinished_items(
        self, tmp_path: Path
    ) -> None:
        """After batch_timeout, waiting and unsent items end with BatchTimeoutError."""
        # Latency and per-item deadline far away: autojump may move time a long
        # way while a journal commit runs in its thread.
        h = Harness(EmulatorConfig(seed=5, model_latency={IMAGE: (1e6, 1e6)}))
        async with h.client() as client:
            results = await collect(
                client.generate_many(
                    prompts(4),
                    max_in_flight=2,
                    timeout=1e7,
                    batch_timeout=100,
                    journal=tmp_path / "j.db",
                )
            )
        errors = [r.error for r in results.values()]
        assert all(isinstance(e, BatchTimeoutError) for e in errors), errors
        sent = [e for e in errors if e is not None and e.prediction_id is not None]
        assert len(sent) == 2
        assert h.submits() == 2
        async with Journal(tmp_path / "j.db") as journal:
            summary = await journal.summary()
        assert summary[ItemState.SUBMITTED] == 2
        assert summary[ItemState.PENDING] == 2


class TestResume:
    async def test_each_journal_state_resumes_without_duplicates(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """Completed replays, submitted attaches, unknown is reported; pending: sent."""
        requests = prompts(4)
        path = tmp_path / "run.db"
        async with harness.client() as client:
            done = await client.submit_image(IMAGE, prompt=requests[0]["prompt"])
            running = await client.submit_image(IMAGE, prompt=requests[1]["prompt"])
            completed = await done
            async with Journal(path) as journal:
                await journal.begin(
                    [GenerationRequest.from_mapping(r) for r in requests]
                )
                for index in (0, 1, 2):
                    await journal.mark_submitting(index)
                await journal.mark_submitted(0, completed.id)
                await journal.mark_completed(0, completed)
                await journal.mark_submitted(1, running.id)
                await journal.mark_unknown(2, "no answer")
            results = await collect(client.generate_many(requests, journal=path))
        assert results[0].resumed
        assert results[0].prediction == completed
        assert results[1].ok
        assert results[1].prediction is not None
        assert results[1].prediction.id == running.id
        assert isinstance(results[2].error, SubmissionUnknownError)
        assert results[3].ok
        assert not results[3].resumed
        stats = harness.stats()
        assert stats.predictions_created == 3  # items 0 and 1 above, then item 3
        assert stats.duplicate_submissions == 0

    async def test_resubmit_unknown_sends_the_unknown_item_again(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """With resubmit_unknown=True an unknown item is reset and submitted."""
        requests = prompts(2)
        path = tmp_path / "run.db"
        async with Journal(path) as journal:
            await journal.begin([GenerationRequest.from_mapping(r) for r in requests])
            await journal.mark_submitting(0)
            await journal.mark_unknown(0, "no answer")
        async with harness.client() as client:
            results = await collect(
                client.generate_many(requests, journal=path, resubmit_unknown=True)
            )
        assert results[0].ok
        assert results[1].ok
        assert harness.stats().predictions_created == 2

    async def test_an_interrupted_run_resumes_with_zero_duplicate_submissions(
        self, tmp_path: Path
    ) -> None:
        """Stop after two results, run again: every item completes, each sent once."""
        h = Harness(EmulatorConfig(seed=6, latency={"image": (2, 60)}))
        path = tmp_path / "run.db"
        requests = prompts(8)
        progress = Latest()
        async with h.client() as client:
            first = client.generate_many(requests, journal=path, on_progress=progress)
            async with first as results:
                seen = 0
                async for _ in results:
                    seen += 1
                    # Stop only once every submit has its id on record: an item
                    # stopped mid-POST would (rightly) come back as unknown.
                    if seen >= 2 and progress.last.submitted == 8:
                        break
            again = await collect(client.generate_many(requests, journal=path))
        assert sorted(again) == list(range(8))
        assert all(r.ok for r in again.values())
        assert sum(r.resumed for r in again.values()) >= 2
        stats = h.stats()
        assert stats.predictions_created == 8
        assert stats.duplicate_submissions == 0

    async def test_a_dropped_iterator_stops_the_batch(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """Breaking out without aclose stops the driver; the journal reopens cleanly."""
        path = tmp_path / "run.db"
        progress = Latest()
        async with harness.client() as client:
            async for _ in client.generate_many(
                prompts(6), journal=path, on_progress=progress
            ):
                if progress.last.submitted == 6:
                    break
            gc.collect()  # CPython already dropped it; other interpreters may not
            # Reopening waits (SQLite's busy timeout) for the stopped run's close.
            results = await collect(client.generate_many(prompts(6), journal=path))
        assert all(r.ok for r in results.values())
        assert harness.stats().duplicate_submissions == 0

    async def test_a_failed_item_is_replayed_with_its_type_and_status(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """A resumed run yields the recorded failure again without a request."""
        requests = [image("x", "acme/nope"), image("[emulator:fail] y")]
        path = tmp_path / "run.db"
        async with harness.client() as client:
            await collect(client.generate_many(requests, journal=path))
            sent = harness.submits()
            again = await collect(client.generate_many(requests, journal=path))
        assert harness.submits() == sent
        assert isinstance(again[0].error, InvalidRequestError)
        assert again[0].error.status_code == 400
        assert isinstance(again[1].error, PredictionFailedError)
        assert again[1].error.prediction is not None

    async def test_a_journal_takes_added_requests_and_sends_only_those(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """A batch run again with one more request sends that one alone."""
        path = tmp_path / "run.db"
        async with harness.client() as client:
            await collect(client.generate_many(prompts(2), journal=path))
            again = await collect(client.generate_many(prompts(3), journal=path))
        assert harness.submits() == 3
        assert [again[i].resumed for i in range(3)] == [True, True, False]
        assert all(result.ok for result in again.values())

    async def test_an_open_journal_is_used_and_left_open(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """A Journal the caller opened stays open after the batch."""
        async with Journal(tmp_path / "run.db") as journal, harness.client() as client:
            await collect(client.generate_many(prompts(2), journal=journal))
            assert (await journal.summary())[ItemState.COMPLETED] == 2


class TestDownloads:
    async def test_download_to_writes_every_output_as_a_png(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """Each completed item's outputs are saved, named by index, and journaled."""
        out = tmp_path / "out"
        requests = [*prompts(2), {**image("two of them"), "num_images": 2}]
        async with harness.client() as client:
            results = await collect(
                client.generate_many(requests, download_to=out, journal=tmp_path / "j")
            )
        assert [len(results[i].files) for i in range(3)] == [1, 1, 2]
        for result in results.values():
            for file in result.files:
                assert file.parent == out.absolute()
                assert file.name.startswith(f"{result.index:05d}-")
                assert file.read_bytes().startswith(b"\x89PNG")
        assert sorted(p.name for p in out.iterdir()) == sorted(
            f.name for r in results.values() for f in r.files
        )
        async with Journal(tmp_path / "j") as journal:
            assert (await journal.get(2)).files == results[2].files

    async def test_a_completed_item_without_files_is_downloaded_on_resume(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """Files missing from the journal are fetched again, with no new submit."""
        path, out = tmp_path / "run.db", tmp_path / "out"
        async with harness.client() as client:
            await collect(client.generate_many(prompts(1), journal=path))
            again = await collect(
                client.generate_many(prompts(1), journal=path, download_to=out)
            )
        assert again[0].resumed
        assert len(again[0].files) == 1
        assert harness.submits() == 1

    async def test_an_unwritable_output_folder_fails_before_any_submit(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """download_to under a regular file raises ConfigurationError, nothing sent."""
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        async with harness.client() as client:
            with pytest.raises(ConfigurationError, match="download directory"):
                await collect(
                    client.generate_many(prompts(2), download_to=blocker / "o")
                )
        assert harness.submits() == 0


class TestLifecycle:
    async def test_closing_the_client_mid_batch_ends_every_item(
        self, tmp_path: Path
    ) -> None:
        """A batch whose client closes ends each item with ClientClosedError."""
        # Far beyond reach: autojump moves time while journal commits run in
        # threads, so a merely long latency could complete during one.
        h = Harness(EmulatorConfig(seed=7, model_latency={IMAGE: (1e6, 1e6)}))
        path = tmp_path / "run.db"
        outcomes: list[object] = []

        async def consume(batch: Any) -> None:
            try:
                async for result in batch:
                    outcomes.append(result.error)
            except ClientClosedError as exc:
                outcomes.append(exc)

        waiting = anyio.Event()

        def progress(p: BatchProgress) -> None:
            if p.in_flight:
                waiting.set()

        async with anyio.create_task_group() as tg, h.client() as client:
            batch = client.generate_many(
                prompts(3),
                max_in_flight=1,
                journal=path,
                on_progress=progress,
                timeout=1e7,
            )
            tg.start_soon(consume, batch)
            await waiting.wait()  # the first is submitted and waiting
        assert outcomes
        assert all(isinstance(o, ClientClosedError) for o in outcomes)
        async with Journal(path) as journal:
            summary = await journal.summary()
        assert summary[ItemState.SUBMITTED] == 1
        assert summary[ItemState.PENDING] == 2

    async def test_aclose_before_start_and_twice_is_harmless(
        self, harness: Harness
    ) -> None:
        """aclose on a batch that never started, or twice, does nothing."""
        async with harness.client() as client:
            batch = client.generate_many(prompts(1))
            await batch.aclose()
            assert [r.ok async for r in batch] == [True]
            await batch.aclose()
            await batch.aclose()

    async def test_an_error_in_on_progress_stops_the_batch_and_is_raised(
        self, harness: Harness
    ) -> None:
        """A bug in the caller's callback is raised from the iterator, not dropped."""

        def broken(progress: BatchProgress) -> None:
            if progress.done:
                raise ZeroDivisionError("callback bug")

        async with harness.client() as client:
            with pytest.raises(ZeroDivisionError):
                await collect(client.generate_many(prompts(2), on_progress=broken))


class TestBadInput:
    async def test_an_invalid_request_is_refused_before_anything_is_sent(
        self, harness: Harness
    ) -> None:
        """generate_many names the bad item's index and sends nothing."""
        async with harness.client() as client:
            with pytest.raises(ConfigurationError, match="request 1"):
                client.generate_many([image("ok"), {"prompt": "no model"}])
            with pytest.raises(ConfigurationError, match="max_in_flight"):
                client.generate_many([image("ok")], max_in_flight=0)
            with pytest.raises(ConfigurationError, match="timeout"):
                client.generate_many([image("ok")], timeout=0)
            with pytest.raises(ConfigurationError, match="batch_timeout"):
                client.generate_many([image("ok")], batch_timeout=-1)
            with pytest.raises(ConfigurationError, match="download_concurrency"):
                client.generate_many([image("ok")], download_concurrency=0)
        assert harness.submits() == 0

    async def test_a_malformed_line_is_reported_by_number_while_others_proceed(
        self, harness: Harness, tmp_path: Path
    ) -> None:
        """Bad JSONL lines become numbered problems; the valid lines still run."""
        file = tmp_path / "requests.jsonl"
        file.write_text(
            '{"prompt": "a fox"}\n'
            "{not json\n"
            '["a list"]\n'
            '{"kind": "gif", "prompt": "x"}\n'
            '{"kind": "video", "prompt": "waves", "duration": 5}\n'
        )
        parsed = load_requests(file)
        assert [p.line for p in parsed.problems] == [2, 3, 4]
        assert "not valid JSON" in str(parsed.problems[0])
        assert parsed.lines == (1, 5)
        assert parsed.total == 5
        assert parsed.requests[1].kind is Kind.VIDEO
        async with harness.client() as client:
            results = await collect(client.generate_many(parsed.requests))
        assert [results[i].ok for i in range(2)] == [True, True]
