"""RFC 3261 §17 transactions over UDP, with no I/O.

The layer is fed datagrams-turned-messages and the current monotonic time; it returns what to send in
`outbox` and what happened in `events`, and tells the I/O layer when it next needs `on_timer`. This keeps
retransmission logic testable with a fake clock and no sockets (the h11/aioquic pattern).

Two RFC 6026 refinements are built in: a server INVITE transaction that sent a 2xx stays "accepted" to absorb
INVITE retransmissions and keeps retransmitting the 2xx until the ACK arrives; a client INVITE transaction that
got a 2xx stays "accepted" so that 2xx retransmissions reach the TU (which re-sends its ACK).
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum

from telephony.sip.message import Request, Response, SipMessage, make_response

T1 = 0.5
T2 = 4.0
T4 = 5.0
MAGIC_COOKIE = "z9hG4bK"

Address = tuple[str, int]


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


class State(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass
class RequestReceived:
    request: Request
    source: Address
    transaction: ServerTransaction | None  # None for an ACK to a 2xx, which has no transaction


@dataclass
class ResponseReceived:
    response: Response
    transaction: ClientTransaction


@dataclass
class TransactionTimeout:
    """A client transaction got no final response (Timer B/F), or a 2xx was never ACKed (Timer H)."""

    transaction: ClientTransaction | ServerTransaction


Event = RequestReceived | ResponseReceived | TransactionTimeout


def server_key(request: Request) -> Hashable:
    """Match requests to server transactions (RFC 3261 §17.2.3), with the RFC 2543 fallback for old branches."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return (branch, via.host, via.port, method)
    return ("2543", request.call_id, request.cseq[0], method, request.from_address.tag, via.host, via.port)


class Transaction:
    def __init__(self, layer: TransactionLayer, key: Hashable, request: Request, peer: Address) -> None:
        self.layer = layer
        self.key = key
        self.request = request
        self.peer = peer
        self.state = State.TRYING
        self.timers: dict[str, float] = {}
        self.user_data: object = None  # the TU's handle (dialog, call)

    def _start_timer(self, name: str, delay: float) -> None:
        deadline = self.layer.now + delay
        self.timers[name] = deadline
        self.layer._schedule(deadline, self, name)

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self.timers.clear()
        self.layer._forget(self)

    def fire(self, name: str) -> None:
        raise NotImplementedError


class ServerTransaction(Transaction):
    def __init__(self, layer: TransactionLayer, key: Hashable, request: Request, peer: Address) -> None:
        super().__init__(layer, key, request, peer)
        self.is_invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.is_invite else State.TRYING
        self.last_response: bytes | None = None
        self.final_status: int | None = None
        self._interval = T1

    def respond(self, response: Response) -> None:
        """Send a response within this transaction; the layer retransmits as the state machine requires."""
        if self.state in (State.COMPLETED, State.CONFIRMED, State.TERMINATED, State.ACCEPTED):
            return  # the final response is already out
        data = response.to_bytes()
        self.last_response = data
        self.layer._send(data, self.layer.response_destination(self.request, self.peer))
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.final_status = response.status
        if not self.is_invite:
            self.state = State.COMPLETED
            self._start_timer("J", 64 * T1)
        elif response.status < 300:
            self.state = State.ACCEPTED
            self.layer._index_ack(self)
            self._start_timer("G", T1)
            self._start_timer("H", 64 * T1)
        else:
            self.state = State.COMPLETED
            self._start_timer("G", T1)
            self._start_timer("H", 64 * T1)

    def reply(self, status: int, reason: str | None = None, *, to_tag: str | None = None) -> Response:
        response = make_response(self.request, status, reason, to_tag=to_tag)
        self.respond(response)
        return response

    def retransmission(self, request: Request) -> None:
        if request.method == "ACK":
            if self.state == State.COMPLETED:
                self.state = State.CONFIRMED
                self.timers.pop("G", None)
                self.timers.pop("H", None)
                self._start_timer("I", T4)
            elif self.state == State.ACCEPTED:
                self._terminate()
            return
        if self.last_response is not None:
            self.layer._send(self.last_response, self.layer.response_destination(self.request, self.peer))

    def fire(self, name: str) -> None:
        if name == "G" and self.state in (State.COMPLETED, State.ACCEPTED):
            assert self.last_response is not None
            self.layer._send(self.last_response, self.layer.response_destination(self.request, self.peer))
            self._interval = min(self._interval * 2, T2)
            self._start_timer("G", self._interval)
        elif name == "H":
            if self.state == State.ACCEPTED:
                self.layer.events.append(TransactionTimeout(self))
            self._terminate()
        elif name in ("I", "J"):
            self._terminate()


class ClientTransaction(Transaction):
    def __init__(self, layer: TransactionLayer, key: Hashable, request: Request, peer: Address) -> None:
        super().__init__(layer, key, request, peer)
        self.is_invite = request.method == "INVITE"
        self.state = State.CALLING if self.is_invite else State.TRYING
        self._data = request.to_bytes()
        self._interval = T1
        self.final_response: Response | None = None

    def start(self) -> None:
        self.layer._send(self._data, self.peer)
        self._start_timer("A" if self.is_invite else "E", T1)
        self._start_timer("B" if self.is_invite else "F", 64 * T1)

    def receive(self, response: Response) -> None:
        status = response.status
        if self.state in (State.TERMINATED,):
            return
        if status < 200:
            if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
                self.state = State.PROCEEDING
                self.timers.pop("A", None)
                self.layer.events.append(ResponseReceived(response, self))
            return
        if self.is_invite:
            if status < 300:
                first = self.state != State.ACCEPTED
                self.state = State.ACCEPTED
                self.timers.pop("A", None)
                self.timers.pop("B", None)
                if first:
                    self._start_timer("M", 64 * T1)
                self.final_response = response
                self.layer.events.append(ResponseReceived(response, self))
                return
            ack = self._ack_for(response)
            self.layer._send(ack.to_bytes(), self.peer)
            if self.state == State.COMPLETED:
                return  # retransmitted final response: re-ACK only
            self.state = State.COMPLETED
            self.timers.clear()
            self._start_timer("D", 32.0)
            self.final_response = response
            self.layer.events.append(ResponseReceived(response, self))
            return
        if self.state in (State.TRYING, State.PROCEEDING):
            self.state = State.COMPLETED
            self.timers.clear()
            self._start_timer("K", T4)
            self.final_response = response
            self.layer.events.append(ResponseReceived(response, self))

    def _ack_for(self, response: Response) -> Request:
        """ACK for a non-2xx final response: same branch, To from the response (RFC 3261 §17.1.1.3)."""
        ack = Request(method="ACK", uri=self.request.uri)
        for name in ("Via",):
            ack.headers.add(name, self.request.headers.values("Via")[0])
        for name in ("From", "Call-ID"):
            value = self.request.headers.get(name)
            if value is not None:
                ack.headers.add(name, value)
        ack.headers.add("To", response.headers.get("To") or "")
        ack.headers.add("CSeq", f"{self.request.cseq[0]} ACK")
        for route in self.request.headers.get_all("Route"):
            ack.headers.add("Route", route)
        ack.headers.add("Max-Forwards", "70")
        return ack

    def fire(self, name: str) -> None:
        if name in ("A", "E") and self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            if name == "A" and self.state != State.CALLING:
                return
            self.layer._send(self._data, self.peer)
            self._interval = self._interval * 2 if name == "A" else min(self._interval * 2, T2)
            if name == "E" and self.state == State.PROCEEDING:
                self._interval = T2
            self._start_timer(name, self._interval)
        elif name in ("B", "F"):
            if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
                self.layer.events.append(TransactionTimeout(self))
            self._terminate()
        elif name in ("D", "K", "M"):
            self._terminate()


class TransactionLayer:
    """All transactions of one UDP endpoint."""

    def __init__(self, local: Address) -> None:
        self.local = local
        self.now = 0.0
        self.outbox: list[tuple[bytes, Address]] = []
        self.events: list[Event] = []
        self._server: dict[Hashable, ServerTransaction] = {}
        self._client: dict[Hashable, ClientTransaction] = {}
        self._acks: dict[tuple[str, int], ServerTransaction] = {}
        self._timers: list[tuple[float, int, Transaction, str]] = []
        self._counter = itertools.count()

    # ---- inputs -------------------------------------------------------------------------------
    def receive(self, message: SipMessage, source: Address, now: float) -> None:
        self.now = now
        if isinstance(message, Request):
            self._receive_request(message, source)
        elif isinstance(message, Response):
            self._receive_response(message)

    def on_timer(self, now: float) -> None:
        self.now = now
        while self._timers and self._timers[0][0] <= now:
            deadline, _, txn, name = heapq.heappop(self._timers)
            if txn.timers.get(name) == deadline:
                del txn.timers[name]
                txn.fire(name)

    def next_deadline(self) -> float | None:
        while self._timers:
            deadline, _, txn, name = self._timers[0]
            if txn.timers.get(name) == deadline:
                return deadline
            heapq.heappop(self._timers)
        return None

    def send_request(self, request: Request, destination: Address, now: float) -> ClientTransaction | None:
        """Start a client transaction (ACK for a 2xx is sent statelessly and returns None)."""
        self.now = now
        if request.method == "ACK":
            self._send(request.to_bytes(), destination)
            return None
        branch = request.top_via.branch or ""
        key = (branch, request.method)
        txn = ClientTransaction(self, key, request, destination)
        self._client[key] = txn
        txn.start()
        return txn

    def take_outbox(self) -> list[tuple[bytes, Address]]:
        out, self.outbox = self.outbox, []
        return out

    def take_events(self) -> list[Event]:
        out, self.events = self.events, []
        return out

    def find_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (same branch, RFC 3261 §9.2)."""
        via = cancel.top_via
        branch = via.branch or ""
        if branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
            return self._server.get((branch, via.host, via.port, "INVITE"))
        key = ("2543", cancel.call_id, cancel.cseq[0], "INVITE", cancel.from_address.tag, via.host, via.port)
        return self._server.get(key)

    @property
    def active(self) -> int:
        return len(self._server) + len(self._client)

    # ---- helpers used by transactions ---------------------------------------------------------
    @staticmethod
    def response_destination(request: Request, source: Address) -> Address:
        """RFC 3261 §18.2.2 with RFC 3581 rport: reply where the request came from when asked to."""
        via = request.top_via
        if "rport" in via.params or "received" in via.params:
            return source
        return (source[0], via.port or 5060)

    def _send(self, data: bytes, destination: Address) -> None:
        self.outbox.append((data, destination))

    def _schedule(self, deadline: float, txn: Transaction, name: str) -> None:
        heapq.heappush(self._timers, (deadline, next(self._counter), txn, name))

    def _forget(self, txn: Transaction) -> None:
        if isinstance(txn, ServerTransaction):
            self._server.pop(txn.key, None)
            ack_key = (txn.request.call_id, txn.request.cseq[0])
            if self._acks.get(ack_key) is txn:
                del self._acks[ack_key]
        else:
            self._client.pop(txn.key, None)

    def _index_ack(self, txn: ServerTransaction) -> None:
        self._acks[(txn.request.call_id, txn.request.cseq[0])] = txn

    def _receive_request(self, request: Request, source: Address) -> None:
        key = server_key(request)
        txn = self._server.get(key)
        if request.method == "ACK":
            if txn is not None and txn.state != State.ACCEPTED:
                txn.retransmission(request)  # ACK for a non-2xx final response: absorbed here
                return
            accepted = self._acks.get((request.call_id, request.cseq[0]))
            if accepted is not None:
                accepted.retransmission(request)
            self.events.append(RequestReceived(request, source, None))
            return
        if txn is not None:
            txn.retransmission(request)
            return
        txn = ServerTransaction(self, key, request, source)
        self._server[key] = txn
        self.events.append(RequestReceived(request, source, txn))

    def _receive_response(self, response: Response) -> None:
        try:
            branch = response.top_via.branch or ""
            method = response.cseq[1]
        except (ValueError, IndexError):
            return
        txn = self._client.get((branch, method))
        if txn is None:
            return  # stray response: discarded silently (RFC 3261 §18.1.2)
        txn.receive(response)
