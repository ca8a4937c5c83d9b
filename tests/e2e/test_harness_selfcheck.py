"""Self-checks of the e2e tooling, without hotline: the scenarios against sipp UAS peers, baresip
against baresip and sipp, and the harness against a stand-in server.

If these fail, an e2e failure against hotline says nothing about hotline.
"""

from __future__ import annotations

import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from baresip import BaresipPhone, NetstringReader, dominant_frequency, netstring, read_wav, rms, tone_wav
from harness import (
    HotlineServer,
    HotlineStartError,
    SippTimeout,
    call_ended,
    dtmf_digits,
    free_port_range,
    free_udp_port,
    parse_stat_csv,
    run_sipp,
    silence_ulaw,
    start_sipp,
    tone_ulaw,
    ulaw_decode,
    ulaw_duration_ms,
    ulaw_encode,
)

# --- pure helpers ---------------------------------------------------------------------------------


def test_ulaw_encoder_is_bit_exact_with_the_reference_coder() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # stdlib until 3.13: the classic Sun/CCITT coder
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert ulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)
    every_code = bytes(range(256))
    assert ulaw_decode(every_code).tobytes() == audioop.ulaw2lin(every_code, 2)


def test_tone_ulaw_decodes_to_the_requested_tone() -> None:
    data = tone_ulaw(1000.0, 0.5)
    assert ulaw_duration_ms(data) == 500
    pcm = ulaw_decode(data)
    assert dominant_frequency(pcm, 8000) == pytest.approx(1000.0, abs=5)
    assert rms(ulaw_decode(silence_ulaw(0.1))) == 0.0


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = [free_udp_port() for _ in range(50)]
    assert len(set(ports)) == 50
    block = free_port_range(8, tcp=True)
    assert len(block) == 8 and block.spec == f"{block.first}-{block.first + 7}"
    assert not set(ports) & set(range(block.first, block.last + 1))
    for port in range(block.first, block.last + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))


def test_netstring_reader_reassembles_split_frames() -> None:
    stream = netstring(b'{"a":1}') + netstring(b"") + netstring(b"x" * 20)
    reader = NetstringReader()
    out: list[bytes] = []
    for i in range(0, len(stream), 3):
        out += reader.feed(stream[i : i + 3])
    assert out == [b'{"a":1}', b"", b"x" * 20]


def test_parse_stat_csv_takes_the_last_row() -> None:
    text = "A;SuccessfulCall(C);FailedCall(C);\n1;0;0;\n2;7;1;\n"
    stats = parse_stat_csv(text)
    assert stats["SuccessfulCall(C)"] == "7" and stats["FailedCall(C)"] == "1"


# --- the harness against a stand-in server ------------------------------------------------------------

FAKE_SERVER = r"""
import json, signal, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
assert sys.argv[1] == "serve", sys.argv
born = time.monotonic()
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/healthz":
            return self.reply(200, {"ok": True})
        if self.headers.get("Authorization") != "Bearer " + args["--admin-token"]:
            return self.reply(401, {"detail": "bad token"})
        age = time.monotonic() - born
        calls = [] if age < 0.5 else [{"sip_call_id": "c1", "ended_at": "x" if age > 1.0 else None,
                                        "events": [{"type": "dtmf", "value": "4"}]}]
        wanted = urllib.parse.parse_qs(url.query).get("sip_call_id")
        self.reply(200, [c for c in calls if not wanted or c["sip_call_id"] in wanted])
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
def stop(*_):
    print("stopping on SIGTERM", flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("fake hotline on", args["--http-port"], "db", args["--db"], flush=True)
ThreadingHTTPServer(("127.0.0.1", int(args["--http-port"])), Handler).serve_forever()
"""


def test_hotline_server_harness_polls_the_api_and_stops_cleanly(tmp_path: Path) -> None:
    server = HotlineServer(tmp_path, command=[sys.executable, "-c", FAKE_SERVER], startup_timeout=10)
    with server:
        assert server.running
        record = server.wait_for_call("c1", call_ended, timeout=5)
        assert dtmf_digits(record) == "4"
        assert server.calls("nope") == []
        with pytest.raises(AssertionError, match="matched call_ended"):
            server.wait_for_call("nope", call_ended, timeout=0.3)
        server.admin_token = "wrong"
        with pytest.raises(AssertionError, match="401"):
            server.calls()
    assert server.returncode == 0
    log = server.log_path.read_text()
    assert f"db sqlite:///{tmp_path}/hotline.sqlite3" in log and "stopping on SIGTERM" in log


def test_hotline_server_harness_reports_a_dead_server_with_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('boom: cannot start'); sys.exit(3)"]
    with pytest.raises(HotlineStartError, match=r"(?s)exit code 3.*boom: cannot start"):
        HotlineServer(tmp_path, command=command, startup_timeout=5).start()


# --- sipp scenarios against sipp peers -----------------------------------------------------------------

REFER = {"keys": {"refer_to": "sip:agent@127.0.0.1:5099"}}
# (uac scenario, uas scenario, uas options, uac options, should the UAC pass)
SCENARIO_PAIRS: list[tuple[str, str, dict[str, Any], dict[str, Any], bool]] = [
    ("uac_options", "selfcheck_uas_options", {}, {}, True),
    ("uac_options", "uas", {"extra_args": ["-aa"]}, {}, False),  # 200 without Allow must fail
    ("uac_dtmf_2833", "uas", {}, {}, True),
    ("uac_dtmf_2833", "uas_answer", {}, {}, True),
    ("uac_dtmf_2833", "uas_refer_target", {}, {}, True),
    ("uac_dtmf_pound", "selfcheck_uas_hangup", {}, {}, True),
    ("uac_info_dtmf", "uas", {"extra_args": ["-aa"]}, {}, True),
    ("uac_rtp_audio", "uas", {}, {}, True),
    ("uac_rtpstream", "uas", {}, {"duration": 1000}, True),
    ("uac_cancel", "selfcheck_uas_ringing", {}, {}, True),
    ("uac_hold_resume", "selfcheck_uas_hold", {"keys": {"hold_answer": "recvonly"}}, {}, True),
    ("uac_hold_resume", "selfcheck_uas_hold", {"keys": {"hold_answer": "sendrecv"}}, {}, False),
    ("uac_no_codec", "selfcheck_uas_reject", {}, {}, True),
    ("uac_no_codec", "uas", {}, {}, False),  # a 200 instead of 488 must fail
    (
        "uac_accepts_refer",
        "selfcheck_uas_sends_refer",
        {"variables": {"uas_hangs_up": "1"}, **REFER},
        {},
        True,
    ),
    (
        "uac_accepts_refer",
        "selfcheck_uas_sends_refer",
        {"variables": {"uas_hangs_up": "0"}, **REFER},
        {},
        True,
    ),
    ("uac_load", "uas", {}, {"duration": 0}, True),
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("uac", "uas", "uas_options", "uac_options", "passes"),
    SCENARIO_PAIRS,
    ids=[f"{p[0]}-vs-{p[1]}-{'pass' if p[4] else 'fail'}-{i}" for i, p in enumerate(SCENARIO_PAIRS)],
)
def test_scenario_against_sipp_peer(
    tmp_path: Path,
    sipp_bin: str,
    uac: str,
    uas: str,
    uas_options: dict[str, Any],
    uac_options: dict[str, Any],
    passes: bool,
) -> None:
    with start_sipp(uas, None, workdir=tmp_path / "uas", timeout=60, **uas_options) as peer:
        result = run_sipp(uac, peer, workdir=tmp_path / "uac", **{"timeout": 30, **uac_options})
        assert result.ok is passes, result.describe()
        if passes:
            assert result.successful == 1 and result.call_id in result.message_log
            peer_result = peer.wait(timeout=15)
            assert peer_result.ok and peer_result.successful == 1, peer_result.describe()


@pytest.mark.e2e
def test_run_sipp_raises_with_the_error_log_when_sipp_times_out(tmp_path: Path, sipp_bin: str) -> None:
    silent = free_udp_port()  # nothing answers there
    started = time.monotonic()
    with pytest.raises(SippTimeout, match="timed out after"):
        run_sipp("uac_options", f"127.0.0.1:{silent}", workdir=tmp_path, timeout=2)
    assert time.monotonic() - started < 15


@pytest.mark.e2e
def test_load_caller_ids_follow_the_cid_template(tmp_path: Path, sipp_bin: str) -> None:
    with start_sipp("selfcheck_uas_options", None, calls=3, workdir=tmp_path / "uas") as peer:
        result = run_sipp("uac_options", peer, calls=3, rate=10, call_id="batch", workdir=tmp_path / "uac")
        result.check(calls=3)
    assert result.call_ids == ["batch-1", "batch-2", "batch-3"]
    for call_id in result.call_ids:
        assert f"Call-ID: {call_id}\n" in result.message_log


# --- baresip ----------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_two_baresip_phones_call_each_other_and_record_audio(tmp_path: Path, baresip_bin: str) -> None:
    tone = tone_wav(tmp_path / "tone.wav", 1000.0, 2.0)
    with (
        BaresipPhone(tmp_path / "caller", user="caller", audio_source=tone) as caller,
        BaresipPhone(tmp_path / "agent", auto_answer=True) as agent,
    ):
        caller.dial(agent.sip_uri)
        call_id = caller.wait_for_event("CALL_ESTABLISHED")["id"]
        assert agent.wait_for_event("CALL_ESTABLISHED")["id"] == call_id
        caller.send_dtmf("42")
        assert agent.wait_for_event("CALL_DTMF_START")["param"] == "4"
        assert agent.wait_for_event("CALL_DTMF_START")["param"] == "2"
        time.sleep(2.5)  # tone (2 s) then silence
        caller.hangup()
        caller.wait_for_event("CALL_CLOSED")
        agent.wait_for_event("CALL_CLOSED")
        heard, rate = read_wav(agent.recording_path)
    assert rate == 8000 and len(heard) > 2 * rate
    assert rms(heard[: rate // 2]) > 3000  # non-silent
    assert dominant_frequency(heard[:rate], rate) == pytest.approx(1000.0, abs=10)
    assert rms(heard[-rate // 4 :]) < 100  # the padding silence follows the tone


@pytest.mark.e2e
def test_sipp_callers_reach_a_baresip_phone(tmp_path: Path, sipp_bin: str, baresip_bin: str) -> None:
    """Cross-check both tools: pcap DTMF and rtp_stream audio arrive where the SDP says."""
    with BaresipPhone(tmp_path / "agent", auto_answer=True) as phone:
        run_sipp("uac_dtmf_2833", phone, service="agent", workdir=tmp_path / "dtmf").check(calls=1)
        phone.wait_for_event("CALL_CLOSED")
        digits = [e.get("param") for e in phone.events if e.get("type") == "CALL_DTMF_START"]
        assert digits == ["1", "2", "3"]

        audio = tone_ulaw(1000.0, 1.5)
        files = {"caller_audio.ulaw": audio}
        run_sipp("uac_rtpstream", phone, service="agent", files=files, duration=ulaw_duration_ms(audio),
                 workdir=tmp_path / "stream").check(calls=1)  # fmt: skip
        phone.wait_for_event("CALL_CLOSED")
        heard, rate = read_wav(phone.recording_path)
    assert dominant_frequency(heard[:rate], rate) == pytest.approx(1000.0, abs=10)
    assert rms(heard[:rate]) > 3000
