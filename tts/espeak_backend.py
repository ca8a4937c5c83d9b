"""espeak-ng through its command-line tool.

The same synthesizer pyttsx3 drives in-process, but as a child process: nothing shared, killable on time-out,
and as many renders in parallel as there are cores. Costs a fork per prompt, which the prompt cache hides.
"""

from __future__ import annotations

import asyncio
import difflib
import os

import numpy as np

from ._cli import find_binary, run_engine
from .base import SynthesisError, Synthesizer, silence, wav_to_prompt

DEFAULT_RATE_WPM = 165
"""A little slower than espeak's 175 default: narrowband G.711 smears fast consonants."""


def _fold(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def _parse_voice_listing(listing: str) -> set[str]:
    """Languages, display names and file names from `espeak-ng --voices[=variant]`, folded for lookup."""
    names: set[str] = set()
    for line in listing.splitlines()[1:]:  # first line is the column header
        parts = line.split()
        if len(parts) >= 5:
            language, display, file = parts[1], parts[3], parts[4]
            names.update({_fold(language), _fold(display), _fold(file), _fold(file.rsplit("/", 1)[-1])})
    names.discard("variant")
    return names


class EspeakNgSynthesizer(Synthesizer):
    """Runs `espeak-ng --stdout` per prompt.

    `voice` is a language ("en-us", "de"), a voice file ("gmw/en-GB-x-rp") or display name, optionally with a
    variant ("en-us+f3"). Without a voice, the request's language picks one. Names are checked against
    `espeak-ng --voices` first: espeak itself quietly maps an unknown "no-such-voice" to Norwegian and
    ignores unknown variants, which would put the wrong language on the line.
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
        self._voices: set[str] | None = None
        self._variants: set[str] | None = None

    async def _listing(self, which: str) -> set[str]:
        out = await run_engine([self._binary, which], stdin=None, timeout=self._timeout)
        return _parse_voice_listing(out.decode(errors="replace"))

    async def _check(self, voice: str | None, language: str) -> None:
        if self._voices is None or self._variants is None:
            self._voices = await self._listing("--voices")
            self._variants = await self._listing("--voices=variant")
        if voice is None:
            lang = _fold(language)
            if lang not in self._voices and lang.split("-", 1)[0] not in self._voices:
                raise SynthesisError(f"espeak-ng has no voice for language {language!r}")
            return
        base, _, variant = voice.partition("+")
        if _fold(base) not in self._voices:
            close = difflib.get_close_matches(_fold(base), sorted(self._voices), n=5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise SynthesisError(f"espeak-ng has no voice {base!r}{hint}")
        if variant and _fold(variant) not in self._variants:
            raise SynthesisError(
                f"espeak-ng has no voice variant {variant!r} (see espeak-ng --voices=variant)"
            )

    async def synthesize(self, text: str, *, voice: str | None = None, language: str = "en") -> np.ndarray:
        if self._closed:
            raise SynthesisError("espeak-ng synthesizer is closed")
        if not text.strip():
            return silence()
        explicit = voice or self.default_voice
        await self._check(explicit, language)
        chosen = explicit or language
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
