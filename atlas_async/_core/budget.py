"""
Which polls to spend the account's rate on when it cannot pay for them all.

Pure: no I/O, no clock; every decision takes ``now``.

Theory of operation
-------------------
Under a rate limit ``R`` a client completes about ``R / (1 + p)`` predictions
per second, ``p`` being its polls per prediction: a poll spent on a prediction
that is still running is a prediction not submitted. Polling every prediction
on its own schedule while requests queue for the rate delays every poll
equally, the likely and the hopeless alike. `PollBudget.take` ranks the due
polls by their chance of finding the prediction done, ``P(end in (t_prev, now]
| running at t_prev)`` from the model's learned durations (`PollCore.chance`):
with every deferral costing the same wait, that is the highest expected lag
saved per poll. It hands out at most ``allowed`` of them, likeliest first, and
none below ``least``. The others are held (in flight, as the core sees them: a
deadline still ends them, a delivery or a cancel still removes them) and ranked
again at the next call, their chance growing while they wait, so none waits for
ever. Expirations are never held.

With no limit (``allowed`` infinite, ``least`` 0, nothing held) it hands out
exactly what `PollCore.due` does, in the same order.
"""

from __future__ import annotations

import math
from typing import Protocol

from .decisions import Due

__all__ = ["PollBudget", "RankedCore"]


class RankedCore(Protocol):
    """What `PollBudget` needs of the scheduler core (`PollCore` has it)."""

    def due(self, now: float, slack: float = ..., most: float = math.inf) -> list[Due]:
        """Pop everything due (see `PollCore.due`)."""
        ...

    def chance(self, prediction_id: str, now: float) -> float:
        """P(it ended since its last poll | it ran then); see `PollCore.chance`."""
        ...

    def __contains__(self, prediction_id: object) -> bool: ...


class PollBudget:
    """
    Hands out due polls by chance of completion when tokens are scarce.

    Example::

        budget = PollBudget()
        items = budget.take(core, now, tokens(backlog, rate, 0.25))
    """

    __slots__ = ("_expired", "_held")

    def __init__(self) -> None:
        self._held: list[str] = []
        self._expired: list[Due] = []

    @property
    def held(self) -> int:
        """Polls due but held back for lack of tokens."""
        return len(self._held)

    def take(
        self,
        core: RankedCore,
        now: float,
        allowed: float,
        most: float = math.inf,
        least: float = 0.0,
    ) -> list[Due]:
        """
        Up to ``most`` items: expirations first, then at most ``allowed``
        polls, the likeliest to find their prediction done first, none whose
        chance is below ``least`` (while the rate binds, a poll that would
        likely find its prediction running costs a submit).
        """
        if allowed == math.inf and not least and not self._held and not self._expired:
            return core.due(now, most=most)  # no rate: nothing to choose
        items = core.due(now)
        held = [pid for pid in self._held if pid in core]
        for item in items:
            if item.expired is None:
                held.append(item.prediction_id)
            else:
                self._expired.append(item)
        out = self._expired[: int(min(most, len(self._expired)))]
        del self._expired[: len(out)]
        room = int(min(allowed, most - len(out), len(held)))
        if least > 0.0 or room < len(held):
            chances = {pid: core.chance(pid, now) for pid in held}
            # Python's sort is stable: ties keep the order they fell due in.
            held.sort(key=lambda pid: -chances[pid])
            while room and chances[held[room - 1]] < least:
                room -= 1
        out.extend(Due(pid) for pid in held[:room])
        self._held = held[room:]
        return out

    def forget(self) -> list[str]:
        """Drop every held poll (the scheduler is closing); return their ids."""
        held, self._held = self._held, []
        return held
