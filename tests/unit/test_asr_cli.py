"""`hotline asr transcribe`: a real process, real WAV files in the shapes supervisors record."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import soxr
from asr_data.speech import espeak, flite, telephone, vosk_ko_model


def write_wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1) -> Path:
    data = np.repeat(pcm[:, None], channels, axis=1) if channels > 1 else pcm
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(data, dtype="<i2").tobytes())
    return path


def hotline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline", "asr", "transcribe", *args], capture_output=True, text=True, timeout=120
    )


def test_grammar_on_a_44k_stereo_recording(tmp_path: Path) -> None:
    pcm = telephone(flite("technical support", "rms"), noise_dbfs=-70)
    wide = np.clip(soxr.resample(pcm.astype(np.float32), 8000, 44100), -32768, 32767).astype(np.int16)
    wav = write_wav(tmp_path / "support.wav", wide, 44100, channels=2)
    proc = hotline(str(wav), "--grammar", "Billing|Technical support|roaming", "--engine", "pocketsphinx")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["text"] == "Technical support"
    assert out["engine"] == "pocketsphinx"
    assert set(out) >= {"text", "confidence", "words", "engine", "seconds", "real_time_factor"}
    assert [w["text"] for w in out["words"]] == ["technical", "support"]
    assert set(out["words"][0]) == {"text", "start", "end", "confidence"}
    assert abs(out["seconds"] - len(pcm) / 8000) < 0.01
    assert 0 < out["real_time_factor"] < 1


def test_free_speech_with_vosk_model(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "ko.wav", telephone(espeak("요금 문의")), 8000)
    proc = hotline(str(wav), "--vosk-model", str(vosk_ko_model()))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["engine"] == "vosk" and out["text"]


def test_bad_input_is_a_usage_error(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "x.wav", np.zeros(800, np.int16), 8000)
    proc = hotline(str(wav), "--engine", "vosk", "--vosk-model", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    proc = hotline(str(junk))
    assert proc.returncode == 2 and "not a readable PCM WAV" in proc.stderr
    proc = hotline(str(wav), "--grammar", " | ")
    assert proc.returncode == 2 and "no phrases" in proc.stderr
