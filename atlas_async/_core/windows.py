"""
A window per model, and which limit a 429 speaks of.

Pure, like ``_core.flow`` (whose theory of operation covers both
controllers): `ModelWindows` keeps one window per model, like TCP's
congestion window; `attribute` and `RefusalMemory` decide whether a refusal
feeds the model's window or the account's rate.
"""

from __future__ import annotations

import enum
import math
import re
from collections import OrderedDict

import attrs

from .errors import ConfigurationError
from .flow import DEFAULT_PROBE_EVERY, Limits, known_count

__all__ = [
    "MIN_HURRY_SHARE",
    "hurry_share",
    "MAX_PATIENCE",
    "Cause",
    "ModelWindowStatistics",
    "ModelWindows",
    "RefusalMemory",
    "RefusalStatistics",
    "RequestKind",
    "attribute",
]


# -- a window per model ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ModelWindowStatistics:
    """
    One model's window.

    Attributes:
        window: submits allowed unfinished at once, or None (unlimited).
        in_flight: submits sent and not yet ended (refused, abandoned, finished).
        refusals: submits refused for concurrency.
        probes: times the window grew by one.
    """

    window: int | None
    in_flight: int
    refusals: int
    probes: int


#: The most a run of failed probes multiplies the credits a probe needs.
MAX_PATIENCE = 16


class _Model:
    __slots__ = (
        "credit",
        "in_flight",
        "last_active",
        "patience",
        "probed_from",
        "probes",
        "refusals",
        "window",
    )

    def __init__(self, window: int | None) -> None:
        self.window = window
        self.in_flight = 0
        self.refusals = 0
        self.probes = 0
        self.credit = 0  # completions with the window full since the last change
        self.last_active = -math.inf
        # Each failed probe (the first refusal after it) doubles the credits
        # the next probe needs (up to MAX_PATIENCE); any other refusal resets it.
        self.patience = 1
        self.probed_from: int | None = None


class ModelWindows:
    """
    One window per model (like TCP's congestion window): how many of its
    predictions may be unfinished at once.

    A submit to a model may start while ``in_flight < window``. The lifecycle of
    one submit is `started` when it goes out, then exactly one of: `refused` (a
    429 attributed to the window), `abandoned` (it failed otherwise and created
    nothing), or `finished` (it became a prediction, which has now ended)::

        refused:   in_flight -= 1;  window = max(1, in_flight)
        finished:  in_flight -= 1;  if the window was full: credit += 1
                   every probe_every x patience credits: window += 1  (a probe)
        the first refusal after a probe (a failed probe): patience *= 2 (<= 16)
        always:    window <= the known limit (Limits), when there is one

    A refusal resets the window to what the server holds right now, so a limit of
    5 costs one refusal per probe, not a storm. A completion counts toward a probe
    only when the window was full (``in_flight >= window`` before it ended): a
    model that never uses its window learns nothing about a larger one.

    ``probe_every`` defaults to 3: a probe's price is one refused submit (one
    request, no work lost: the submit waits for the next completion, as it would
    have anyway); its gain is finding capacity freed elsewhere (another process,
    a raised limit) within three completions per slot. Against a limit that does
    not move, every probe fails the same way, so each failed probe (the first
    refusal after it) doubles the wait for the next (3, 6, 12, ... 48
    completions); a refusal that no probe preceded starts the pace over. The
    refusals of a long batch fall from one per three predictions to a few in
    all, and a raised limit is still found within 48 completions.

    The window starts unlimited (None) until the model's first refusal, or at the
    known limit. Memory is bounded: models with nothing in flight are forgotten
    after ``forget_after`` seconds idle, and the least recently used beyond
    ``max_models``; a forgotten model starts over.

    Args:
        limits: the known limits, or None.
        probe_every: completions with the window full per probe (>= 1).
        max_models: models kept (>= 1); only those with nothing in flight go.
        forget_after: seconds after which an idle model is forgotten (> 0).
    """

    __slots__ = (
        "_forget_after",
        "_limits",
        "_max_models",
        "_models",
        "_probe_every",
        "_probes",
        "_refusals",
    )

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        probe_every: int = DEFAULT_PROBE_EVERY,
        max_models: int = 1_000,
        forget_after: float = 3600.0,
    ) -> None:
        self._limits = limits if limits is not None else Limits()
        self._probe_every = known_count(probe_every, "probe_every")
        self._max_models = known_count(max_models, "max_models")
        if not forget_after > 0:
            raise ConfigurationError(f"forget_after must be > 0, got {forget_after!r}")
        self._forget_after = float(forget_after)
        self._models: OrderedDict[str, _Model] = OrderedDict()
        self._refusals = 0
        self._probes = 0

    @property
    def refusals(self) -> int:
        """Concurrency refusals over every model, forgotten ones included."""
        return self._refusals

    @property
    def probes(self) -> int:
        """Probes over every model, forgotten ones included."""
        return self._probes

    def window(self, model: str) -> int | None:
        """How many of ``model``'s predictions may be unfinished; None: no limit."""
        entry = self._models.get(model)
        return entry.window if entry is not None else self._limits.limit_for(model)

    def in_flight(self, model: str) -> int:
        """``model``'s submits sent and not yet ended."""
        entry = self._models.get(model)
        return entry.in_flight if entry is not None else 0

    def may_start(self, model: str) -> bool:
        """True when one more submit to ``model`` fits its window."""
        entry = self._models.get(model)
        if entry is None:
            return True  # nothing in flight; a known limit is at least 1
        return entry.window is None or entry.in_flight < entry.window

    def started(self, model: str) -> None:
        """A submit to ``model`` is going out: it holds a place in the window."""
        self._entry(model).in_flight += 1

    def finished(self, model: str, now: float) -> None:
        """A prediction of ``model`` ended (any final status): its place is free."""
        entry = self._models.get(model)
        if entry is None:
            return
        window = entry.window
        full = window is not None and entry.in_flight >= window
        entry.in_flight = max(0, entry.in_flight - 1)
        entry.last_active = now
        if full and window is not None:
            entry.credit += 1
            if entry.credit >= self._probe_every * entry.patience:
                entry.credit = 0
                entry.probed_from = window
                ceiling = self._limits.limit_for(model)
                if ceiling is None or window < ceiling:
                    entry.window = window + 1
                    entry.probes += 1
                    self._probes += 1
        self._models.move_to_end(model)
        self._trim(now)

    def refused(self, model: str, now: float) -> None:
        """
        A submit to ``model`` was refused for concurrency: the window becomes
        what is running (at least 1); the refused submit no longer counts.
        """
        entry = self._entry(model)
        entry.in_flight = max(0, entry.in_flight - 1)
        window = max(1, entry.in_flight)
        ceiling = self._limits.limit_for(model)
        entry.window = window if ceiling is None else min(window, ceiling)
        if entry.probed_from is not None:
            # The first refusal after a probe: the probe failed, whatever ended
            # meanwhile (the window may land below where the probe started).
            entry.patience = min(entry.patience * 2, MAX_PATIENCE)
        else:
            entry.patience = 1
        entry.probed_from = None
        entry.credit = 0
        entry.refusals += 1
        entry.last_active = now
        self._refusals += 1
        self._trim(now)

    def abandoned(self, model: str) -> None:
        """A submit to ``model`` ended without a prediction (not a refusal)."""
        entry = self._models.get(model)
        if entry is not None:
            entry.in_flight = max(0, entry.in_flight - 1)

    def statistics(self) -> dict[str, ModelWindowStatistics]:
        """Each tracked model's window, in flight, refusals and probes."""
        return {
            model: ModelWindowStatistics(
                window=entry.window,
                in_flight=entry.in_flight,
                refusals=entry.refusals,
                probes=entry.probes,
            )
            for model, entry in self._models.items()
        }

    def _entry(self, model: str) -> _Model:
        entry = self._models.get(model)
        if entry is None:
            entry = self._models[model] = _Model(self._limits.limit_for(model))
        else:
            self._models.move_to_end(model)
        return entry

    def _trim(self, now: float) -> None:
        # Oldest first; stop at the first model still in use, so each call is
        # O(1) amortized. A model in flight is never forgotten.
        models = self._models
        while models:
            model, entry = next(iter(models.items()))
            if entry.in_flight > 0:
                return
            crowded = len(models) > self._max_models
            if not crowded and now - entry.last_active < self._forget_after:
                return
            del models[model]

    def __repr__(self) -> str:
        return f"<ModelWindows {len(self._models)} models, {self._refusals} refusals>"


# -- which limit refused -----------------------------------------------------------


class Cause(str, enum.Enum):
    """Which limit a 429 hit: the account's request rate, or a model's window."""

    RATE = "rate"
    WINDOW = "window"

    def __str__(self) -> str:
        return self.value


class RequestKind(str, enum.Enum):
    """What a request was, as far as attribution cares (plain strings work too)."""

    SUBMIT = "submit"
    POLL = "poll"
    UPLOAD = "upload"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


#: Words of a message that name a concurrency limit (checked first: specific).
_WINDOW_WORDS = re.compile(
    r"concurren|in[- ]?flight|running (?:tasks?|jobs?|predictions?)"
    r"|(?:tasks?|jobs?|predictions?) (?:running|in progress)|simultaneous|parallel",
    re.IGNORECASE,
)
#: Words of a message that name a request rate.
_RATE_WORDS = re.compile(
    r"\brate\b|rate[- ]?limit|too many requests|\b(?:rpm|rps|qps|tpm|rpd)\b"
    r"|requests? per (?:second|minute|hour|day)",
    re.IGNORECASE,
)


def attribute(
    kind: str,
    status_code: int,
    message: str | None,
    now: float,
    recent: RefusalMemory,
) -> Cause:
    """
    Decide which limit refused a request.

    In order:

    1. a 429 on anything but a submit (a poll, an upload, ...) is the RATE: only
       a submit can exceed a model's window;
    2. a submit whose message names a concurrency limit ("concurrent", "in
       flight", "running tasks", ...) is the WINDOW;
    3. one whose message names a rate ("rate", "too many requests", "RPM",
       "QPS", ...) is the RATE;
    4. one refused while polls or uploads were refused within the last second is
       the RATE (the account is over its rate, and this submit with it);
    5. any other refused submit is the model's WINDOW.

    Pure: it reads ``recent`` and changes nothing; `RefusalMemory.record` notes,
    attributes and counts in one call.

    Args:
        kind: a `RequestKind` or its value (``"submit"``, ``"poll"``, ...).
        status_code: the answer's status; only 429 is a refusal.
        message: the answer's message, if any.
        now: when the answer came.
        recent: the refusals seen lately.

    Raises:
        ValueError: ``status_code`` is not 429.
    """
    if status_code != 429:
        raise ValueError(f"only a 429 is a refusal, got {status_code!r}")
    if kind != RequestKind.SUBMIT:
        return Cause.RATE
    if message:
        if _WINDOW_WORDS.search(message):
            return Cause.WINDOW
        if _RATE_WORDS.search(message):
            return Cause.RATE
    if recent.polls_refused_within(now, 1.0):
        return Cause.RATE
    return Cause.WINDOW


@attrs.frozen(kw_only=True)
class RefusalStatistics:
    """
    Refusals by cause.

    Attributes:
        rate: 429s attributed to the account's rate.
        window: 429s attributed to a model's window.
        last_poll_refusal: when a request other than a submit was last refused
            (``-inf``: never).
    """

    rate: int
    window: int
    last_poll_refusal: float


class RefusalMemory:
    """
    What `attribute` needs to remember: when a poll or an upload (any request but
    a submit) was last refused. O(1) memory; also counts refusals by cause.
    """

    __slots__ = ("_last_poll", "_rate", "_window")

    def __init__(self) -> None:
        self._last_poll = -math.inf
        self._rate = 0
        self._window = 0

    def note(self, kind: str, now: float) -> None:
        """A request of ``kind`` was refused (429) at ``now``."""
        if kind != RequestKind.SUBMIT:
            self._last_poll = max(self._last_poll, now)

    def polls_refused_within(self, now: float, seconds: float) -> bool:
        """True if a poll or upload was refused in the ``seconds`` before ``now``."""
        return now - self._last_poll <= seconds

    def count(self, cause: Cause) -> None:
        """Count one refusal attributed to ``cause``."""
        if cause is Cause.RATE:
            self._rate += 1
        else:
            self._window += 1

    def record(
        self, kind: str, status_code: int, message: str | None, now: float
    ) -> Cause:
        """`note` a 429, `attribute` it, `count` it; return its cause."""
        self.note(kind, now)
        cause = attribute(kind, status_code, message, now, self)
        self.count(cause)
        return cause

    def statistics(self) -> RefusalStatistics:
        """Refusals by cause so far."""
        return RefusalStatistics(
            rate=self._rate, window=self._window, last_poll_refusal=self._last_poll
        )

    def __repr__(self) -> str:
        return f"<RefusalMemory rate={self._rate} window={self._window}>"


# While submits wait for a model's window, a slot stays taken until a poll sees
# its prediction end, and everything queued behind that slot waits as long: a
# second of detection lag costs 1 + queued / window times what it costs a lone
# prediction. The optimal-inspection law (interval ~ 1 / sqrt(cost of lag))
# then shortens the interval by 1 / sqrt(that), down to this share: at most
# about three times the polls, on a model whose window binds (a few requests a
# second), for a third of the lag between two turns of a slot.
MIN_HURRY_SHARE = 0.35


def hurry_share(queued: int, window: int) -> float:
    """
    The share of a plan's poll interval for a model with ``queued`` submits
    waiting for a ``window`` of places: ``max(0.35, 1 / sqrt(1 + queued / window))``.

    Example::

        assert hurry_share(0, 5) == 1.0
        assert round(hurry_share(5, 5), 3) == 0.707
        assert hurry_share(60, 5) == MIN_HURRY_SHARE
    """
    if queued <= 0:
        return 1.0
    return max(MIN_HURRY_SHARE, 1.0 / math.sqrt(1.0 + queued / max(window, 1)))
