"""The speech recognizer interface every engine implements, and engine selection.

Two modes per utterance: **grammar** (a list of phrases: menus, yes/no; the result is one of the phrases or
nothing) and **free** (any words: questions for the bot). A call owns one `RecognizerSession` for its whole
life and runs one utterance at a time through it: `begin` → `push`... → `finish` (or `cancel`).

Decoding never runs on the event loop: `push` only queues audio, the engine decodes on worker threads (Vosk,
which releases the GIL) or worker processes (pocketsphinx, which holds it) — see docs/asr.md for the
measurements behind that choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "AsrError",
    "Engine",
    "ModelError",
    "RecognizerSession",
    "Result",
    "Word",
    "create_engine",
]

ENGINES = ("auto", "vosk", "pocketsphinx")


class AsrError(RuntimeError):
    """Speech recognition cannot run (engine missing, worker died, ...)."""


class AsrBusy(AsrError):
    """The engine has more work queued than it can finish in time: this utterance is not recognized (the
    caller's keys still work). Refusing at once keeps memory and latency bounded under overload."""


class ModelError(AsrError, ValueError):
    """A model path or setting is wrong; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: float  # seconds from the start of the utterance audio
    end: float
    confidence: float  # 0..1, engine specific (see docs/asr.md)


@dataclass(frozen=True, slots=True)
class Result:
    """One recognition. In grammar mode `text` is one of the grammar's phrases exactly as given, or "" for
    no match; in free mode it is the words heard (low-confidence words removed). `confidence` is 0..1."""

    text: str
    confidence: float
    words: list[Word] = field(default_factory=list)
    final: bool = True
    engine: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 3),
            "words": [
                {
                    "text": w.text,
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "confidence": round(w.confidence, 3),
                }
                for w in self.words
            ],
            "engine": self.engine,
        }


@runtime_checkable
class RecognizerSession(Protocol):
    """One call's recognizer. Every method is called on the event loop; none of them blocks it."""

    on_partial: Callable[[Result], None] | None

    def begin(self, grammar: Sequence[str] | None) -> None:
        """Start an utterance: None = free speech, a list = only those phrases. Cancels one in progress."""

    def push(self, pcm: np.ndarray) -> None:
        """Queue 8 kHz int16 audio of the current utterance (copied; returns at once)."""

    async def finish(self) -> Result:
        """Decode what is queued and return the utterance's final result (at once after `speculate`)."""

    def speculate(self) -> None:
        """The caller has probably finished: decode to a final result now, hold audio pushed from here on.

        Lets `finish` answer without a decode once the endpointing silence is confirmed."""

    def resume(self) -> None:
        """The caller went on after `speculate`: take it back and decode the whole utterance on."""

    def cancel(self) -> None:
        """Drop the current utterance (barge-in that turned out to be noise, caller pressed a key, ...)."""

    async def aclose(self) -> None:
        """Release the session's decoders (end of call)."""


@runtime_checkable
class Engine(Protocol):
    name: str
    load_seconds: float  # wall time the model took to load

    def session(self) -> RecognizerSession: ...

    async def transcribe(self, pcm: np.ndarray, rate: int, grammar: Sequence[str] | None = None) -> Result:
        """Recognize a whole buffer (any rate: resampled to 8 kHz first, as telephone audio is)."""
        ...

    async def aclose(self) -> None: ...


def create_engine(
    engine: str = "auto",
    *,
    vosk_model: Path | str | None = None,
    language: str = "en",
    workers: int | None = None,
) -> Engine:
    """Load a speech engine (blocking: seconds for a big Vosk model, so call it off the event loop).

    `auto` picks Vosk when a model path is configured, else the embedded pocketsphinx (English only).
    `workers`: decoding threads (Vosk) or processes (pocketsphinx); default: the number of CPUs.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown ASR engine {engine!r}; choose one of {', '.join(ENGINES)}")
    n = workers or os.cpu_count() or 1
    if engine == "auto":
        engine = "vosk" if vosk_model else "pocketsphinx"
    if engine == "vosk":
        if not vosk_model:
            raise ModelError(
                "the vosk engine needs a model directory (asr.vosk_model / --vosk-model); "
                "download one from https://alphacephei.com/vosk/models (see docs/asr.md)"
            )
        from asr.vosk_backend import VoskEngine

        return VoskEngine(Path(vosk_model), workers=n)
    if language.split("-")[0].lower() != "en":
        raise ModelError(f"pocketsphinx ships an English model only; for language {language!r} configure a Vosk model")
    from asr.pocketsphinx_backend import PocketsphinxEngine

    return PocketsphinxEngine(workers=n)
