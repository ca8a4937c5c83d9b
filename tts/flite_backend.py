"""CMU flite through its command-line tool.

flite's clustergen/diphone voices sound more natural than espeak-ng and are recognised far better by ASR,
which is why the tests also use it to fake caller speech. English only.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import numpy as np

from ._cli import find_binary, run_engine
from .base import SynthesisError, Synthesizer, silence, wav_to_prompt

DEFAULT_VOICE = "slt"
"""US English female, 16 kHz: the clearest of the voices Debian ships compiled in."""


class FliteSynthesizer(Synthesizer):
    """Runs `flite -voice NAME -f text -o out.wav` per prompt.

    flite silently falls back to its default voice for an unknown name (and would fetch a URL given as a
    voice), so voices are checked against `flite -lv` or must be an existing `.flitevox` file.
    """

    name = "flite"

    def __init__(
        self,
        *,
        voice: str | None = None,
        duration_stretch: float = 1.0,
        timeout: float = 20.0,
        max_parallel: int | None = None,
        binary: str = "flite",
    ) -> None:
        self._binary = find_binary(binary, "flite")
        self.default_voice = voice or DEFAULT_VOICE
        self._stretch = duration_stretch
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_parallel or os.cpu_count() or 2)
        self._voices: frozenset[str] | None = None
        self.cache_tag = f"voice={self.default_voice};stretch={duration_stretch}"
        self._closed = False

    async def voices(self) -> frozenset[str]:
        """Names of the voices compiled into this flite binary (asked once, then remembered)."""
        if self._voices is None:
            out = await run_engine([self._binary, "-lv"], stdin=None, timeout=self._timeout)
            listing = out.decode(errors="replace").split(":", 1)[-1]
            self._voices = frozenset(listing.split())
        return self._voices

    async def _check_voice(self, voice: str) -> None:
        if voice.endswith(".flitevox"):
            if not Path(voice).is_file():
                raise SynthesisError(f"flite voice file {voice} does not exist")
            return
        known = await self.voices()
        if voice not in known:
            raise SynthesisError(f"flite has no voice {voice!r}; available: {', '.join(sorted(known))}")

    async def synthesize(self, text: str, *, voice: str | None = None, language: str = "en") -> np.ndarray:
        if self._closed:
            raise SynthesisError("flite synthesizer is closed")
        if not text.strip():
            return silence()
        if voice is None and not language.lower().startswith("en"):
            raise SynthesisError(f"flite only speaks English; no voice for language {language!r}")
        chosen = voice or self.default_voice
        await self._check_voice(chosen)
        with tempfile.TemporaryDirectory(prefix="hotline-flite-") as tmp:
            text_path, wav_path = Path(tmp, "prompt.txt"), Path(tmp, "prompt.wav")
            # A text file rather than -t: no argv length limit, and a leading '-' is never an option.
            text_path.write_text(text, encoding="utf-8")
            argv = [self._binary, "-voice", chosen, "--setf", f"duration_stretch={self._stretch}"]
            argv += ["-f", str(text_path), "-o", str(wav_path)]
            async with self._slots:
                await run_engine(argv, stdin=None, timeout=self._timeout)
            # flite exits 0 even when it could not write; an absent/empty file is the only failure signal.
            if not wav_path.is_file() or wav_path.stat().st_size == 0:
                raise SynthesisError(f"flite wrote no audio for voice {chosen!r}")
            data = wav_path.read_bytes()
        return await asyncio.to_thread(wav_to_prompt, data)

    async def close(self) -> None:
        self._closed = True
