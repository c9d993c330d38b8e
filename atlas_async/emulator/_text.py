"""
Text results: what a speech-to-text and a lyrics model put in ``outputs``.

Atlas's audio pipeline is not uniform: speech and music come back as file URLs,
but a transcript (ASR) and generated lyrics come back as the text itself in
``outputs``, with a structured copy beside it (``stt_result`` and
``lyrics_result``). Both are pure functions of a key (the prediction's media
key), so one prediction always answers the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["lyrics", "transcript", "transcript_seconds"]

_WORDS = (
    "the",
    "quick",
    "emulator",
    "speaks",
    "clearly",
    "about",
    "a",
    "red",
    "fox",
    "crossing",
    "quiet",
    "river",
    "at",
    "dawn",
    "while",
    "birds",
    "sing",
    "softly",
)
_STYLES = ("pop", "folk", "synthwave", "rock", "jazz", "lo-fi", "ballad")
_MOODS = ("upbeat", "dreamy", "melancholic", "warm", "energetic")


def transcript_seconds(key: bytes) -> float:
    """The length, in seconds, of the audio a transcript stands for (20-90 s)."""
    return round(20.0 + (int.from_bytes(key[:2], "big") % 701) / 10.0, 1)


def _pick(key: bytes, offset: int, choices: Sequence[str]) -> str:
    return choices[key[offset % len(key)] % len(choices)]


def transcript(key: bytes) -> tuple[str, dict[str, Any]]:
    """
    Return a transcript and its ``stt_result``.

    ``stt_result`` is ``{text, language, language_code, duration, words,
    channels}``: each word with its ``start`` and ``end`` seconds, spread over
    the audio's `transcript_seconds`; one channel holding the same text.
    """
    count = 8 + key[2] % 8
    words = [_pick(key, 3 + i, _WORDS) for i in range(count)]
    text = " ".join(words).capitalize() + "."
    duration = transcript_seconds(key)
    step = duration / count
    timed = [
        {
            "text": word,
            "start": round(i * step, 2),
            "end": round((i + 1) * step, 2),
            "type": "word",
        }
        for i, word in enumerate(words)
    ]
    result = {
        "text": text,
        "language": "English",
        "language_code": "en",
        "duration": duration,
        "words": timed,
        "channels": [{"channel": 0, "text": text}],
    }
    return text, result


def lyrics(prompt: str, key: bytes) -> tuple[str, dict[str, Any]]:
    """
    Return song lyrics about ``prompt`` and their ``lyrics_result``.

    ``lyrics_result`` is ``{song_title, style_tags, lyrics}``; the lyrics are
    sectioned with ``[Verse]`` and ``[Chorus]`` tags, as lyrics models write.
    """
    subject = " ".join(prompt.split()[:6]) or "the open road"
    title = subject.title()
    style_tags = f"{_pick(key, 0, _STYLES)}, {_pick(key, 1, _MOODS)}"
    verse = [
        f"I woke up thinking of {subject}",
        f"the {_pick(key, 2, _WORDS)} light was {_pick(key, 3, _WORDS)}",
    ]
    chorus = [f"Oh, {subject}", "sing it once again"]
    text = "\n".join(["[Verse]", *verse, "", "[Chorus]", *chorus])
    return text, {"song_title": title, "style_tags": style_tags, "lyrics": text}
