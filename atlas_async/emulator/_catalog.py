"""
The emulator's built-in model catalog, and the models it serves by id alone.

Ids come from docs/wire.md (the vendor's docs and clients), plus two
image tools named after the WaveSpeed catalog Atlas mirrors (upscale, background
removal), so every latency row of the predictions guide has a model. Each entry
knows what the emulator needs:

* its `MediaKind` (the catalog's ``type``: Image, Video, Audio);
* its `LatencyClass` (how long it takes);
* its `InputRule`, the one validation the emulator applies: text models need a
  ``prompt`` (audio: ``text`` or ``prompt``); models whose id says
  ``image-to-video``, ``i2v``, ``edit``, ``upscale`` or ``background`` need an
  input image (``image``, ``images`` or ``image_url``) and take the prompt as
  optional; speech-to-text needs an audio input. Everything else in a body is
  accepted and ignored, as the real service's per-model schemas are not
  emulated;
* its `Profile` (what its outputs are: files, or text for speech-to-text and
  lyrics), its price (``price.actual``: ``base_price`` per ``unit``) and its
  `WireStyle` (the forms its answers take where Atlas's differ by model).

The catalog is not the limit of what a submit may name: any *plausible* id
(`plausible_model_id`) is served too (`infer_spec`), its kind taken from the
endpoint it was sent to and its profile from its words, so clients written
against the real catalog (hundreds of models) run unchanged. Those models are
not listed by ``GET /models`` and answer in `NEWER_STYLE`.

The endpoint a catalog model is submitted to is not checked against its kind:
some published schemas name the wrong endpoint (docs/wire.md), and the output
follows the model, not the endpoint.
"""

from __future__ import annotations

import enum
import re
import uuid
from typing import Any

import attrs

__all__ = [
    "CLASSIC_STYLE",
    "DEFAULT_CATALOG",
    "ERROR_KEYS",
    "MAX_MODEL_ID_LENGTH",
    "NEWER_STYLE",
    "PLACEHOLDER_SEGMENTS",
    "PRICE_UNITS",
    "InputRule",
    "LatencyClass",
    "MediaKind",
    "ModelSpec",
    "Profile",
    "WireStyle",
    "infer_spec",
    "model_spec",
    "plausible_model_id",
    "profile_of",
]


class MediaKind(enum.Enum):
    """What a model makes: its output files and the catalog ``type``."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"

    @classmethod
    def coerce(cls, value: object) -> MediaKind:
        """
        Return ``value`` as a `MediaKind`.

        Accepts a `MediaKind`, its value in any case (``"Image"``), or any other
        enum member whose value is one (such as the SDK's ``Kind.IMAGE``), so
        callers need not know which vocabulary they hold.

        Raises:
            ValueError: for anything else, naming the accepted values.
        """
        if isinstance(value, MediaKind):
            return value
        raw = value.value if isinstance(value, enum.Enum) else value
        try:
            return cls(str(raw).lower())
        except ValueError:
            accepted = ", ".join(repr(kind.value) for kind in cls)
            raise ValueError(
                f"unknown kind {value!r}: expected one of {accepted}"
            ) from None


class LatencyClass(enum.Enum):
    """
    The latency rows of the Atlas predictions guide (image 2-10 s, video and
    image-to-video 30 s-3 min, image tools 5-15 s), plus audio.
    """

    IMAGE = "image"
    VIDEO = "video"
    IMAGE_TO_VIDEO = "image-to-video"
    IMAGE_TOOL = "image-tool"
    AUDIO = "audio"


class InputRule(enum.Enum):
    """What a submit must carry for a model, besides ``model``."""

    PROMPT = "prompt"
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"
    ANY = "any"


class Profile(enum.Enum):
    """
    What a model's outputs are, read from the words of its id.

    ``IMAGE``, ``VIDEO``, ``SPEECH`` (text to speech) and ``MUSIC`` make files
    (PNG, MP4, WAV, WAV); ``TRANSCRIPT`` (speech to text) and ``LYRICS`` put
    the text itself in ``outputs``, with ``stt_result`` or ``lyrics_result``
    beside it, as the vendor's newest client documents.
    """

    IMAGE = "image"
    VIDEO = "video"
    SPEECH = "speech"
    MUSIC = "music"
    TRANSCRIPT = "transcript"
    LYRICS = "lyrics"

    @property
    def text(self) -> bool:
        """True when outputs hold text rather than file URLs."""
        return self in (Profile.TRANSCRIPT, Profile.LYRICS)


ERROR_KEYS = ("message", "detail", "reason")
"""The keys an ``error`` object carries its reason under, one per model."""


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _not_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


def _error_key(
    _: object, attribute: attrs.Attribute[str | None], value: object
) -> None:
    if value is not None and value not in ERROR_KEYS:
        raise ValueError(
            f"{attribute.name} must be None or one of {ERROR_KEYS}, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class WireStyle:
    """
    The forms one model's answers take where Atlas's answers differ by model.

    Attributes:
        queue_seconds: Atlas seconds a new prediction stays ``created``
            before it turns ``processing`` (added before its latency).
        verdict_5xx_share: of its failed and timed-out predictions, the
            fraction whose polls answer HTTP 500 with the verdict in the body
            (``{"code": 500, "message": ..., "data": {"status": "failed",
            ...}}``) instead of inside an HTTP 200.
        error_key: None sends ``error`` as a string; ``"message"``,
            ``"detail"`` or ``"reason"`` sends it as ``{key: text}``.
        price_as_text: send a completed prediction's ``price`` as a string
            (``"0.03"``) rather than a number.
    """

    queue_seconds: float = attrs.field(default=0.0, validator=_not_negative)
    verdict_5xx_share: float = attrs.field(default=0.0, validator=_share)
    error_key: str | None = attrs.field(default=None, validator=_error_key)
    price_as_text: bool = False


CLASSIC_STYLE = WireStyle()
"""The forms of the documented API: straight to ``processing``, failures inside
HTTP 200, ``error`` a string, ``price`` a number."""

NEWER_STYLE = WireStyle(
    queue_seconds=2.0, verdict_5xx_share=0.5, error_key="message", price_as_text=True
)
"""The forms the vendor's newest client was written against: a ``created``
phase, half the failures answered HTTP 500 with the verdict, ``error`` an
object, ``price`` a string. Every id outside the catalog answers in these."""

PRICE_UNITS = ("generation", "second", "image", "minute", "1k_chars")
"""The catalog's ``price.actual.unit`` values."""

_DEFAULT_PRICES: dict[Profile, tuple[float, str]] = {
    Profile.IMAGE: (0.03, "image"),
    Profile.VIDEO: (0.06, "second"),
    Profile.SPEECH: (0.02, "1k_chars"),
    Profile.MUSIC: (0.08, "generation"),
    Profile.TRANSCRIPT: (0.006, "minute"),
    Profile.LYRICS: (0.01, "generation"),
}


def _price_unit(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in PRICE_UNITS:
        raise ValueError(
            f"{attribute.name} must be one of {PRICE_UNITS}, got {value!r}"
        )


_TYPE_NAMES = {
    MediaKind.IMAGE: "Image",
    MediaKind.VIDEO: "Video",
    MediaKind.AUDIO: "Audio",
}
_IMAGE_INPUT_MARKERS = ("image-to-video", "i2v", "edit", "upscale", "background")
_MODALITIES = {
    Profile.IMAGE: "image",
    Profile.VIDEO: "video",
    Profile.SPEECH: "audio",
    Profile.MUSIC: "audio",
    Profile.TRANSCRIPT: "text",
    Profile.LYRICS: "text",
}


def _money(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


@attrs.frozen(kw_only=True)
class ModelSpec:
    """
    One model the emulator serves: a catalog entry, or an id it inferred.

    Attributes:
        model: the id, case-sensitive, e.g. ``"google/nano-banana-2/text-to-image"``.
        kind: which output it makes (and the catalog ``type``).
        latency_class: which latency row applies.
        input_rule: what a submit must carry.
        display_name: the catalog's ``displayName``.
        categories: the catalog's ``categories`` (``TEXT-TO-IMAGE``, ...).
        profile: what its outputs are (files of which type, or text).
        price: ``price.actual.base_price`` in USD per ``price_unit``.
        price_unit: ``generation``, ``second``, ``image``, ``minute`` or
            ``1k_chars``: what one ``price`` buys.
        style: the forms its answers take (`WireStyle`).
    """

    model: str
    kind: MediaKind
    latency_class: LatencyClass
    input_rule: InputRule
    display_name: str
    categories: tuple[str, ...] = ()
    profile: Profile = Profile.IMAGE
    price: float = attrs.field(default=0.03, validator=_not_negative)
    price_unit: str = attrs.field(default="image", validator=_price_unit)
    style: WireStyle = CLASSIC_STYLE

    def to_wire(self) -> dict[str, Any]:
        """Return the entry as ``GET /api/v1/models`` lists it."""
        organization = (
            self.model.split("/", 1)[0] if "/" in self.model else "atlascloud"
        )
        schema_name = self.model.replace("/", "-")
        base = _money(self.price)
        side = {
            "input_price": "0",
            "output_price": "0",
            "base_price": base,
            "cache_price": "0",
            "cache_creation_price": "0",
            "output_image_price": base if self.price_unit == "image" else "0",
            "request_price": base if self.price_unit == "generation" else "0",
            "unit": self.price_unit,
        }
        inputs = ["text"]
        if self.input_rule is InputRule.IMAGE:
            inputs = ["image", "text"]
        elif self.input_rule is InputRule.AUDIO:
            inputs = ["audio"]
        return {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.model)),
            "model": self.model,
            "type": _TYPE_NAMES[self.kind],
            "displayName": self.display_name,
            "categories": list(self.categories),
            "organization": organization,
            "schema": f"https://static.atlascloud.ai/model/schema/{schema_name}.json",
            "tags": [],
            "display_console": True,
            "price": {"discount": "1", "actual": side, "origin": dict(side)},
            "input_modalities": inputs,
            "output_modalities": [_MODALITIES[self.profile]],
        }


_TRANSCRIPT_WORDS = ("asr", "stt", "whisper", "transcribe", "transcription")
_MUSIC_WORDS = ("music", "song", "suno")


def profile_of(model: str, kind: MediaKind) -> Profile:
    """
    Return the profile an id's words give a model of ``kind``.

    Only audio has more than one: ``lyrics`` in the id makes lyrics (text);
    ``asr``, ``stt``, ``whisper``, ``transcribe`` or ``speech-to-text`` a
    transcript (text); ``music``, ``song`` or ``suno`` music; anything else
    speech. Images and videos are files of their kind whatever the words.
    """
    if kind is MediaKind.IMAGE:
        return Profile.IMAGE
    if kind is MediaKind.VIDEO:
        return Profile.VIDEO
    lowered = model.lower()
    words = set(re.split(r"[/._\-:+]", lowered))
    if "lyrics" in lowered:
        return Profile.LYRICS
    if "speech-to-text" in lowered or words & set(_TRANSCRIPT_WORDS):
        return Profile.TRANSCRIPT
    if any(word in lowered for word in _MUSIC_WORDS):
        return Profile.MUSIC
    return Profile.SPEECH


def model_spec(
    model: str,
    kind: MediaKind | enum.Enum | str,
    display_name: str | None = None,
    *,
    price: float | None = None,
    price_unit: str | None = None,
    style: WireStyle = CLASSIC_STYLE,
    input_rule: InputRule | None = None,
) -> ModelSpec:
    """
    Build a `ModelSpec`, inferring latency, input rule, category, profile and
    price from the id.

    Use it to add models to `EmulatorConfig.models`::

        EmulatorConfig(models=(*DEFAULT_CATALOG, model_spec("acme/pix", "image")))

    Args:
        model: the id.
        kind: image, video or audio (any spelling `MediaKind.coerce` reads).
        display_name: the catalog's ``displayName``; by default made from the id.
        price: USD per ``price_unit``; by default the profile's.
        price_unit: what one ``price`` buys; by default the profile's.
        style: the forms its answers take.
        input_rule: what a submit must carry; by default read from the id.
    """
    kind = MediaKind.coerce(kind)
    lowered = model.lower()
    profile = profile_of(model, kind)
    needs_image = any(marker in lowered for marker in _IMAGE_INPUT_MARKERS)
    if profile is Profile.TRANSCRIPT:
        latency, rule, category = (
            LatencyClass.AUDIO,
            InputRule.AUDIO,
            "SPEECH-TO-TEXT",
        )
    elif profile is Profile.LYRICS:
        latency, rule, category = LatencyClass.AUDIO, InputRule.PROMPT, "TEXT-TO-AUDIO"
    elif profile is Profile.MUSIC:
        latency, rule, category = LatencyClass.AUDIO, InputRule.TEXT, "TEXT-TO-MUSIC"
    elif kind is MediaKind.AUDIO:
        latency, rule, category = LatencyClass.AUDIO, InputRule.TEXT, "TEXT-TO-SPEECH"
    elif kind is MediaKind.VIDEO and needs_image:
        latency, rule, category = (
            LatencyClass.IMAGE_TO_VIDEO,
            InputRule.IMAGE,
            "IMAGE-TO-VIDEO",
        )
    elif kind is MediaKind.VIDEO:
        latency, rule = LatencyClass.VIDEO, InputRule.PROMPT
        category = "REFERENCE-TO-VIDEO" if "reference" in lowered else "TEXT-TO-VIDEO"
    elif needs_image:
        latency, rule, category = (
            LatencyClass.IMAGE_TOOL,
            InputRule.IMAGE,
            "IMAGE-TO-IMAGE",
        )
    else:
        latency, rule, category = LatencyClass.IMAGE, InputRule.PROMPT, "TEXT-TO-IMAGE"
    if display_name is None:
        display_name = " ".join(
            part.replace("-", " ").title() for part in model.split("/")
        )
    default_price, default_unit = _DEFAULT_PRICES[profile]
    return ModelSpec(
        model=model,
        kind=kind,
        latency_class=latency,
        input_rule=input_rule if input_rule is not None else rule,
        display_name=display_name,
        categories=(category,),
        profile=profile,
        price=default_price if price is None else price,
        price_unit=default_unit if price_unit is None else price_unit,
        style=style,
    )


MAX_MODEL_ID_LENGTH = 200
_MODEL_ID = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._:+-]*(?:/[A-Za-z0-9][A-Za-z0-9._:+-]*)*"
)
PLACEHOLDER_SEGMENTS = frozenset(
    {
        "acme",
        "example",
        "nope",
        "no",
        "none",
        "nonexistent",
        "does-not-exist",
        "no-such-model",
        "not-a-model",
        "unknown",
        "invalid",
        "missing",
    }
)
"""Id segments that stand for a model Atlas does not have (``acme/nope``,
``no/such-model``), so a test can still meet the 400 for an unknown model."""


def plausible_model_id(model: object) -> bool:
    """
    Return True if ``model`` looks like an id Atlas could serve.

    Plausible: a string of at most `MAX_MODEL_ID_LENGTH` characters, segments
    joined by ``/``, each starting with a letter or digit and holding only
    letters, digits and ``. _ - : +``; no segment a placeholder
    (`PLACEHOLDER_SEGMENTS`). Empty ids, spaces, control characters, empty
    segments and absurd lengths are not.
    """
    if not isinstance(model, str) or len(model) > MAX_MODEL_ID_LENGTH:
        return False
    if _MODEL_ID.fullmatch(model) is None:
        return False
    return not any(part.lower() in PLACEHOLDER_SEGMENTS for part in model.split("/"))


def infer_spec(model: str, kind: MediaKind) -> ModelSpec | None:
    """
    Return the spec the emulator serves an id outside its catalog with, or None.

    The kind is the endpoint's (``generateImage``, ``generateVideo``,
    ``generateAudio``), the profile comes from the id's words (`profile_of`),
    any non-empty input is enough (Atlas's per-model schemas are not
    emulated) and the answers take the `NEWER_STYLE` forms. None when the id
    is not plausible (`plausible_model_id`).
    """
    if not plausible_model_id(model):
        return None
    return model_spec(model, kind, style=NEWER_STYLE, input_rule=InputRule.ANY)


DEFAULT_CATALOG: tuple[ModelSpec, ...] = (
    # Text to image.
    model_spec("google/nano-banana-2/text-to-image", MediaKind.IMAGE, "Nano Banana 2"),
    model_spec("bytedance/seedream-v4", MediaKind.IMAGE, "Seedream v4"),
    model_spec("bytedance/seedream-v5.0-lite", MediaKind.IMAGE, "Seedream v5.0 Lite"),
    model_spec(
        "bytedance/seedream-v5.0-pro/text-to-image",
        MediaKind.IMAGE,
        "Seedream v5.0 Pro",
    ),
    model_spec("black-forest-labs/flux-schnell", MediaKind.IMAGE, "FLUX.1 [schnell]"),
    model_spec(
        "wavespeed-ai/flux-schnell", MediaKind.IMAGE, "FLUX.1 [schnell] (WaveSpeed)"
    ),
    model_spec("openai/gpt-image-2/text-to-image", MediaKind.IMAGE, "GPT Image 2"),
    model_spec("z-image/turbo", MediaKind.IMAGE, "Z-Image Turbo"),
    model_spec("seedream-3.0", MediaKind.IMAGE, "Seedream 3.0"),  # the docs' short id
    # Image tools.
    model_spec("google/nano-banana/edit", MediaKind.IMAGE, "Nano Banana Edit"),
    model_spec("google/nano-banana-pro/edit", MediaKind.IMAGE, "Nano Banana Pro Edit"),
    model_spec("wavespeed-ai/image-upscaler", MediaKind.IMAGE, "Image Upscaler"),
    model_spec(
        "wavespeed-ai/image-background-remover", MediaKind.IMAGE, "Background Remover"
    ),
    # Text to video.
    model_spec("bytedance/seedance-2.0/text-to-video", MediaKind.VIDEO, "Seedance 2.0"),
    model_spec(
        "bytedance/seedance-v1-pro-fast/text-to-video",
        MediaKind.VIDEO,
        "Seedance v1 Pro Fast",
    ),
    model_spec(
        "bytedance/seedance-v1.5-pro/text-to-video-fast",
        MediaKind.VIDEO,
        "Seedance v1.5 Pro Fast",
    ),
    model_spec(
        "bytedance/seedance-2.5/reference-to-video",
        MediaKind.VIDEO,
        "Seedance 2.5 Reference",
    ),
    model_spec("alibaba/wan-2.5/text-to-video-fast", MediaKind.VIDEO, "Wan 2.5 Fast"),
    model_spec("google/veo3.1/text-to-video", MediaKind.VIDEO, "Veo 3.1"),
    model_spec("kling-v2.0", MediaKind.VIDEO, "Kling v2.0"),  # the docs' short id
    # Image to video.
    model_spec(
        "bytedance/seedance-2.0-fast/image-to-video",
        MediaKind.VIDEO,
        "Seedance 2.0 Fast I2V",
    ),
    model_spec(
        "bytedance/seedance-v1-pro-i2v-720p",
        MediaKind.VIDEO,
        "Seedance v1 Pro I2V 720p",
    ),
    model_spec(
        "kwaivgi/kling-v3.0-std/image-to-video", MediaKind.VIDEO, "Kling v3.0 Std I2V"
    ),
    model_spec(
        "kwaivgi/kling-v3.0-pro/image-to-video", MediaKind.VIDEO, "Kling v3.0 Pro I2V"
    ),
    model_spec(
        "kwaivgi/kling-v2.1-i2v-master", MediaKind.VIDEO, "Kling v2.1 Master I2V"
    ),
    model_spec(
        "kwaivgi/kling-video-o1/image-to-video", MediaKind.VIDEO, "Kling Video O1 I2V"
    ),
    model_spec("minimax/hailuo-02/i2v-standard", MediaKind.VIDEO, "Hailuo 02 I2V"),
    # Audio.
    model_spec(
        "bytedance/seed-audio-1.0",
        MediaKind.AUDIO,
        "Seed Audio 1.0",
        price=0.05,
        price_unit="minute",
    ),
    # Text from the audio pipeline, in the newer forms (docs/wire.md).
    model_spec(
        "bytedance/seed-asr-2.0",
        MediaKind.AUDIO,
        "Seed ASR 2.0",
        style=WireStyle(queue_seconds=1.0, verdict_5xx_share=1.0, error_key="detail"),
    ),
    model_spec(
        "minimax/lyrics-generation",
        MediaKind.AUDIO,
        "MiniMax Lyrics Generation",
        style=WireStyle(verdict_5xx_share=0.5, error_key="reason", price_as_text=True),
    ),
)
