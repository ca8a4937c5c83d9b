"""The sans-IO SIP core with a fake clock and no sockets: transactions, dialogs, CANCEL, BYE, INFO, re-INVITE."""

from __future__ import annotations

import itertools

import pytest

from telephony.sip.message import Request, Response, parse_message
from telephony.sip.transaction import T1, T2
from telephony.sip.useragent import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    DtmfReceived,
    IncomingCall,
    OfferReceived,
    Session,
    TransferStatus,
    UserAgentCore,
)

CALLER = ("127.0.0.1", 5070)
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"


def invite(branch: str = "z9hG4bK-inv1", call_id: str = "call-1", cseq: int = 1, extra: str = "") -> bytes:
    return (
        f"INVITE sip:hotline@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:5070>;tag=alice1\r\nTo: <sip:hotline@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\n{extra}"
        f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP


def in_dialog(
    method: str, to_tag: str, cseq: int, *, body: bytes = b"", ctype: str = "", branch: str = ""
) -> bytes:
    head = (
        f"{method} sip:hotline@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch or 'z9hG4bK-' + method + str(cseq)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:5070>;tag=alice1\r\n"
        f"To: <sip:hotline@127.0.0.1>;tag={to_tag}\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\n"
    )
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def responses(core: UserAgentCore) -> list[Response]:
    return [m for m in (parse_message(d) for d, _ in core.take_outbox()) if isinstance(m, Response)]


@pytest.fixture
def core() -> UserAgentCore:
    return UserAgentCore(("127.0.0.1", 5060))


def answered_call(core: UserAgentCore) -> Session:
    core.receive_datagram(invite(), CALLER, 0.0)
    (event,) = core.take_events()
    assert isinstance(event, IncomingCall)
    event.session.answer(b"v=0\r\n")
    core.take_outbox()
    return event.session


def test_invite_gets_trying_then_ok_retransmitted_until_ack(core: UserAgentCore) -> None:
    core.receive_datagram(invite(), CALLER, 0.0)
    assert [r.status for r in responses(core)] == [100]
    session = core.take_events()[0].session
    session.answer(b"v=0\r\n")
    ok = responses(core)[0]
    assert ok.status == 200 and ok.to_address.tag == session.local_tag and ok.headers.get("Contact")
    core.on_timer(T1)
    assert [r.status for r in responses(core)] == [200]
    core.on_timer(T1 + 2 * T1)
    assert [r.status for r in responses(core)] == [200]
    ack = in_dialog("ACK", session.local_tag, 1, branch="z9hG4bK-ack")
    core.receive_datagram(ack, CALLER, 2.0)
    assert any(isinstance(e, CallConfirmed) for e in core.take_events())
    core.on_timer(10.0)
    assert responses(core) == []


def test_retransmitted_invite_is_absorbed(core: UserAgentCore) -> None:
    core.receive_datagram(invite(), CALLER, 0.0)
    core.take_events()
    core.take_outbox()
    core.receive_datagram(invite(), CALLER, 0.1)
    assert core.take_events() == []
    assert [r.status for r in responses(core)] == [100]


def test_unacked_ok_ends_the_call_with_bye(core: UserAgentCore) -> None:
    session = answered_call(core)
    core.on_timer(64 * T1 + 0.01)
    ended = [e for e in core.take_events() if isinstance(e, CallEnded)]
    assert ended and ended[0].reason == "ack_timeout" and session.ended
    sent = [parse_message(d) for d, _ in core.take_outbox()]
    assert any(isinstance(m, Request) and m.method == "BYE" for m in sent)


def test_cancel_before_answer_gives_200_and_487(core: UserAgentCore) -> None:
    core.receive_datagram(invite(), CALLER, 0.0)
    session = core.take_events()[0].session
    session.ring()
    core.take_outbox()
    cancel = invite().replace(b"INVITE sip:", b"CANCEL sip:", 1).replace(b"1 INVITE", b"1 CANCEL")
    core.receive_datagram(cancel, CALLER, 0.5)
    statuses = sorted((r.status, r.cseq[1]) for r in responses(core))
    assert statuses == [(200, "CANCEL"), (487, "INVITE")]
    assert [e.reason for e in core.take_events() if isinstance(e, CallEnded)] == ["cancelled"]
    # 487 is retransmitted until ACKed, then absorbed by the transaction
    core.on_timer(0.5 + T1)
    assert [r.status for r in responses(core)] == [487]


def test_bye_ends_the_dialog_and_later_requests_get_481(core: UserAgentCore) -> None:
    session = answered_call(core)
    core.receive_datagram(in_dialog("ACK", session.local_tag, 1, branch="z9hG4bK-a"), CALLER, 0.1)
    core.receive_datagram(in_dialog("BYE", session.local_tag, 2), CALLER, 1.0)
    assert [r.status for r in responses(core)] == [200]
    assert [e.reason for e in core.take_events() if isinstance(e, CallEnded)] == ["remote_bye"]
    core.receive_datagram(in_dialog("INFO", session.local_tag, 3), CALLER, 1.1)
    assert [r.status for r in responses(core)] == [481]


@pytest.mark.parametrize(
    ("ctype", "body", "digit"),
    [("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"), ("application/dtmf", b"#", "#")],
)
def test_info_dtmf(core: UserAgentCore, ctype: str, body: bytes, digit: str) -> None:
    session = answered_call(core)
    core.receive_datagram(in_dialog("ACK", session.local_tag, 1, branch="z9hG4bK-a"), CALLER, 0.1)
    core.take_events()
    core.receive_datagram(in_dialog("INFO", session.local_tag, 2, body=body, ctype=ctype), CALLER, 0.2)
    assert [r.status for r in responses(core)] == [200]
    assert [e.digit for e in core.take_events() if isinstance(e, DtmfReceived)] == [digit]


def test_reinvite_offer_is_answered_by_the_application(core: UserAgentCore) -> None:
    session = answered_call(core)
    core.receive_datagram(in_dialog("ACK", session.local_tag, 1, branch="z9hG4bK-a"), CALLER, 0.1)
    core.take_events()
    hold = SDP + b"a=sendonly\r\n"
    core.receive_datagram(
        in_dialog("INVITE", session.local_tag, 2, body=hold, ctype="application/sdp"), CALLER, 1
    )
    (offer,) = [e for e in core.take_events() if isinstance(e, OfferReceived)]
    assert offer.sdp == hold
    session.accept_reoffer(b"v=0\r\na=recvonly\r\n")
    ok = [r for r in responses(core) if r.status == 200]
    assert ok and ok[0].body.endswith(b"a=recvonly\r\n")


def test_out_of_order_cseq_is_refused(core: UserAgentCore) -> None:
    session = answered_call(core)
    core.receive_datagram(in_dialog("INFO", session.local_tag, 5), CALLER, 0.2)
    core.receive_datagram(in_dialog("INFO", session.local_tag, 4), CALLER, 0.3)
    assert [r.status for r in responses(core)] == [200, 500]


def test_options_lists_allow_and_accept(core: UserAgentCore) -> None:
    options = invite().replace(b"INVITE sip:", b"OPTIONS sip:", 1).replace(b"1 INVITE", b"1 OPTIONS")
    core.receive_datagram(options, CALLER, 0.0)
    (ok,) = responses(core)
    assert ok.status == 200
    assert "INVITE" in ok.headers.get("Allow") and "application/sdp" in ok.headers.get("Accept")


def test_malformed_request_gets_400_and_garbage_is_dropped(core: UserAgentCore) -> None:
    core.receive_datagram(invite().replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"), CALLER, 0.0)
    ((data, destination),) = core.take_outbox()
    status_line = data.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"SIP/2.0 400 ") and b"CSeq" in status_line and destination == CALLER
    assert b"\r\nCall-ID: call-1\r\n" in data  # the response copies what it can, so the caller can match it
    core.receive_datagram(b"\x00\x01garbage\r\n\r\n", CALLER, 0.0)
    assert core.take_outbox() == [] and core.parse_errors == 2


def _uac_call(core: UserAgentCore) -> tuple[Session, Request]:
    session = core.invite("sip:agent@127.0.0.1:5080", ("127.0.0.1", 5080), SDP, now=0.0)
    (sent,) = [parse_message(d) for d, _ in core.take_outbox()]
    assert isinstance(sent, Request) and sent.method == "INVITE"
    return session, sent


def _reply(request: Request, status: int, *, tag: str = "agent1", body: bytes = b"") -> bytes:
    lines = [f"SIP/2.0 {status} X"]
    for name in ("Via", "From", "Call-ID", "CSeq"):
        lines.append(f"{name}: {request.headers.get(name)}")
    lines.append(f"To: {request.headers.get('To')};tag={tag}")
    lines.append("Contact: <sip:agent@127.0.0.1:5080>")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_uac_invite_retransmits_with_timer_a_and_times_out(core: UserAgentCore) -> None:
    session, _ = _uac_call(core)
    now, interval = 0.0, T1
    sends = 0
    while now < 64 * T1:
        now += interval
        core.on_timer(now)
        sends += len(core.take_outbox())
        interval *= 2
    assert sends >= 6
    assert [e.reason for e in core.take_events() if isinstance(e, CallEnded)] == ["timeout"]
    assert session.ended


def test_uac_answered_call_acks_and_bye_completes(core: UserAgentCore) -> None:
    session, sent = _uac_call(core)
    core.receive_datagram(_reply(sent, 180), ("127.0.0.1", 5080), 0.1)
    core.receive_datagram(_reply(sent, 200, body=SDP), ("127.0.0.1", 5080), 0.2)
    assert any(isinstance(e, CallAnswered) for e in core.take_events())
    (ack,) = [parse_message(d) for d, _ in core.take_outbox()]
    assert ack.method == "ACK" and ack.to_address.tag == "agent1" and ack.cseq == (1, "ACK")
    core.receive_datagram(_reply(sent, 200, body=SDP), ("127.0.0.1", 5080), 0.3)  # retransmitted 2xx
    assert [parse_message(d).method for d, _ in core.take_outbox()] == ["ACK"]
    session.hangup()
    (bye,) = [parse_message(d) for d, _ in core.take_outbox()]
    assert bye.method == "BYE" and bye.uri == "sip:agent@127.0.0.1:5080"
    core.receive_datagram(_reply(bye, 200), ("127.0.0.1", 5080), 1.0)
    assert [e.reason for e in core.take_events() if isinstance(e, CallEnded)] == ["local_bye"]


def test_non_invite_retransmission_caps_at_t2(core: UserAgentCore) -> None:
    session, sent = _uac_call(core)
    core.receive_datagram(_reply(sent, 200, body=SDP), ("127.0.0.1", 5080), 0.0)
    core.take_outbox()
    core.take_events()
    session.hangup()
    core.take_outbox()
    times = []
    now = 0.0
    while now < 64 * T1 and not session.ended:
        deadline = core.next_deadline()
        assert deadline is not None
        now = deadline
        core.on_timer(now)
        if any(parse_message(d).method == "BYE" for d, _ in core.take_outbox()):
            times.append(now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps and max(gaps) <= T2 + 1e-9
    assert session.ended  # Timer F ended it


def test_refer_progress_from_202_and_notify(core: UserAgentCore) -> None:
    session = answered_call(core)
    core.receive_datagram(in_dialog("ACK", session.local_tag, 1, branch="z9hG4bK-a"), CALLER, 0.1)
    core.take_events()
    session.refer("sip:agent@127.0.0.1:5080")
    (refer,) = [parse_message(d) for d, _ in core.take_outbox()]
    assert refer.method == "REFER" and refer.headers.get("Refer-To") == "<sip:agent@127.0.0.1:5080>"
    reply = _reply(refer, 202, tag=refer.to_address.tag or "")
    reply = reply.replace(f"tag={refer.to_address.tag};tag=".encode(), b"tag=")
    core.receive_datagram(reply, CALLER, 0.2)
    notify = in_dialog("NOTIFY", session.local_tag, 2, body=b"SIP/2.0 200 OK\r\n", ctype="message/sipfrag")
    notify = notify.replace(
        b"Content-Type", b"Event: refer\r\nSubscription-State: terminated\r\nContent-Type"
    )
    core.receive_datagram(notify, CALLER, 0.3)
    statuses = [(e.status, e.final) for e in core.take_events() if isinstance(e, TransferStatus)]
    assert statuses[-1] == (200, True)


def test_digest_matches_rfc2617_example() -> None:
    from telephony.sip.auth import digest_response, parse_challenge

    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    value = digest_response(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        nc=1,
        cnonce="0a4f113b",
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value and "nc=00000001" in value


def test_register_answers_a_digest_challenge(core: UserAgentCore) -> None:
    from telephony.sip.registration import RegistrationChanged

    registrar = ("127.0.0.1", 5099)
    core.register(
        registrar, "sip:hotline@pbx.test", username="hotline", password="s3cret", expires=120, now=0.0
    )
    (first,) = [parse_message(d) for d, _ in core.take_outbox()]
    assert first.method == "REGISTER" and "Authorization" not in first.headers
    challenge = _reply(first, 401).replace(
        b"Content-Length",
        b'WWW-Authenticate: Digest realm="pbx.test", nonce="abc123", qop="auth"\r\nContent-Length',
    )
    core.receive_datagram(challenge, registrar, 0.1)
    (second,) = [parse_message(d) for d, _ in core.take_outbox()]
    assert second.cseq[0] == first.cseq[0] + 1 and second.call_id == first.call_id
    auth = second.headers.get("Authorization") or ""
    assert 'username="hotline"' in auth and 'realm="pbx.test"' in auth and 'uri="sip:pbx.test"' in auth
    core.receive_datagram(
        _reply(second, 200).replace(b"Content-Length", b"Expires: 90\r\nContent-Length"), registrar, 0.2
    )
    (changed,) = [e for e in core.take_events() if isinstance(e, RegistrationChanged)]
    assert changed.registered and changed.expires == 90 and changed.status == 200


def test_register_with_wrong_password_reports_failure_without_looping(core: UserAgentCore) -> None:
    from telephony.sip.registration import RegistrationChanged

    registrar = ("127.0.0.1", 5099)
    core.register(registrar, "sip:hotline@pbx.test", username="hotline", password="bad", now=0.0)
    challenge_header = b'WWW-Authenticate: Digest realm="pbx.test", nonce="n1"\r\nContent-Length'
    for step in range(4):
        sent = [parse_message(d) for d, _ in core.take_outbox()]
        if not sent:
            break
        core.receive_datagram(
            _reply(sent[0], 401).replace(b"Content-Length", challenge_header), registrar, step
        )
    (changed,) = [e for e in core.take_events() if isinstance(e, RegistrationChanged)]
    assert not changed.registered and changed.status == 401
