"""Queues on real calls: a flow's `transfer: {queue: ...}` through the ACD to agents' phones.

Every test writes a call-center file (queues, agents with the SIP URIs of real phones started first) and
flows into its tmp dir and starts `hotline serve --callcenter FILE`. Callers and agents are real peers:
baresip where audio must be heard (it records what it receives), sipp where a scripted SIP exchange is
the point (a phone that only rings, a caller pressing 1 or 2). The service is watched only through its
API (calls, conversations, agents, recordings), its recordings directory and, for queue entries (which
no API lists yet), a read-only look at its SQLite file. Nothing is timed: every wait polls with a
generous timeout.
"""

from __future__ import annotations

import sqlite3
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from baresip import BaresipPhone, read_wav, tone_wav
from harness import (
    LOOPBACK,
    HotlineServer,
    SippProcess,
    call_ended,
    dtmf_digits,
    event_values,
    run_sipp,
    start_sipp,
    tone_ulaw,
)

pytestmark = pytest.mark.e2e

CALLER_HZ = 440.0
AGENT_HZ = 660.0


# --- audio checks -----------------------------------------------------------------------------------


def tone_seconds(pcm: np.ndarray, rate: int, freq: float, *, tolerance: float = 15.0, min_rms: float = 800.0) -> float:
    """Seconds of 100 ms blocks that are loud and whose strongest frequency is `freq` (+- tolerance)."""
    block = rate // 10
    n = len(pcm) // block
    if n == 0:
        return 0.0
    blocks = pcm[: n * block].astype(np.float64).reshape(n, block)
    levels = np.sqrt(np.mean(np.square(blocks), axis=1))
    spectra = np.abs(np.fft.rfft(blocks * np.hanning(block), axis=1))
    peaks = np.argmax(spectra, axis=1) * rate / block
    return float(((levels > min_rms) & (np.abs(peaks - freq) <= tolerance)).sum()) / 10


def wav_channels(path_or_bytes: Path | bytes) -> tuple[list[np.ndarray], int]:
    """Every channel of a 16-bit WAV, and the sample rate."""
    import io

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with wave.open(source, "rb") as wav:
        assert wav.getsampwidth() == 2, "16-bit WAV expected"
        channels, rate = wav.getnchannels(), wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return [data[i::channels] for i in range(channels)], rate


def heard(phone: BaresipPhone, freq: float) -> float:
    pcm, rate = read_wav(phone.recording_path)
    return tone_seconds(pcm, rate, freq)


# --- the call center ---------------------------------------------------------------------------------


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` (and the last value) otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")
        time.sleep(interval)


@dataclass
class CallCenter:
    server: HotlineServer
    recordings: Path
    config: dict[str, Any] = field(default_factory=dict)

    # API
    def request(self, method: str, path: str, *, token: str | None = "admin", **kwargs: Any) -> httpx.Response:
        bearer = self.server.admin_token if token == "admin" else token
        headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
        return httpx.request(method, f"{self.server.base_url}{path}", headers=headers, timeout=10.0, **kwargs)

    def get(self, path: str) -> Any:
        response = self.request("GET", path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def agents(self) -> dict[str, dict[str, Any]]:
        return {a["name"]: a for a in self.get("/api/v1/agents")}

    def agent(self, name: str) -> dict[str, Any]:
        return self.agents()[name]

    def set_state(self, name: str, state: str) -> dict[str, Any]:
        agent_id = self.agent(name)["id"]
        response = self.request("POST", f"/api/v1/agents/{agent_id}/state", json={"state": state})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_agent(self, name: str, state: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_until(lambda: (a := self.agent(name))["state"] == state and a, f"agent {name} {state}",
                          timeout)  # fmt: skip

    def download(self, recording_id: str) -> bytes:
        response = self.request("GET", f"/api/v1/recordings/{recording_id}")
        assert response.status_code == 200, f"recording {recording_id}: {response.status_code} {response.text[:300]}"
        return response.content

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/conversations/{conversation_id}")  # type: ignore[no-any-return]

    def wait_conversation(self, conversation_id: str, check: Callable[[dict[str, Any]], bool], what: str,
                          timeout: float = 20.0) -> dict[str, Any]:  # fmt: skip
        def once() -> dict[str, Any] | None:
            conversation = self.conversation(conversation_id)
            return conversation if check(conversation) else None

        return wait_until(once, what, timeout)  # type: ignore[no-any-return]

    def calls(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/calls")  # type: ignore[no-any-return]

    # the database, read-only, for what no API shows yet
    def rows(self, sql: str, *params: object) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.server.db_path}?mode=ro", uri=True, timeout=10) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(sql, params))

    def entries(self, conversation_id: str) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM queue_entries WHERE conversation_id = ? ORDER BY enqueued_at", conversation_id)

    def agent_events(self, name: str) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM agent_events WHERE agent_id = ? ORDER BY id", self.agent(name)["id"])

    def wav_files(self, kind: str) -> list[Path]:
        return sorted(self.recordings.rglob(f"*-{kind}-*.wav"), key=lambda p: p.stat().st_mtime)

    def recorded_seconds(self, kind: str = "call", channels: int = 2) -> float:
        """Length of the newest recording of this kind on disk (its header is kept current while it grows)."""
        files = self.wav_files(kind)
        if not files:
            return 0.0
        with wave.open(str(files[-1]), "rb") as wav:
            return wav.getnframes() / wav.getframerate() if wav.getnchannels() == channels else 0.0


def queue_flow(queue: str, *, name: str | None = None, defaults: str = "") -> str:
    """A flow that puts the caller straight into `queue` (dial sip:to_<queue>@ ...); `defaults`: YAML lines."""
    return f"""\
flow: {name or "to_" + queue}
start: queue
{defaults}
nodes:
  queue:
    transfer: {{queue: {queue}, on: {{failed: sorry}}}}
  sorry:
    hangup: Sorry, nobody can take your call now. Goodbye.
"""


@pytest.fixture
def callcenter(start_hotline: Callable[..., HotlineServer], tmp_path: Path) -> Callable[..., CallCenter]:
    """Factory: callcenter(queues={...}, agents=[...]) writes the call-center file and one flow per queue
    (`sip:to_<queue>@...` runs it: transfer to that queue) and starts the server with them."""

    def make(
        *, queues: dict[str, dict[str, Any]], agents: list[dict[str, Any]], users: tuple[dict[str, Any], ...] = (),
        asr: bool = False, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
        flows: dict[str, str] | None = None,
    ) -> CallCenter:  # fmt: skip
        """`flows`: more flows, file stem -> YAML (the flow's name is the user to dial)."""
        flows_dir = tmp_path / "flows"
        flows_dir.mkdir(exist_ok=True)
        for name in queues:
            (flows_dir / f"to_{name}.yaml").write_text(queue_flow(name))
        for stem, text in (flows or {}).items():
            (flows_dir / f"{stem}.yaml").write_text(text)
        config = {"queues": queues, "agents": agents, "users": list(users)}
        path = tmp_path / "callcenter.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        recordings = tmp_path / "recordings"
        args = ["--callcenter", str(path), "--recordings-dir", str(recordings), "--kb-seed", "none",
                "--asr-engine", "auto" if asr else "off", *extra_args]  # fmt: skip
        server = start_hotline(flows_dir=flows_dir, extra_args=args, env=env)
        return CallCenter(server, recordings, config)

    return make


@pytest.fixture
def uas(sipp_uas: Callable[..., SippProcess]) -> Callable[..., SippProcess]:
    """An agent phone played by sipp (default: uas_answer, which answers and streams agent_audio.ulaw)."""

    def start(scenario: str = "uas_answer", *, hz: float = AGENT_HZ, timeout: float = 120) -> SippProcess:
        return sipp_uas(scenario, files={"agent_audio.ulaw": tone_ulaw(hz, 30.0)}, timeout=timeout)

    return start


def call_of(cc: CallCenter, sip_call_id: str, check: Callable[[dict[str, Any]], bool] = lambda r: True,
            timeout: float = 20.0) -> dict[str, Any]:  # fmt: skip
    return cc.server.wait_for_call(sip_call_id, check, timeout=timeout)


def invites(peer: SippProcess) -> int:
    return peer.result().message_log.count("INVITE sip:")


# --- a. bridge: audio both ways, two-channel recording, download -----------------------------------------


def test_caller_and_agent_hear_each_other_and_the_call_is_recorded_in_two_channels(
    tmp_path: Path, baresip_phone: Callable[..., BaresipPhone], callcenter: Callable[..., CallCenter]
) -> None:
    agent = baresip_phone(user="agent", auto_answer=True, audio_source=tone_wav(tmp_path / "a.wav", AGENT_HZ, 60))
    caller = baresip_phone(user="caller", audio_source=tone_wav(tmp_path / "c.wav", CALLER_HZ, 60))
    cc = callcenter(
        queues={"general": {"ring_timeout": 20, "wrap_up_seconds": 120}},
        agents=[{"name": "Ann", "sip_uri": agent.sip_uri, "state": "available"}],
        asr=True,  # live transcription runs on both legs as in production
    )
    caller.dial(cc.server.sip_uri("to_general"))
    sip_call_id = str(caller.wait_for_event("CALL_ESTABLISHED", timeout=15)["id"])
    agent.wait_for_event("CALL_ESTABLISHED", timeout=20)
    cc.wait_agent("Ann", "busy")

    # the recording is written while the call runs: a playable two-channel file that keeps growing
    wait_until(lambda: cc.recorded_seconds("call") >= 5.0, "5 s of the bridged call on disk while it runs",
               timeout=30)  # fmt: skip
    agent.hangup()
    agent.wait_for_event("CALL_CLOSED", timeout=10)
    caller.wait_for_event("CALL_CLOSED", timeout=10)  # the bridge hung the caller up

    record = call_of(cc, sip_call_id, call_ended)
    assert any(v.startswith("bridged to Ann") for v in event_values(record, "transfer")), record["events"]
    conversation = cc.wait_conversation(record["id"], lambda c: bool(c["recordings"]) and c["disposition"],
                                        "the call recording and the disposition")  # fmt: skip
    assert conversation["disposition"] == "transferred", conversation
    assert conversation["queue"] == "general" and conversation["agent"].startswith("Ann"), conversation
    ann = cc.wait_agent("Ann", "wrap_up")  # the agent hung up: wrap-up, not straight back to available
    assert ann["wrap_up_until"] is not None

    # both phones heard the other side's tone
    assert heard(agent, CALLER_HZ) >= 2.0, f"the agent did not hear the caller's {CALLER_HZ} Hz"
    assert heard(caller, AGENT_HZ) >= 2.0, f"the caller did not hear the agent's {AGENT_HZ} Hz"

    # the recording: a Recording row, served only with a token, caller in channel 1 and agent in channel 2
    (call_recording,) = [r for r in conversation["recordings"] if r["kind"] == "call"]
    url = f"/api/v1/recordings/{call_recording['id']}"
    assert cc.request("GET", url, token=None).status_code == 401
    assert cc.request("GET", url, token="not-a-token").status_code == 401
    response = cc.request("GET", url)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav", response.text[:200]
    (caller_channel, agent_channel), rate = wav_channels(response.content)
    assert rate == 8000
    assert tone_seconds(caller_channel, rate, CALLER_HZ) >= 3.0, "channel 1 should hold the caller"
    assert tone_seconds(agent_channel, rate, AGENT_HZ) >= 3.0, "channel 2 should hold the agent"
    assert tone_seconds(caller_channel, rate, AGENT_HZ) < 0.5 and tone_seconds(agent_channel, rate, CALLER_HZ) < 0.5
    assert call_recording["seconds"] == pytest.approx(len(caller_channel) / rate, abs=0.1)


# --- b. no answer -> next agent; misses -> break ----------------------------------------------------------


def test_an_agent_who_does_not_answer_is_skipped_counted_and_put_on_break(
    uas: Callable[..., SippProcess], callcenter: Callable[..., CallCenter]
) -> None:
    ringing = uas("uas_ring_no_answer")
    answering = uas()
    cc = callcenter(
        queues={"general": {"ring_timeout": 3, "max_missed_offers": 1, "wrap_up_seconds": 0}},
        agents=[
            {"name": "Ringo", "sip_uri": ringing.sip_uri("ringo"), "state": "available"},
            {"name": "Bea", "sip_uri": answering.sip_uri("bea"), "state": "offline"},
        ],
    )
    tone = {"caller_audio.ulaw": tone_ulaw(CALLER_HZ, 25.0)}
    caller = start_sipp("uac_rtpstream", cc.server, service="to_general", files=tone, timeout=60)
    with caller:
        wait_until(lambda: invites(ringing) >= 1, "the only available agent's phone rings")
        cc.set_state("Bea", "available")  # available while Ringo's phone rings: Bea is next
        ringo = cc.wait_agent("Ringo", "break")  # the ring timeout passed: missed 1 of max 1 -> break
        assert ringo["missed_offers"] == 1, ringo
        cc.wait_agent("Bea", "busy")
        result = caller.wait(timeout=60)
    assert result.ok, result.describe()
    assert ringing.wait(timeout=15).ok, "the ringing phone must have been CANCELled (487 + ACK)"
    assert answering.wait(timeout=15).ok

    record = call_of(cc, result.call_id, call_ended)
    (entry,) = cc.entries(record["id"])
    assert (entry["state"], entry["attempts"]) == ("done", 2), dict(entry)
    assert cc.agent("Ringo")["id"] in entry["declined"], dict(entry)
    assert entry["agent_id"] == cc.agent("Bea")["id"]
    reasons = [(e["from_state"], e["to_state"], e["reason"]) for e in cc.agent_events("Ringo")]
    assert ("reserved", "break", "missed 1 offers") in reasons, reasons
    assert cc.wait_agent("Bea", "available")  # wrap_up_seconds 0: straight back
    assert cc.conversation(record["id"])["disposition"] == "transferred"


# --- c. the caller hangs up while waiting --------------------------------------------------------------------


def test_a_caller_who_hangs_up_while_waiting_is_abandoned_and_never_offered(
    uas: Callable[..., SippProcess], callcenter: Callable[..., CallCenter]
) -> None:
    phone = uas()
    cc = callcenter(queues={"general": {"announce_period": 5}},
                    agents=[{"name": "Ann", "sip_uri": phone.sip_uri("ann"), "state": "offline"}])  # fmt: skip
    # 6 s in the queue (announcement, music), then the caller gives up
    tone = {"caller_audio.ulaw": tone_ulaw(CALLER_HZ, 6.0)}
    result = run_sipp("uac_rtpstream", cc.server, service="to_general", files=tone, timeout=40)
    assert result.ok, result.describe()
    record = call_of(cc, result.call_id, call_ended)
    assert record["end_reason"] == "caller_bye"
    assert any(v.startswith("You are number 1 in the queue") for v in event_values(record, "prompt")), record
    conversation = cc.wait_conversation(record["id"], lambda c: c["disposition"] is not None, "a disposition")
    assert conversation["disposition"] == "abandoned", conversation
    (entry,) = wait_until(lambda: [e for e in cc.entries(record["id"]) if e["state"] == "abandoned"] or None,
                          "the queue entry abandoned")  # fmt: skip
    assert entry["outcome"] == "caller_left" and entry["agent_id"] is None, dict(entry)

    cc.set_state("Ann", "available")
    time.sleep(3.0)  # a dozen reservation passes: nothing may be offered for the caller who left
    assert invites(phone) == 0, phone.result().message_log
    assert cc.agent("Ann")["state"] == "available"
    assert cc.entries(record["id"])[0]["state"] == "abandoned"


# --- d. callback ------------------------------------------------------------------------------------------


def test_a_caller_who_presses_1_is_called_back_and_bridged_when_an_agent_is_free(
    tmp_path: Path, baresip_phone: Callable[..., BaresipPhone], callcenter: Callable[..., CallCenter]
) -> None:
    agent = baresip_phone(user="agent", auto_answer=True, audio_source=tone_wav(tmp_path / "a.wav", AGENT_HZ, 60))
    # the customer's phone: where their From address says they are
    customer = baresip_phone(user="caller", auto_answer=True,
                             audio_source=tone_wav(tmp_path / "c.wav", CALLER_HZ, 60))  # fmt: skip
    cc = callcenter(queues={"general": {"ring_timeout": 15, "wrap_up_seconds": 0}},
                    agents=[{"name": "Ann", "sip_uri": agent.sip_uri, "state": "offline"}])  # fmt: skip
    host, port = customer.sip_addr.split(":")
    from_address = {"caller": "caller", "cb_host": host, "cb_port": port}
    result = run_sipp("uac_queue_callback", cc.server, service="to_general", keys=from_address, timeout=40)
    assert result.ok, result.describe()
    record = call_of(cc, result.call_id, call_ended)
    assert dtmf_digits(record) == "1" and record["end_reason"] == "server_bye", record
    assert event_values(record, "callback") == [f"sip:caller@{customer.sip_addr}"], record["events"]
    assert any("call you back" in p for p in event_values(record, "prompt")), record["events"]
    (entry,) = cc.entries(record["id"])
    assert entry["state"] == "callback", dict(entry)  # keeps the place after hanging up

    cc.set_state("Ann", "available")
    agent.wait_for_event("CALL_ESTABLISHED", timeout=20)
    customer.wait_for_event("CALL_ESTABLISHED", timeout=40)
    wait_until(lambda: cc.entries(record["id"])[0]["state"] == "connected", "the callback entry connected")
    wait_until(lambda: cc.recorded_seconds("call") >= 5.0, "5 s of the bridged callback", timeout=30)
    customer.hangup()
    customer.wait_for_event("CALL_CLOSED", timeout=10)
    agent.wait_for_event("CALL_CLOSED", timeout=10)  # the bridge hung the agent up

    # the agent was rung first, then the customer, once the agent had answered
    outbound = {r["to_uri"]: r for r in cc.calls() if r["id"] != record["id"]}
    agent_leg, customer_leg = outbound[agent.sip_uri], outbound[f"sip:caller@{customer.sip_addr}"]
    assert agent_leg["answered_at"] is not None and customer_leg["answered_at"] is not None
    assert agent_leg["answered_at"] <= customer_leg["started_at"], (agent_leg, customer_leg)
    assert heard(agent, CALLER_HZ) >= 3.0 and heard(customer, AGENT_HZ) >= 2.0
    done = wait_until(lambda: (e := cc.entries(record["id"])[0])["state"] == "done" and e, "the entry done")
    assert done["agent_id"] == cc.agent("Ann")["id"] and done["answered_at"] is not None

    # the callback belongs to the customer's conversation: disposition, and the bridged call's recording
    conversation = cc.wait_conversation(record["id"], lambda c: bool(c["recordings"]), "the callback recording")
    assert conversation["disposition"] == "callback", conversation
    (recording,) = conversation["recordings"]
    (customer_channel, agent_channel), rate = wav_channels(cc.download(recording["id"]))
    assert tone_seconds(customer_channel, rate, CALLER_HZ) >= 2.0
    assert tone_seconds(agent_channel, rate, AGENT_HZ) >= 2.0


# --- e. voicemail from the queue ---------------------------------------------------------------------------


def test_a_caller_who_presses_2_leaves_a_voicemail(
    uas: Callable[..., SippProcess], callcenter: Callable[..., CallCenter]
) -> None:
    phone = uas()
    cc = callcenter(queues={"general": {}},
                    agents=[{"name": "Ann", "sip_uri": phone.sip_uri("ann"), "state": "offline"}])  # fmt: skip
    tone = {"caller_audio.ulaw": tone_ulaw(CALLER_HZ, 3.0)}
    result = run_sipp("uac_queue_voicemail", cc.server, service="to_general", files=tone, duration=12_000, timeout=40)
    assert result.ok, result.describe()
    record = call_of(cc, result.call_id, call_ended)
    assert dtmf_digits(record) == "2", record["events"]
    assert any(p.startswith("Please leave your message") for p in event_values(record, "prompt")), record
    conversation = cc.wait_conversation(record["id"], lambda c: bool(c["recordings"]) and c["disposition"],
                                        "the voicemail")  # fmt: skip
    assert conversation["disposition"] == "voicemail", conversation
    (voicemail,) = conversation["recordings"]
    assert voicemail["kind"] == "voicemail"
    (channel,), rate = wav_channels(cc.download(voicemail["id"]))
    assert tone_seconds(channel, rate, CALLER_HZ) >= 3.0, "the caller's tone should be in the voicemail"
    (entry,) = cc.entries(record["id"])
    assert entry["state"] == "voicemail", dict(entry)
    assert invites(phone) == 0


# --- f. REFER ----------------------------------------------------------------------------------------------


def test_a_refer_queue_sends_a_real_phone_to_the_agent(
    tmp_path: Path, baresip_phone: Callable[..., BaresipPhone], callcenter: Callable[..., CallCenter]
) -> None:
    agent = baresip_phone(user="agent", auto_answer=True, audio_source=tone_wav(tmp_path / "a.wav", AGENT_HZ, 60))
    caller = baresip_phone(user="caller", audio_source=tone_wav(tmp_path / "c.wav", CALLER_HZ, 60))
    cc = callcenter(queues={"direct": {"transfer": "refer", "wrap_up_seconds": 120}},
                    agents=[{"name": "Ann", "sip_uri": agent.sip_uri, "state": "available"}])  # fmt: skip
    caller.dial(cc.server.sip_uri("to_direct"))
    first_leg = str(caller.wait_for_event("CALL_ESTABLISHED", timeout=15)["id"])
    transfer = caller.wait_for_event("TRANSFER", timeout=15)
    assert transfer["param"] == f"<{agent.sip_uri}>", transfer
    transferred = agent.wait_for_event("CALL_ESTABLISHED", timeout=20)
    assert transferred["id"] != first_leg and transferred["peeruri"] == f"sip:caller@{LOOPBACK}", transferred
    released = caller.wait_for_event("CALL_CLOSED", timeout=15)
    assert released["id"] == first_leg

    record = call_of(cc, first_leg, call_ended)
    assert record["end_reason"] in ("transferred", "server_bye"), record
    assert event_values(record, "transfer")[-1] == f"referred to {agent.sip_uri}", record["events"]
    conversation = cc.wait_conversation(record["id"], lambda c: c["disposition"] is not None, "a disposition")
    assert conversation["disposition"] == "transferred", conversation
    (entry,) = cc.entries(record["id"])
    assert (entry["state"], entry["outcome"]) == ("done", "referred"), dict(entry)
    cc.wait_agent("Ann", "wrap_up")

    # the phones talk directly now, not through us: let them talk, then the agent hears the caller
    time.sleep(3.0)
    agent.hangup()
    agent.wait_for_event("CALL_CLOSED", timeout=10)
    assert heard(agent, CALLER_HZ) >= 1.0, "the agent did not hear the referred caller"
    assert not cc.wav_files("call"), "a REFERred call leaves our media path: nothing to record"


# --- g. overflow -------------------------------------------------------------------------------------------


def test_a_caller_waiting_past_max_wait_overflows_to_the_next_queue(
    uas: Callable[..., SippProcess], callcenter: Callable[..., CallCenter]
) -> None:
    phone = uas()
    cc = callcenter(
        queues={
            "sales": {
                "required_skills": {"sales": 1},
                "max_wait": 5,
                "overflow": {"kind": "queue", "target": "general"},
            },
            "general": {"required_skills": {"general": 1}, "wrap_up_seconds": 0},
        },
        agents=[{"name": "Gil", "sip_uri": phone.sip_uri("gil"), "skills": {"general": 1}, "state": "available"}],
    )
    caller = start_sipp("uac_rtpstream", cc.server, service="to_sales",
                        files={"caller_audio.ulaw": tone_ulaw(CALLER_HZ, 20.0)}, timeout=60)  # fmt: skip
    with caller:
        cc.wait_agent("Gil", "busy", timeout=30)  # after the 5 s in sales, general's agent takes the call
        result = caller.wait(timeout=60)
    assert result.ok, result.describe()
    assert phone.wait(timeout=15).ok
    record = call_of(cc, result.call_id, call_ended)
    sales, general = cc.entries(record["id"])
    assert (sales["queue"], sales["state"]) == ("sales", "overflowed"), dict(sales)
    assert (general["queue"], general["state"], general["agent_id"]) == ("general", "done", cc.agent("Gil")["id"])
    assert "overflow to general" in event_values(record, "transfer"), record["events"]
    conversation = cc.conversation(record["id"])
    assert conversation["disposition"] == "transferred" and conversation["queue"] == "general", conversation


# --- h. whole-call recording with a consent announcement; a flow that records nothing ----------------------

RECORDED = """\
  recording:
    scope: call
    consent: This call may be recorded.
"""
UNRECORDED = """\
  recording: {enabled: false}
"""


def test_a_flow_can_record_the_whole_call_after_a_consent_prompt_or_nothing_at_all(
    uas: Callable[..., SippProcess], callcenter: Callable[..., CallCenter]
) -> None:
    first, second = uas(), uas()
    cc = callcenter(
        queues={"general": {"wrap_up_seconds": 0}},
        agents=[
            {"name": "Ann", "sip_uri": first.sip_uri("ann"), "state": "available"},
            {"name": "Bob", "sip_uri": second.sip_uri("bob"), "state": "offline"},
        ],
        flows={
            "recorded": queue_flow("general", name="recorded", defaults="defaults:\n" + RECORDED),
            "unrecorded": queue_flow("general", name="unrecorded", defaults="defaults:\n" + UNRECORDED),
        },
    )
    tone = {"caller_audio.ulaw": tone_ulaw(CALLER_HZ, 12.0)}
    result = run_sipp("uac_rtpstream", cc.server, service="recorded", files=tone, timeout=40)
    assert result.ok, result.describe()
    record = call_of(cc, result.call_id, call_ended)
    prompts = event_values(record, "prompt")
    assert prompts[:1] == ["This call may be recorded."], prompts  # before anything else
    conversation = cc.wait_conversation(record["id"], lambda c: bool(c["recordings"]) and c["disposition"],
                                        "the call recording")  # fmt: skip
    assert conversation["disposition"] == "transferred"
    (recording,) = conversation["recordings"]  # one file for the whole call, not one more for the bridge
    assert recording["kind"] == "call"
    (caller_channel, our_channel), rate = wav_channels(cc.download(recording["id"]))
    # the whole call: from the answer, longer than the part with the agent
    assert len(caller_channel) / rate == pytest.approx(recording["seconds"], abs=0.1)
    assert tone_seconds(caller_channel, rate, CALLER_HZ) >= 8.0, "channel 1: the caller from the answer on"
    assert tone_seconds(caller_channel, rate, AGENT_HZ) < 0.5
    # channel 2, what the caller heard: the consent prompt (speech), then the agent's tone through the bridge
    block = rate // 10
    blocks = [our_channel[i * block : (i + 1) * block] for i in range(len(our_channel) // block)]
    agent_blocks = [i for i, pcm in enumerate(blocks) if tone_seconds(pcm, rate, AGENT_HZ)]
    assert len(agent_blocks) >= 30, "channel 2 should carry the agent once bridged"
    before = our_channel[: agent_blocks[0] * block].astype(np.float64)
    voiced = np.sqrt(np.mean(before[: len(before) // block * block].reshape(-1, block) ** 2, axis=1)) > 300
    assert voiced.sum() >= 8, "channel 2 should hold the consent prompt before the agent"
    assert tone_seconds(our_channel, rate, CALLER_HZ) < 0.5

    cc.wait_agent("Ann", "available")
    cc.set_state("Ann", "offline")
    cc.set_state("Bob", "available")
    result = run_sipp("uac_rtpstream", cc.server, service="unrecorded", files=tone, timeout=40)
    assert result.ok, result.describe()
    record = call_of(cc, result.call_id, call_ended)
    assert any(v.startswith("bridged to Bob") for v in event_values(record, "transfer")), record["events"]
    conversation = cc.wait_conversation(record["id"], lambda c: c["disposition"] is not None, "a disposition")
    assert conversation["recordings"] == [] and conversation["disposition"] == "transferred"
    assert not list(cc.recordings.rglob(f"{record['id']}-*.wav")), "enabled: false records nothing"


# --- music on hold ----------------------------------------------------------------------------------------


MUSIC_HZ = 1200.0  # not a note of the built-in melody (262-587 Hz and their octaves)


def test_a_queue_plays_its_own_music_file_to_waiting_callers(
    tmp_path: Path, baresip_phone: Callable[..., BaresipPhone], callcenter: Callable[..., CallCenter]
) -> None:
    music = tmp_path / "music.wav"  # 16 kHz stereo, 4 s: converted to 8 kHz mono and looped
    t = np.arange(4 * 16000) / 16000
    tone = (0.4 * 32767 * np.sin(2 * np.pi * MUSIC_HZ * t)).astype("<i2")
    with wave.open(str(music), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.repeat(tone, 2).tobytes())
    cc = callcenter(queues={"general": {"music": str(music), "announce_period": 60}},
                    agents=[{"name": "Ann", "sip_uri": "sip:ann@127.0.0.1:9", "state": "offline"}])  # fmt: skip
    caller = baresip_phone(user="caller")
    caller.dial(cc.server.sip_uri("to_general"))
    caller.wait_for_event("CALL_ESTABLISHED", timeout=15)
    time.sleep(18.0)  # the first announcement (~8 s), then the music
    caller.hangup()
    caller.wait_for_event("CALL_CLOSED", timeout=10)
    assert heard(caller, MUSIC_HZ) >= 4.0, "the queue's music file must be what the caller hears while waiting"
