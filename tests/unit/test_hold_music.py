"""Music on hold: a queue's WAV decoded to 8 kHz mono and cached, the built-in melody when there is none or
it cannot be read, and the call-center file's music paths checked at start-up. Real files."""

from __future__ import annotations

import logging
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from callcenter_api.routing import config as callcenter_config
from hotline.hold_music import BUILT_IN, HoldMusic


def write_wav(path: Path, freq: float, seconds: float, rate: int = 16000, channels: int = 2) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.4 * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(tone, channels).tobytes())
    return path


def dominant(pcm: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


def test_a_music_file_is_converted_cached_and_reloaded_when_it_changes(tmp_path: Path) -> None:
    music = HoldMusic()
    path = write_wav(tmp_path / "hold.wav", 1200.0, 2.0)
    first = music.for_queue(str(path))
    assert first.dtype == np.int16 and len(first) == 16000  # 2 s at 8 kHz, mono
    assert dominant(first) == pytest.approx(1200.0, abs=5)
    assert music.for_queue(str(path)) is first  # cached
    write_wav(path, 700.0, 1.0, rate=44100, channels=1)
    os.utime(path, (1, 1))  # a different modification time, whatever the clock's resolution
    changed = music.for_queue(str(path))
    assert len(changed) == 8000 and dominant(changed) == pytest.approx(700.0, abs=5)


def test_no_file_or_a_bad_one_plays_the_built_in_melody_and_says_why_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    music = HoldMusic()
    assert music.for_queue(None) is BUILT_IN
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with caplog.at_level(logging.WARNING, logger="hotline.hold_music"):
        assert music.for_queue(str(bad)) is BUILT_IN
        assert music.for_queue(str(bad)) is BUILT_IN
        assert music.for_queue(str(tmp_path / "missing.wav")) is BUILT_IN
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # once per file
    assert "not a PCM WAV" in warnings[0] and "does not exist" in warnings[1]
    with pytest.raises(ValueError, match="shorter than half a second"):
        music.load(str(write_wav(tmp_path / "blip.wav", 440.0, 0.1)))


def test_the_call_center_file_resolves_music_next_to_it_and_rejects_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "sounds").mkdir()
    write_wav(tmp_path / "sounds" / "hold.wav", 440.0, 1.0)
    config = tmp_path / "callcenter.yaml"
    config.write_text("queues:\n  support:\n    music: sounds/hold.wav\n")
    loaded = callcenter_config.load(config)
    assert loaded.queues["support"].music == str((tmp_path / "sounds" / "hold.wav").resolve())
    config.write_text("queues:\n  support:\n    music: sounds/nothere.wav\n")
    with pytest.raises(callcenter_config.CallCenterConfigError, match=r"queues\.support\.music: .*does not exist"):
        callcenter_config.load(config)
