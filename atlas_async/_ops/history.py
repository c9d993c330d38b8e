"""
Reading the account's history, and settling unknown submits from it.

`iter_history` pages ``GET /model/history`` (newest first) back to a moment;
`settle_from_history` reads what the pure `settle` needs for a set of unknown
submits (each model's history back to the earliest send window) and returns
its verdicts. The decisions are ``_core.history``'s; this module only reads.

Paging is by page number over a list that grows at its head while it is read:
a prediction created meanwhile pushes older entries onto later pages, so an
entry may be read twice (ids are de-duplicated) but none is skipped.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence, Set

from .._core.history import (
    DEFAULT_SETTLE_AFTER,
    DEFAULT_SKEW,
    STAMP_RESOLUTION,
    HistoryItem,
    SentSubmit,
    Verdict,
    settle,
)
from .._wire.history import HistoryPage

__all__ = [
    "MAX_PAGES",
    "PAGE_SIZE",
    "FetchPage",
    "iter_history",
    "settle_from_history",
]

#: Entries asked for per page.
PAGE_SIZE = 100
#: Pages read at most for one settlement (10,000 entries per model).
MAX_PAGES = 100

FetchPage = Callable[[int, int, "str | None", "str | None"], Awaitable[HistoryPage]]
"""``fetch(page, size, model, status)``: one page of history."""


async def iter_history(
    fetch: FetchPage,
    *,
    model: str | None = None,
    status: str | None = None,
    since: float | None = None,
    page_size: int = PAGE_SIZE,
) -> AsyncIterator[HistoryItem]:
    """
    Yield history entries newest first, each once, until one older than
    ``since`` (wall time, Unix seconds) or the end.

    Entries without a creation time are yielded and never stop the walk.
    """
    walk = _Walk(fetch, model, status, since, page_size)
    while True:
        page = await walk.next_page()
        if page is None:
            return
        for item in page:
            yield item


class _Walk:
    """Pages of new entries until ``since`` or the end; ``complete`` when
    either was reached (not a page limit)."""

    def __init__(
        self,
        fetch: FetchPage,
        model: str | None,
        status: str | None,
        since: float | None,
        size: int,
    ) -> None:
        self._fetch = fetch
        self._model = model
        self._status = status
        self._since = since
        self._size = size
        self._seen: set[str] = set()
        self._page = 1
        self.complete = False

    async def next_page(self) -> list[HistoryItem] | None:
        if self.complete:
            return None
        read = await self._fetch(self._page, self._size, self._model, self._status)
        self._page += 1
        fresh: list[HistoryItem] = []
        for item in read.items:
            if item.id in self._seen:
                continue
            self._seen.add(item.id)
            stamp = item.created_at.timestamp() if item.created_at else None
            if self._since is not None and stamp is not None and stamp < self._since:
                self.complete = True
                return fresh
            fresh.append(item)
        last = (
            not read.items
            or len(read.items) < read.size
            or (read.total is not None and (self._page - 1) * read.size >= read.total)
        )
        self.complete = last
        return fresh


async def settle_from_history(
    fetch: FetchPage,
    sent: Sequence[SentSubmit],
    *,
    now: Callable[[], float],
    claimed: Set[str] = frozenset(),
    skew: float = DEFAULT_SKEW,
    settle_after: float = DEFAULT_SETTLE_AFTER,
) -> list[Verdict]:
    """
    Read each model's history back past the earliest send window of its
    submits, then `settle` them all (one verdict per submit, in order).

    Args:
        fetch: one page of history.
        sent: the unknown submits.
        now: wall time, Unix seconds (read once the history is read).
        claimed: ids already known to belong to other submits.
        skew: seconds each window is widened by, on each side.
        settle_after: seconds after a window closes before absence is believed.
    """
    if not sent:
        return []
    items: list[HistoryItem] = []
    covered = -math.inf
    for model in sorted({submit.model for submit in sent}):
        earliest = min(s.sent_after for s in sent if s.model == model)
        since = earliest - skew - STAMP_RESOLUTION
        walk = _Walk(fetch, model, None, since, PAGE_SIZE)
        oldest = math.inf
        for _ in range(MAX_PAGES):
            page = await walk.next_page()
            if page is None:
                break
            items.extend(page)
            for item in page:
                if item.created_at is not None:
                    oldest = min(oldest, item.created_at.timestamp())
        if not walk.complete:
            # Stopped at the page limit: only as far back as the oldest read.
            covered = max(covered, oldest)
    return settle(
        sent,
        items,
        covered_since=covered,
        now=now(),
        claimed=claimed,
        skew=skew,
        settle_after=settle_after,
    )
