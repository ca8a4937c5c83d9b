"""The media path: one clock for all calls, one RTP stream per call leg, and the RTP port pool.

One asyncio timer drives every stream: each 20 ms tick it hands each stream's next inbound frame (from its
jitter buffer) to the stream's consumers, and `SEND_DELAY` later sends each stream's next outbound frame.
Nothing per call sleeps. Prompts are encoded once when queued, so a tick only slices bytes: no numpy work per
outbound packet.

Why receive and send are apart: what the caller's audio makes us do is decided in the receive half (the
endpointer confirms the end of an utterance, the flow picks its reply, the reply is queued) and takes a few
event-loop turns, ~1-2 ms measured. When both halves ran back to back, the frame just decided on had always
missed its tick's send, so every reply (and bridged frame) went out on the next tick: 20 ms later. With the
send half 5 ms after the receive half, a reply queued in those 5 ms goes out in the same tick; the sends still
leave every 20 ms on the dot, only 5 ms later in each tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from telephony.dtmf import DtmfReceiver, DtmfSender
from telephony.g711 import FRAME_SAMPLES, G711Codec
from telephony.jitter import JitterBuffer
from telephony.rtp import RtpParseError, RtpSender, is_rtcp, parse_rtp

log = logging.getLogger(__name__)

TICK = 0.020
SEND_DELAY = 0.005  # from the receive half of a tick to its send half (see the module docstring)
FRAME_BYTES = FRAME_SAMPLES  # G.711: one byte per sample

Address = tuple[str, int]
FrameConsumer = Callable[[np.ndarray | None], None]


class PortsExhausted(RuntimeError):
    pass


class PortAllocator:
    """Even RTP ports from a configured range (RFC 3550 §11), handed out round-robin and always returned."""

    def __init__(self, first: int, last: int) -> None:
        if first > last or first < 1024 or last > 65535:
            raise ValueError(f"invalid RTP port range {first}-{last}")
        self._ports = deque(p for p in range(first + (first % 2), last + 1, 2))
        self._in_use: set[int] = set()

    def open_socket(self, host: str) -> socket.socket:
        """Bind a UDP socket to the next free port; ports taken by other processes are skipped."""
        for _ in range(len(self._ports)):
            port = self._ports.popleft()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                self._ports.append(port)
                continue
            sock.setblocking(False)
            self._in_use.add(port)
            return sock
        raise PortsExhausted("no free RTP port in the configured range")

    def release(self, port: int) -> None:
        if port in self._in_use:
            self._in_use.remove(port)
            self._ports.append(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)


class RtpStream(asyncio.DatagramProtocol):
    """One call leg's RTP: playout queue + DTMF out, jitter buffer + DTMF detection in."""

    def __init__(self, allocator: PortAllocator, host: str) -> None:
        self._allocator = allocator
        self.sock = allocator.open_socket(host)
        self.local_port: int = self.sock.getsockname()[1]
        self.transport: asyncio.DatagramTransport | None = None
        self.codec: G711Codec | None = None
        self.telephone_event_pt: int | None = None
        self.remote: Address | None = None
        self.sending = False
        self.receiving = True
        self.sender = RtpSender()
        self.jitter = JitterBuffer()
        self.dtmf_in = DtmfReceiver()
        self._dtmf_sender = DtmfSender()
        self._latched = False
        # outbound playout: a queue of encoded prompts; (data, on_done)
        self._playout: deque[tuple[bytes, Callable[[bool], None] | None]] = deque()
        self._play_offset = 0
        self._dtmf_out: deque[tuple[bytes, bool]] = deque()
        self._dtmf_timestamp: int | None = None
        self.consumers: list[FrameConsumer] = []
        # what we send, decoded (None for a tick that sent DTMF or nothing), e.g. for a recording of both sides
        self.sent_consumers: list[FrameConsumer] = []
        self.on_dtmf: Callable[[str], None] | None = None
        self.last_received = time.monotonic()
        self.packets_sent = 0
        self.packets_received = 0
        self.closed = False

    # ---- setup ----------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=self.sock)

    def configure(
        self, codec: G711Codec, remote: Address, telephone_event_pt: int | None, direction: str
    ) -> None:
        """Apply an offer/answer result. `direction` is ours: sendrecv, sendonly, recvonly or inactive."""
        self.codec = codec
        self.telephone_event_pt = telephone_event_pt
        if not self._latched:
            self.remote = remote  # until the peer's first packet tells us its real address
        self.sending = direction in ("sendrecv", "sendonly") and remote[0] != "0.0.0.0"
        self.receiving = direction in ("sendrecv", "recvonly")
        self._silence = codec.silence

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for _, on_done in self._playout:
            if on_done:
                on_done(False)
        self._playout.clear()
        if self.transport is not None:
            self.transport.close()
        else:
            self.sock.close()
        self._allocator.release(self.local_port)

    # ---- asyncio protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if is_rtcp(data):
            return
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            return
        self.last_received = time.monotonic()
        self.packets_received += 1
        if addr != self.remote and (not self._latched or packet.ssrc != self._latched_ssrc):
            self.remote = addr  # symmetric RTP: send to where the peer's media really comes from
        self._latched = True
        self._latched_ssrc = packet.ssrc
        if packet.payload_type == self.telephone_event_pt:
            digit = self.dtmf_in.feed(packet)
            if digit is not None and self.on_dtmf is not None:
                self.on_dtmf(digit)
            return
        if self.codec is not None and packet.payload_type == self.codec.payload_type and self.receiving:
            self.jitter.push(packet.sequence, packet.timestamp, packet.ssrc, packet.payload)

    _latched_ssrc: int | None = None

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error on port %s: %s", self.local_port, exc)

    # ---- outbound API (called from the event loop) --------------------------------------
    def play(self, pcm: np.ndarray, on_done: Callable[[bool], None] | None = None) -> None:
        """Queue 8 kHz int16 PCM for playout; on_done(True) when fully sent, on_done(False) if stopped."""
        assert self.codec is not None, "stream not negotiated"
        self._playout.append((self.codec.encode(pcm), on_done))

    def play_encoded(self, data: bytes, on_done: Callable[[bool], None] | None = None) -> None:
        self._playout.append((data, on_done))

    def stop_playback(self) -> None:
        self._play_offset = 0
        while self._playout:
            _, on_done = self._playout.popleft()
            if on_done:
                on_done(False)

    @property
    def playing(self) -> bool:
        return bool(self._playout)

    @property
    def queued_frames(self) -> int:
        return len(self._playout)

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        self._dtmf_out.extend(self._dtmf_sender.payloads(digit, duration_ms))

    # ---- the clock calls these every 20 ms -------------------------------------------
    def tick(self) -> None:
        """A whole tick at once: receive, then send (tests and tools; the clock runs the halves apart)."""
        self.receive()
        self.send()

    def receive(self) -> None:
        """Hand the next inbound frame (None for a gap) to every consumer."""
        if self.closed:
            return
        if self.consumers:
            payload = self.jitter.pop()
            frame = self.codec.decode(payload) if payload is not None and self.codec is not None else None
            for consumer in self.consumers:
                consumer(frame)
        elif self.jitter.playing:
            self.jitter.pop()

    def send(self) -> None:
        """Send the next outbound packet: DTMF, else the playout queue, else silence."""
        if self.closed:
            return
        sender = self.sender
        audio: bytes | None = None
        if self.sending and self.remote is not None and self.transport is not None and self.codec is not None:
            if self._dtmf_out and self.telephone_event_pt is not None:
                payload, marker = self._dtmf_out.popleft()
                if self._dtmf_timestamp is None:
                    self._dtmf_timestamp = sender.timestamp
                packet = sender.build(
                    payload, self.telephone_event_pt, marker=marker, timestamp=self._dtmf_timestamp
                )
                if not self._dtmf_out:
                    self._dtmf_timestamp = None
            else:
                audio = self._next_audio()
                packet = sender.build(audio, self.codec.payload_type)
            self.transport.sendto(packet, self.remote)
            self.packets_sent += 1
        elif self._playout:
            self._next_audio()  # on hold: the prompt still advances in time
        sender.advance(FRAME_SAMPLES)
        if self.sent_consumers:
            frame = self.codec.decode(audio) if audio is not None and self.codec is not None else None
            for consumer in self.sent_consumers:
                consumer(frame)

    def _next_audio(self) -> bytes:
        if not self._playout:
            return self._silence
        data, on_done = self._playout[0]
        start = self._play_offset
        chunk = data[start : start + FRAME_BYTES]
        self._play_offset = start + FRAME_BYTES
        if self._play_offset >= len(data):
            self._playout.popleft()
            self._play_offset = 0
            if on_done:
                on_done(True)
        if len(chunk) < FRAME_BYTES:
            chunk = chunk + self._silence[len(chunk) :]
        return chunk

    _silence: bytes = b"\xff" * FRAME_BYTES


class MediaClock:
    """The single 20 ms tick for every stream, scheduled against the monotonic clock so it never drifts."""

    def __init__(self, send_delay: float = SEND_DELAY) -> None:
        if not 0 <= send_delay < TICK:
            raise ValueError(f"send_delay must be within one tick, not {send_delay}")
        self.send_delay = send_delay
        self.streams: list[RtpStream] = []
        self._handle: asyncio.TimerHandle | None = None
        self._start = 0.0
        self._ticks = 0
        self.late_ticks = 0
        self.housekeeping: list[Callable[[], None]] = []  # run once per second

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        self._ticks = 0
        self._handle = loop.call_at(self._start + TICK, self._receive)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def add(self, stream: RtpStream) -> None:
        self.streams.append(stream)

    def remove(self, stream: RtpStream) -> None:
        with contextlib.suppress(ValueError):
            self.streams.remove(stream)

    def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        self._ticks += 1
        for stream in self.streams:
            try:
                stream.receive()
            except Exception:
                log.exception("media tick (receive) failed for RTP port %s", stream.local_port)
        # Not call_soon: the work the frames just caused (a reply being queued) needs a few loop turns first.
        self._handle = loop.call_at(self._start + self._ticks * TICK + self.send_delay, self._send)

    def _send(self) -> None:
        loop = asyncio.get_running_loop()
        for stream in self.streams:
            try:
                stream.send()
            except Exception:
                log.exception("media tick (send) failed for RTP port %s", stream.local_port)
        if self._ticks % 50 == 0:
            for job in self.housekeeping:
                try:
                    job()
                except Exception:
                    log.exception("media housekeeping failed")
        deadline = self._start + (self._ticks + 1) * TICK
        now = loop.time()
        if now > deadline + 5 * TICK:
            # far behind (machine stalled): resynchronise instead of bursting packets to catch up
            self.late_ticks += 1
            self._start = now - self._ticks * TICK
            deadline = now + TICK
        self._handle = loop.call_at(deadline, self._receive)
