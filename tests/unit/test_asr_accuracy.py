"""Accuracy regression: fixed synthetic calls per engine and mode, each with a floor the code meets with margin.

Measured when written (see docs/asr.md): pocketsphinx grammar 40/40, pocketsphinx free speech word error
rate 0.27 (32 sentences), Vosk (Korean model) grammar 23/30 and free speech heard in 15/15. If a change drops
below a floor, recognition got worse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
from asr_data.speech import espeak, flite, telephone, white_noise, word_errors

from asr import Engine, create_engine

PS_GRAMMARS = [
    ["billing", "technical support", "roaming", "yes", "no"],
    ["pay a bill", "opening hours", "speak to an agent", "cancel", "repeat"],
]
SENTENCES = [
    "what are your opening hours",
    "I want to pay my bill",
    "my phone does not work",
    "how much does roaming cost",
    "I would like to speak to an agent",
    "where is my order",
    "can you reset my password",
    "I lost my card",
    "please cancel my contract",
    "my internet is very slow",
    "I need a new sim card",
    "when will my package arrive",
    "I was charged twice this month",
    "can I change my address",
    "is there a cheaper plan",
    "the app does not let me log in",
]
KO_WORDS = ["네", "아니요", "요금", "상담원", "로밍", "해지", "결제", "변경", "문의", "연결"]
KO_VOICES = [("ko", 170), ("ko+m3", 170), ("ko", 130)]


@pytest.fixture(scope="module")
def pocketsphinx() -> Iterator[Engine]:
    engine = create_engine("pocketsphinx", workers=2)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def vosk() -> Iterator[Engine]:
    from asr_data.speech import vosk_ko_model

    engine = create_engine("vosk", vosk_model=vosk_ko_model(), workers=2)
    yield engine
    asyncio.run(engine.aclose())


async def test_pocketsphinx_grammar_accuracy(pocketsphinx: Engine) -> None:
    cases = [(g, p, v) for g in PS_GRAMMARS for p in g for v in ("rms", "awb", "slt", "kal")]
    results = await asyncio.gather(*(pocketsphinx.transcribe(telephone(flite(p, v)), 8000, g) for g, p, v in cases))
    wrong = [(p, v, r.text) for (_, p, v), r in zip(cases, results, strict=True) if r.text != p]
    assert len(cases) == 40
    assert len(wrong) <= 3, wrong  # floor 92.5 %


async def test_pocketsphinx_free_speech_word_error_rate(pocketsphinx: Engine) -> None:
    cases = [(s, v) for s in SENTENCES for v in ("rms", "slt")]
    results = await asyncio.gather(*(pocketsphinx.transcribe(telephone(flite(s, v)), 8000) for s, v in cases))
    errors = [word_errors(s, r.text) for (s, _), r in zip(cases, results, strict=True)]
    wer = sum(e for e, _ in errors) / sum(n for _, n in errors)
    assert wer <= 0.35, wer


async def test_vosk_grammar_accuracy(vosk: Engine) -> None:
    cases = [(w, v, s) for w in KO_WORDS for v, s in KO_VOICES]
    results = await asyncio.gather(*(vosk.transcribe(telephone(espeak(w, v, s)), 8000, KO_WORDS) for w, v, s in cases))
    right = sum(r.text == w for (w, _, _), r in zip(cases, results, strict=True))
    assert right >= 19, f"{right}/30"  # floor 63 %


async def test_vosk_free_speech_hears_speech_and_only_speech(vosk: Engine) -> None:
    """espeak-ng's Korean is not intelligible enough for word accuracy; the floor is: every utterance yields
    words, and silence or line noise yields none."""
    phrases = [" ".join(KO_WORDS[i : i + 2]) for i in range(0, 10, 2)]
    speech = [telephone(espeak(p, v, s)) for p in phrases for v, s in KO_VOICES]
    quiet = [np.zeros(12000, np.int16), white_noise(1.5, -60), white_noise(1.5, -50, seed=9)]
    heard = await asyncio.gather(*(vosk.transcribe(a, 8000) for a in speech))
    assert sum(bool(r.text) for r in heard) >= 13, [r.text for r in heard]  # of 15
    silent = await asyncio.gather(*(vosk.transcribe(a, 8000) for a in quiet))
    assert [r.text for r in silent] == ["", "", ""]
