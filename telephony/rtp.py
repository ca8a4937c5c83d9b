"""RTP packets (RFC 3550): parsing, building and one outbound stream's counters.

This runs for every packet of every call, so parsing is a single ``unpack_from`` plus slicing and
building is one precompiled ``pack`` plus one concatenation; no per-packet objects beyond the result.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_SIZE = 12

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class RtpParseError(ValueError):
    """A datagram on the media port that is not a well-formed RTP packet."""


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def to_bytes(self) -> bytes:
        """Plain 12-byte header + payload; CSRCs and extensions of a parsed packet are not kept."""
        return (
            _HEADER.pack(
                0x80,
                (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                self.sequence & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            )
            + self.payload
        )


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram; raises RtpParseError rather than guessing at a damaged one."""
    size = len(data)
    if size < HEADER_SIZE:
        raise RtpParseError(f"packet too short: {size} bytes")
    b0, b1, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise RtpParseError(f"RTP version {b0 >> 6}, expected 2")
    offset = HEADER_SIZE + 4 * (b0 & 0x0F)
    if offset > size:
        raise RtpParseError("CSRC list runs past the end of the packet")
    if b0 & 0x10:
        if offset + 4 > size:
            raise RtpParseError("header extension runs past the end of the packet")
        _profile, words = _EXT_HEADER.unpack_from(data, offset)
        offset += 4 + 4 * words
        if offset > size:
            raise RtpParseError("header extension runs past the end of the packet")
    end = size
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > size:
            raise RtpParseError(f"bad padding length {padding}")
        end -= padding
    return RtpPacket(b1 & 0x7F, sequence, timestamp, ssrc, bytes(data[offset:end]), bool(b1 & 0x80))


def is_rtcp(data: bytes) -> bool:
    """True for RTCP multiplexed on the RTP port (RFC 5761 §4).

    RTCP packet types 192-223 (SR=200 .. APP=204, feedback, XR) sit where RTP payload types 64-95
    with or without the marker bit would, and no sane RTP stream uses those payload types.
    """
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 64 <= (data[1] & 0x7F) <= 95


class RtpSender:
    """State of one outbound RTP stream.

    The random SSRC, sequence and timestamp origins are what RFC 3550 asks for to make
    known-plaintext attacks and SSRC collisions unlikely. The timestamp follows the media clock
    (``advance`` every tick, sent or not) so silence gaps keep real time on the receiver side.
    """

    __slots__ = ("octets_sent", "packets_sent", "sequence", "ssrc", "timestamp")

    def __init__(
        self, ssrc: int | None = None, sequence: int | None = None, timestamp: int | None = None
    ) -> None:
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc & 0xFFFFFFFF
        self.sequence = secrets.randbits(16) if sequence is None else sequence & 0xFFFF
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self.packets_sent = 0  # for RTCP sender reports
        self.octets_sent = 0

    def build(
        self, payload: bytes, payload_type: int, *, marker: bool = False, timestamp: int | None = None
    ) -> bytes:
        """The next packet of this stream; consumes one sequence number."""
        seq = self.sequence
        packet = (
            _HEADER.pack(
                0x80,
                (0x80 | payload_type) if marker else payload_type,
                seq,
                self.timestamp if timestamp is None else timestamp & 0xFFFFFFFF,
                self.ssrc,
            )
            + payload
        )
        self.sequence = (seq + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return packet

    def advance(self, samples: int = 160) -> None:
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
