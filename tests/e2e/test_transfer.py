"""Transfer primitives — bridging, REFER, outbound dial — run in-process against real peers.

Our SipEndpoint runs inside the test's event loop, so a test can script what the server does with a call
(dial an agent, bridge, REFER) without a flow engine. Everything that blocks (baresip's ctrl_tcp waits,
sipp runs) goes through asyncio.to_thread: a blocked loop would stop our media clock and SIP timers and
the test would measure its own stall instead of the stack.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from baresip import BaresipPhone, dominant_frequency, read_wav, tone_wav
from harness import LOOPBACK, SippProcess, free_port_range, free_udp_port, run_sipp

from telephony.bridge import Bridge
from telephony.call import Call
from telephony.endpoint import CallFailed, SipEndpoint

pytestmark = pytest.mark.e2e

Handler = Callable[[Call], Awaitable[None]]
EndpointFactory = Callable[[Handler | None], Awaitable[SipEndpoint]]
VOICED_RMS = 1000.0


# Tests list make_endpoint after the peer fixtures: teardown runs in reverse, so our endpoint hangs up its
# calls while the event loop still runs, before the (blocking) peer teardown would stall it.
@pytest.fixture
async def make_endpoint() -> AsyncIterator[EndpointFactory]:
    """Factory for our SIP stack on a free loopback port; every endpoint is closed at teardown."""
    endpoints: list[SipEndpoint] = []

    async def make(handler: Handler | None = None) -> SipEndpoint:
        ports = free_port_range(20)
        endpoint = SipEndpoint(
            host=LOOPBACK, port=0, rtp_ports=(ports.first, ports.last), handler=handler, observer=None
        )
        await endpoint.start()
        endpoints.append(endpoint)
        return endpoint

    yield make
    for endpoint in endpoints:
        await endpoint.close(grace=1.0)


def endpoint_uri(endpoint: SipEndpoint, user: str = "hotline") -> str:
    return f"sip:{user}@{LOOPBACK}:{endpoint.port}"


async def wait_event(phone: BaresipPhone, event_type: str, timeout: float = 10.0) -> dict[str, object]:
    return await asyncio.to_thread(phone.wait_for_event, event_type, timeout)


def voiced_tone(path: Path) -> tuple[float, float]:
    """(dominant frequency, seconds of audible signal) of a recording."""
    pcm, rate = read_wav(path)
    size = rate // 50
    frames = pcm[: len(pcm) // size * size].astype(np.float64).reshape(-1, size)
    loud = np.sqrt(np.mean(np.square(frames), axis=1)) > VOICED_RMS
    if not loud.any():
        return 0.0, 0.0
    return dominant_frequency(frames[loud].ravel(), rate), loud.sum() / 50


# --- a. bridge ------------------------------------------------------------------------------------------


class BridgedCall:
    """Caller (baresip, 660 Hz) -> our endpoint; its handler dials an agent (baresip, 440 Hz) and bridges."""

    def __init__(self, tmp_path: Path, phones: Callable[..., BaresipPhone]) -> None:
        self.caller = phones(user="caller", audio_source=tone_wav(tmp_path / "660.wav", 660.0, 10.0))
        agent_tone = tone_wav(tmp_path / "440.wav", 440.0, 10.0)
        self.agent = phones(user="agent", auto_answer=True, audio_source=agent_tone)
        self.legs: dict[str, Call] = {}
        self.outcome: list[str] = []  # Bridge.run()'s answer ("a"/"b": who ended first) or "cancelled"
        self.endpoint: SipEndpoint | None = None

    async def handler(self, call: Call) -> None:
        assert self.endpoint is not None
        self.legs["caller"] = call
        agent = await self.endpoint.dial(self.agent.sip_uri, destination=(LOOPBACK, self.agent.sip_port))
        self.legs["agent"] = agent
        try:
            self.outcome.append(await Bridge(call, agent).run())
        except asyncio.CancelledError:
            self.outcome.append("cancelled")
            raise

    async def connect(self, make_endpoint: EndpointFactory) -> str:
        """Place the call; returns the agent leg's Call-ID once both phones are talking."""
        self.endpoint = await make_endpoint(self.handler)
        await asyncio.to_thread(self.caller.dial, endpoint_uri(self.endpoint))
        await wait_event(self.caller, "CALL_ESTABLISHED")
        return str((await wait_event(self.agent, "CALL_ESTABLISHED"))["id"])

    async def settled(self, timeout: float = 3.0) -> None:
        """Until the bridge has finished and both legs are down (or the timeout)."""
        for _ in range(int(timeout * 10)):
            if self.outcome and all(leg.ended for leg in self.legs.values()):
                return
            await asyncio.sleep(0.1)

    def assert_heard_each_other(self) -> None:
        agent_freq, agent_seconds = voiced_tone(self.agent.recording_path)
        caller_freq, caller_seconds = voiced_tone(self.caller.recording_path)
        assert agent_freq == pytest.approx(660.0, abs=15), f"agent heard {agent_freq} Hz, not the caller"
        assert caller_freq == pytest.approx(440.0, abs=15), f"caller heard {caller_freq} Hz, not the agent"
        assert agent_seconds > 3.0 and caller_seconds > 3.0, (agent_seconds, caller_seconds)


async def test_bridge_relays_audio_both_ways_until_the_agent_hangs_up(
    tmp_path: Path, baresip_phone: Callable[..., BaresipPhone], make_endpoint: EndpointFactory
) -> None:
    call = BridgedCall(tmp_path, baresip_phone)
    await call.connect(make_endpoint)
    await asyncio.sleep(4.0)
    await asyncio.to_thread(call.agent.hangup)
    await wait_event(call.agent, "CALL_CLOSED", timeout=5)
    await wait_event(call.caller, "CALL_CLOSED", timeout=5)  # the bridge hung the caller up
    await call.settled()

    assert call.outcome == ["b"], call.outcome
    assert call.legs["agent"].end_reason == "remote_bye"
    assert call.legs["caller"].end_reason == "bridge_ended"
    assert call.endpoint is not None and not call.endpoint.calls
    call.assert_heard_each_other()


async def test_bridge_hangs_up_the_agent_when_the_caller_hangs_up(
    tmp_path: Path, baresip_phone: Callable[..., BaresipPhone], make_endpoint: EndpointFactory
) -> None:
    call = BridgedCall(tmp_path, baresip_phone)
    agent_call_id = await call.connect(make_endpoint)
    await asyncio.sleep(4.0)
    await asyncio.to_thread(call.caller.hangup)
    await wait_event(call.caller, "CALL_CLOSED", timeout=5)
    await call.settled()

    # how the bridge finished (returned "a", or was cancelled with the handler) is the fix's choice
    assert call.legs["agent"].ended, f"the agent leg is still up: {call.legs['agent']}; bridge {call.outcome}"
    closed = await wait_event(call.agent, "CALL_CLOSED", timeout=5)
    assert closed["id"] == agent_call_id
    assert call.legs["caller"].end_reason == "caller_bye"
    assert call.legs["agent"].end_reason == "bridge_ended"
    assert call.endpoint is not None and not call.endpoint.calls
    call.assert_heard_each_other()


# --- b. REFER -------------------------------------------------------------------------------------------


async def test_refer_to_a_sipp_caller_reports_success(
    tmp_path: Path, make_endpoint: EndpointFactory, sipp_bin: str
) -> None:
    agent_uri = f"sip:agent@{LOOPBACK}:{free_udp_port()}"  # the sipp caller only reports it, never dials it
    statuses: list[int] = []

    async def handler(call: Call) -> None:
        statuses.append(await call.refer(agent_uri))

    endpoint = await make_endpoint(handler)
    result = await asyncio.to_thread(
        run_sipp, "uac_accepts_refer", f"{LOOPBACK}:{endpoint.port}", workdir=tmp_path / "sipp", timeout=20
    )
    assert result.ok, result.describe()
    assert statuses == [200]
    refers = re.findall(r"^REFER sip:.*?\r?\n\r?\n", result.message_log, re.DOTALL | re.MULTILINE)
    refer_to = [re.findall(r"^Refer-To:\s*(.*?)\r?$", m, re.MULTILINE | re.IGNORECASE) for m in refers]
    assert refer_to == [[f"<{agent_uri}>"]], f"one REFER to the agent expected:\n{result.message_log}"


async def test_baresip_follows_a_refer_to_the_agent(
    tmp_path: Path, baresip_phone: Callable[..., BaresipPhone], make_endpoint: EndpointFactory
) -> None:
    caller = baresip_phone(user="caller", audio_source=tone_wav(tmp_path / "660.wav", 660.0, 10.0))
    agent = baresip_phone(user="agent", auto_answer=True)
    statuses: list[int] = []

    async def handler(call: Call) -> None:
        statuses.append(await call.refer(agent.sip_uri, timeout=15))

    endpoint = await make_endpoint(handler)
    await asyncio.to_thread(caller.dial, endpoint_uri(endpoint))
    first_leg = (await wait_event(caller, "CALL_ESTABLISHED"))["id"]
    transfer = await wait_event(caller, "TRANSFER", timeout=10)  # baresip got our REFER ...
    assert transfer["id"] == first_leg and transfer["param"] == f"<{agent.sip_uri}>", transfer
    transferred = await wait_event(agent, "CALL_ESTABLISHED", timeout=15)  # ... and dialled the agent
    assert transferred["id"] != first_leg, transferred
    assert transferred["peeruri"] == f"sip:{caller.user}@{LOOPBACK}", transferred  # the caller's AOR
    released = await wait_event(caller, "CALL_CLOSED", timeout=10)  # then we released the first leg
    assert released["id"] == first_leg, released
    assert statuses == [200]
    assert not endpoint.calls
    await asyncio.sleep(1.5)
    await asyncio.to_thread(agent.hangup)
    await wait_event(agent, "CALL_CLOSED", timeout=5)
    agent_freq, agent_seconds = voiced_tone(agent.recording_path)
    assert agent_freq == pytest.approx(660.0, abs=15) and agent_seconds > 0.5, (agent_freq, agent_seconds)


# --- c. outbound dial failure ----------------------------------------------------------------------------


async def test_dialing_a_busy_peer_raises_call_failed_486(
    sipp_uas: Callable[..., SippProcess], make_endpoint: EndpointFactory
) -> None:
    busy = sipp_uas("t_uas_busy", timeout=30)
    endpoint = await make_endpoint(None)
    with pytest.raises(CallFailed) as failure:
        await endpoint.dial(busy.sip_uri("agent"), destination=(LOOPBACK, busy.port), timeout=10)
    assert failure.value.status == 486
    result = await asyncio.to_thread(busy.wait, 15)  # passes only once our ACK for the 486 arrived
    assert result.ok and result.successful == 1, result.describe()
    assert not endpoint.calls
