"""
The emulator's built-in model catalog.

Ids come from docs/wire.md (the vendor's docs and clients), plus two
image tools named after the WaveSpeed catalog Atlas mirrors (upscale, background
removal), so every latency row of the predictions guide has a model. Each entry
knows three things the emulator needs:

* its `MediaKind` (the catalog's ``type``: Image, Video, Audio);
* its `LatencyClass` (how long it takes);
* its `InputRule`, the one validation the emulator applies: text models need a
  ``prompt`` (audio: ``text`` or ``prompt``); models whose id says
  ``image-to-video``, ``i2v``, ``edit``, ``upscale`` or ``background`` need an
  input image (``image``, ``images`` or ``image_url``) and take the prompt as
  optional. Everything else in a body is accepted and ignored, as the real
  service's per-model schemas are not emulated.

The endpoint a model is submitted to is not checked against its kind: some
published schemas name the wrong endpoint (docs/wire.md), and the output
follows the model, not the endpoint.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

import attrs

__all__ = [
    "DEFAULT_CATALOG",
    "InputRule",
    "LatencyClass",
    "MediaKind",
    "ModelSpec",
    "model_spec",
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


_TYPE_NAMES = {
    MediaKind.IMAGE: "Image",
    MediaKind.VIDEO: "Video",
    MediaKind.AUDIO: "Audio",
}
_IMAGE_INPUT_MARKERS = ("image-to-video", "i2v", "edit", "upscale", "background")


@attrs.frozen(kw_only=True)
class ModelSpec:
    """
    One catalog entry.

    Attributes:
        model: the id, case-sensitive, e.g. ``"google/nano-banana-2/text-to-image"``.
        kind: which output it makes (and the catalog ``type``).
        latency_class: which latency row applies.
        input_rule: what a submit must carry.
        display_name: the catalog's ``displayName``.
        categories: the catalog's ``categories`` (``TEXT-TO-IMAGE``, ...).
    """

    model: str
    kind: MediaKind
    latency_class: LatencyClass
    input_rule: InputRule
    display_name: str
    categories: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """Return the entry as ``GET /api/v1/models`` lists it."""
        organization = (
            self.model.split("/", 1)[0] if "/" in self.model else "atlascloud"
        )
        schema_name = self.model.replace("/", "-")
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
        }


def model_spec(
    model: str, kind: MediaKind | enum.Enum | str, display_name: str | None = None
) -> ModelSpec:
    """
    Build a `ModelSpec`, inferring latency, input rule and category from the id.

    Use it to add models to `EmulatorConfig.models`::

        EmulatorConfig(models=(*DEFAULT_CATALOG, model_spec("acme/pix", "image")))
    """
    kind = MediaKind.coerce(kind)
    lowered = model.lower()
    needs_image = any(marker in lowered for marker in _IMAGE_INPUT_MARKERS)
    if kind is MediaKind.AUDIO:
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
    return ModelSpec(
        model=model,
        kind=kind,
        latency_class=latency,
        input_rule=rule,
        display_name=display_name,
        categories=(category,),
    )


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
    model_spec("bytedance/seed-audio-1.0", MediaKind.AUDIO, "Seed Audio 1.0"),
)
