from __future__ import annotations

import pytest

from telephony.g711 import PCMA, PCMU
from telephony.sdp import (
    MediaAnswer,
    MediaDescription,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    accept_answer,
    answer_offer,
    build_offer,
    parse_sdp,
)

# sipp's built-in "uac" scenario, with its [keywords] filled in.
SIPP_UAC = """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# sipp's "uac_pcap" scenario (plays g711a.pcap and the RFC 2833 DTMF captures).
SIPP_UAC_PCAP = """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6002 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
"""

BARESIP = """v=0
o=- 1804289383 846930886 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 10770 RTP/AVP 96 9 0 8 101
b=AS:512
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:10771
a=sendrecv
a=label:1
a=ssrc:2091876417 cname:f2b3a5c4-0e17-4b8c-a3a7-3c1a29b4f0f3
a=rtcp-rsize
a=ptime:20
""".replace("\n", "\r\n")

LINPHONE = """v=0
o=alice 2814 3251 IN IP4 198.51.100.20
s=Talk
c=IN IP4 198.51.100.20
t=0 0
a=ice-pwd:8a2c4f0a1c55e0b93e7f2b3d
a=ice-ufrag:5e7d0c2a
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 18 0 8 101 99 100
c=IN IP4 198.51.100.21
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp:7079
a=candidate:1 1 UDP 2130706431 198.51.100.21 7078 typ host
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96 97
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
a=rtcp-fb:* ccm fir
"""


def answer(offer: str | bytes, **kwargs: object) -> MediaAnswer:
    args: dict[str, object] = {
        "local_ip": "203.0.113.5",
        "local_port": 40000,
        "session_id": 77,
        "session_version": 1,
    }
    args.update(kwargs)
    return answer_offer(parse_sdp(offer), **args)


def audio_only(pts: str, extra: str = "", conn: str = "192.0.2.1", direction: str = "") -> str:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        f"c=IN IP4 {conn}",
        "t=0 0",
        f"m=audio 5000 RTP/AVP {pts}",
    ]
    return "\r\n".join([*lines, *extra.splitlines(), *([f"a={direction}"] if direction else [])]) + "\r\n"


# -- parsing ----------------------------------------------------------------------------------------


def test_parse_sipp_offer() -> None:
    sdp = parse_sdp(SIPP_UAC_PCAP)
    assert (sdp.origin.username, sdp.origin.session_id, sdp.origin.session_version) == (
        "user1",
        53655765,
        2353687637,
    )
    assert sdp.connection == "127.0.0.1" and len(sdp.media) == 1
    m = sdp.media[0]
    assert (m.media, m.port, m.proto, m.formats) == ("audio", 6002, "RTP/AVP", [8, 101])
    assert m.rtpmap == {8: ("PCMA", 8000), 101: ("telephone-event", 8000)}
    assert m.fmtp == {101: "0-11,16"}
    assert (m.direction, m.ptime, m.connection) == ("sendrecv", None, None)


def test_parse_baresip_offer_keeps_unmodelled_attributes() -> None:
    sdp = parse_sdp(BARESIP.encode())
    m = sdp.media[0]
    assert m.formats == [96, 9, 0, 8, 101]
    assert m.rtpmap[96] == ("opus", 48000) and m.channels == {96: 2}
    assert m.ptime == 20 and m.lines == ["b=AS:512"]
    assert m.attribute("rtcp") == "10771"
    assert m.attribute("rtcp-rsize") == ""
    assert m.attribute("ssrc") == "2091876417 cname:f2b3a5c4-0e17-4b8c-a3a7-3c1a29b4f0f3"
    assert m.attribute("rtcp-mux") is None


def test_static_payload_types_need_no_rtpmap() -> None:
    m = parse_sdp(audio_only("0 8 18")).media[0]
    assert m.rtpmap == {}
    assert [m.encoding(pt) for pt in m.formats] == [("PCMU", 8000), ("PCMA", 8000), ("G729", 8000)]
    assert m.encoding(96) is None


def test_lf_and_crlf_parse_the_same() -> None:
    assert parse_sdp(LINPHONE) == parse_sdp(LINPHONE.replace("\n", "\r\n").encode())


@pytest.mark.parametrize("text", [SIPP_UAC, SIPP_UAC_PCAP, BARESIP, LINPHONE])
def test_serialize_round_trip_with_crlf(text: str) -> None:
    sdp = parse_sdp(text)
    data = sdp.to_bytes()
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    assert data.startswith(b"v=0\r\no=")
    assert parse_sdp(data) == sdp


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("\r\n\r\n", "empty"),
        ("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", "start with v=0"),
        ("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n", "start with v=0"),
        ("v=0\r\ns=-\r\n", "missing o="),
        ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", "o= needs 6"),
        ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n", "numeric"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nthis is not sdp\r\n", "line 3"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", "second v="),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n", "c=IN"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n", "m= needs"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n", "port"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n", "out of range"),
        ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=ptime:abc\r\n", "ptime"),
    ],
)
def test_parse_errors_say_why(text: str, reason: str) -> None:
    with pytest.raises(SdpError, match=reason):
        parse_sdp(text)


def test_bad_rtpmap_on_a_declined_stream_is_ignored() -> None:
    """RFC 4475's INVITEs carry `a=rtpmap:31 LPC` (no clock rate) on a video stream: still answerable."""
    text = SIPP_UAC + "m=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
    answer = answer_offer(parse_sdp(text), local_ip="127.0.0.1", local_port=20000, session_id=1, session_version=1)
    assert answer.codec.name == "PCMU"
    assert [m.port for m in answer.sdp.media] == [20000, 0]


def test_session_level_direction_is_inherited() -> None:
    text = SIPP_UAC.replace("t=0 0\n", "t=0 0\na=sendonly\n")
    sdp = parse_sdp(text)
    assert sdp.direction == "sendonly" and sdp.media[0].direction == "sendonly"
    media_wins = parse_sdp(text + "a=inactive\n")
    assert media_wins.media[0].direction == "inactive"


# -- answering offers -------------------------------------------------------------------------------


def test_answer_sipp_uac() -> None:
    result = answer(SIPP_UAC)
    assert result.codec == PCMU and result.telephone_event_pt is None
    assert result.remote_address == ("127.0.0.1", 6000) and result.direction == "sendrecv"
    sent = parse_sdp(result.sdp.to_bytes())
    assert sent.origin.session_id == 77 and sent.origin.session_version == 1
    assert sent.origin.address == sent.connection == "203.0.113.5"
    m = sent.media[0]
    assert (m.port, m.proto, m.formats, m.ptime, m.direction) == (40000, "RTP/AVP", [0], 20, "sendrecv")


def test_answer_sipp_pcap_keeps_telephone_event() -> None:
    result = answer(SIPP_UAC_PCAP)
    assert result.codec == PCMA and result.telephone_event_pt == 101
    m = parse_sdp(result.sdp.to_bytes()).media[0]
    assert m.formats == [8, 101]
    assert m.rtpmap == {8: ("PCMA", 8000), 101: ("telephone-event", 8000)}
    assert m.fmtp == {101: "0-16"}


def test_answer_baresip_picks_first_offered_g711() -> None:
    result = answer(BARESIP)
    assert result.codec == PCMU and result.telephone_event_pt == 101
    assert result.remote_address == ("192.0.2.10", 10770) and result.remote_ptime == 20
    assert answer(BARESIP, codecs=("PCMA",)).codec == PCMA


def test_answer_linphone_rejects_video_and_uses_media_connection() -> None:
    result = answer(LINPHONE)
    assert result.codec == PCMU
    assert result.telephone_event_pt == 100  # the 8 kHz one, not 48 or 16 kHz
    assert result.remote_address == ("198.51.100.21", 7078)
    sent = parse_sdp(result.sdp.to_bytes())
    assert [(m.media, m.port) for m in sent.media] == [("audio", 40000), ("video", 0)]
    assert sent.media[1].formats == [96, 97]


def test_offerer_order_wins() -> None:
    assert answer(audio_only("8 0")).codec == PCMA
    assert answer(audio_only("0 8")).codec == PCMU
    assert answer(audio_only("8 0"), codecs=("pcmu",)).codec == PCMU
    assert answer(audio_only("8")).codec == PCMA


def test_dynamic_payload_type_for_g711_is_honoured() -> None:
    result = answer(audio_only("96 97", "a=rtpmap:96 PCMU/8000\na=rtpmap:97 telephone-event/8000"))
    assert result.codec.name == "PCMU" and result.codec.payload_type == 96
    assert result.telephone_event_pt == 97
    assert result.codec.encode(PCMU.decode(b"\x12")) == b"\x12"


@pytest.mark.parametrize(
    "offer",
    [
        audio_only("18", "a=rtpmap:18 G729/8000"),
        audio_only("96", "a=rtpmap:96 PCMU/16000"),
        audio_only("9 101", "a=rtpmap:101 telephone-event/8000"),
        SIPP_UAC.replace("m=audio 6000", "m=audio 0"),
        SIPP_UAC.replace("RTP/AVP", "RTP/SAVP"),
        SIPP_UAC.replace("m=audio 6000 RTP/AVP 0", "m=video 6000 RTP/AVP 31"),
        SIPP_UAC.replace("m=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n", ""),
    ],
    ids=["g729-only", "pcmu-wrong-rate", "g722-only", "audio-port-0", "srtp", "video-only", "no-media"],
)
def test_no_common_codec(offer: str) -> None:
    with pytest.raises(NoCommonCodec):
        answer(offer)


def test_no_common_codec_when_we_restrict_codecs() -> None:
    with pytest.raises(NoCommonCodec, match="PCMA"):
        answer(SIPP_UAC, codecs=("PCMA",))
    with pytest.raises(ValueError):
        answer(SIPP_UAC, codecs=("G729",))
    assert issubclass(NoCommonCodec, SdpError) and issubclass(SdpError, ValueError)


def test_only_one_audio_stream_is_accepted_and_order_is_kept() -> None:
    offer = """v=0
o=- 1 1 IN IP4 192.0.2.2
s=-
c=IN IP4 192.0.2.2
t=0 0
m=audio 7000 RTP/AVP 18
m=audio 6002 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
m=image 5002 udptl t38
m=audio 6004 RTP/AVP 0
"""
    result = answer(offer)
    assert result.codec == PCMA and result.remote_address == ("192.0.2.2", 6002)
    sent = result.sdp
    ports = [(m.media, m.port) for m in sent.media]
    assert ports == [("audio", 0), ("audio", 40000), ("image", 0), ("audio", 0)]
    text = sent.to_text()
    assert "m=image 0 udptl t38\r\n" in text and "m=audio 0 RTP/AVP 18\r\n" in text


@pytest.mark.parametrize(
    ("direction", "conn", "ours"),
    [
        ("", "192.0.2.1", "sendrecv"),
        ("sendrecv", "192.0.2.1", "sendrecv"),
        ("sendonly", "192.0.2.1", "recvonly"),  # the caller put us on hold
        ("recvonly", "192.0.2.1", "sendonly"),
        ("inactive", "192.0.2.1", "inactive"),
        ("", "0.0.0.0", "recvonly"),  # RFC 2543 hold
        ("sendonly", "0.0.0.0", "recvonly"),
        ("recvonly", "0.0.0.0", "inactive"),
    ],
)
def test_hold_and_resume_directions(direction: str, conn: str, ours: str) -> None:
    result = answer(audio_only("0", conn=conn, direction=direction), session_version=2)
    assert result.direction == ours
    assert parse_sdp(result.sdp.to_bytes()).media[0].direction == ours
    assert result.remote_address == (conn, 5000)


def test_missing_connection_is_an_error() -> None:
    text = SIPP_UAC.replace("c=IN IP4 127.0.0.1\n", "")
    with pytest.raises(SdpError, match="c= line") as info:
        answer(text)
    assert not isinstance(info.value, NoCommonCodec)


def test_ipv6() -> None:
    offer = SIPP_UAC.replace("IN IP4 127.0.0.1", "IN IP6 2001:db8::1")
    result = answer(offer, local_ip="2001:db8::5")
    assert result.remote_address == ("2001:db8::1", 6000)
    assert "c=IN IP6 2001:db8::5\r\n" in result.sdp.to_text()


# -- our offers -------------------------------------------------------------------------------------


def test_build_offer() -> None:
    offer = build_offer(local_ip="203.0.113.5", local_port=41000, session_id=9, session_version=3)
    parsed = parse_sdp(offer.to_bytes())
    assert parsed == offer
    m = parsed.media[0]
    assert (m.port, m.formats, m.ptime, m.direction) == (41000, [0, 8, 101], 20, "sendrecv")
    assert m.rtpmap[101] == ("telephone-event", 8000) and m.fmtp[101] == "0-16"
    hold = build_offer(
        local_ip="203.0.113.5",
        local_port=41000,
        session_id=9,
        session_version=4,
        codecs=("PCMA",),
        direction="sendonly",
        telephone_event_pt=96,
    )
    assert (hold.media[0].formats, hold.media[0].direction) == ([8, 96], "sendonly")
    for bad in ({"direction": "both"}, {"telephone_event_pt": 8}, {"codecs": ("opus",)}, {"codecs": ()}):
        with pytest.raises(ValueError):
            build_offer(local_ip="::1", local_port=1, session_id=1, session_version=1, **bad)  # type: ignore[arg-type]


def test_accept_answers_to_our_offer() -> None:
    uas_answer = SIPP_UAC.replace("o=user1", "o=uas")
    result = accept_answer(parse_sdp(uas_answer))
    assert (result.codec, result.telephone_event_pt, result.remote_address) == (
        PCMU,
        None,
        ("127.0.0.1", 6000),
    )
    assert result.direction == "sendrecv"

    # Answering our own offer must agree from both sides.
    offer = build_offer(local_ip="192.0.2.7", local_port=30000, session_id=1, session_version=1)
    theirs = answer(offer.to_bytes(), codecs=("PCMA",))
    ours = accept_answer(parse_sdp(theirs.sdp.to_bytes()))
    assert (ours.codec, ours.telephone_event_pt, ours.remote_address) == (PCMA, 101, ("203.0.113.5", 40000))
    assert theirs.remote_address == ("192.0.2.7", 30000)

    held = accept_answer(
        parse_sdp(audio_only("0 101", "a=rtpmap:101 telephone-event/8000", direction="recvonly"))
    )
    assert held.direction == "sendonly" and held.telephone_event_pt == 101


def test_accept_answer_rejections() -> None:
    with pytest.raises(NoCommonCodec):
        accept_answer(parse_sdp(SIPP_UAC.replace("m=audio 6000", "m=audio 0")))
    with pytest.raises(NoCommonCodec):
        accept_answer(parse_sdp(audio_only("18")))


def test_dataclasses_are_constructible_by_hand() -> None:
    media = MediaDescription("audio", 4000, "RTP/AVP", [0])
    sdp = SessionDescription(parse_sdp(SIPP_UAC).origin, "192.0.2.9", [media])
    assert answer(sdp.to_bytes()).remote_address == ("192.0.2.9", 4000)
