"""Transfer primitives — bridging, REFER, outbound dial — run in-process against real peers.

Our SipEndpoint runs inside the test's event loop, so a test can script what the server does with a call
(dial an agent, bridge, REFER) without a flow engine. Everything that blocks (baresip's ctrl_tcp waits,
sipp runs) goes through asyncio.to_thread: a blocked loop would stop our media clock and SIP timers and
the test would measure its own stall instead of the stack.
"""

from __future__ import annotations

import asyncio
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


async def test_bridge_relays_audio_both_ways_and_hangs_up_the_other_leg(
    tmp_path: Path, make_endpoint: EndpointFactory, baresip_phone: Callable[..., BaresipPhone]
) -> None:
    caller = baresip_phone(user="caller", audio_source=tone_wav(tmp_path / "660.wav", 660.0, 10.0))
    agent = baresip_phone(
        user="agent", auto_answer=True, audio_source=tone_wav(tmp_path / "440.wav", 440.0, 10.0)
    )
    legs: dict[str, Call] = {}
    bridge_result: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(call: Call) -> None:
        legs["caller"] = call
        agent_leg = await endpoint.dial(agent.sip_uri, destination=(LOOPBACK, agent.sip_port))
        legs["agent"] = agent_leg
        bridge_result.set_result(await Bridge(call, agent_leg).run())

    endpoint = await make_endpoint(handler)
    await asyncio.to_thread(caller.dial, endpoint_uri(endpoint))
    await wait_event(caller, "CALL_ESTABLISHED")
    agent_call_id = (await wait_event(agent, "CALL_ESTABLISHED"))["id"]
    await asyncio.sleep(4.0)
    await asyncio.to_thread(caller.hangup)
    await wait_event(caller, "CALL_CLOSED", timeout=5)
    closed = await wait_event(agent, "CALL_CLOSED", timeout=5)  # the bridge hung the agent up

    assert closed["id"] == agent_call_id
    assert await asyncio.wait_for(bridge_result, 5) == "a"  # the caller's leg ended first
    assert legs["caller"].end_reason == "caller_bye"
    assert legs["agent"].end_reason == "bridge_ended"
    assert not endpoint.calls
    agent_freq, agent_seconds = voiced_tone(agent.recording_path)
    caller_freq, caller_seconds = voiced_tone(caller.recording_path)
    assert agent_freq == pytest.approx(660.0, abs=15), "the agent did not hear the caller"
    assert caller_freq == pytest.approx(440.0, abs=15), "the caller did not hear the agent"
    assert agent_seconds > 3.0 and caller_seconds > 3.0, (agent_seconds, caller_seconds)


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
    refers = [block for block in result.message_log.split("\n\n") if "REFER sip:" in block]
    assert refers, result.message_log
    assert f"Refer-To: <{agent_uri}>" in refers[0], refers[0]


async def test_baresip_follows_a_refer_to_the_agent(
    tmp_path: Path, make_endpoint: EndpointFactory, baresip_phone: Callable[..., BaresipPhone]
) -> None:
    caller = baresip_phone(user="caller", audio_source=tone_wav(tmp_path / "660.wav", 660.0, 10.0))
    agent = baresip_phone(user="agent", auto_answer=True)
    statuses: list[int] = []

    async def handler(call: Call) -> None:
        statuses.append(await call.refer(agent.sip_uri, timeout=15))

    endpoint = await make_endpoint(handler)
    await asyncio.to_thread(caller.dial, endpoint_uri(endpoint))
    first_leg = (await wait_event(caller, "CALL_ESTABLISHED"))["id"]
    transferred = await wait_event(agent, "CALL_ESTABLISHED", timeout=15)
    assert transferred["id"] != first_leg  # the caller placed a new call to the agent
    await asyncio.to_thread(caller.wait_for_event, "CALL_CLOSED", 10)  # the first leg is released
    assert statuses == [200]
    assert not endpoint.calls
    await asyncio.sleep(1.5)
    await asyncio.to_thread(agent.hangup)
    await wait_event(agent, "CALL_CLOSED", timeout=5)
    agent_freq, agent_seconds = voiced_tone(agent.recording_path)
    assert agent_freq == pytest.approx(660.0, abs=15) and agent_seconds > 0.5, (agent_freq, agent_seconds)


# --- c. outbound dial failure ----------------------------------------------------------------------------


async def test_dialing_a_busy_peer_raises_call_failed_486(
    make_endpoint: EndpointFactory, sipp_uas: Callable[..., SippProcess]
) -> None:
    busy = sipp_uas("t_uas_busy", timeout=30)
    endpoint = await make_endpoint(None)
    with pytest.raises(CallFailed) as failure:
        await endpoint.dial(busy.sip_uri("agent"), destination=(LOOPBACK, busy.port), timeout=10)
    assert failure.value.status == 486
    result = await asyncio.to_thread(busy.wait, 15)  # passes only once our ACK for the 486 arrived
    assert result.ok and result.successful == 1, result.describe()
    assert not endpoint.calls
