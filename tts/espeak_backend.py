"""espeak-ng through its command-line tool.

The same synthesizer pyttsx3 drives in-process, but as a child process: nothing shared, killable on time-out,
and as many renders in parallel as there are cores. Costs a fork per prompt, which the prompt cache hides.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np

from ._cli import find_binary, run_engine
from .base import SynthesisError, Synthesizer, silence, wav_to_prompt

DEFAULT_RATE_WPM = 165
"""A little slower than espeak's 175 default: narrowband G.711 smears fast consonants."""


class EspeakNgSynthesizer(Synthesizer):
    """Runs `espeak-ng --stdout` per prompt.

    `voice` is anything `espeak-ng -v` accepts: a language ("en-us", "de"), a voice file ("gmw/en-GB-x-rp"),
    optionally with a variant ("en-us+f3"). Without a voice, the request's language picks one.
    """

    name = "espeak-ng"

    def __init__(
        self,
        *,
        voice: str | None = None,
        rate_wpm: int = DEFAULT_RATE_WPM,
        amplitude: int = 100,
        timeout: float = 20.0,
        max_parallel: int | None = None,
        binary: str = "espeak-ng",
    ) -> None:
        self._binary = find_binary(binary, "espeak-ng")
        self.default_voice = voice
        self._rate = rate_wpm
        self._amplitude = amplitude
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_parallel or os.cpu_count() or 2)
        self.cache_tag = f"voice={voice};rate={rate_wpm};amp={amplitude}"
        self._closed = False

    async def synthesize(self, text: str, *, voice: str | None = None, language: str = "en") -> np.ndarray:
        if self._closed:
            raise SynthesisError("espeak-ng synthesizer is closed")
        if not text.strip():
            return silence()
        chosen = voice or self.default_voice or language
        argv = [
            self._binary,
            "--stdout",
            "--stdin",  # text on stdin: a prompt starting with '-' must not be read as an option
            "-v",
            chosen,
            "-s",
            str(self._rate),
            "-a",
            str(self._amplitude),
        ]
        async with self._slots:
            wav = await run_engine(argv, stdin=text.encode("utf-8"), timeout=self._timeout)
        if not wav:
            raise SynthesisError(f"espeak-ng produced no audio for voice {chosen!r}")
        return await asyncio.to_thread(wav_to_prompt, wav)

    async def close(self) -> None:
        self._closed = True
