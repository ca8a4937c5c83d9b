"""Getting any recording into the shape calls have: mono 16-bit PCM at 8 kHz.

Supervisors test recognition with whatever they recorded (44.1 kHz stereo from a laptop, 16 kHz from a
softphone); the engines must hear what a call would deliver, so everything is mixed down and resampled to the
telephone rate first (soxr, high quality) — the engines upsample again themselves if their model wants it.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import soxr

RATE = 8000


def to_8k(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Mono int16 (or float in -1..1) at `rate` -> int16 at 8 kHz."""
    pcm = np.asarray(pcm)
    if pcm.ndim == 2:
        pcm = pcm.mean(axis=1)
    if pcm.dtype.kind == "f":
        pcm = np.clip(pcm * 32768.0, -32768, 32767)
    if rate == RATE:
        return pcm.astype(np.int16, copy=False)
    out = soxr.resample(pcm.astype(np.float32), rate, RATE, quality="HQ")
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """PCM WAV (8/16/24/32-bit, any channels) -> (mono samples as float32 in int16 scale, rate)."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) * 256.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16)) << 8
        data = (ints >> 8).astype(np.float32) / 256.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 65536.0
    else:
        raise ValueError(f"{path}: unsupported sample width {width} bytes")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return data, rate


def wav_to_8k(path: Path | str) -> np.ndarray:
    data, rate = read_wav(path)
    if rate == RATE:
        return np.clip(np.rint(data), -32768, 32767).astype(np.int16)
    out = soxr.resample(data, rate, RATE, quality="HQ")
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)
