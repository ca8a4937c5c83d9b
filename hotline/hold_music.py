"""What callers hear while they wait: a queue's own music file (`music:` in the call-center file or the
queue API) or the built-in melody.

Files are decoded once to 8 kHz (any PCM WAV: rate, width and channels are converted; the first minute is
kept, and looped) and kept while they do not change. A file that is missing or unreadable is reported once
and the built-in melody plays instead, so a typo in a path costs the music, never the caller's place in the
queue.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from asr.audio import wav_to_8k

log = logging.getLogger(__name__)
RATE = 8000
MAX_SECONDS = 60  # a longer file is cut: a minute of loop bounds memory and each play's encoding (~1.4 ms)


def built_in(seconds: float = 20.0) -> np.ndarray:
    """A soft melody (no licensing questions): arpeggiated major chords with gentle envelopes."""
    notes = [261.63, 329.63, 392.00, 523.25, 392.00, 329.63, 293.66, 349.23, 440.00, 587.33, 440.00, 349.23]
    note = int(RATE * 0.35)
    t = np.arange(note) / RATE
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-3.0 * t)
    tones = [0.18 * envelope * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)) for f in notes]
    loop = np.concatenate(tones)
    reps = int(np.ceil(seconds * RATE / len(loop)))
    return (np.tile(loop, reps)[: int(seconds * RATE)] * 32767 / 1.3).astype(np.int16)


BUILT_IN = built_in()


def _decode(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"music file {path} does not exist")
    try:
        pcm = wav_to_8k(path)
    except Exception as exc:  # wave.Error, EOFError, bad widths: all mean "not a PCM WAV we can read"
        raise ValueError(f"music file {path} is not a PCM WAV file ({exc})") from None
    if len(pcm) < RATE // 2:
        raise ValueError(f"music file {path} is shorter than half a second")
    return pcm[: MAX_SECONDS * RATE]


class HoldMusic:
    """Thread-safe cache of decoded music files, keyed by path and modification time. Call `for_queue`
    off the event loop (decoding a long file takes a while)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, np.ndarray]] = {}
        self._reported: set[str] = set()

    def load(self, path: str) -> np.ndarray:
        """The file's music, decoded now unless it is cached and unchanged; ValueError naming the problem if it
        cannot be played (start-up checks the call-center file's queues with this, which also warms the cache)."""
        try:
            mtime = Path(path).stat().st_mtime
        except OSError:
            mtime = -1.0
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        pcm = _decode(Path(path))
        with self._lock:
            self._cache[path] = (mtime, pcm)
            self._reported.discard(path)
        return pcm

    def for_queue(self, path: str | None) -> np.ndarray:
        """What a queue plays: its file, or the built-in melody if it has none or it cannot be played."""
        if not path:
            return BUILT_IN
        try:
            return self.load(path)
        except ValueError as exc:
            if path not in self._reported:
                self._reported.add(path)
                log.warning("%s; playing the built-in music instead", exc)
            return BUILT_IN
