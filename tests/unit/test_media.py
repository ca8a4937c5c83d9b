"""The media path on loopback sockets: one clock, playout, DTMF both ways, symmetric RTP, port accounting."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from telephony.dtmf import DtmfSender
from telephony.g711 import PCMU
from telephony.media import MediaClock, PortAllocator, PortsExhausted, RtpStream
from telephony.rtp import RtpSender, parse_rtp


@pytest.fixture
def ports() -> PortAllocator:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1] // 2 * 2
    base = min(max(base, 40_000), 60_000)
    return PortAllocator(base, base + 40)


def test_allocator_hands_out_even_ports_and_takes_them_back(ports: PortAllocator) -> None:
    sockets = [ports.open_socket("127.0.0.1") for _ in range(5)]
    numbers = [s.getsockname()[1] for s in sockets]
    assert all(p % 2 == 0 for p in numbers) and len(set(numbers)) == 5
    assert ports.in_use == 5
    for sock, port in zip(sockets, numbers, strict=True):
        sock.close()
        ports.release(port)
    assert ports.in_use == 0


def test_allocator_reports_exhaustion() -> None:
    allocator = PortAllocator(50_000, 50_003)
    held = [allocator.open_socket("127.0.0.1"), allocator.open_socket("127.0.0.1")]
    with pytest.raises(PortsExhausted):
        allocator.open_socket("127.0.0.1")
    for sock in held:
        sock.close()


async def test_stream_plays_at_20ms_receives_dtmf_and_latches(ports: PortAllocator) -> None:
    loop = asyncio.get_running_loop()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    clock = MediaClock()
    stream = RtpStream(ports, "127.0.0.1")
    await stream.open()
    # the SDP says a port nobody listens on; the peer's first packet must redirect our media to it
    stream.configure(PCMU, ("127.0.0.1", 9), telephone_event_pt=101, direction="sendrecv")
    digits: list[str] = []
    stream.on_dtmf = digits.append
    frames: list[np.ndarray | None] = []
    stream.consumers.append(frames.append)
    clock.add(stream)
    clock.start()
    try:
        sender = RtpSender()
        tone = (8000 * np.sin(np.arange(160) * 2 * np.pi / 8)).astype(np.int16)
        for _ in range(3):
            peer.sendto(sender.build(PCMU.encode(tone), 0), ("127.0.0.1", stream.local_port))
            sender.advance()
        for payload, marker in DtmfSender().payloads("7", 60):
            peer.sendto(sender.build(payload, 101, marker=marker), ("127.0.0.1", stream.local_port))
        done = loop.create_future()
        stream.play(np.zeros(8000, dtype=np.int16), lambda completed: done.set_result(completed))
        arrivals: list[float] = []
        while len(arrivals) < 30:
            data = await loop.sock_recv(peer, 2048)
            packet = parse_rtp(data)
            assert packet.payload_type == 0
            arrivals.append(loop.time())
        gaps = np.diff(arrivals) * 1000
        assert 18.0 < gaps.mean() < 22.0
        assert digits == ["7"]
        assert any(frame is not None for frame in frames)
        assert await asyncio.wait_for(done, 2.0) is True  # 1 s of audio finished playing
    finally:
        clock.stop()
        stream.close()
        peer.close()
    assert ports.in_use == 0


async def test_stop_playback_reports_interrupted(ports: PortAllocator) -> None:
    stream = RtpStream(ports, "127.0.0.1")
    await stream.open()
    stream.configure(PCMU, ("127.0.0.1", 9), telephone_event_pt=None, direction="sendrecv")
    results: list[bool] = []
    stream.play(np.zeros(4000, dtype=np.int16), results.append)
    stream.play(np.zeros(4000, dtype=np.int16), results.append)
    stream.tick()
    stream.stop_playback()
    assert results == [False, False] and not stream.playing
    stream.close()


async def test_on_hold_we_do_not_send(ports: PortAllocator) -> None:
    stream = RtpStream(ports, "127.0.0.1")
    await stream.open()
    stream.configure(PCMU, ("127.0.0.1", 9), telephone_event_pt=None, direction="recvonly")
    for _ in range(5):
        stream.tick()
    assert stream.packets_sent == 0
    stream.configure(PCMU, ("127.0.0.1", 9), telephone_event_pt=None, direction="sendrecv")
    stream.tick()
    assert stream.packets_sent == 1
    stream.close()


async def test_a_reply_to_an_inbound_frame_goes_out_in_the_same_tick(ports: PortAllocator) -> None:
    """What a frame makes us say (endpoint confirmed -> flow -> prompt queued) takes a few event-loop turns;
    the clock sends SEND_DELAY after it receives, so that reply leaves on this tick, not 20 ms later."""
    loop = asyncio.get_running_loop()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    clock = MediaClock()
    stream = RtpStream(ports, "127.0.0.1")
    await stream.open()
    stream.configure(PCMU, peer.getsockname(), telephone_event_pt=None, direction="sendrecv")
    reply = (8000 * np.sin(np.arange(1600) * 2 * np.pi / 8)).astype(np.int16)
    sent_before_reply: list[int] = []
    tasks: list[asyncio.Future[None]] = []

    async def answer() -> None:
        for _ in range(5):  # the listener -> flow runner -> say -> play hops
            await asyncio.sleep(0)
        stream.play(reply)

    def consumer(frame: np.ndarray | None) -> None:
        if frame is not None and not sent_before_reply:
            sent_before_reply.append(stream.packets_sent)
            tasks.append(asyncio.ensure_future(answer()))

    stream.consumers.append(consumer)
    clock.add(stream)
    clock.start()
    try:
        sender = RtpSender()
        for _ in range(4):
            peer.sendto(sender.build(PCMU.encode(np.zeros(160, np.int16)), 0), ("127.0.0.1", stream.local_port))
            sender.advance()
        payloads: list[bytes] = []
        while not (sent_before_reply and len(payloads) > sent_before_reply[0] + 1):
            assert len(payloads) < 200, "the inbound frames never reached the consumer"
            payloads.append(parse_rtp(await loop.sock_recv(peer, 2048)).payload)
        first_audible = next(i for i, p in enumerate(payloads) if p != b"\xff" * 160)
        # packets 0..n-1 went out before the frame arrived; packet n is the send half of that very tick
        assert first_audible == sent_before_reply[0]
    finally:
        clock.stop()
        stream.close()
        peer.close()
