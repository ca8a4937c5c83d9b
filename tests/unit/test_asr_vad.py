"""Endpointer on real (synthesized) caller speech, silence, line noise and short bursts."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from asr_data.speech import flite, frames, telephone, white_noise

from asr.vad import Endpointer, EndpointEvent, NoInput, SpeechEnded, SpeechStarted


def run(endpointer: Endpointer, pcm: np.ndarray) -> list[EndpointEvent]:
    events = []
    for frame in frames(pcm):
        event = endpointer.feed(frame)
        if event is not None:
            events.append(event)
    return events


def speech_bounds_ms(pcm: np.ndarray, threshold: int = 200) -> tuple[int, int]:
    """Where the synthesized speech really is: first and last sample above a clear amplitude."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return int(loud[0]) // 8, int(loud[-1]) // 8


@pytest.mark.parametrize("voice", ["rms", "slt", "awb"])
def test_speech_start_and_end_on_real_speech(voice: str) -> None:
    speech = flite("I would like to pay my bill", voice)
    audio = telephone(speech, before=1.0, after=1.0)
    onset, offset = speech_bounds_ms(speech)
    onset += 1000
    offset += 1000
    events = run(Endpointer(no_input_ms=60_000), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded], events
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert onset - 60 <= started.at_ms <= onset + 120
    assert ended.reason == "silence"
    # The end is decided 300 ms after the last voiced frame, which is close to the real end of speech.
    assert ended.at_ms - ended.last_voiced_ms == 300
    assert offset - 150 <= ended.last_voiced_ms <= offset + 100
    assert 0.5 * (offset - onset) <= ended.voiced_ms <= offset - onset + 100


def dbfs_frames(pcm: np.ndarray) -> list[float]:
    return [20 * np.log10(np.sqrt(np.mean(f.astype(np.float64) ** 2)) / 32768 + 1e-9) for f in frames(pcm)]


@pytest.mark.parametrize("text", ["billing", "support", "it is the fifth"])
@pytest.mark.parametrize("voice", ["rms", "slt", "awb"])
def test_on_a_noiseless_line_silence_counts_from_the_audible_end(text: str, voice: str) -> None:
    """Digital silence (VoIP, sipp): there is no noise floor to gate against, and webrtcvad calls a word's
    fading tail speech down to the last µ-law step: 80-280 ms after the speech could be heard (measured).
    The tail gate ends the utterance where the speech falls below -45 dBFS, never before its last -35 dBFS
    frame (a final /t/ release or /θ/ still counts)."""
    audio = telephone(flite(text, voice), before=0.5, after=1.0, noise_dbfs=None)
    levels = dbfs_frames(audio)
    loud_end = (max(i for i, d in enumerate(levels) if d > -35) + 1) * 20
    audible_end = (max(i for i, d in enumerate(levels) if d > -45) + 1) * 20
    ended = [e for e in run(Endpointer(no_input_ms=60_000), audio) if isinstance(e, SpeechEnded)]
    assert len(ended) == 1
    assert loud_end <= ended[0].last_voiced_ms <= audible_end
    assert ended[0].at_ms - ended[0].last_voiced_ms == 300
    # without the tail gate (webrtcvad and the floor gate only) the end came much later
    ungated = [e for e in run(Endpointer(no_input_ms=60_000, tail_db=200), audio) if isinstance(e, SpeechEnded)]
    assert ungated[0].last_voiced_ms >= audible_end + 60


def test_silence_ms_counts_the_endpointing_silence_so_far() -> None:
    audio = telephone(flite("billing", "rms"), before=0.5, after=1.0)
    endpointer = Endpointer(no_input_ms=60_000)
    seen = []
    for frame in frames(audio):
        event = endpointer.feed(frame)
        seen.append(endpointer.silence_ms)
        if isinstance(event, SpeechEnded):
            break
    assert seen[-1] == 0  # the end was decided: no utterance in progress
    assert seen[-2] == 280  # the frame before: one more frame of silence to go
    assert seen[-15:-1] == list(range(20, 300, 20))


def test_preroll_holds_the_onset_and_ends_with_the_confirming_frame() -> None:
    audio = telephone(flite("billing", "rms"), before=1.0, after=0.5)
    endpointer = Endpointer(no_input_ms=60_000)
    chunks = list(frames(audio))
    for i, frame in enumerate(chunks):
        if isinstance(endpointer.feed(frame), SpeechStarted):
            preroll = endpointer.preroll()
            assert len(preroll) == 10  # 200 ms
            np.testing.assert_array_equal(np.concatenate(preroll), np.concatenate(chunks[i - 9 : i + 1]))
            assert endpointer.in_speech
            break
    else:
        pytest.fail("speech never started")


def test_endpointing_silence_is_per_reset() -> None:
    audio = telephone(flite("technical support", "slt"), before=0.5, after=1.5)
    endpointer = Endpointer(no_input_ms=60_000)
    endpointer.reset(end_silence_ms=800)
    ended = [e for e in run(endpointer, audio) if isinstance(e, SpeechEnded)]
    assert len(ended) == 1 and ended[0].at_ms - ended[0].last_voiced_ms == 800


@pytest.mark.parametrize("line", ["digital silence", "line noise"])
def test_no_input_fires_once_after_the_timeout(line: str) -> None:
    audio = np.zeros(8000 * 4, np.int16) if line == "digital silence" else white_noise(4.0, -55)
    endpointer = Endpointer(no_input_ms=1500)
    events = run(endpointer, audio)
    assert events == [NoInput(1500)]
    assert endpointer.elapsed_ms == 4000
    # reset restarts the clock; the new timeout stays for later resets
    endpointer.reset(no_input_ms=500)
    assert run(endpointer, audio[:8000]) == [NoInput(500)]
    endpointer.reset()
    assert run(endpointer, audio[:8000]) == [NoInput(500)]


def test_speech_before_the_timeout_means_no_no_input() -> None:
    audio = telephone(flite("yes", "kal"), before=0.3, after=3.0)
    events = run(Endpointer(no_input_ms=1000), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_max_length_cuts_a_long_utterance() -> None:
    sentence = flite("I have been waiting for my new phone for three weeks and nobody answers my emails", "rms")
    audio = telephone(sentence, before=0.5, after=0.5)
    endpointer = Endpointer(max_utterance_ms=2000, no_input_ms=60_000)
    events = run(endpointer, audio)
    started = next(e for e in events if isinstance(e, SpeechStarted))
    first_end = next(e for e in events if isinstance(e, SpeechEnded))
    assert first_end.reason == "max_length"
    assert first_end.at_ms - started.at_ms == 2000
    assert first_end.voiced_ms > 1000
    # the endpointer listens on: the rest of the sentence is a new utterance
    assert isinstance(events[events.index(first_end) + 1], SpeechStarted)


@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
@pytest.mark.parametrize("dbfs", [-50, -40, -30, -20])
def test_steady_noise_never_starts_speech(aggressiveness: int, dbfs: int) -> None:
    """Raw webrtcvad calls this noise speech (modes 0-2 from -30 dBFS); the noise-floor gate does not."""
    events = run(Endpointer(aggressiveness=aggressiveness, no_input_ms=60_000), white_noise(5.0, dbfs))
    assert events == []


def test_speech_in_noise_still_starts() -> None:
    speech = flite("billing", "awb")
    audio = telephone(speech, before=2.0, after=1.0, noise_dbfs=-40)
    events = run(Endpointer(no_input_ms=60_000), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


@pytest.mark.parametrize("burst_ms", [20, 40])
def test_a_short_burst_does_not_start_speech(burst_ms: int) -> None:
    """A cough or click shorter than start_ms: webrtcvad's hangover alone would make it 100 ms of speech."""
    rng = np.random.default_rng(5)
    n = burst_ms * 8
    burst = rng.normal(0, 8000, n) * np.exp(-np.arange(n) / (n / 3))
    audio = telephone(burst, before=1.0, after=1.0)
    endpointer = Endpointer(no_input_ms=60_000, start_ms=60)
    assert run(endpointer, audio) == []
    # ...while the same length of real speech cut from a word does count once it lasts longer than start_ms
    word = flite("billing", "rms")
    onset, _ = speech_bounds_ms(word)
    long_enough = telephone(word[onset * 8 : onset * 8 + 200 * 8], before=1.0, after=1.0)
    assert any(isinstance(e, SpeechStarted) for e in run(Endpointer(no_input_ms=60_000), long_enough))


def test_feed_does_not_allocate_per_frame() -> None:
    endpointer = Endpointer(no_input_ms=10**9)
    audio = telephone(flite("roaming", "slt"), before=0.5, after=0.5)
    chunks = list(frames(audio)) * 20  # ~26 s, several utterances
    for frame in chunks[:100]:
        endpointer.feed(frame)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for frame in chunks:
            endpointer.feed(frame)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "asr/vad.py" in str(s.traceback))
    assert grown <= 1024  # nothing kept per frame (events are returned, not stored)


def test_rejects_bad_configuration_and_frames() -> None:
    with pytest.raises(ValueError):
        Endpointer(sample_rate=11025)
    with pytest.raises(ValueError):
        Endpointer(aggressiveness=4)
    with pytest.raises(ValueError):
        Endpointer().feed(np.zeros(80, np.int16))
