"""Dialog state (RFC 3261 §12): who we talk to, with which tags, CSeq numbers and route set."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from telephony.sip.message import Request, Response
from telephony.sip.transaction import Address, new_branch
from telephony.sip.uri import SipUri, parse_address


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str  # our From (UAC) or To (UAS) header, without tag
    remote_uri: str
    remote_target: str  # the peer's Contact URI: where in-dialog requests go
    local_contact: str
    local_cseq: int
    remote_cseq: int | None = None
    route_set: list[str] = field(default_factory=list)
    peer: Address | None = None  # transport address the peer actually uses (symmetric signalling)

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_invite(cls, invite: Request, local_tag: str, local_contact: str, source: Address) -> Dialog:
        """UAS side: built from the INVITE we answer (RFC 3261 §12.1.1)."""
        contacts = invite.contacts()
        target = str(contacts[0].uri) if contacts else str(invite.from_address.uri)
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_address.tag,
            local_uri=_without_tag(invite.headers.get("To") or ""),
            remote_uri=_without_tag(invite.headers.get("From") or ""),
            remote_target=target,
            local_contact=local_contact,
            local_cseq=secrets.randbelow(10_000) + 1,
            remote_cseq=invite.cseq[0],
            route_set=invite.headers.values("Record-Route"),
            peer=source,
        )

    @classmethod
    def from_response(cls, invite: Request, response: Response, peer: Address) -> Dialog:
        """UAC side: built from the 2xx (or 1xx with tag) to our INVITE (RFC 3261 §12.1.2)."""
        contacts = response.contacts()
        target = str(contacts[0].uri) if contacts else invite.uri
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_address.tag or "",
            remote_tag=response.to_address.tag,
            local_uri=_without_tag(invite.headers.get("From") or ""),
            remote_uri=_without_tag(response.headers.get("To") or ""),
            remote_target=target,
            local_contact=invite.headers.get("Contact") or "",
            local_cseq=invite.cseq[0],
            route_set=list(reversed(response.headers.values("Record-Route"))),
            peer=peer,
        )

    def create_request(self, method: str, local: Address, *, via_host: str) -> Request:
        """A new in-dialog request with the next CSeq (ACK and CANCEL reuse numbers; callers handle those)."""
        if method != "ACK":
            self.local_cseq += 1
        request = Request(method=method, uri=self.remote_target)
        request.headers.add("Via", f"SIP/2.0/UDP {via_host}:{local[1]};branch={new_branch()};rport")
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", f"{self.local_uri};tag={self.local_tag}")
        to = self.remote_uri + (f";tag={self.remote_tag}" if self.remote_tag else "")
        request.headers.add("To", to)
        request.headers.add("Call-ID", self.call_id)
        request.headers.add("CSeq", f"{self.local_cseq} {method}")
        request.headers.add("Contact", self.local_contact)
        for route in self.route_set:
            request.headers.add("Route", route)
        return request

    def destination(self) -> Address:
        """Where in-dialog requests go: the first loose route, else the remote target, else the peer address."""
        target = self.route_set[0] if self.route_set else self.remote_target
        try:
            uri = parse_address(target).uri
        except ValueError:
            uri = None
        if isinstance(uri, SipUri) and _is_ip(uri.host):
            return (uri.host, uri.port or 5060)
        if self.peer is not None:
            return self.peer
        raise ValueError(f"cannot route to {target!r}")


def _without_tag(value: str) -> str:
    address = parse_address(value)
    address.params.pop("tag", None)
    return str(address)


def _is_ip(host: str) -> bool:
    parts = host.split(".")
    return (len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)) or ":" in host
