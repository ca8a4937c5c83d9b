"""Speech on live calls: flite-synthesized caller speech streamed by sipp into the running server.

Covers the menu grammar ("billing" takes the billing branch), barge-in (speech cuts the prompt, noise does
not), silence → no_input, a free question reaching the `ask` node, and utterances stored with the call.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soxr
from harness import HotlineServer, call_ended, event_values, run_sipp, ulaw_encode

pytestmark = pytest.mark.e2e

FLOW = """\
flow: speech
start: menu
defaults: {timeout: 4, retries: {no_input: 0, no_match: 0}}
nodes:
  menu:
    menu:
      prompt: >-
        Welcome to the speech test line. This prompt is deliberately long, so that a caller who speaks
        while it plays can interrupt it. For billing, say billing. For technical support, say support.
      options:
        "1": {say_as: [billing], next: billing}
        "2": {say_as: [support, technical support], next: support}
      on: {no_input: silent, no_match: unknown}
  billing: {hangup: Billing.}
  support: {hangup: Support.}
  silent: {hangup: No input.}
  unknown: {hangup: No match.}
"""

QUESTION_FLOW = """\
flow: question
start: menu
defaults: {timeout: 4, retries: {no_input: 0, no_match: 0}}
nodes:
  menu:
    menu:
      prompt: Say billing, or ask me a question.
      options:
        "1": {say_as: [billing], next: billing}
      on: {no_input: silent, no_match: silent, question: faq}
  faq:
    ask: {on: {answered: done, no_answer: done, handoff: done}}
  billing: {hangup: Billing.}
  silent: {hangup: No input.}
  done: {hangup: Thank you.}
"""


def speech(text: str, voice: str = "rms") -> np.ndarray:
    """`text` spoken by flite, at 8 kHz int16 like telephone audio."""
    flite = shutil.which("flite")
    assert flite, "flite is missing: run scripts/install.sh --test"
    out = Path("/tmp") / f"hotline-e2e-{abs(hash((text, voice)))}.wav"
    subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(out)], check=True, timeout=30)
    with wave.open(str(out)) as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        rate = wav.getframerate()
    return np.clip(soxr.resample(pcm.astype(np.float32), rate, 8000), -32768, 32767).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(8000 * seconds), dtype=np.int16)


def noise(seconds: float, level: float = 300.0) -> np.ndarray:
    return np.random.default_rng(7).normal(0, level, int(8000 * seconds)).clip(-32768, 32767).astype(np.int16)


def call(server: HotlineServer, service: str, audio: np.ndarray, call_id: str) -> dict:
    result = run_sipp("t_uac_speak_wait_bye.xml", server, call_id=call_id, service=service,
                      files={"caller_audio.ulaw": ulaw_encode(audio)}, timeout=40)
    assert result.ok, result.describe()
    return server.wait_for_call(call_id, call_ended)


@pytest.fixture
def speech_server(tmp_path: Path, start_hotline: Callable[..., HotlineServer]) -> HotlineServer:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "speech.yaml").write_text(FLOW)
    (flows / "question.yaml").write_text(QUESTION_FLOW)
    return start_hotline(flows_dir=flows)


def _end(record: dict) -> str:
    return event_values(record, "flow_end")[-1]


def _utterances(record: dict) -> list[dict]:
    return [json.loads(value) for value in event_values(record, "utterance")]


def test_spoken_billing_barges_in_and_takes_the_billing_branch(speech_server: HotlineServer) -> None:
    audio = np.concatenate([silence(1.0), speech("billing"), silence(8.0)])
    record = call(speech_server, "speech", audio, "e2e-speech-billing")
    assert _end(record) == "hangup at billing", record["events"]
    assert event_values(record, "barge_in"), "speech during the prompt must stop it"
    (utterance,) = _utterances(record)
    assert utterance["text"] == "billing" and utterance["grammar"] is True


def test_silence_gives_no_input(speech_server: HotlineServer) -> None:
    record = call(speech_server, "speech", silence(14.0), "e2e-speech-silence")
    assert _end(record) == "hangup at silent"
    assert not event_values(record, "barge_in") and not _utterances(record)


def test_noise_does_not_barge_in(speech_server: HotlineServer) -> None:
    record = call(speech_server, "speech", noise(14.0), "e2e-speech-noise")
    assert not event_values(record, "barge_in"), record["events"]
    assert _end(record) in ("hangup at silent", "hangup at unknown")


def test_a_free_question_reaches_ask(speech_server: HotlineServer) -> None:
    audio = np.concatenate([silence(3.5), speech("where can I find my puk code"), silence(8.0)])
    record = call(speech_server, "question", audio, "e2e-speech-question")
    assert "faq" in event_values(record, "node"), record["events"]
    assert _end(record) == "hangup at done"
    (utterance,) = _utterances(record)
    assert utterance["grammar"] is False and len(utterance["text"].split()) >= 3
