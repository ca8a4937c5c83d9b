"""The user agent core: request validation, INVITE sessions (both directions), BYE, CANCEL, INFO, REFER.

Still no I/O: `receive_datagram` takes bytes and time, and results come out as `outbox` datagrams plus
`events` for the application (the asyncio layer in telephony.endpoint turns those into Call objects).
SDP is opaque here; offer/answer is the media layer's business.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from telephony.sip.dialog import Dialog, new_call_id, new_tag
from telephony.sip.message import Request, Response, SipParseError, make_response, parse_message
from telephony.sip.registration import Registration, RegistrationChanged
from telephony.sip.transaction import (
    Address,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    TransactionLayer,
    TransactionTimeout,
    new_branch,
)
from telephony.sip.uri import SipUri

log = logging.getLogger(__name__)

ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "REFER", "NOTIFY")
ALLOW = ", ".join(ALLOWED_METHODS)
KNOWN_NOT_ALLOWED = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK"})
ACCEPT = "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag"
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
_SIGNAL = re.compile(r"signal\s*=\s*([0-9A-Da-d*#])", re.IGNORECASE)
_SIPFRAG = re.compile(rb"^SIP/2\.0\s+(\d{3})")


# ---- events for the application -------------------------------------------------------------------
@dataclass
class IncomingCall:
    session: Session


@dataclass
class CallConfirmed:
    session: Session


@dataclass
class CallProgress:
    session: Session
    status: int


@dataclass
class CallAnswered:
    session: Session
    sdp: bytes


@dataclass
class CallEnded:
    """reason: remote_bye, local_bye, cancelled, rejected, failed, timeout, ack_timeout."""

    session: Session
    reason: str
    status: int | None = None


@dataclass
class OfferReceived:
    """A re-INVITE with a new offer: answer with session.accept_reoffer() or session.reject_reoffer()."""

    session: Session
    sdp: bytes


@dataclass
class DtmfReceived:
    session: Session
    digit: str


@dataclass
class TransferStatus:
    """Progress of a REFER we sent: the 202, then each NOTIFY's sipfrag status."""

    session: Session
    status: int
    final: bool


UaEvent = (
    IncomingCall
    | CallConfirmed
    | CallProgress
    | CallAnswered
    | CallEnded
    | OfferReceived
    | DtmfReceived
    | TransferStatus
    | RegistrationChanged
)


class Session:
    """One INVITE dialog usage, incoming (role "uas") or outgoing ("uac")."""

    def __init__(self, core: UserAgentCore, role: str, invite: Request, peer: Address) -> None:
        self.core = core
        self.role = role
        self.invite = invite
        self.peer = peer
        self.state = "new"
        self.local_tag = new_tag() if role == "uas" else (invite.from_address.tag or "")
        self.dialog: Dialog | None = None
        self.remote_sdp: bytes = invite.body if role == "uas" else b""
        self.server_txn: ServerTransaction | None = None
        self.client_txn: ClientTransaction | None = None
        self.reoffer_txn: ServerTransaction | None = None
        self.handle: object = None  # the application's Call
        self._cancel_pending = False

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    # ---- incoming calls ------------------------------------------------------------------
    def ring(self) -> None:
        if self.server_txn is not None and self.state in ("new", "ringing"):
            self.state = "ringing"
            self.server_txn.reply(180, to_tag=self.local_tag)

    def answer(self, sdp: bytes) -> None:
        if self.server_txn is None or self.state not in ("new", "ringing"):
            return
        response = make_response(self.invite, 200, to_tag=self.local_tag)
        self.core._decorate(response, contact_for=self.peer)
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
        self.dialog = Dialog.from_invite(
            self.invite, self.local_tag, self.core.contact_for(self.peer), self.peer
        )
        self.core._dialogs[self.dialog.key] = self
        self.state = "answered"
        self.server_txn.respond(response)

    def reject(
        self, status: int, reason: str | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        if self.server_txn is None or self.state not in ("new", "ringing"):
            return
        response = make_response(self.invite, status, reason, to_tag=self.local_tag)
        for name, value in (headers or {}).items():
            response.headers.add(name, value)
        self.server_txn.respond(response)
        self._end("cancelled" if status == 487 else "rejected", status)

    def accept_reoffer(self, sdp: bytes) -> None:
        txn, self.reoffer_txn = self.reoffer_txn, None
        if txn is None:
            return
        response = make_response(txn.request, 200, to_tag=self.local_tag)
        self.core._decorate(response, contact_for=self.peer)
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
        self.remote_sdp = txn.request.body
        txn.respond(response)

    def reject_reoffer(self, status: int = 488) -> None:
        txn, self.reoffer_txn = self.reoffer_txn, None
        if txn is not None:
            txn.reply(status, to_tag=self.local_tag)

    # ---- both directions -----------------------------------------------------------------
    def hangup(self) -> None:
        """End the call whatever its state: BYE once established, CANCEL or a 480 before."""
        if self.state in ("ended", "ending"):
            return
        if self.role == "uas" and self.state in ("new", "ringing"):
            self.reject(480)
            return
        if self.role == "uac" and self.state in ("calling", "early"):
            self.cancel()
            return
        if self.dialog is None:
            self._end("local_bye")
            return
        self.state = "ending"
        self.core._send_in_dialog(self, "BYE", purpose="bye")

    def refer(self, target: str) -> None:
        """Blind transfer: ask the peer to call `target` (RFC 3515); progress comes as TransferStatus."""
        if self.dialog is None or self.state != "confirmed":
            raise RuntimeError("REFER needs a confirmed dialog")
        self.core._send_in_dialog(
            self,
            "REFER",
            purpose="refer",
            extra=[("Refer-To", f"<{target}>"), ("Referred-By", f"<{self.core.contact_uri(self.peer)}>")],
        )

    def info_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        self.core._send_in_dialog(
            self,
            "INFO",
            purpose="info",
            content_type="application/dtmf-relay",
            body=f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode(),
        )

    # ---- outgoing calls ------------------------------------------------------------------
    def cancel(self) -> None:
        if self.role != "uac" or self.client_txn is None:
            return
        if self.state == "calling":
            self._cancel_pending = True  # RFC 3261 §9.1: wait for a provisional response first
            return
        if self.state != "early":
            return
        invite = self.client_txn.request
        cancel = Request(method="CANCEL", uri=invite.uri)
        cancel.headers.add("Via", invite.headers.values("Via")[0])
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            cancel.headers.add(name, invite.headers.get(name) or "")
        cancel.headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
        self.state = "cancelling"
        self.core._start_client(cancel, self.peer, self, "cancel")

    def _end(self, reason: str, status: int | None = None) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        if self.dialog is not None:
            self.core._dialogs.pop(self.dialog.key, None)
        self.core.events.append(CallEnded(self, reason, status))


class UserAgentCore:
    """Sans-IO SIP user agent for one UDP socket."""

    def __init__(
        self,
        local: Address,
        *,
        user: str = "hotline",
        user_agent: str = "hotline/0.1",
        local_ip_for: Callable[[Address], str] | None = None,
    ) -> None:
        self.local = local
        self.user = user
        self.user_agent = user_agent
        self.transactions = TransactionLayer(local)
        self.events: list[UaEvent] = []
        self._dialogs: dict[tuple[str, str, str | None], Session] = {}
        self._local_ip_for = local_ip_for or (lambda _peer: local[0])
        self.parse_errors = 0

    # ---- I/O boundary --------------------------------------------------------------------
    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        if not data.strip(b"\r\n"):
            return  # keep-alive
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.parse_errors += 1
            self._reject_malformed(exc, source)
            return
        except Exception as exc:  # a parser bug must never take the endpoint down
            self.parse_errors += 1
            log.exception("unexpected error parsing datagram from %s: %s", source, exc)
            return
        self.transactions.receive(message, source, now)
        self._drain(now)

    def on_timer(self, now: float) -> None:
        self.transactions.on_timer(now)
        self._drain(now)

    def next_deadline(self) -> float | None:
        return self.transactions.next_deadline()

    def take_outbox(self) -> list[tuple[bytes, Address]]:
        return self.transactions.take_outbox()

    def take_events(self) -> list[UaEvent]:
        out, self.events = self.events, []
        return out

    @property
    def session_count(self) -> int:
        return len(self._dialogs)

    # ---- outgoing ------------------------------------------------------------------------
    def invite(
        self,
        target: str,
        destination: Address,
        sdp: bytes,
        *,
        from_user: str | None = None,
        display_name: str | None = None,
        now: float,
    ) -> Session:
        """Place a call (no authentication): returns the session; progress comes as events."""
        host = self._local_ip_for(destination)
        request = Request(method="INVITE", uri=target)
        request.headers.add("Via", f"SIP/2.0/UDP {host}:{self.local[1]};branch={new_branch()};rport")
        request.headers.add("Max-Forwards", "70")
        name = f'"{display_name}" ' if display_name else ""
        request.headers.add(
            "From", f"{name}<sip:{from_user or self.user}@{host}:{self.local[1]}>;tag={new_tag()}"
        )
        request.headers.add("To", f"<{target}>")
        request.headers.add("Call-ID", new_call_id(host))
        request.headers.add("CSeq", "1 INVITE")
        request.headers.add("Contact", self.contact_for(destination))
        request.headers.add("Allow", ALLOW)
        request.headers.add("User-Agent", self.user_agent)
        request.headers.add("Content-Type", "application/sdp")
        request.body = sdp
        session = Session(self, "uac", request, destination)
        session.state = "calling"
        self.transactions.now = now
        session.client_txn = self._start_client(request, destination, session, "invite")
        return session

    def contact_uri(self, peer: Address) -> str:
        return f"sip:{self.user}@{self._local_ip_for(peer)}:{self.local[1]}"

    def contact_for(self, peer: Address) -> str:
        return f"<{self.contact_uri(peer)}>"

    def local_ip_for(self, peer: Address) -> str:
        return self._local_ip_for(peer)

    # ---- internals -----------------------------------------------------------------------
    def _start_client(self, request: Request, destination: Address, session: Session | None, purpose: str):
        txn = self.transactions.send_request(request, destination, self.transactions.now)
        if txn is not None:
            txn.user_data = (session, purpose)
        return txn

    def _send_in_dialog(
        self,
        session: Session,
        method: str,
        *,
        purpose: str,
        extra: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        body: bytes = b"",
    ) -> None:
        dialog = session.dialog
        assert dialog is not None
        request = dialog.create_request(method, self.local, via_host=self._local_ip_for(session.peer))
        request.headers.add("User-Agent", self.user_agent)
        for name, value in extra or []:
            request.headers.add(name, value)
        if content_type:
            request.headers.add("Content-Type", content_type)
        request.body = body
        self._start_client(request, dialog.destination(), session, purpose)

    def _decorate(self, response: Response, *, contact_for: Address | None = None) -> None:
        if contact_for is not None:
            response.headers.add("Contact", self.contact_for(contact_for))
        response.headers.add("Allow", ALLOW)
        response.headers.add("Server", self.user_agent)

    def _reject_malformed(self, exc: SipParseError, source: Address) -> None:
        message = exc.message
        if not isinstance(message, Request) or message.method == "ACK":
            log.info("dropped malformed SIP from %s:%s: %s", source[0], source[1], exc.reason)
            return
        if not message.headers.get_all("Via"):
            log.info("dropped malformed SIP without Via from %s:%s: %s", source[0], source[1], exc.reason)
            return
        log.info("400 to malformed %s from %s:%s: %s", message.method, source[0], source[1], exc.reason)
        response = make_response(message, exc.status, f"Bad Request ({exc.reason})"[:120])
        if exc.status != 400:
            response.reason = "Version Not Supported"
        self.transactions.outbox.append((response.to_bytes(), source))

    def _drain(self, now: float) -> None:
        for event in self.transactions.take_events():
            if isinstance(event, RequestReceived):
                self._on_request(event.request, event.source, event.transaction)
            elif isinstance(event, ResponseReceived):
                self._on_response(event.response, event.transaction)
            elif isinstance(event, TransactionTimeout):
                self._on_timeout(event.transaction)

    def _on_request(self, request: Request, source: Address, txn: ServerTransaction | None) -> None:
        if txn is None:
            self._on_ack(request)
            return
        method = request.method
        if method not in ALLOWED_METHODS:
            status = 405 if method in KNOWN_NOT_ALLOWED else 501
            response = make_response(request, status, to_tag=new_tag())
            response.headers.add("Allow", ALLOW)
            txn.respond(response)
            return
        uri = request.parsed_uri
        if not isinstance(uri, SipUri) and not str(uri).lower().startswith("tel:"):
            txn.reply(416, to_tag=new_tag())
            return
        unsupported = [
            opt
            for opt in request.headers.values("Require")
            if opt and opt.lower() not in SUPPORTED_EXTENSIONS
        ]
        if unsupported and method not in ("CANCEL",):
            response = make_response(request, 420, to_tag=new_tag())
            response.headers.add("Unsupported", ", ".join(unsupported))
            txn.respond(response)
            return
        to_tag = request.to_address.tag
        if to_tag:
            session = self._dialogs.get((request.call_id, to_tag, request.from_address.tag))
            if session is None:
                txn.reply(481)
                return
            self._in_dialog(session, request, txn)
            return
        if method == "INVITE":
            self._new_invite(request, source, txn)
        elif method == "CANCEL":
            self._on_cancel(request, txn)
        elif method == "OPTIONS":
            response = make_response(request, 200, to_tag=new_tag())
            self._decorate(response)
            response.headers.add("Accept", ACCEPT)
            response.headers.add("Accept-Language", "en")
            response.headers.add("Supported", "")
            txn.respond(response)
        else:
            txn.reply(481)

    def _new_invite(self, request: Request, source: Address, txn: ServerTransaction) -> None:
        if request.body and request.content_type != "application/sdp":
            response = make_response(request, 415, to_tag=new_tag())
            response.headers.add("Accept", "application/sdp")
            txn.respond(response)
            return
        accepts = [a.split(";")[0].strip().lower() for a in request.headers.values("Accept")]
        if "Accept" in request.headers and not {"application/sdp", "application/*", "*/*"} & set(accepts):
            response = make_response(request, 406, to_tag=new_tag())
            response.headers.add("Warning", '399 hotline "we only describe sessions with application/sdp"')
            txn.respond(response)
            return
        session = Session(self, "uas", request, source)
        session.server_txn = txn
        txn.user_data = session
        txn.reply(100)
        self.events.append(IncomingCall(session))

    def _on_cancel(self, request: Request, txn: ServerTransaction) -> None:
        invite_txn = self.transactions.find_invite(request)
        if invite_txn is None:
            txn.reply(481)
            return
        txn.reply(200, to_tag=getattr(invite_txn.user_data, "local_tag", None))
        session = invite_txn.user_data
        if isinstance(session, Session) and session.state in ("new", "ringing"):
            session.reject(487)

    def _on_ack(self, ack: Request) -> None:
        session = self._dialogs.get((ack.call_id, ack.to_address.tag or "", ack.from_address.tag))
        if session is None or session.state != "answered":
            return
        if session.dialog and ack.cseq[0] != session.invite.cseq[0]:
            return  # ACK for a re-INVITE's 2xx
        session.state = "confirmed"
        if ack.body and not session.remote_sdp:
            session.remote_sdp = ack.body  # late offer: the answer comes in the ACK
        self.events.append(CallConfirmed(session))

    def _in_dialog(self, session: Session, request: Request, txn: ServerTransaction) -> None:
        dialog = session.dialog
        assert dialog is not None
        number = request.cseq[0]
        if dialog.remote_cseq is not None and number <= dialog.remote_cseq and request.method != "ACK":
            txn.reply(500, "CSeq out of order")
            return
        dialog.remote_cseq = number
        method = request.method
        if method == "BYE":
            txn.reply(200)
            session._end("remote_bye")
        elif method == "INVITE":
            if session.reoffer_txn is not None or session.state != "confirmed":
                txn.reply(491)
                return
            if request.body and request.content_type != "application/sdp":
                txn.reply(415)
                return
            session.reoffer_txn = txn
            self.events.append(OfferReceived(session, request.body))
        elif method == "INFO":
            self._on_info(session, request, txn)
        elif method == "NOTIFY":
            self._on_notify(session, request, txn)
        elif method == "OPTIONS":
            response = make_response(request, 200)
            self._decorate(response)
            response.headers.add("Accept", ACCEPT)
            txn.respond(response)
        elif method == "REFER":
            txn.reply(603, "Transfers are placed by hotline, not accepted")
        else:
            txn.reply(481)

    def _on_info(self, session: Session, request: Request, txn: ServerTransaction) -> None:
        kind = request.content_type
        text = request.body.decode("utf-8", "replace").strip()
        digit: str | None = None
        if kind == "application/dtmf-relay":
            match = _SIGNAL.search(text)
            digit = match.group(1).upper() if match else None
        elif kind == "application/dtmf":
            digit = text[:1].upper() if text[:1] and text[:1] in "0123456789*#ABCDabcd" else None
        elif not request.body:
            txn.reply(200)
            return
        else:
            response = make_response(request, 415)
            response.headers.add("Accept", "application/dtmf-relay, application/dtmf")
            txn.respond(response)
            return
        if digit is None:
            txn.reply(400, "No DTMF digit in body")
            return
        txn.reply(200)
        self.events.append(DtmfReceived(session, digit))

    def _on_notify(self, session: Session, request: Request, txn: ServerTransaction) -> None:
        event = (request.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer":
            txn.reply(489, "Bad Event")
            return
        txn.reply(200)
        match = _SIPFRAG.match(request.body.strip())
        if match:
            state = (request.headers.get("Subscription-State") or "").lower()
            status = int(match.group(1))
            self.events.append(TransferStatus(session, status, final=status >= 200 or "terminated" in state))

    def register(
        self,
        registrar: Address,
        aor: str,
        *,
        username: str | None = None,
        password: str | None = None,
        expires: int = 300,
        now: float,
    ) -> Registration:
        """Register our Contact for `aor` with an upstream registrar; results come as RegistrationChanged."""
        self.transactions.now = now
        registration = Registration(
            self, registrar=registrar, aor=aor, username=username, password=password, expires=expires
        )
        registration.start()
        return registration

    def _on_response(self, response: Response, txn: ClientTransaction) -> None:
        session, purpose = txn.user_data if isinstance(txn.user_data, tuple) else (None, "")
        if isinstance(session, Registration):
            session.on_response(response, txn.request)
            return
        if not isinstance(session, Session):
            return
        status = response.status
        if purpose == "invite":
            self._on_invite_response(session, response, txn)
        elif purpose == "bye" and status >= 200:
            session._end("local_bye")
        elif purpose == "refer" and status >= 200:
            self.events.append(TransferStatus(session, status, final=status >= 300))

    def _on_invite_response(self, session: Session, response: Response, txn: ClientTransaction) -> None:
        status = response.status
        if status < 200:
            if session.state == "calling":
                session.state = "early"
                if session._cancel_pending:
                    session.cancel()
                    return
            self.events.append(CallProgress(session, status))
            return
        if status >= 300:
            session._end("cancelled" if status == 487 else "failed", status)
            return
        if session.dialog is None:
            session.dialog = Dialog.from_response(session.invite, response, session.peer)
            self._dialogs[session.dialog.key] = session
        ack = session.dialog.create_request("ACK", self.local, via_host=self._local_ip_for(session.peer))
        ack.headers.set("CSeq", f"{session.invite.cseq[0]} ACK")
        self.transactions.send_request(ack, session.dialog.destination(), self.transactions.now)
        if session.state in ("calling", "early", "cancelling"):
            was_cancelling = session.state == "cancelling" or session._cancel_pending
            session.state = "confirmed"
            session.remote_sdp = response.body
            if was_cancelling:
                session.hangup()
                return
            self.events.append(CallAnswered(session, response.body))

    def _on_timeout(self, txn: ClientTransaction | ServerTransaction) -> None:
        if isinstance(txn, ServerTransaction):
            session = txn.user_data
            if isinstance(session, Session) and session.state == "answered":
                session.state = "confirmed"  # so hangup() sends a BYE (RFC 3261 §13.3.1.4)
                session.hangup()
                session._end("ack_timeout")
            return
        session, purpose = txn.user_data if isinstance(txn.user_data, tuple) else (None, "")
        if isinstance(session, Registration):
            session.on_timeout()
            return
        if not isinstance(session, Session):
            return
        if purpose == "invite":
            session._end("timeout", 408)
        elif purpose == "bye":
            session._end("local_bye")
        elif purpose == "refer":
            self.events.append(TransferStatus(session, 408, final=True))
