"""RFC 4733 telephone-event: DTMF digits carried as RTP events.

A sender repeats every event many times (progress updates, then the end packet three times), and
any of those may be lost, duplicated or reordered. The receiver therefore keys events on
(SSRC, RTP timestamp), which is constant for all packets of one event, and reports a digit on the
first packet it sees of an event, whichever that is.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from telephony.g711 import FRAME_SAMPLES, SAMPLE_RATE
from telephony.rtp import RtpPacket

DIGITS = "0123456789*#ABCD"
_EVENT_CODES = {digit: code for code, digit in enumerate(DIGITS)}
_EVENT = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF
# How many recent events the receiver remembers; a sender cannot have more than a couple in flight.
_REMEMBERED_EVENTS = 32


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """The DTMF key, or None for the non-DTMF events (flash hook, tones) of RFC 4733."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None

    def to_bytes(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    if len(payload) < 4:
        raise ValueError(f"telephone-event payload too short: {len(payload)} bytes")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


class DtmfReceiver:
    """Turns a stream of telephone-event packets into digits, each reported exactly once.

    Memory is bounded: only the last few event keys are remembered, which is enough because all
    packets of an event arrive within a few hundred milliseconds of each other.
    """

    def __init__(self, payload_type: int | None = None) -> None:
        # If given, packets of other payload types are ignored rather than misread as events.
        self.payload_type = payload_type
        self._seen: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._last: tuple[int, int, int] | None = None  # (ssrc, timestamp, event) of the newest event

    def feed(self, packet: RtpPacket) -> str | None:
        if self.payload_type is not None and packet.payload_type != self.payload_type:
            return None
        try:
            event = parse_telephone_event(packet.payload)
        except ValueError:
            return None
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen:
            return None
        self._seen[key] = event.event
        if len(self._seen) > _REMEMBERED_EVENTS:
            self._seen.popitem(last=False)
        last = self._last
        self._last = (packet.ssrc, packet.timestamp, event.event)
        # A press longer than the 16-bit duration field (~8 s) continues as a new segment whose
        # timestamp is the old one plus 0xFFFF (RFC 4733 §2.5.1.3): still the same key press.
        if (
            last is not None
            and last[0] == packet.ssrc
            and last[2] == event.event
            and (last[1] + _MAX_DURATION) & 0xFFFFFFFF == packet.timestamp
        ):
            return None
        return event.digit


class DtmfSender:
    """Builds the payload sequence of one digit, to be sent one per media tick.

    The caller sends them all with one RTP timestamp (the tick the digit started on), per RFC 4733.
    """

    def __init__(self, clock_rate: int = SAMPLE_RATE, frame_samples: int = FRAME_SAMPLES) -> None:
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples

    def payloads(self, digit: str, duration_ms: int = 100, volume: int = 10) -> list[tuple[bytes, bool]]:
        code = _EVENT_CODES.get(digit.upper()) if len(digit) == 1 else None
        if code is None:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        if not 0 <= volume <= 63:
            raise ValueError(f"volume must be 0..63 (-dBm0), got {volume}")
        frame_ms = self.frame_samples * 1000 // self.clock_rate
        frames = max(1, round(duration_ms / frame_ms))
        total = frames * self.frame_samples
        if duration_ms <= 0 or total > _MAX_DURATION:
            raise ValueError(f"duration out of range: {duration_ms} ms")
        out: list[tuple[bytes, bool]] = [
            (_EVENT.pack(code, volume, k * self.frame_samples), k == 1) for k in range(1, frames)
        ]
        end = _EVENT.pack(code, 0x80 | volume, total)
        out.append((end, not out))
        out.extend([(end, False), (end, False)])
        return out
