"""
`PollSpender`: the scheduler's due polls, passed through the poll budget.

The scheduler asks it, not the core, what is due. While no request waits at the
gate for the account's rate that is `PollCore.due` itself. While some do (the
rate binds), `_core.budget.PollBudget` holds back every poll whose chance of
finding its prediction done is below ``least``, and hands out the rest, the
likeliest first, to wait for the rate at the gate as before (polls ahead of
submits): a held poll leaves its token to a poll that will likely end a
prediction, or to a submit (docs/scheduling.md, "A poll budget").
"""

from __future__ import annotations

import math

from .._core.budget import PollBudget
from .._core.decisions import Due
from .._core.schedule import PollCore
from .._net.gate import RequestGate

__all__ = ["PollSpender"]

#: Held polls are ranked again at least this often, seconds.
RECHECK = 0.5
#: While requests wait for the rate, a poll less likely than this to find its
#: prediction done waits too (docs/performance.md, "Polling at the edge").
LEAST_CHANCE = 0.2


class PollSpender:
    """
    What is due now, within the account's rate (see the module docstring).

    Args:
        core: the scheduler core.
        gate: the client's gate (None: everything due goes at once).
        least: the least chance a poll needs while the rate binds.
    """

    __slots__ = ("_budget", "_core", "_gate", "_least")

    def __init__(
        self, core: PollCore, gate: RequestGate | None, least: float = LEAST_CHANCE
    ) -> None:
        self._core = core
        self._gate = gate
        self._budget = PollBudget()
        self._least = least

    def due(self, now: float, most: float = math.inf) -> list[Due]:
        """Expirations, and the polls to start now (see `PollBudget.take`)."""
        if self._gate is None:
            return self._core.due(now, most=most)
        least = self._least if self._gate.waiting() else 0.0
        if not least and not self._budget.held:
            return self._core.due(now, most=most)
        return self._budget.take(self._core, now, math.inf, most, least)

    def next_wakeup(self, now: float) -> float:
        """When to ask again: the core's next entry, sooner while polls are held."""
        wake = self._core.next_wakeup()
        if not self._budget.held or self._gate is None:
            return wake
        # Held polls go when the rate stops binding, or when their chance has
        # grown: look again within RECHECK.
        return min(wake, now + RECHECK)
