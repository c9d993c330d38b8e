"""
Predictions and uploads, pure: every time-dependent call takes ``now`` (clock
seconds), and all randomness comes from one injected ``random.Random``.

A prediction's whole future is decided when it is created: its latency (drawn
uniformly from the model's range, in Atlas seconds, then divided by
``time_scale``), whether it fails and how, and how many outputs it has. Its
status at any moment is then a pure function of ``now``:
``processing`` until ``ready_at``, then ``completed`` or ``failed`` forever.
Nothing runs in the background, so an emulator driven by a `FakeClock` moves
exactly when the test moves the clock.

Every creation draws exactly four numbers (id, latency, failure, moderation),
whatever the configuration, so the n-th prediction of two runs with the same
seed gets the same id and latency even if their failure rates differ.

Magic prompt markers force an outcome, for tests that need one prediction to
fail without a failure rate:

* ``[emulator:fail]`` fails it (``error_code`` 1000);
* ``[emulator:moderate]`` fails it as content moderation (``error_code`` 1039);
* ``[emulator:nsfw]`` completes it with every ``has_nsfw_contents`` flag true.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import random
from datetime import datetime, timezone
from typing import Any

import attrs

from . import _media, _mp4
from ._catalog import MediaKind, ModelSpec
from ._config import EmulatorConfig

__all__ = [
    "API",
    "COMPLETED",
    "CONTENT_TYPES",
    "FAILED",
    "FAILURE_CODE",
    "FILES_PREFIX",
    "MODERATION_CODE",
    "POLL_PREFIX",
    "PROCESSING",
    "PredictionRecord",
    "PredictionStore",
    "Upload",
]

API = "/api/v1"
POLL_PREFIX = f"{API}/model/prediction/"
FILES_PREFIX = "/files/"

# The only statuses the emulator reports: Atlas's documented three.
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"

MODERATION_CODE = 1039
FAILURE_CODE = 1000
MODERATION_ERROR = (
    "The request was rejected by content moderation: the prompt or the generated "
    "content violates the content policy."
)
FAILURE_ERROR = "Generation failed: the model could not process this request."

_EXTENSIONS = {MediaKind.IMAGE: "png", MediaKind.VIDEO: "mp4", MediaKind.AUDIO: "wav"}
CONTENT_TYPES = {"png": "image/png", "mp4": "video/mp4", "wav": "audio/wav"}


@attrs.define(eq=False)
class PredictionRecord:
    """One prediction, decided at creation; see the module docstring."""

    id: str
    spec: ModelSpec
    key: str
    params: dict[str, Any]
    created: float
    created_at: str
    ready_at: float
    warm_until: float
    predict_time: float
    failed: bool
    error: str | None
    error_code: int | None
    outputs: int
    nsfw: bool
    base64: bool
    media_key: bytes
    body: str = ""
    _media: dict[int, bytes] = attrs.field(factory=dict)

    @property
    def model(self) -> str:
        """The model id, as submitted."""
        return self.spec.model

    @property
    def extension(self) -> str:
        """The file extension of the outputs: ``png``, ``mp4`` or ``wav``."""
        return _EXTENSIONS[self.spec.kind]

    def status(self, now: float) -> str:
        """Return the wire status at ``now``."""
        if now < self.ready_at:
            return PROCESSING
        return FAILED if self.failed else COMPLETED

    def to_wire(self, now: float, origin: str) -> dict[str, Any]:
        """
        Return the poll answer's ``data`` at ``now`` (also a webhook's payload).

        ``origin`` (``scheme://host[:port]``) prefixes the poll and file URLs.
        """
        status = self.status(now)
        data: dict[str, Any] = {
            "id": self.id,
            "model": self.spec.model,
            "status": status,
            "outputs": None,
            "urls": {"get": f"{origin}{POLL_PREFIX}{self.id}"},
            "has_nsfw_contents": None,
            "created_at": self.created_at,
            "error": None,
            "error_code": None,
            "metrics": {},
        }
        if status == PROCESSING:
            return data
        data["metrics"] = {"predict_time": self.predict_time}
        if self.failed:
            data.update(outputs=[], has_nsfw_contents=[], error=self.error)
            data["error_code"] = self.error_code
            return data
        ext = self.extension
        if self.base64:
            prefix = f"data:{CONTENT_TYPES[ext]};base64,"
            outputs = [
                prefix + base64.b64encode(self.media(i)).decode()
                for i in range(self.outputs)
            ]
        else:
            outputs = [
                f"{origin}{FILES_PREFIX}{self.id}-{i}.{ext}"
                for i in range(self.outputs)
            ]
        data.update(
            outputs=outputs, has_nsfw_contents=[self.nsfw] * self.outputs, error=""
        )
        return data

    def media(self, index: int) -> bytes:
        """Return output ``index``'s file bytes (made once, then cached)."""
        data = self._media.get(index)
        if data is None:
            key = _media.digest(self.media_key.hex(), index)
            if self.spec.kind is MediaKind.IMAGE:
                data = _media.png(key, *_media.image_size(self.params.get("size")))
            elif self.spec.kind is MediaKind.VIDEO:
                data = _mp4.mp4(key)
            else:
                data = _media.wav(key)
            self._media[index] = data
        return data


@attrs.frozen
class Upload:
    """A file stored by ``uploadMedia``."""

    name: str
    filename: str
    content_type: str
    data: bytes


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(params: dict[str, Any]) -> str:
    return str(params.get("prompt") or params.get("text") or "")


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
        self.uploads: dict[str, Upload] = {}
        # Heaps of ready_at per key and per (key, model): in flight until then.
        self._running: dict[str, list[float]] = {}
        self._running_by_model: dict[tuple[str, str], list[float]] = {}
        self._models = {spec.model: spec for spec in config.models}
        self._upload_numbers = itertools.count(1)

    def wall_time(self, now: float) -> float:
        """Return the unix time that clock reading ``now`` stands for."""
        return self._epoch + (now - self._origin)

    def model(self, model_id: str) -> ModelSpec | None:
        """Return the catalog entry for ``model_id``, or None."""
        return self._models.get(model_id)

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
        prediction_id = f"{rng.getrandbits(128):032x}"
        low, high = config.latency_for(spec)
        predict_time = rng.uniform(low, high)
        fail_draw, moderation_draw = rng.random(), rng.random()
        text = _text(params)
        failed = fail_draw < config.faults.error_rate
        moderated = failed and moderation_draw < config.faults.moderation_fraction
        if "[emulator:moderate]" in text:
            failed = moderated = True
        elif "[emulator:fail]" in text:
            failed = True
        if moderated:
            error, error_code = MODERATION_ERROR, MODERATION_CODE
        elif failed:
            error, error_code = FAILURE_ERROR, FAILURE_CODE
        else:
            error, error_code = None, None
        outputs = 0
        if not failed:
            image = spec.kind is MediaKind.IMAGE
            outputs = int(params.get("num_images", 1)) if image else 1
        record = PredictionRecord(
            id=prediction_id,
            spec=spec,
            key=key,
            params=params,
            created=now,
            created_at=_iso(self.wall_time(now)),
            ready_at=now + predict_time / config.time_scale,
            warm_until=now + config.faults.warmup_404_seconds / config.time_scale,
            predict_time=round(predict_time, 3),
            failed=failed,
            error=error,
            error_code=error_code,
            outputs=outputs,
            nsfw="[emulator:nsfw]" in text,
            base64=params.get("enable_base64_output") is True,
            media_key=_media.digest(
                spec.model, text, params.get("seed"), prediction_id
            ),
            body=body,
        )
        self.predictions[prediction_id] = record
        self.by_key.setdefault(key, []).append(record)
        heapq.heappush(self._running.setdefault(key, []), record.ready_at)
        heapq.heappush(
            self._running_by_model.setdefault((key, spec.model), []), record.ready_at
        )
        return record

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

    def add_upload(self, filename: str, content_type: str, data: bytes) -> Upload:
        """Store an uploaded file under a fresh name; return it."""
        # A counter, not the random stream: uploads must not shift prediction ids.
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)
        name = f"upload-{next(self._upload_numbers):06d}-{safe[-80:] or 'file'}"
        upload = Upload(
            name=name, filename=filename, content_type=content_type, data=data
        )
        self.uploads[name] = upload
        return upload

    def clear(self) -> None:
        """Forget every prediction and upload."""
        self.predictions.clear()
        self.by_key.clear()
        self.uploads.clear()
        self._running.clear()
        self._running_by_model.clear()
