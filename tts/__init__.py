"""Speech synthesis for IVR prompts: text in, 8 kHz mono int16 PCM out, cached.

Engines: "pyttsx3" (embedded default, libespeak-ng in-process on one worker thread), "espeak-ng" and "flite"
(command-line tools run as subprocesses). All are wrapped in a PromptCache by `create_synthesizer`.
"""

from __future__ import annotations

from pathlib import Path

from .base import TELEPHONY_RATE, SynthesisError, Synthesizer, to_telephony_rate, trim_silence
from .cache import PromptCache

ENGINES = ("pyttsx3", "espeak-ng", "flite")

__all__ = [
    "ENGINES",
    "TELEPHONY_RATE",
    "PromptCache",
    "SynthesisError",
    "Synthesizer",
    "create_engine",
    "create_synthesizer",
    "to_telephony_rate",
    "trim_silence",
]


def create_engine(engine: str = "pyttsx3", *, voice: str | None = None) -> Synthesizer:
    """The bare backend, without a cache (tests and tools that want every render to be real)."""
    if engine == "pyttsx3":
        from .pyttsx3_backend import Pyttsx3Synthesizer

        return Pyttsx3Synthesizer(voice=voice)
    if engine == "espeak-ng":
        from .espeak_backend import EspeakNgSynthesizer

        return EspeakNgSynthesizer(voice=voice)
    if engine == "flite":
        from .flite_backend import FliteSynthesizer

        return FliteSynthesizer(voice=voice)
    raise ValueError(f"unknown TTS engine {engine!r}; valid engines: {', '.join(ENGINES)}")


def create_synthesizer(
    engine: str = "pyttsx3", *, cache_dir: Path | None = None, voice: str | None = None
) -> Synthesizer:
    """The synthesizer the service uses: the chosen engine behind a PromptCache.

    Backends are imported lazily so choosing flite does not load libespeak-ng into the process.
    """
    return PromptCache(create_engine(engine, voice=voice), cache_dir=cache_dir)
