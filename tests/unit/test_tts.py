"""tts: real engines (pyttsx3/libespeak-ng, espeak-ng CLI, flite CLI), real resampling, real cache files."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from tts import PromptCache, SynthesisError, Synthesizer, create_synthesizer, to_telephony_rate, trim_silence
from tts.base import TELEPHONY_RATE
from tts.espeak_backend import EspeakNgSynthesizer
from tts.flite_backend import FliteSynthesizer
from tts.pyttsx3_backend import Pyttsx3Synthesizer

BACKENDS: dict[str, Callable[[], Synthesizer]] = {
    "pyttsx3": Pyttsx3Synthesizer,
    "espeak-ng": EspeakNgSynthesizer,
    "flite": FliteSynthesizer,
}


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def seconds(pcm: np.ndarray) -> float:
    return pcm.shape[0] / TELEPHONY_RATE


class CountingSynthesizer(Synthesizer):
    """Wraps a real backend and counts how often the cache really asks it to render."""

    def __init__(self, inner: Synthesizer, *, fail_first: int = 0) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache_tag = getattr(inner, "cache_tag", "")  # wrappers forward it so settings stay in the key
        self.calls = 0
        self._fail_first = fail_first

    async def synthesize(self, text: str, *, voice: str | None = None, language: str = "en") -> np.ndarray:
        self.calls += 1
        if self.calls <= self._fail_first:
            await asyncio.sleep(0.02)  # long enough for concurrent callers to join the in-flight render
            raise SynthesisError("injected failure")
        return await self.inner.synthesize(text, voice=voice, language=language)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture(params=list(BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Synthesizer]:
    synth = BACKENDS[request.param]()
    yield synth
    await synth.close()


@pytest.fixture
async def pyttsx3_synth() -> AsyncIterator[Pyttsx3Synthesizer]:
    synth = Pyttsx3Synthesizer()
    yield synth
    await synth.close()


@pytest.fixture
async def espeak() -> AsyncIterator[EspeakNgSynthesizer]:
    synth = EspeakNgSynthesizer()
    yield synth
    await synth.close()


# --- every backend meets the output contract ---


async def test_backend_renders_greeting_as_telephony_audio(backend: Synthesizer) -> None:
    pcm = await backend.synthesize("Thanks for calling")
    assert isinstance(backend, Synthesizer)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert 0.5 <= seconds(pcm) <= 3.0, f"{backend.name}: {seconds(pcm):.2f} s"
    assert rms(pcm) > 500, f"{backend.name}: too quiet (RMS {rms(pcm):.0f})"
    # Trimmed: the first clearly audible sample comes within the 10 ms lead (leading silence is reply delay)
    # and the last within the 50 ms tail (+ a little for resampling).
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= np.abs(pcm.astype(np.int32)).max() // 100)
    assert loud[0] <= 0.012 * TELEPHONY_RATE
    assert pcm.shape[0] - 1 - loud[-1] <= 0.06 * TELEPHONY_RATE


async def test_backend_output_length_follows_text(backend: Synthesizer) -> None:
    short = await backend.synthesize("Hello")
    long = await backend.synthesize("Thanks for calling. Please hold while we connect you to an agent.")
    assert seconds(long) > 2 * seconds(short), (seconds(short), seconds(long))


async def test_backend_blank_text_is_silence_not_error(backend: Synthesizer) -> None:
    assert (await backend.synthesize("   ")).shape == (0,)


# --- voices and errors ---


async def test_pyttsx3_voice_and_language_selection(pyttsx3_synth: Pyttsx3Synthesizer) -> None:
    default = await pyttsx3_synth.synthesize("Thanks for calling")
    female = await pyttsx3_synth.synthesize("Thanks for calling", voice="en-us+f3")
    by_name = await pyttsx3_synth.synthesize("Thanks for calling", voice="English (America)")
    german = await pyttsx3_synth.synthesize("Vielen Dank für Ihren Anruf", language="de")
    assert rms(female) > 500 and rms(by_name) > 500 and rms(german) > 500
    assert not np.array_equal(default[:4000], female[:4000])
    with pytest.raises(SynthesisError, match="no voice 'no-such-voice'"):
        await pyttsx3_synth.synthesize("hello", voice="no-such-voice")
    with pytest.raises(SynthesisError, match="no voice variant 'zzz'"):
        await pyttsx3_synth.synthesize("hello", voice="en-us+zzz")
    # The worker is still healthy after a rejected request.
    assert rms(await pyttsx3_synth.synthesize("Still here")) > 500


async def test_pyttsx3_rate_setting_changes_speed() -> None:
    slow, fast = Pyttsx3Synthesizer(rate_wpm=110), Pyttsx3Synthesizer(rate_wpm=220)
    try:
        text = "Press one for billing, press two for support."
        # Interleaved on the shared worker: each request must get its own rate, not the previous one's.
        results = [await (slow if i % 2 == 0 else fast).synthesize(text) for i in range(4)]
    finally:
        await slow.close()
        await fast.close()
    slow_s, fast_s = seconds(results[0]), seconds(results[1])
    assert slow_s > 1.5 * fast_s
    assert abs(seconds(results[2]) - slow_s) < 0.05 and abs(seconds(results[3]) - fast_s) < 0.05


async def test_pyttsx3_concurrent_requests_each_get_their_own_audio(
    pyttsx3_synth: Pyttsx3Synthesizer,
) -> None:
    texts = ["One", "Two two two two", "Three, three, three, three, three, three, three", "Four four"]
    sequential = [await pyttsx3_synth.synthesize(t) for t in texts]
    concurrent = await asyncio.gather(*(pyttsx3_synth.synthesize(t) for t in texts))
    for seq, conc in zip(sequential, concurrent, strict=True):
        assert abs(seconds(seq) - seconds(conc)) < 0.02


async def test_pyttsx3_keeps_event_loop_responsive(pyttsx3_synth: Pyttsx3Synthesizer) -> None:
    text = "Thanks for calling. Press one or say billing, press two or say support. " * 40
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    pcm = await pyttsx3_synth.synthesize(text)
    elapsed = time.perf_counter() - started
    task.cancel()
    assert seconds(pcm) > 60  # a real, long render happened ...
    assert elapsed > 0.1  # ... long enough that a blocked loop would have missed several ticks
    during = [t for t in ticks if started <= t <= started + elapsed]
    gaps = np.diff(ticks)
    assert len(during) >= elapsed / 0.01 * 0.5, (len(during), elapsed)
    assert gaps.max() < 0.06, f"event loop stalled for {gaps.max() * 1000:.0f} ms"


async def test_pyttsx3_worker_stops_with_last_user_and_restarts(caplog: pytest.LogCaptureFixture) -> None:
    def workers() -> int:
        return sum(t.name == "hotline-pyttsx3" for t in threading.enumerate())

    first = Pyttsx3Synthesizer()
    assert rms(await first.synthesize("First")) > 500
    assert workers() == 1
    await first.close()
    assert workers() == 0
    with pytest.raises(SynthesisError, match="closed"):
        await first.synthesize("Too late")
    second = Pyttsx3Synthesizer()  # a new thread and engine on the process-global libespeak-ng
    try:
        assert rms(await second.synthesize("Second")) > 500
    finally:
        await second.close()
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


async def test_pyttsx3_timeout_is_clear_and_worker_recovers() -> None:
    impatient = Pyttsx3Synthesizer(timeout=0.01)
    patient = Pyttsx3Synthesizer()
    try:
        with pytest.raises(SynthesisError, match=r"within 0\.01 s"):
            await impatient.synthesize("Thanks for calling. Please hold. " * 100)
        assert rms(await patient.synthesize("Thanks for calling")) > 500
    finally:
        await impatient.close()
        await patient.close()


async def test_espeak_voice_errors_are_reported(espeak: EspeakNgSynthesizer) -> None:
    assert rms(await espeak.synthesize("Guten Tag", language="de")) > 500
    assert rms(await espeak.synthesize("Hello", voice="English (America)+f3")) > 500
    with pytest.raises(SynthesisError, match="no voice 'no-such-voice'"):
        await espeak.synthesize("hello", voice="no-such-voice")
    with pytest.raises(SynthesisError, match="no voice variant 'zzz'"):
        await espeak.synthesize("hello", voice="en-us+zzz")
    with pytest.raises(SynthesisError, match="no voice for language 'xx-yy'"):
        await espeak.synthesize("hello", language="xx-yy")


async def test_flite_voices_and_errors() -> None:
    flite = FliteSynthesizer()
    try:
        assert {"rms", "awb", "slt", "kal"} <= await flite.voices()
        rms_voice = await flite.synthesize("Thanks for calling", voice="rms")
        awb_voice = await flite.synthesize("Thanks for calling", voice="awb")
        assert rms(rms_voice) > 500 and rms(awb_voice) > 500
        assert rms_voice.shape != awb_voice.shape or not np.array_equal(rms_voice, awb_voice)
        with pytest.raises(SynthesisError, match="no voice 'no-such-voice'"):
            await flite.synthesize("hello", voice="no-such-voice")
        with pytest.raises(SynthesisError, match="only speaks English"):
            await flite.synthesize("Bonjour", language="fr")
    finally:
        await flite.close()


# --- prompt cache ---


async def test_cache_synthesizes_once_for_concurrent_requests() -> None:
    counting = CountingSynthesizer(EspeakNgSynthesizer())
    cache = PromptCache(counting)
    try:
        results = await asyncio.gather(*(cache.synthesize("Thanks for calling") for _ in range(5)))
        assert counting.calls == 1
        assert all(r is results[0] for r in results)
        assert (cache.misses, cache.hits) == (1, 4)
        again = await cache.synthesize(" Thanks  for\ncalling ")
        assert again is results[0] and counting.calls == 1 and cache.hits == 5
        with pytest.raises(ValueError):
            again[0] = 1  # shared between callers, so read-only
        other = await cache.synthesize("Thanks for calling", voice="en-us+f3")
        assert counting.calls == 2 and not np.array_equal(other[:2000], again[:2000])
    finally:
        await cache.close()


async def test_cache_does_not_keep_failures() -> None:
    counting = CountingSynthesizer(EspeakNgSynthesizer(), fail_first=1)
    cache = PromptCache(counting)
    try:
        outcomes = await asyncio.gather(
            *(cache.synthesize("Please hold") for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, SynthesisError) for o in outcomes)
        assert counting.calls == 1
        pcm = await cache.synthesize("Please hold")
        assert counting.calls == 2 and rms(pcm) > 500
    finally:
        await cache.close()


async def test_cache_caller_cancellation_does_not_cancel_shared_render() -> None:
    counting = CountingSynthesizer(EspeakNgSynthesizer())
    cache = PromptCache(counting)
    try:
        first = asyncio.create_task(cache.synthesize("Your call is important to us"))
        second = asyncio.create_task(cache.synthesize("Your call is important to us"))
        await asyncio.sleep(0)
        first.cancel()
        pcm = await second
        assert rms(pcm) > 500 and counting.calls == 1
    finally:
        await cache.close()


async def test_disk_cache_survives_a_new_cache_instance(tmp_path: Path) -> None:
    first_backend = CountingSynthesizer(FliteSynthesizer())
    first = PromptCache(first_backend, cache_dir=tmp_path)
    original = await first.synthesize("Thanks for calling")
    await first.close()
    assert first_backend.calls == 1
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1 and len(files[0].stem) == 64  # sha256 hex

    second_backend = CountingSynthesizer(FliteSynthesizer())
    second = PromptCache(second_backend, cache_dir=tmp_path)
    try:
        restored = await second.synthesize("Thanks for calling")
        assert second_backend.calls == 0 and second.disk_hits == 1
        np.testing.assert_array_equal(restored, original)
        # A different default voice is a different prompt, not a stale disk hit.
        third_backend = CountingSynthesizer(FliteSynthesizer(voice="rms"))
        third = PromptCache(third_backend, cache_dir=tmp_path)
        await third.synthesize("Thanks for calling")
        assert third_backend.calls == 1
        await third.close()
    finally:
        await second.close()


async def test_disk_cache_discards_damaged_files(tmp_path: Path) -> None:
    cache = PromptCache(CountingSynthesizer(EspeakNgSynthesizer()), cache_dir=tmp_path)
    try:
        path = cache.disk_path(cache.key("Goodbye", None, "en"))
        assert path is not None
        path.write_bytes(b"not a numpy file")
        pcm = await cache.synthesize("Goodbye")
        assert rms(pcm) > 500 and cache.misses == 1
        np.testing.assert_array_equal(np.load(path), pcm)
    finally:
        await cache.close()


async def test_cache_memory_is_lru_bounded_by_samples() -> None:
    counting = CountingSynthesizer(EspeakNgSynthesizer())
    probe = PromptCache(counting)
    texts = {"a": "Press one for billing", "b": "Press two for technical support", "c": "Hi"}
    sizes = {k: (await probe.synthesize(t)).shape[0] for k, t in texts.items()}
    assert sizes["c"] < sizes["b"]

    cache = PromptCache(counting, max_samples=sizes["a"] + sizes["b"])
    await cache.synthesize(texts["a"])
    await cache.synthesize(texts["b"])
    await cache.synthesize(texts["a"])  # a is now most recently used
    await cache.synthesize(texts["c"])  # over budget: evicts b, the least recently used
    assert cache.memory_samples <= sizes["a"] + sizes["b"]
    calls = counting.calls
    await cache.synthesize(texts["a"])
    assert counting.calls == calls
    await cache.synthesize(texts["b"])
    assert counting.calls == calls + 1
    await probe.close()


async def test_create_synthesizer_wraps_engine_in_cache(tmp_path: Path) -> None:
    synth = create_synthesizer("espeak-ng", cache_dir=tmp_path, voice="en-us")
    try:
        assert isinstance(synth, PromptCache) and synth.name == "espeak-ng"
        assert rms(await synth.synthesize("Thanks for calling")) > 500
        assert len(list(tmp_path.glob("*.npy"))) == 1
    finally:
        await synth.close()
    with pytest.raises(ValueError, match=r"pyttsx3, espeak-ng, flite"):
        create_synthesizer("festival")


# --- audio helpers ---


def _dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(pcm.shape[0])))
    return float(np.fft.rfftfreq(pcm.shape[0], 1 / rate)[int(np.argmax(spectrum))])


def test_resampling_keeps_a_1khz_tone_at_1khz() -> None:
    rate = 22050
    t = np.arange(rate) / rate  # 1 s
    tone = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = to_telephony_rate(tone, rate)
    assert out.dtype == np.int16 and out.ndim == 1
    assert abs(out.shape[0] - TELEPHONY_RATE) <= 2
    assert abs(_dominant_frequency(out, TELEPHONY_RATE) - 1000) <= 2
    # 1 kHz has 2000 zero crossings per second; away from the filter's edge transients.
    core = out[400:-400].astype(np.int32)
    crossings = np.count_nonzero(np.signbit(core[1:]) != np.signbit(core[:-1]))
    assert abs(crossings / (core.shape[0] / TELEPHONY_RATE) - 2000) < 20
    assert abs(np.abs(core).max() - 0.5 * 32767) < 0.02 * 32767  # amplitude preserved


def test_resampling_removes_content_above_telephone_band() -> None:
    rate = 22050
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 6000 * t)  # above the 4 kHz Nyquist of the telephone rate
    out = to_telephony_rate(tone, rate)
    assert rms(out[400:-400]) < 0.01 * 0.5 * 32767  # filtered out, not aliased down to 2 kHz


def test_to_telephony_rate_mixes_stereo_and_clips_floats() -> None:
    t = np.arange(TELEPHONY_RATE) / TELEPHONY_RATE
    left = 0.8 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)  # (frames, channels)
    mono = to_telephony_rate(stereo, TELEPHONY_RATE)
    np.testing.assert_allclose(mono, np.rint(left / 2 * 32768), atol=1)
    np.testing.assert_array_equal(to_telephony_rate(stereo.T, TELEPHONY_RATE), mono)  # (channels, frames)
    clipped = to_telephony_rate(np.array([2.0, -2.0, 0.0]), TELEPHONY_RATE)
    assert clipped.tolist() == [32767, -32768, 0]
    wide = to_telephony_rate(np.array([2**31 - 1, -(2**31)], dtype=np.int32), TELEPHONY_RATE)
    assert wide.tolist() == [32767, -32768]
    assert to_telephony_rate(np.zeros(0, dtype=np.int16), 16000).shape == (0,)


def test_trim_silence_keeps_10ms_before_and_50ms_after() -> None:
    rate = TELEPHONY_RATE
    tone = (8000 * np.sin(2 * np.pi * 500 * np.arange(rate // 2) / rate)).astype(np.int16)
    padded = np.concatenate([np.zeros(rate, np.int16), tone, np.zeros(rate, np.int16)])
    trimmed = trim_silence(padded, rate)
    lead, tail = int(0.01 * rate), int(0.05 * rate)
    audible = tone[1:]  # sin(0) = 0: the tone is audible from its second sample
    np.testing.assert_array_equal(trimmed[:lead], 0)
    np.testing.assert_array_equal(trimmed[lead : lead + audible.shape[0]], audible)
    assert trimmed.shape[0] - (lead + audible.shape[0]) <= tail
    assert trim_silence(np.zeros(100, np.int16), rate).shape == (0,)
    assert trim_silence(padded, rate, lead_ms=0, tail_ms=0).shape[0] <= tone.shape[0]
