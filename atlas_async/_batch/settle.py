"""
`Settler`: a batch's unknown submits, settled from the account's history.

An item is *unknown* when its submit went out and no usable answer came (the
answer was lost, or the process was killed mid-request). Each such item asks
`Settler.settle`; the asks that arrive while a look at the history is under
way are answered together by the next look (one walk over the history for a
whole resumed batch, not one per item). The verdicts are ``_core.history``'s:
attach to the prediction the submit created, send again (history proves it
never arrived), or undecided.

Ids the batch already knows (its journal's, and each one attached or submitted
during the run) are *claimed*: never attached to a second item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence, Set

import anyio

from .._core.history import SentSubmit, Verdict

__all__ = ["SettleCall", "Settler"]

SettleCall = Callable[[Sequence[SentSubmit], Set[str]], Awaitable[list[Verdict]]]
"""``settle(sent, claimed)``: one verdict per submit, from the history."""


class Settler:
    """
    Coalesces the unknown items of one batch run into looks at the history.

    Args:
        call: reads the history and settles (the host's ``settle_unknown``).
        claimed: ids already known to belong to items.
    """

    def __init__(self, call: SettleCall, claimed: Set[str] = frozenset()) -> None:
        self._call = call
        self._lock = anyio.Lock()
        self._pending: dict[Hashable, SentSubmit] = {}
        self._verdicts: dict[Hashable, Verdict] = {}
        self.claimed: set[str] = set(claimed)

    def claim(self, prediction_id: str) -> None:
        """An id the batch follows now: never attach it to another item."""
        self.claimed.add(prediction_id)

    async def settle(self, sent: SentSubmit) -> Verdict:
        """The verdict for ``sent``, from the next look at the history."""
        self._pending[sent.key] = sent
        async with self._lock:
            verdict = self._verdicts.pop(sent.key, None)
            if verdict is not None:
                return verdict
            # Itself too: a look that failed took it out of the line.
            self._pending[sent.key] = sent
            batch = list(self._pending.values())
            self._pending.clear()
            verdicts = await self._call(batch, frozenset(self.claimed))
            for each in verdicts:
                prediction_id = getattr(each, "prediction_id", None)
                if prediction_id is not None:
                    self.claimed.add(prediction_id)
                self._verdicts[each.key] = each
            return self._verdicts.pop(sent.key)
