"""The contract every speech engine meets, plus the audio plumbing they share.

Engines render at whatever rate they like (espeak-ng 22050 Hz, flite 16000 Hz); the telephony side only ever
sees mono int16 at 8000 Hz so G.711 encoding and 20 ms framing need no further conversion.
"""

from __future__ import annotations

import io
import wave
from typing import Protocol, runtime_checkable

import numpy as np
import soxr

TELEPHONY_RATE = 8000
"""Sample rate of everything a Synthesizer returns (G.711 narrowband)."""

_INT16_MAX = 32767
_INT16_MIN = -32768


class SynthesisError(RuntimeError):
    """Raised when an engine cannot turn text into audio (missing binary, bad voice, time-out, ...).

    Callers treat it as "this prompt cannot be spoken" and fall back (e.g. play nothing, transfer), so the
    message must say what went wrong in operator terms.
    """


@runtime_checkable
class Synthesizer(Protocol):
    """Text to 8 kHz mono int16 PCM, without ever blocking the event loop.

    `name` identifies the engine; the prompt cache uses it (with voice, language and text) as the cache key.
    Backends may also expose a `cache_tag: str` describing settings that change the audio (default voice,
    rate); the cache adds it to the key, and wrappers should forward it.
    """

    name: str

    async def synthesize(self, text: str, *, voice: str | None = None, language: str = "en") -> np.ndarray:
        """Render `text`; `voice` overrides the engine default, `language` picks one when none is set."""
        ...

    async def close(self) -> None:
        """Release processes/threads; the synthesizer is unusable afterwards."""
        ...


def to_telephony_rate(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Convert any PCM buffer to mono int16 at 8 kHz.

    Accepts int16/int32/uint8/float arrays, 1-D (mono) or 2-D (frames, channels); a (channels, frames) array
    with few rows is recognised too, since no real buffer has fewer frames than channels. Float input is
    expected in [-1, 1]; anything outside is clipped rather than wrapped, because wrapping turns an overshoot
    into a loud click on the line.
    """
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    samples = _as_float(np.asarray(pcm))
    if samples.ndim == 2:
        if samples.shape[0] < samples.shape[1] and samples.shape[0] <= 8:
            samples = samples.T  # (channels, frames) -> (frames, channels)
        samples = samples.mean(axis=1)
    elif samples.ndim != 1:
        raise ValueError(f"expected 1-D or 2-D PCM, got shape {samples.shape}")
    if samples.size == 0:
        return np.zeros(0, dtype=np.int16)
    if rate != TELEPHONY_RATE:
        samples = soxr.resample(samples, rate, TELEPHONY_RATE, quality="HQ")
    scaled = np.rint(samples * 32768.0)
    return np.clip(scaled, _INT16_MIN, _INT16_MAX).astype(np.int16)


def _as_float(pcm: np.ndarray) -> np.ndarray:
    """Map integer PCM to float64 in [-1, 1) so mixing and resampling cannot overflow."""
    if np.issubdtype(pcm.dtype, np.floating):
        return pcm.astype(np.float64, copy=False)
    if pcm.dtype == np.uint8:  # 8-bit WAV is unsigned with a 128 offset
        return (pcm.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(pcm.dtype, np.signedinteger):
        scale = float(2 ** (8 * pcm.dtype.itemsize - 1))
        return pcm.astype(np.float64) / scale
    raise TypeError(f"unsupported PCM dtype {pcm.dtype}")


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Parse a PCM WAV into (samples, rate); samples are 1-D mono or (frames, channels).

    The header's length fields are ignored in favour of the bytes actually present: `espeak-ng --stdout`
    streams its WAV and writes a placeholder length of ~2 GB.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise SynthesisError(f"engine produced an unreadable WAV ({len(data)} bytes): {exc}") from exc
    dtypes = {1: np.uint8, 2: np.dtype("<i2"), 4: np.dtype("<i4")}
    if width not in dtypes:
        raise SynthesisError(f"engine produced {8 * width}-bit audio, which is not supported")
    usable = len(raw) - len(raw) % (width * channels)
    samples = np.frombuffer(raw[:usable], dtype=dtypes[width])
    if channels > 1:
        samples = samples.reshape(-1, channels)
    return samples, rate


def trim_silence(
    pcm: np.ndarray,
    rate: int = TELEPHONY_RATE,
    *,
    lead_ms: float = 10.0,
    tail_ms: float = 50.0,
    threshold_db: float = -40.0,
) -> np.ndarray:
    """Cut leading silence down to at most `lead_ms` and trailing silence to at most `tail_ms`.

    Engines pad prompts with up to half a second of silence; on a call that reads as the system hesitating.
    Leading silence is pure delay: every millisecond of it is added to the time from the caller's last word
    to our first audible reply (flite started its prompts 50 ms late with the old 50 ms margin), so only a
    few ms are kept, enough that the first consonant is not clipped. The tail keeps more: a word's decay
    below the threshold still sounds like part of it, and consecutive prompts need a breath between them.
    The threshold is relative to the prompt's own peak so quiet voices are not eaten.
    """
    if pcm.size == 0:
        return pcm
    magnitude = np.abs(pcm.astype(np.int32))
    peak = int(magnitude.max())
    if peak == 0:
        return pcm[:0]
    threshold = max(1, int(peak * 10 ** (threshold_db / 20)))
    loud = np.flatnonzero(magnitude >= threshold)
    start = max(0, int(loud[0]) - int(rate * lead_ms / 1000))
    end = min(pcm.shape[0], int(loud[-1]) + 1 + int(rate * tail_ms / 1000))
    return pcm[start:end]


def finish_prompt(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Engine output -> what callers get: 8 kHz mono int16, trimmed; raises if the engine produced silence."""
    out = trim_silence(to_telephony_rate(pcm, rate))
    if out.size == 0:
        raise SynthesisError("engine produced only silence")
    return out


def silence() -> np.ndarray:
    """What every engine returns for blank text: nothing to play is not an engine failure."""
    return np.zeros(0, dtype=np.int16)


def wav_to_prompt(data: bytes) -> np.ndarray:
    """Engine WAV bytes -> finished prompt; CPU-bound, so backends run it off the event loop."""
    pcm, rate = decode_wav(data)
    return finish_prompt(pcm, rate)
