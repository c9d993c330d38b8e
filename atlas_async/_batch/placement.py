"""
Which journal item each request of a batch is, and what a resume does with it.

A journal finds its items by content: a request's `request_key` (the hash of
its canonical kind, model and params). The nth request with a key is the nth
item with that key, in the journal's order, so lines may move, be added or be
removed: a moved line keeps its item, an added one is a new item, and a removed
one's item stays in the journal, after the batch's own (it is the same item
again if the line comes back). Identical lines are as many items as there are
lines, each its own prediction; the first line is the first item.

Pure: no I/O. The journal reads its rows and asks `place` where they go.
"""

from __future__ import annotations

import enum
from collections import defaultdict, deque
from collections.abc import Sequence

import attrs

from .rows import ItemState, JournalEntry

__all__ = ["Placement", "Step", "place", "step_of"]


@attrs.frozen
class Placement:
    """
    Where a journal's items go for a batch of requests.

    Attributes:
        items: per request, in order: its item, or None for a new request.
        leftover: the journal's items no request claims, in journal order.
    """

    items: tuple[JournalEntry | None, ...]
    leftover: tuple[JournalEntry, ...]

    @property
    def order(self) -> list[JournalEntry | None]:
        """The new order of the journal: the batch's items, then the leftover."""
        return [*self.items, *self.leftover]


def place(stored: Sequence[JournalEntry], keys: Sequence[str]) -> Placement:
    """Match ``stored`` (in journal order) to the requests with these ``keys``."""
    by_key: defaultdict[str, deque[JournalEntry]] = defaultdict(deque)
    for entry in sorted(stored, key=lambda e: e.index):
        by_key[entry.key].append(entry)
    items = [by_key[key].popleft() if by_key[key] else None for key in keys]
    claimed = {id(e) for e in items if e is not None}
    leftover = [
        e for e in sorted(stored, key=lambda e: e.index) if id(e) not in claimed
    ]
    return Placement(tuple(items), tuple(leftover))


class Step(str, enum.Enum):
    """What a resumed run does with one item (``batch --status`` shows it)."""

    DONE = "done"  # reported from the journal, files and all
    FETCH = "files missing"  # completed: fetched again (fresh URLs), downloaded
    ATTACH = "submitted"  # on the server: followed until it ends
    SETTLE = "unknown"  # sent, no answer: looked up in the account's history
    FAILED = "failed"  # reported from the journal (--retry-failed sends it)
    SEND = "pending"  # sent

    def __str__(self) -> str:
        return self.value


def step_of(
    entry: JournalEntry | None, *, downloads: bool, files_present: bool = True
) -> Step:
    """
    The `Step` for ``entry`` (None: a request the journal has not seen).

    Args:
        downloads: the run saves outputs to files.
        files_present: every recorded file is still on disk.
    """
    if entry is None:
        return Step.SEND
    state = entry.state
    if state is ItemState.SAVED:
        return Step.DONE if files_present or not downloads else Step.FETCH
    if state is ItemState.COMPLETED:
        return Step.FETCH if downloads and entry.outputs else Step.DONE
    steps = {
        ItemState.SUBMITTED: Step.ATTACH,
        ItemState.UNKNOWN: Step.SETTLE,
        ItemState.SUBMITTING: Step.SETTLE,
        ItemState.FAILED: Step.FAILED,
    }
    return steps.get(state, Step.SEND)
