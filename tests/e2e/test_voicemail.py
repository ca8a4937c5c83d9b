"""The `record` node on a live call: the caller's audio lands in a WAV linked to the call record.

The flow is picked by the dialed user (sip:vm@...), which also exercises per-number flow selection.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from harness import HotlineServer, call_ended, event_values, run_sipp, tone_ulaw

pytestmark = pytest.mark.e2e

VOICEMAIL = """\
flow: vm
start: intro
nodes:
  intro:
    say: Please leave a message after the beep.
    next: take
  take:
    record: {beep: true, max_seconds: 20, finish_on_key: "#", silence_timeout: 10}
    next: thanks
  thanks:
    hangup: Thank you. Goodbye.
"""


def test_record_node_writes_the_callers_audio(tmp_path: Path, start_hotline: Callable[..., HotlineServer]) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "vm.yaml").write_text(VOICEMAIL)
    recordings = tmp_path / "recordings"
    server = start_hotline(flows_dir=flows, extra_args=["--recordings-dir", str(recordings)])
    audio = tone_ulaw(800.0, 6.0)
    result = run_sipp("uac_rtpstream.xml", server, call_id="e2e-vm", service="vm",
                      files={"caller_audio.ulaw": audio}, timeout=40)
    assert result.ok, result.describe()
    record = server.wait_for_call("e2e-vm", call_ended)
    assert record["flow"] == "vm@1"
    (value,) = event_values(record, "recording")
    path = json.loads(value)["path"]
    assert Path(path).is_relative_to(recordings)
    with wave.open(path) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    seconds = len(pcm) / 8000
    assert 1.0 < seconds < 7.0, seconds
    loud = np.sqrt(np.mean(pcm.reshape(-1, 160) ** 2, axis=1)) > 500
    assert loud.mean() > 0.3  # the caller's tone is in the file, not silence
    spectrum = np.abs(np.fft.rfft(pcm[: 8000 * int(seconds)]))
    assert abs(np.argmax(spectrum) * 8000 / (2 * (len(spectrum) - 1)) - 800) < 20
