"""pyttsx3 (espeak-ng driver) as an asyncio Synthesizer.

pyttsx3 is the embedded default because it needs no binary on PATH, only libespeak-ng. Its engine is blocking
and not thread-safe, so all rendering happens on one worker thread (see _pyttsx3_worker) and callers await a
future that the worker resolves through loop.call_soon_threadsafe: the event loop, and with it the 20 ms
media clock, never waits on speech synthesis.
"""

from __future__ import annotations

import asyncio

import numpy as np

from ._pyttsx3_worker import RenderJob, acquire_worker, release_worker
from .base import SynthesisError, Synthesizer, silence

DEFAULT_RATE_WPM = 165
"""Words per minute; pyttsx3's 200 is too quick to follow over an 8 kHz phone line."""


class Pyttsx3Synthesizer(Synthesizer):
    """Renders prompts with pyttsx3 on the process-wide pyttsx3 worker thread.

    `voice` accepts an espeak voice id ("gmw/en-us"), its file part ("en-us"), a display name
    ("English (America)"), or a language, optionally with a variant ("en-us+f3"). Without a voice, the
    request's `language` picks one. Several instances may coexist; they share the worker and pass their own
    voice/rate with each request.
    """

    name = "pyttsx3"

    def __init__(
        self,
        *,
        voice: str | None = None,
        rate_wpm: int = DEFAULT_RATE_WPM,
        volume: float = 1.0,
        timeout: float = 20.0,
    ) -> None:
        if not 0.0 <= volume <= 1.0:
            raise ValueError(f"volume must be within [0, 1], got {volume}")
        self.default_voice = voice
        self._rate = rate_wpm
        self._volume = volume
        self._timeout = timeout
        self.cache_tag = f"voice={voice};rate={rate_wpm};volume={volume}"
        self._worker = acquire_worker()
        self._closed = False

    async def synthesize(self, text: str, *, voice: str | None = None, language: str = "en") -> np.ndarray:
        if self._closed:
            raise SynthesisError("pyttsx3 synthesizer is closed")
        if not text.strip():
            return silence()
        loop = asyncio.get_running_loop()
        job = RenderJob(
            text=text,
            voice=voice or self.default_voice,
            language=language,
            rate_wpm=self._rate,
            volume=self._volume,
            loop=loop,
            future=loop.create_future(),
        )
        self._worker.submit(job)
        try:
            # Covers queueing behind other prompts as well as rendering. On expiry only this caller gives up:
            # espeak cannot abort a render, so the worker still finishes it (see _pyttsx3_worker).
            return await asyncio.wait_for(job.future, self._timeout)
        except TimeoutError:
            raise SynthesisError(
                f"pyttsx3 did not deliver a {len(text)}-character prompt within {self._timeout:g} s"
            ) from None
        finally:
            job.abandoned.set()  # if still queued, the worker skips it

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(release_worker)
