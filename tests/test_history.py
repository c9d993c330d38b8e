"""Reading the account's history: the page reader and the walk over pages."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from atlas_async._core.errors import UnexpectedResponseError
from atlas_async._core.history import Absent, Attach, HistoryItem, SentSubmit, Undecided
from atlas_async._ops.history import iter_history, settle_from_history
from atlas_async._wire.answer import Answer
from atlas_async._wire.history import HistoryPage, history_path, read_history_page

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}
T0 = 1_800_000_000


def answer(body: object) -> Answer:
    """A 200 answer with ``body`` as JSON."""
    return Answer.read(200, JSON, json.dumps(body).encode())


# The shape the vendor's own client reads (createdAt as text, code as text).
PAGE = {
    "code": "200",
    "message": "",
    "data": {
        "items": [
            {
                "ID": "p2",
                "createdAt": str(T0 + 5),
                "model": "m",
                "requestBody": '{"model":"m","prompt":"b"}',
                "status": "processing",
            },
            {
                "ID": "p1",
                "createdAt": T0,
                "model": "m",
                "requestBody": '{"model":"m","prompt":"a"}',
                "status": "completed",
                "result": {"outputs": ["https://cdn/x.png"]},
            },
            {"ID": "", "model": "m"},
            "garbage",
        ],
        "pageNo": 1,
        "pageSize": 20,
        "total": 2,
    },
}


def test_a_history_page_reads_ids_times_bodies_and_statuses() -> None:
    page = read_history_page(answer(PAGE), now=0.0)
    assert [item.id for item in page.items] == ["p2", "p1"]
    first = page.items[1]
    assert first.created_at == datetime.fromtimestamp(T0, tz=timezone.utc)
    assert first.body == {"model": "m", "prompt": "a"}
    assert first.status == "completed"
    assert (page.page, page.size, page.total) == (1, 20, 2)


def test_milliseconds_are_read_as_milliseconds() -> None:
    body = {"data": {"items": [{"ID": "p", "model": "m", "createdAt": T0 * 1000}]}}
    item = read_history_page(answer(body), now=0.0).items[0]
    assert item.created_at == datetime.fromtimestamp(T0, tz=timezone.utc)


@pytest.mark.parametrize("body", [{"data": {"items": "x"}}, {"data": []}, [1, 2]])
def test_a_page_without_a_list_of_items_is_an_unexpected_response(body: object) -> None:
    with pytest.raises(UnexpectedResponseError):
        read_history_page(answer(body), now=0.0)


def test_the_query_names_page_size_and_filters() -> None:
    assert (
        history_path(2, 50, model="a/b c")
        == "/model/history?no=2&size=50&model=a%2Fb+c"
    )
    assert (
        history_path(1, 10, status="failed")
        == "/model/history?no=1&size=10&status=failed"
    )


def entry(pid: str, at: float, prompt: str = "a") -> HistoryItem:
    """An entry of model ``m`` created at ``at``."""
    body = json.dumps({"model": "m", "prompt": prompt})
    return HistoryItem(
        pid, "m", "completed", datetime.fromtimestamp(at, timezone.utc), body
    )


class Pages:
    """A history of ``entries`` (newest first), served ``size`` at a time."""

    def __init__(self, entries: list[HistoryItem]) -> None:
        self.entries = entries
        self.asked: list[int] = []

    async def __call__(
        self, page: int, size: int, model: str | None, status: str | None
    ) -> HistoryPage:
        self.asked.append(page)
        start = (page - 1) * size
        chosen = [e for e in self.entries if model in (None, e.model)]
        return HistoryPage(tuple(chosen[start : start + size]), page, size, len(chosen))


async def test_the_walk_stops_at_the_first_entry_older_than_since() -> None:
    pages = Pages([entry(f"p{i}", T0 - i) for i in range(250)])
    read = [
        item.id async for item in iter_history(pages, since=T0 - 120, page_size=100)
    ]
    assert read == [f"p{i}" for i in range(121)]
    assert pages.asked == [1, 2]


async def test_an_entry_pushed_onto_the_next_page_is_read_once() -> None:
    entries = [entry(f"p{i}", T0 - i) for i in range(4)]

    class Growing(Pages):
        async def __call__(
            self, page: int, size: int, model: str | None, status: str | None
        ) -> HistoryPage:
            read = await super().__call__(page, size, model, status)
            self.entries.insert(0, entry(f"new{page}", T0 + page))  # created meanwhile
            return read

    pages = Growing(entries)
    read = [item.id async for item in iter_history(pages, page_size=2)]
    assert sorted(read) == sorted(set(read))
    assert {"p0", "p1", "p2", "p3"} <= set(read)


async def test_unknown_submits_are_settled_from_each_models_history() -> None:
    pages = Pages([entry("p-b", T0 + 1, "b"), entry("p-a", T0 + 1, "a")])
    sent = [
        SentSubmit("a", "m", {"model": "m", "prompt": "a"}, T0, T0 + 5),
        SentSubmit("c", "m", {"model": "m", "prompt": "c"}, T0, T0 + 5),
    ]
    verdicts = await settle_from_history(pages, sent, now=lambda: T0 + 3600)
    assert verdicts == [Attach("a", "p-a"), Absent("c")]


async def test_a_walk_cut_short_by_the_page_limit_proves_no_absence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import atlas_async._ops.history as history

    monkeypatch.setattr(history, "MAX_PAGES", 1)
    monkeypatch.setattr(history, "PAGE_SIZE", 2)
    pages = Pages([entry(f"p{i}", T0 + 100 - i, "other") for i in range(10)])
    sent = [SentSubmit("a", "m", {"model": "m", "prompt": "a"}, T0, T0 + 5)]
    [verdict] = await settle_from_history(pages, sent, now=lambda: T0 + 3600)
    assert isinstance(verdict, Undecided)
    assert "does not reach back" in verdict.reason


async def test_the_walk_reaches_an_entry_stamped_in_the_second_before_the_send() -> (
    None
):
    """History truncates stamps to whole seconds: the walk must not stop at an
    entry stamped just before the send it is looking for."""
    pages = Pages([entry("p-a", T0, "a")])  # created at T0 + 0.9, stamped T0
    sent = [SentSubmit("a", "m", {"model": "m", "prompt": "a"}, T0 + 0.9, T0 + 2)]
    verdicts = await settle_from_history(
        pages, sent, now=lambda: T0 + 3600, skew=0.1, settle_after=1.0
    )
    assert verdicts == [Attach("a", "p-a")]
