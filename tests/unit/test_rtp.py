from __future__ import annotations

import struct

import pytest

from telephony.rtp import RtpPacket, RtpParseError, RtpSender, is_rtcp, parse_rtp


def header(
    *,
    version: int = 2,
    padding: bool = False,
    extension: bool = False,
    csrc_count: int = 0,
    marker: bool = False,
    pt: int = 0,
    seq: int = 1,
    ts: int = 2,
    ssrc: int = 3,
) -> bytes:
    b0 = version << 6 | padding << 5 | extension << 4 | csrc_count
    return struct.pack("!BBHII", b0, marker << 7 | pt, seq, ts, ssrc)


def test_parse_plain_packet_from_wire_bytes() -> None:
    # A PCMU packet as captured: V=2, M=1, PT=0, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304.
    data = bytes.fromhex("80801234deadbeef01020304") + b"\xff" * 160
    pkt = parse_rtp(data)
    assert pkt == RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, b"\xff" * 160, marker=True)
    assert pkt.to_bytes() == data


def test_round_trip_extreme_values() -> None:
    pkt = RtpPacket(127, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, b"", marker=False)
    assert parse_rtp(pkt.to_bytes()) == pkt
    assert len(pkt.to_bytes()) == 12


def test_csrc_extension_and_padding_are_skipped() -> None:
    csrcs = struct.pack("!II", 11, 22)
    ext = struct.pack("!HH", 0xBEDE, 2) + b"\x10\xaa\x00\x00" + b"\x21\xbb\xcc\x00"
    payload = b"audio"
    pad = b"\x00\x00\x03"
    data = header(padding=True, extension=True, csrc_count=2, pt=8, seq=7) + csrcs + ext + payload + pad
    pkt = parse_rtp(data)
    assert (pkt.payload_type, pkt.sequence, pkt.payload) == (8, 7, payload)


def test_accepts_memoryview_and_bytearray() -> None:
    data = header(pt=101) + b"\x05\x0a\x00\xa0"
    assert parse_rtp(memoryview(data)).payload == b"\x05\x0a\x00\xa0"
    assert parse_rtp(bytearray(data)).payload_type == 101


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (header()[:11], "short"),
        (header(version=1) + b"x", "version"),
        (header(version=0) + b"x", "version"),
        (header(csrc_count=3) + b"\x00" * 8, "CSRC"),
        (header(extension=True) + b"\xbe\xde", "extension"),
        (header(extension=True) + struct.pack("!HH", 0xBEDE, 5) + b"\x00" * 16, "extension"),
        (header(padding=True) + b"abc\x00", "padding"),
        (header(padding=True) + b"abc\x09", "padding"),
    ],
)
def test_malformed_packets_raise(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        parse_rtp(data)
    assert issubclass(RtpParseError, ValueError)


def test_padding_may_consume_the_whole_payload() -> None:
    assert parse_rtp(header(padding=True) + b"\x00\x00\x00\x04").payload == b""


def test_sender_sequence_and_timestamp() -> None:
    sender = RtpSender(ssrc=0xCAFEBABE, sequence=0xFFFE, timestamp=0xFFFFFF00)
    packets = []
    for i in range(4):
        packets.append(parse_rtp(sender.build(bytes([i]) * 160, 0, marker=i == 0)))
        sender.advance()
    assert [p.sequence for p in packets] == [0xFFFE, 0xFFFF, 0, 1]
    assert [p.timestamp for p in packets] == [0xFFFFFF00, 0xFFFFFFA0, 0x00000040, 0x000000E0]
    assert [p.marker for p in packets] == [True, False, False, False]
    assert {p.ssrc for p in packets} == {0xCAFEBABE}
    assert packets[2].payload == b"\x02" * 160
    assert (sender.packets_sent, sender.octets_sent) == (4, 640)


def test_sender_explicit_timestamp_does_not_move_the_clock() -> None:
    sender = RtpSender(timestamp=1000)
    event_ts = sender.timestamp
    sender.advance(160)
    pkt = parse_rtp(sender.build(b"\x01\x0a\x00\xa0", 101, timestamp=event_ts, marker=True))
    assert (pkt.timestamp, pkt.payload_type, pkt.marker) == (1000, 101, True)
    assert sender.timestamp == 1160
    sender.advance(0)
    assert parse_rtp(sender.build(b"", 0)).timestamp == 1160


def test_advance_keeps_time_without_sending() -> None:
    sender = RtpSender(sequence=10, timestamp=0)
    for _ in range(50):  # one second of ticks, nothing sent (e.g. on hold)
        sender.advance()
    pkt = parse_rtp(sender.build(b"", 0))
    assert (pkt.sequence, pkt.timestamp) == (10, 8000)


def test_sender_origins_are_random() -> None:
    senders = [RtpSender() for _ in range(8)]
    assert len({s.ssrc for s in senders}) > 1
    assert len({(s.sequence, s.timestamp) for s in senders}) > 1
    for s in senders:
        assert 0 <= s.ssrc < 2**32 and 0 <= s.sequence < 2**16 and 0 <= s.timestamp < 2**32


def test_is_rtcp() -> None:
    receiver_report = bytes.fromhex("81c90007") + b"\x00" * 28
    for pt in range(200, 205):
        assert is_rtcp(bytes([0x80, pt, 0, 1]) + b"\x00" * 4)
    assert is_rtcp(receiver_report)
    assert is_rtcp(bytes([0x81, 205, 0, 2]) + b"\x00" * 8)  # RTPFB (NACK)
    for pt in (0, 8, 101, 13, 127):
        for marker in (0, 0x80):
            assert not is_rtcp(header(pt=pt, marker=bool(marker)) + b"x")
    assert not is_rtcp(b"\x80")
    assert not is_rtcp(bytes([0x00, 200, 0, 0]))  # not version 2 (e.g. a STUN message)
