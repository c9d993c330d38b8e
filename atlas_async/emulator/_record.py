"""
One prediction of the emulator (`PredictionRecord`): its whole future decided
when it is created, its status and wire form a pure function of ``now``; the
wire constants (paths, statuses, error codes) and what a prediction costs.

Part of `_state` (which re-exports these names); kept apart so each module
stays readable. See `_state` for the theory.
"""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

import attrs

from . import _media, _mp4, _text
from ._catalog import ModelSpec, Profile

API = "/api/v1"
POLL_PREFIX = f"{API}/model/prediction/"
RESULT_PREFIX = f"{API}/model/result/"
FILES_PREFIX = "/files/"

# The server's status vocabulary (the vendor's history filter lists these five).
CREATED = "created"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
TIMEOUT = "timeout"
TERMINAL = frozenset({COMPLETED, FAILED, TIMEOUT})

MODERATION_CODE = 1039
FAILURE_CODE = 1000
MODERATION_ERROR = (
    "The request was rejected by content moderation: the prompt or the generated "
    "content violates the content policy."
)
FAILURE_ERROR = "Generation failed: the model could not process this request."
TIMEOUT_ERROR = "The task timed out: the model did not finish within its time limit."
VERDICT_MESSAGE = "prediction failed"
"""The outer ``message`` of an HTTP 500 verdict whose ``data.error`` holds the
reason (when ``data.error`` is empty, the outer message is the reason)."""

_EXTENSIONS = {
    Profile.IMAGE: "png",
    Profile.VIDEO: "mp4",
    Profile.SPEECH: "wav",
    Profile.MUSIC: "wav",
}
CONTENT_TYPES = {"png": "image/png", "mp4": "video/mp4", "wav": "audio/wav"}
DEFAULT_VIDEO_SECONDS = 5
"""What a video's ``duration`` is billed as when the request leaves it out
(or asks for ``-1``, automatic)."""
_AUDIO_SECONDS = 1.0  # the WAV the emulator makes is one second long
_INFERRED_CACHE = 4096  # inferred specs remembered; beyond, inferred per submit


@attrs.define(eq=False)
class PredictionRecord:
    """
    One prediction, decided at creation; see the module docstring.

    Clock times (``created``, ``queued_until``, ``ready_at``, ``warm_until``)
    are in the emulator's clock seconds; ``queue_time`` and ``predict_time``
    in Atlas seconds, as the answers report them.
    """

    id: str
    spec: ModelSpec
    key: str
    params: dict[str, Any]
    created: float
    created_at: str
    ready_at: float
    warm_until: float
    predict_time: float
    outcome: str
    error: str | None
    error_code: int | None
    outputs: int
    nsfw: bool
    base64: bool
    media_key: bytes
    body: str = ""
    queued_until: float = -math.inf
    queue_time: float = 0.0
    completed_at: str = ""
    price: float = 0.0
    price_as_text: bool = False
    error_key: str | None = None
    verdict_5xx: bool = False
    outer_message_only: bool = False
    _media: dict[int, bytes] = attrs.field(factory=dict)

    @property
    def model(self) -> str:
        """The model id, as submitted."""
        return self.spec.model

    @property
    def model_type(self) -> str:
        """``image``, ``video`` or ``audio``: the kind it was served as."""
        return self.spec.kind.value

    @property
    def billed_seconds(self) -> float:
        """Seconds of media it is billed for: a video's requested ``duration``
        (`DEFAULT_VIDEO_SECONDS` if none), a transcript's audio, the WAV made;
        0 for images and lyrics."""
        profile = self.spec.profile
        if profile is Profile.VIDEO:
            return _seconds(self.params.get("duration"), DEFAULT_VIDEO_SECONDS)
        if profile is Profile.TRANSCRIPT:
            return _text.transcript_seconds(self.media_key)
        if profile in (Profile.SPEECH, Profile.MUSIC):
            return _AUDIO_SECONDS
        return 0.0

    @property
    def characters(self) -> int:
        """Characters of ``prompt`` (or ``text``) it was given."""
        return len(_prompt(self.params))

    @property
    def failed(self) -> bool:
        """True when it ends ``failed`` or ``timeout`` (not billed)."""
        return self.outcome != COMPLETED

    @property
    def extension(self) -> str | None:
        """The outputs' file extension (``png``, ``mp4``, ``wav``); None for text."""
        return _EXTENSIONS.get(self.spec.profile)

    def status(self, now: float) -> str:
        """Return the wire status at ``now``."""
        if now < self.ready_at:
            return CREATED if now < self.queued_until else PROCESSING
        return self.outcome

    def error_value(self) -> str | dict[str, str] | None:
        """``error`` as this model sends it: the text, or ``{key: text}``."""
        if self.error is None or self.error_key is None:
            return self.error
        return {self.error_key: self.error}

    def to_wire(self, now: float, origin: str) -> dict[str, Any]:
        """
        Return the poll answer's ``data`` at ``now`` (also a webhook's payload
        and a history item's ``result``).

        ``origin`` (``scheme://host[:port]``) prefixes the poll and file URLs.
        Until it ends there is no ``metrics`` at all; once ended it carries the
        live fields: ``completed_at``, ``executionTime`` and ``latency_ms``
        (Atlas milliseconds: running, and queued plus running), ``metrics``,
        and when completed its ``price``.
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
        }
        if status not in TERMINAL:
            return data
        data["metrics"] = {"predict_time": self.predict_time}
        data["completed_at"] = self.completed_at
        data["executionTime"] = round(self.predict_time * 1000)
        data["latency_ms"] = round((self.queue_time + self.predict_time) * 1000)
        if self.failed:
            data.update(outputs=[], has_nsfw_contents=[], error=self.error_value())
            data["error_code"] = self.error_code
            return data
        profile = self.spec.profile
        if profile is Profile.TRANSCRIPT:
            text, result = _text.transcript(self.media_key)
            outputs = [text]
            data["stt_result"] = result
        elif profile is Profile.LYRICS:
            text, result = _text.lyrics(_prompt(self.params), self.media_key)
            outputs = [text]
            data["lyrics_result"] = result
        else:
            ext = _EXTENSIONS[profile]
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
            outputs=outputs, has_nsfw_contents=[self.nsfw] * len(outputs), error=""
        )
        data["price"] = _price_text(self.price) if self.price_as_text else self.price
        return data

    def verdict(self, now: float, origin: str) -> dict[str, Any]:
        """
        The body of a poll answered HTTP 500 with the verdict (W1-W3):
        ``{"code": 500, "message": ..., "data": {...}}``, ``data`` being the
        poll answer's. When ``outer_message_only``, ``data.error`` is empty and
        the reason is the outer ``message``.
        """
        data = self.to_wire(now, origin)
        message = VERDICT_MESSAGE
        if self.outer_message_only:
            data["error"] = ""
            message = self.error or VERDICT_MESSAGE
        return {"code": 500, "message": message, "data": data}

    def media(self, index: int) -> bytes:
        """Return output ``index``'s file bytes (made once, then cached)."""
        data = self._media.get(index)
        if data is None:
            key = _media.digest(self.media_key.hex(), index)
            profile = self.spec.profile
            if profile is Profile.IMAGE:
                data = _media.png(key, *_media.image_size(self.params.get("size")))
            elif profile is Profile.VIDEO:
                data = _mp4.mp4(key)
            else:
                data = _media.wav(key)
            self._media[index] = data
        return data


def _own_draws(prediction_id: str) -> tuple[float, float, float]:
    """Three uniform draws in [0, 1) of a prediction's own, from its id (a
    digest: far cheaper than seeding a generator per prediction)."""
    digest = hashlib.blake2b(prediction_id.encode(), digest_size=24).digest()
    scale = 2.0**-64
    return (
        int.from_bytes(digest[0:8], "big") * scale,
        int.from_bytes(digest[8:16], "big") * scale,
        int.from_bytes(digest[16:24], "big") * scale,
    )


def _price_text(price: float) -> str:
    text = f"{price:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _prompt(params: dict[str, Any]) -> str:
    value = params.get("prompt") or params.get("text") or ""
    return value if isinstance(value, str) else str(value)


def _seconds(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if value > 0 else default


def requested_outputs(spec: ModelSpec, params: dict[str, Any]) -> int:
    """How many outputs a submit asks for: ``num_images`` for images, else one."""
    if spec.profile is Profile.IMAGE:
        return int(params.get("num_images", 1))
    return 1


def price_of(
    spec: ModelSpec, params: dict[str, Any], outputs: int, media_key: bytes
) -> float:
    """
    Return what one completed prediction of ``spec`` costs, in USD (a failed or
    timed-out one is frozen at this price while it runs, then not billed).

    ``image``: per output; ``second``: per second of the requested
    ``duration`` (`DEFAULT_VIDEO_SECONDS` when absent or automatic);
    ``minute``: per minute of audio (the transcript's length, or the
    one-second WAV made); ``1k_chars``: per thousand characters of ``text`` (else
    ``prompt``); ``generation``: once.
    """
    unit = spec.price_unit
    if unit == "image":
        amount = float(outputs)
    elif unit == "second":
        amount = _seconds(params.get("duration"), DEFAULT_VIDEO_SECONDS)
    elif unit == "minute":
        seconds = (
            _text.transcript_seconds(media_key)
            if spec.profile is Profile.TRANSCRIPT
            else _AUDIO_SECONDS
        )
        amount = seconds / 60.0
    elif unit == "1k_chars":
        # The text spoken is what is billed; a prompt only when there is none.
        text = params.get("text") or params.get("prompt") or ""
        amount = len(text if isinstance(text, str) else str(text)) / 1000.0
    else:
        amount = 1.0
    return round(spec.price * amount, 6)
