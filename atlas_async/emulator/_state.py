"""
Predictions and uploads, pure: every time-dependent call takes ``now`` (clock
seconds), and all randomness comes from injected ``random.Random`` streams.

A prediction's whole future is decided when it is created: how long it waits
``created`` (its model's `WireStyle.queue_seconds`), its latency (drawn
uniformly from the model's range, in Atlas seconds), whether it fails, times
out or completes and how, how many outputs it has and what it costs; Atlas
seconds are divided by ``time_scale``. Its status at any moment is then a pure
function of ``now``: ``created`` until ``queued_until``, ``processing`` until
``ready_at``, then ``completed``, ``failed`` or ``timeout`` forever. Nothing
runs in the background, so an emulator driven by a `FakeClock` moves exactly
when the test moves the clock.

Every creation draws exactly four numbers from the shared stream (id, latency,
failure, moderation), whatever the configuration, so the n-th prediction of two
runs with the same seed gets the same id and latency even if their failure
rates differ. Decisions added later (timeout, the HTTP 500 verdict form) draw
from numbers of the prediction's own, a digest of its id, for the same reason.

Magic prompt markers force an outcome, for tests that need one prediction to
fail without a failure rate:

* ``[emulator:fail]`` fails it (``error_code`` 1000);
* ``[emulator:moderate]`` fails it as content moderation (``error_code`` 1039);
* ``[emulator:timeout]`` ends it ``timeout``;
* ``[emulator:verdict-5xx]`` answers its failure (or timeout) as HTTP 500 with
  the verdict in the body, whatever the model's share;
* ``[emulator:nsfw]`` completes it with every ``has_nsfw_contents`` flag true.
"""

from __future__ import annotations

import heapq
import itertools
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from . import _media
from ._catalog import MediaKind, ModelSpec, WireStyle, infer_spec, model_spec
from ._config import EmulatorConfig
from ._files import FileStore, Upload
from ._persist import StateFile
from ._record import (
    _INFERRED_CACHE,
    API,
    COMPLETED,
    CONTENT_TYPES,
    CREATED,
    FAILED,
    FAILURE_CODE,
    FAILURE_ERROR,
    FILES_PREFIX,
    MODERATION_CODE,
    MODERATION_ERROR,
    POLL_PREFIX,
    PROCESSING,
    RESULT_PREFIX,
    TERMINAL,
    TIMEOUT,
    TIMEOUT_ERROR,
    PredictionRecord,
    _own_draws,
    _prompt,
    price_of,
    requested_outputs,
)

__all__ = [
    "API",
    "COMPLETED",
    "CONTENT_TYPES",
    "CREATED",
    "FAILED",
    "FAILURE_CODE",
    "FILES_PREFIX",
    "MODERATION_CODE",
    "POLL_PREFIX",
    "PROCESSING",
    "RESULT_PREFIX",
    "TERMINAL",
    "TIMEOUT",
    "Account",
    "PredictionRecord",
    "PredictionStore",
    "price_of",
    "requested_outputs",
]


@attrs.define(eq=False)
class Account:
    """
    One key's money, in USD: what it started with, what completed predictions
    cost it, and what its unfinished ones hold frozen.

    A submit freezes the prediction's price; when it ends the price is either
    charged (completed) or released (failed, timed out: not billed). Settling
    is lazy, like everything else here: `settle` applies every end due by
    ``now``.
    """

    start: float
    charged: float = 0.0
    frozen: float = 0.0
    _pending: list[tuple[float, int, float, bool]] = attrs.field(factory=list)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count)

    @property
    def cash(self) -> float:
        """What is left once the completed predictions are paid for."""
        return self.start - self.charged

    @property
    def available(self) -> float:
        """What a new submit may spend: cash less what is frozen."""
        return self.start - self.charged - self.frozen

    def hold(self, record: PredictionRecord) -> None:
        """Freeze ``record``'s price until it ends."""
        self.frozen += record.price
        entry = (record.ready_at, next(self._seq), record.price, not record.failed)
        heapq.heappush(self._pending, entry)

    def settle(self, now: float) -> Account:
        """Charge or release every prediction that has ended by ``now``."""
        pending = self._pending
        while pending and pending[0][0] <= now:
            _, _, price, billed = heapq.heappop(pending)
            self.frozen -= price
            if billed:
                self.charged += price
        if not pending:
            self.frozen = 0.0  # no float dust once nothing is held
        return self


def _files_directory(config: EmulatorConfig) -> Path | None:
    """Where uploads are kept: beside the state file, or (None) a temporary."""
    if config.state is None:
        return None
    return config.state.with_name(config.state.name + ".files")


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PredictionStore:
    """
    Every prediction and upload of one emulator.

    Args:
        config: the emulator's configuration.
        rng: the random stream for ids, latencies and outcomes.
        origin: the clock reading that `EmulatorConfig.epoch` stands for.
        epoch: the Unix time of ``origin`` (for ``created_at``).
    """

    def __init__(
        self, config: EmulatorConfig, rng: random.Random, *, origin: float, epoch: float
    ) -> None:
        self._config = config
        self._rng = rng
        self._origin = origin
        self._epoch = epoch
        self.predictions: dict[str, PredictionRecord] = {}
        # Each key's predictions in creation order (its account's history).
        self.by_key: dict[str, list[PredictionRecord]] = {}
        self.files = FileStore(_files_directory(config))
        # Heaps of ready_at per key and per (key, model): in flight until then.
        self._running: dict[str, list[float]] = {}
        self._running_by_model: dict[tuple[str, str], list[float]] = {}
        self._models = {spec.model: spec for spec in config.models}
        self._inferred: dict[tuple[str, MediaKind], ModelSpec] = {}
        self._accounts: dict[str, Account] = {}
        self._state: StateFile | None = None
        if config.state is not None:
            self._open_state(config.state)

    def _open_state(self, path: Path) -> None:
        state = self._state = StateFile(path)
        if state.run > 1:
            # Not the ids of the run before, yet still the same for the same seed.
            self._rng.seed(f"{self._config.seed}:run:{state.run}")
        for row in state.predictions():
            self._add(self._from_row(row))
        self.files.restore(
            Upload(name, filename, content_type, self.files.directory / name, size)
            for name, filename, content_type, size in state.uploads()
        )

    def close(self) -> None:
        """Close the state file, if there is one (uploads stay on disk)."""
        if self._state is not None:
            self._state.close()
        self.files.close()

    def wall_time(self, now: float) -> float:
        """Return the unix time that clock reading ``now`` stands for."""
        return self._epoch + (now - self._origin)

    def clock_time(self, wall: float) -> float:
        """Return the clock reading that unix time ``wall`` stands for."""
        return self._origin + (wall - self._epoch)

    def _to_row(self, record: PredictionRecord) -> dict[str, Any]:
        wall = self.wall_time
        return {
            "id": record.id,
            "key": record.key,
            "model": record.model,
            "kind": record.spec.kind.value,
            "params": record.params,
            "body": record.body,
            "created": wall(record.created),
            "queued_until": wall(record.queued_until),
            "ready_at": wall(record.ready_at),
            "warm_until": wall(record.warm_until),
            "created_at": record.created_at,
            "completed_at": record.completed_at,
            "predict_time": record.predict_time,
            "queue_time": record.queue_time,
            "outcome": record.outcome,
            "error": record.error,
            "error_code": record.error_code,
            "outputs": record.outputs,
            "nsfw": record.nsfw,
            "base64": record.base64,
            "media_key": record.media_key.hex(),
            "price": record.price,
            "price_as_text": record.price_as_text,
            "error_key": record.error_key,
            "verdict_5xx": record.verdict_5xx,
            "outer_message_only": record.outer_message_only,
        }

    def _from_row(self, row: dict[str, Any]) -> PredictionRecord:
        clock = self.clock_time
        kind = MediaKind(row["kind"])
        model = row["model"]
        # A model served by id then is served by id now; one no longer
        # plausible (a custom catalog entry dropped since) keeps its shape.
        spec = self.resolve(model, kind) or model_spec(model, kind)
        return PredictionRecord(
            id=row["id"],
            spec=spec,
            key=row["key"],
            params=row["params"],
            created=clock(row["created"]),
            created_at=row["created_at"],
            ready_at=clock(row["ready_at"]),
            warm_until=clock(row["warm_until"]),
            predict_time=row["predict_time"],
            outcome=row["outcome"],
            error=row["error"],
            error_code=row["error_code"],
            outputs=row["outputs"],
            nsfw=row["nsfw"],
            base64=row["base64"],
            media_key=bytes.fromhex(row["media_key"]),
            body=row["body"],
            queued_until=clock(row["queued_until"]),
            queue_time=row["queue_time"],
            completed_at=row["completed_at"],
            price=row["price"],
            price_as_text=row["price_as_text"],
            error_key=row["error_key"],
            verdict_5xx=row["verdict_5xx"],
            outer_message_only=row["outer_message_only"],
        )

    def add_upload(
        self, filename: str, content_type: str, *, path: Path | None, data: bytes
    ) -> Upload:
        """Keep one uploaded file (`FileStore.put`), in the state file too."""
        upload = self.files.put(filename, content_type, path=path, data=data)
        if self._state is not None:
            self._state.add_upload(
                upload.name, upload.filename, upload.content_type, upload.size
            )
        return upload

    def model(self, model_id: str) -> ModelSpec | None:
        """Return the catalog entry for ``model_id``, or None."""
        return self._models.get(model_id)

    def resolve(self, model_id: str, kind: MediaKind) -> ModelSpec | None:
        """
        Return the spec a submit of ``model_id`` to ``kind``'s endpoint runs:
        the catalog's entry, else one inferred from a plausible id
        (`infer_spec`, remembered per id and kind), else None.
        """
        spec = self._models.get(model_id)
        if spec is not None:
            return spec
        cache_key = (model_id, kind)
        spec = self._inferred.get(cache_key)
        if spec is None:
            spec = infer_spec(model_id, kind)
            if spec is not None and len(self._inferred) < _INFERRED_CACHE:
                self._inferred[cache_key] = spec
        return spec

    def style(self, spec: ModelSpec) -> WireStyle:
        """The forms ``spec``'s answers take (the config's override, if any)."""
        return self._config.style if self._config.style is not None else spec.style

    def create(
        self,
        spec: ModelSpec,
        params: dict[str, Any],
        key: str,
        now: float,
        body: str = "",
    ) -> PredictionRecord:
        """
        Create a prediction of ``spec`` for ``params`` at ``now``; return it.

        ``body`` is the submit's JSON text exactly as received (``/model/history``
        answers it as ``requestBody``).
        """
        config, rng = self._config, self._rng
        faults = config.faults
        prediction_id = f"{rng.getrandbits(128):032x}"
        while prediction_id in self.predictions:  # only after a restart, and rarely
            prediction_id = f"{rng.getrandbits(128):032x}"
        low, high = config.latency_for(spec)
        predict_time = rng.uniform(low, high)
        fail_draw, moderation_draw = rng.random(), rng.random()
        timeout_draw, verdict_draw, outer_draw = _own_draws(prediction_id)
        text = _prompt(params)
        failed = fail_draw < faults.error_rate
        moderated = failed and moderation_draw < faults.moderation_fraction
        if "[emulator:moderate]" in text:
            failed = moderated = True
        elif "[emulator:fail]" in text:
            failed = True
        timed_out = not failed and (
            "[emulator:timeout]" in text or timeout_draw < faults.timeout_rate
        )
        if moderated:
            outcome, error, error_code = FAILED, MODERATION_ERROR, MODERATION_CODE
        elif failed:
            outcome, error, error_code = FAILED, FAILURE_ERROR, FAILURE_CODE
        elif timed_out:
            outcome, error, error_code = TIMEOUT, TIMEOUT_ERROR, None
        else:
            outcome, error, error_code = COMPLETED, None, None
        outputs = requested_outputs(spec, params) if outcome == COMPLETED else 0
        style = self.style(spec)
        share = (
            faults.verdict_5xx_rate
            if faults.verdict_5xx_rate is not None
            else style.verdict_5xx_share
        )
        verdict = outcome != COMPLETED and (
            "[emulator:verdict-5xx]" in text or verdict_draw < share
        )
        media_key = _media.digest(spec.model, text, params.get("seed"), prediction_id)
        scale = config.time_scale
        queued_until = now + style.queue_seconds / scale
        ready_at = queued_until + predict_time / scale
        record = PredictionRecord(
            id=prediction_id,
            spec=spec,
            key=key,
            params=params,
            created=now,
            created_at=_iso(self.wall_time(now)),
            ready_at=ready_at,
            warm_until=now + faults.warmup_404_seconds / scale,
            predict_time=round(predict_time, 3),
            outcome=outcome,
            error=error,
            error_code=error_code,
            outputs=outputs,
            nsfw="[emulator:nsfw]" in text,
            base64=params.get("enable_base64_output") is True,
            media_key=media_key,
            body=body,
            queued_until=queued_until,
            queue_time=style.queue_seconds,
            completed_at=_iso(self.wall_time(ready_at)),
            price=price_of(spec, params, requested_outputs(spec, params), media_key),
            price_as_text=style.price_as_text,
            error_key=style.error_key,
            verdict_5xx=verdict,
            outer_message_only=verdict and outer_draw < 0.5,
        )
        self._add(record)
        if self._state is not None:
            self._state.add_prediction(record.id, self._to_row(record))
        return record

    def account(self, key: str, now: float) -> Account:
        """Return ``key``'s account, settled at ``now``."""
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = Account(start=self._config.balance)
        return account.settle(now)

    def _add(self, record: PredictionRecord) -> None:
        self.account(record.key, record.created).hold(record)
        self.predictions[record.id] = record
        self.by_key.setdefault(record.key, []).append(record)
        heapq.heappush(self._running.setdefault(record.key, []), record.ready_at)
        heapq.heappush(
            self._running_by_model.setdefault((record.key, record.model), []),
            record.ready_at,
        )

    def in_flight(self, key: str, now: float, model: str | None = None) -> int:
        """
        Return how many of ``key``'s predictions are not terminal at ``now``.

        With ``model``, only that model's predictions count.
        """
        running = (
            self._running.get(key)
            if model is None
            else self._running_by_model.get((key, model))
        )
        if not running:
            return 0
        while running and running[0] <= now:
            heapq.heappop(running)
        return len(running)

    @property
    def uploads(self) -> dict[str, Upload]:
        """Every stored upload, by its served name."""
        return self.files.uploads

    def clear(self) -> None:
        """Forget every prediction and upload (deleting the uploaded files)."""
        self.predictions.clear()
        self.by_key.clear()
        self._accounts.clear()
        self.files.clear()
        if self._state is not None:
            self._state.clear()
        self._running.clear()
        self._running_by_model.clear()
