from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from telephony.dtmf import DIGITS, DtmfReceiver, DtmfSender, TelephoneEvent, parse_telephone_event
from telephony.rtp import RtpPacket, RtpSender, parse_rtp

CAPTURES = Path("/usr/share/sip-tester")
CAPTURE_DIGITS = {**{str(d): str(d) for d in range(10)}, "star": "*", "pound": "#"}

_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_IPPROTO_UDP = 17


def read_udp_payloads(path: Path) -> list[bytes]:
    """UDP payloads of a classic libpcap capture over Ethernet/IPv4 (enough for sipp's files)."""
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError(f"{path}: not a libpcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet")
    payloads = []
    offset = 24
    while offset + 16 <= len(data):
        incl_len = struct.unpack_from(endian + "I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + incl_len]
        offset += 16 + incl_len
        if struct.unpack_from("!H", frame, 12)[0] != _ETHERTYPE_IPV4:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != _IPPROTO_UDP:
            continue
        udp_len = struct.unpack_from("!H", ip, ihl + 4)[0]
        payloads.append(ip[ihl + 8 : ihl + udp_len])
    return payloads


def capture_packets(name: str) -> list[RtpPacket]:
    path = CAPTURES / f"dtmf_2833_{name}.pcap"
    if not path.exists():
        pytest.skip(f"{path} missing (Debian package sip-tester)")
    return [parse_rtp(p) for p in read_udp_payloads(path)]


# -- wire format ------------------------------------------------------------------------------------


def test_parse_and_serialize_event() -> None:
    ev = parse_telephone_event(bytes.fromhex("058a08c0"))
    assert ev == TelephoneEvent(event=5, end=True, volume=10, duration=0x08C0)
    assert ev.digit == "5"
    assert ev.to_bytes() == bytes.fromhex("058a08c0")
    start = TelephoneEvent(11, False, 63, 0)
    assert parse_telephone_event(start.to_bytes()) == start and start.digit == "#"
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash hook is not a DTMF key
    assert [TelephoneEvent(i, False, 0, 0).digit for i in range(16)] == list(DIGITS)


def test_parse_rejects_short_payload() -> None:
    with pytest.raises(ValueError):
        parse_telephone_event(b"\x05\x8a\x08")


# -- real captures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CAPTURE_DIGITS))
def test_sipp_capture_yields_its_digit_once(name: str) -> None:
    packets = capture_packets(name)
    assert len(packets) > 3 and {p.payload_type for p in packets} == {101}
    receiver = DtmfReceiver(payload_type=101)
    digits = [d for p in packets if (d := receiver.feed(p)) is not None]
    assert digits == [CAPTURE_DIGITS[name]]
    assert receiver.feed(packets[-1]) is None  # yet another end retransmission


@pytest.mark.parametrize("name", ["5", "star"])
def test_capture_with_loss_and_reordering(name: str) -> None:
    packets = capture_packets(name)
    rng = random.Random(name)
    for _ in range(50):
        subset = [p for p in packets if rng.random() > 0.5] or [packets[-1]]
        rng.shuffle(subset)
        receiver = DtmfReceiver()
        digits = [d for p in subset + subset if (d := receiver.feed(p)) is not None]
        assert digits == [CAPTURE_DIGITS[name]]


def test_only_end_packets_still_report() -> None:
    packets = [p for p in capture_packets("9") if parse_telephone_event(p.payload).end]
    receiver = DtmfReceiver()
    assert [receiver.feed(p) for p in packets] == ["9", None, None]


# -- synthetic streams ------------------------------------------------------------------------------


def send_digits(sender: RtpSender, digits: str, pt: int = 101, gap_ticks: int = 3) -> list[RtpPacket]:
    """Packets as the media clock would send them: one per tick, timestamp fixed per event."""
    out = []
    dtmf = DtmfSender()
    for digit in digits:
        event_ts = sender.timestamp
        for payload, marker in dtmf.payloads(digit):
            out.append(parse_rtp(sender.build(payload, pt, marker=marker, timestamp=event_ts)))
            sender.advance()
        for _ in range(gap_ticks):
            sender.advance()
    return out


def test_repeated_digit_is_reported_each_time() -> None:
    receiver = DtmfReceiver()
    packets = send_digits(RtpSender(), "1111#")
    assert "".join(d for p in packets if (d := receiver.feed(p))) == "1111#"


def test_sequence_and_timestamp_wraparound() -> None:
    sender = RtpSender(ssrc=1, sequence=0xFFFA, timestamp=0xFFFFFC00)
    packets = send_digits(sender, "0123456789*#ABCD")
    assert any(p.sequence == 0 for p in packets) and any(p.timestamp < 0x1000 for p in packets)
    receiver = DtmfReceiver()
    assert "".join(d for p in packets if (d := receiver.feed(p))) == "0123456789*#ABCD"


def test_same_timestamp_from_another_stream_is_another_event() -> None:
    a = send_digits(RtpSender(ssrc=1, timestamp=5000), "7")
    b = send_digits(RtpSender(ssrc=2, timestamp=5000), "8")
    receiver = DtmfReceiver()
    assert [d for p in a + b if (d := receiver.feed(p))] == ["7", "8"]


def test_long_press_is_one_digit() -> None:
    sender = RtpSender(timestamp=0)
    receiver = DtmfReceiver()
    dtmf = DtmfSender()
    packets = [
        RtpPacket(101, i, 0, sender.ssrc, payload, marker)
        for i, (payload, marker) in enumerate(dtmf.payloads("5", duration_ms=8000))
    ]
    assert len(packets) == 400 - 1 + 3
    assert [d for p in packets if (d := receiver.feed(p))] == ["5"]
    # Past 8.19 s the duration field overflows and the press continues as a new segment (RFC 4733).
    segment = RtpPacket(101, 500, 0xFFFF, sender.ssrc, TelephoneEvent(5, False, 10, 160).to_bytes())
    assert receiver.feed(segment) is None
    another = RtpPacket(101, 600, 200_000, sender.ssrc, TelephoneEvent(5, False, 10, 160).to_bytes())
    assert receiver.feed(another) == "5"


def test_memory_is_bounded_and_other_payload_types_ignored() -> None:
    receiver = DtmfReceiver(payload_type=101)
    sender = RtpSender()
    for _ in range(20):
        send = send_digits(sender, "123456789")
        assert "".join(d for p in send if (d := receiver.feed(p))) == "123456789"
    assert len(receiver._seen) <= 32
    audio = RtpPacket(0, 1, 2, 3, b"\x01\x0a\x00\xa0")
    assert receiver.feed(audio) is None
    assert DtmfReceiver().feed(RtpPacket(101, 1, 2, 3, b"\x01")) is None  # truncated payload


def test_sender_payload_sequence() -> None:
    out = DtmfSender().payloads("#", duration_ms=100, volume=10)
    events = [parse_telephone_event(p) for p, _ in out]
    assert [m for _, m in out] == [True] + [False] * 6
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {11} and {e.volume for e in events} == {10}
    assert out[-1] == out[-2] == out[-3]


def test_sender_short_digit_and_validation() -> None:
    out = DtmfSender().payloads("a", duration_ms=20)
    assert len(out) == 3 and out[0][1] is True
    assert parse_telephone_event(out[0][0]) == TelephoneEvent(12, True, 10, 160)
    for bad in ("E", "", "12", " "):
        with pytest.raises(ValueError):
            DtmfSender().payloads(bad)
    with pytest.raises(ValueError):
        DtmfSender().payloads("1", volume=64)
    with pytest.raises(ValueError):
        DtmfSender().payloads("1", duration_ms=0)
    with pytest.raises(ValueError):
        DtmfSender().payloads("1", duration_ms=9000)
