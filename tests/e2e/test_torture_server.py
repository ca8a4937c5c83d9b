"""RFC 4475 torture messages, plus plain garbage, against a running `hotline serve` over UDP.

The unit suite proves the sans-IO core answers each message correctly; this proves the same through the
real socket, transaction timers and call path, and that nothing a peer sends can stop the server. One
server takes all messages (module scope) so the suite stays fast and the survival check at the end covers
everything sent before it.

Safety: each message gets a new topmost loopback Via (so answers come back to this test) and every
192.0.2.x becomes 127.0.0.x (same length, so Content-Length stays right); `SipProbe.send` refuses any
non-loopback destination. In-dialog requests from the server go to the Contact only when it is an IP
address, and every Contact in these messages is a hostname, so they would come back to us as well.
"""

from __future__ import annotations

import csv
import ipaddress
import random
import re
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import LOOPBACK, HotlineServer, call_ended

TORTURE = Path(__file__).resolve().parents[2].parent / "shared" / "sip-torture"
LISTEN_WINDOW = 1.0  # how long silence must last before "no response" counts as the answer
pytestmark = pytest.mark.e2e

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}
_C_LINE = re.compile(rb"^c=IN IP4 (\S+)", re.MULTILINE)


def _manifest() -> list[dict[str, str]]:
    if not TORTURE.is_dir():
        return []
    with (TORTURE / "manifest.tsv").open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


MANIFEST = _manifest()


def accepts(spec: str, status: int | None) -> bool:
    """The manifest's notation: comma-separated codes and ranges, 'drop'/'none' meaning no response."""
    for part in (p.strip() for p in spec.split(",")):
        if part in ("drop", "none"):
            if status is None:
                return True
        elif status is None:
            continue
        elif "-" in part:
            low, high = part.split("-")
            if int(low) <= status <= int(high):
                return True
        elif int(part) == status:
            return True
    return False


def insert_via(data: bytes, port: int, branch: str, *, at: int = 0) -> bytes:
    """Put our Via right after the start line that begins at offset `at`."""
    end = data.index(b"\n", at) + 1
    via = f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch={branch};rport\r\n".encode()
    return data[:end] + via + data[end:]


def loopback_only(data: bytes) -> bytes:
    rewritten = data.replace(b"192.0.2.", b"127.0.0.")
    assert len(rewritten) == len(data)
    for host in _C_LINE.findall(rewritten):  # media must never leave loopback either
        assert ipaddress.ip_address(host.decode()).is_loopback, f"non-loopback SDP address {host!r}"
    return rewritten


# --- a minimal SIP peer over one loopback socket -----------------------------------------------------------


@dataclass
class SipMessage:
    start: str
    headers: list[tuple[str, str]]
    raw: bytes

    @property
    def status(self) -> int | None:
        parts = self.start.split(" ", 2)
        return int(parts[1]) if parts[0] == "SIP/2.0" and len(parts) > 1 and parts[1].isdigit() else None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if _COMPACT.get(key.lower(), key.lower()) == wanted:
                return value
        return None

    def headers_named(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if _COMPACT.get(k.lower(), k.lower()) == wanted]

    @property
    def branch(self) -> str | None:
        via = self.header("via") or ""
        match = re.search(r";\s*branch\s*=\s*([^;,\s]+)", via)
        return match.group(1) if match else None

    @classmethod
    def parse(cls, raw: bytes) -> SipMessage:
        head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        lines = head.split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded continuation
                headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers, raw)


@dataclass
class Exchange:
    responses: list[SipMessage] = field(default_factory=list)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses if r.status is not None]

    @property
    def finals(self) -> list[SipMessage]:
        return [r for r in self.responses if (r.status or 0) >= 200]

    @property
    def final_status(self) -> int | None:
        return self.finals[0].status if self.finals else None


class SipProbe:
    """Sends raw datagrams to the server and collects the responses that carry one of our branches.

    Requests the server sends us (a BYE after an ACK timeout, say) are answered 200 so nothing lingers.
    """

    def __init__(self, server: HotlineServer) -> None:
        self.server_addr = (LOOPBACK, server.sip_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port: int = self.sock.getsockname()[1]
        self.requests_from_server: list[SipMessage] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        assert ipaddress.ip_address(self.server_addr[0]).is_loopback
        self.sock.sendto(data, self.server_addr)

    def new_branch(self, name: str) -> str:
        return f"z9hG4bK-t{name}-{secrets.token_hex(4)}"

    def collect(self, branches: set[str], *, window: float = LISTEN_WINDOW, linger: float = 0.0) -> Exchange:
        """Responses for `branches` until a final one (then `linger` s more) or `window` s of nothing."""
        exchange = Exchange()
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                raw, source = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            assert source == self.server_addr, f"datagram from unexpected {source}"
            message = SipMessage.parse(raw)
            if message.status is None:
                self._answer(message)
                continue
            if message.branch not in branches:
                continue  # a late retransmission for an earlier message
            exchange.responses.append(message)
            if message.status >= 200 and len(exchange.finals) == 1:
                deadline = min(deadline, time.monotonic() + linger)
        return exchange

    def _answer(self, request: SipMessage) -> None:
        self.requests_from_server.append(request)
        if request.start.startswith("ACK "):
            return
        lines = [f"{name}: {request.header(name)}" for name in ("Via", "From", "To", "Call-ID", "CSeq")]
        self.send(("SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())

    def end_dialog(self, ok: SipMessage, name: str) -> Exchange:
        """ACK a 2xx to INVITE and BYE the call; returns the BYE's exchange."""
        cseq = int((ok.header("CSeq") or "0").split()[0])
        contact = ok.header("Contact") or ""
        target = contact[contact.find("<") + 1 : contact.find(">")] if "<" in contact else contact
        target = target or f"sip:hotline@{LOOPBACK}:{self.server_addr[1]}"

        def request(method: str, number: int, branch: str) -> bytes:
            lines = [
                f"{method} {target} SIP/2.0",
                f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};branch={branch};rport",
                "Max-Forwards: 70",
                f"From: {ok.header('From')}",
                f"To: {ok.header('To')}",
                f"Call-ID: {ok.header('Call-ID')}",
                f"CSeq: {number} {method}",
                "Content-Length: 0",
            ]
            return ("\r\n".join(lines) + "\r\n\r\n").encode()

        self.send(request("ACK", cseq, self.new_branch(f"{name}-ack")))
        bye_branch = self.new_branch(f"{name}-bye")
        self.send(request("BYE", cseq + 1, bye_branch))
        return self.collect({bye_branch}, window=5.0)


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HotlineServer]:
    """One server for the whole module; its log is in the failure messages below."""
    with HotlineServer(tmp_path_factory.mktemp("torture-hotline")) as running:
        yield running


@pytest.fixture(scope="module")
def probe(server: HotlineServer) -> Iterator[SipProbe]:
    peer = SipProbe(server)
    yield peer
    peer.close()


def _options(probe: SipProbe, name: str) -> Exchange:
    branch = probe.new_branch(name)
    options = "\r\n".join(
        [
            f"OPTIONS sip:hotline@{LOOPBACK}:{probe.server_addr[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP {LOOPBACK}:{probe.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:probe@{LOOPBACK}:{probe.port}>;tag={secrets.token_hex(4)}",
            f"To: <sip:hotline@{LOOPBACK}:{probe.server_addr[1]}>",
            f"Call-ID: {name}-{secrets.token_hex(6)}@{LOOPBACK}",
            "CSeq: 1 OPTIONS",
            "Content-Length: 0",
            "",
            "",
        ]
    ).encode()
    probe.send(options)
    return probe.collect({branch}, window=3.0)


# --- the tests ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not MANIFEST, reason=f"no torture messages at {TORTURE}")
@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["name"])
def test_torture_message_gets_an_acceptable_answer(
    entry: dict[str, str], server: HotlineServer, probe: SipProbe
) -> None:
    name = entry["name"]
    original = (TORTURE / "messages" / f"{name}.dat").read_bytes()
    branch = probe.new_branch(name)
    data = insert_via(loopback_only(original), probe.port, branch)
    branches = {branch}
    trailing = data.find(b"\r\nINVITE sip:", 1)
    if entry["flags"] == "trailing_ignored" and trailing > 0:
        # the octets after Content-Length: 0 must be ignored; with our Via a wrong answer would reach us
        extra = probe.new_branch(f"{name}-trailing")
        data = insert_via(data, probe.port, extra, at=trailing + 2)
        branches.add(extra)

    probe.send(data)
    exchange = probe.collect(branches, linger=0.5 if len(branches) > 1 else 0.0)
    status = exchange.final_status
    context = f"{name} ({entry['title']}): got {exchange.statuses}, accept {entry['accept']!r}"
    assert accepts(entry["accept"], status), f"{context}\n--- server log ---\n{server.log_tail(30)}"
    if entry["kind"] == "response":
        assert not exchange.responses, context  # nothing is ever sent back for a response
    if len(branches) > 1:
        assert {r.branch for r in exchange.responses} == {branch}, f"answered the trailing octets: {context}"
        assert len(exchange.finals) == 1, context

    if status is not None and 200 <= status < 300 and entry["kind"] == "INVITE":
        ok = exchange.finals[0]
        bye = probe.end_dialog(ok, name)
        assert bye.final_status == 200, f"BYE for {name}: got {bye.statuses}\n{server.log_tail(30)}"
        record = server.wait_for_call(ok.header("Call-ID") or "", call_ended, timeout=5)
        assert record["end_reason"] == "caller_bye", record
    assert server.running, f"server died on {name}\n{server.log_tail(40)}"


GARBAGE: dict[str, bytes] = {
    "random-bytes": random.Random(4475).randbytes(1400),
    "empty": b"",
    "crlf-keepalive": b"\r\n\r\n",
    "max-size-junk": random.Random(65507).randbytes(65_507),  # the largest UDP payload over IPv4
    "nul-bytes": b"\x00" * 512,
    "start-line-only": b"INVITE sip:hotline@127.0.0.1 SIP/2.0\r\n",
    "utf8-junk": "¿SIP/2.0 ☎ ∞\r\n\r\n".encode(),
}


def _truncated_invite(probe: SipProbe, branch: str) -> bytes:
    ip = LOOPBACK
    sdp = "".join(f"{line}\r\n" for line in ("v=0", f"o=- 1 1 IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}"))
    sdp += "t=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    invite = "\r\n".join(
        [
            f"INVITE sip:hotline@{LOOPBACK}:{probe.server_addr[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP {LOOPBACK}:{probe.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:probe@{LOOPBACK}>;tag=trunc",
            f"To: <sip:hotline@{LOOPBACK}>",
            f"Call-ID: truncated-{secrets.token_hex(6)}",
            "CSeq: 1 INVITE",
            "Content-Type: application/sdp",
            f"Content-Length: {len(sdp)}",
            "",
            sdp,
        ]
    ).encode()
    return invite[: len(invite) - len(sdp) // 2]  # half the body is missing


@pytest.mark.parametrize("kind", [*GARBAGE, "truncated-invite", "truncated-headers"])
def test_garbage_is_dropped_or_rejected(kind: str, server: HotlineServer, probe: SipProbe) -> None:
    branch = probe.new_branch(kind)
    if kind == "truncated-invite":
        data = _truncated_invite(probe, branch)
    elif kind == "truncated-headers":
        data = _truncated_invite(probe, branch)[:120]
    else:
        data = GARBAGE[kind]
    probe.send(data)
    exchange = probe.collect({branch}, window=0.5)
    # an INVITE missing half its body must never be answered as a call
    assert exchange.final_status is None or 400 <= exchange.final_status < 500, exchange.statuses
    assert server.running, f"server died on {kind}\n{server.log_tail(40)}"


def test_server_still_serves_after_the_torture(server: HotlineServer, probe: SipProbe) -> None:
    """Runs last in this module: everything above went to the same server."""
    for data in GARBAGE.values():  # once more back to back, in case a test above was deselected
        probe.send(data)
    exchange = _options(probe, "survivor")
    assert exchange.final_status == 200, f"OPTIONS got {exchange.statuses}\n{server.log_tail(40)}"
    ok = exchange.finals[0]
    assert "INVITE" in (ok.header("Allow") or ""), ok.raw
    assert server.running
    assert not [r for r in server.calls() if not call_ended(r)], "a torture call is still up"
