"""The asyncio side of the SIP user agent: one UDP socket, the sans-IO core, and Call objects.

Everything protocol-shaped happens in telephony.sip (no I/O); this module only moves datagrams, runs the
core's timers on the event loop, negotiates media with telephony.sdp and turns core events into `Call`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache

from telephony.call import Call, CallObserver, utcnow
from telephony.media import MediaClock, PortAllocator, PortsExhausted, RtpStream
from telephony.sdp import (
    MediaAnswer,
    NoCommonCodec,
    SdpError,
    accept_answer,
    answer_offer,
    build_offer,
    parse_sdp,
)
from telephony.sip.registration import Registration, RegistrationChanged
from telephony.sip.useragent import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallProgress,
    DtmfReceived,
    IncomingCall,
    OfferReceived,
    Session,
    TransferStatus,
    UaEvent,
    UserAgentCore,
)

log = logging.getLogger(__name__)

Address = tuple[str, int]
CallHandler = Callable[[Call], Awaitable[None]]


class CallFailed(Exception):
    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(f"call failed: {reason}" + (f" ({status})" if status else ""))
        self.status = status
        self.reason = reason


@lru_cache(maxsize=256)
def _route_source(peer_ip: str) -> str:
    """The local address the kernel would use to reach `peer_ip` (for Contact and SDP c= lines)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((peer_ip, 9))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class SipEndpoint(asyncio.DatagramProtocol):
    def __init__(
        self,
        *,
        host: str,
        port: int,
        rtp_ports: tuple[int, int],
        handler: CallHandler | None = None,
        observer: CallObserver | None = None,
        answer_delay: float = 0.0,
        rtp_timeout: float = 30.0,
        codecs: tuple[str, ...] = ("PCMU", "PCMA"),
        user: str = "hotline",
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.observer = observer
        self.answer_delay = answer_delay
        self.rtp_timeout = rtp_timeout
        self.codecs = codecs
        self.user = user
        self.ports = PortAllocator(*rtp_ports)
        self.clock = MediaClock()
        self.clock.housekeeping.append(self._check_rtp_timeouts)
        self.core: UserAgentCore | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pending: dict[Session, asyncio.Future[Call]] = {}
        self._refers: dict[Session, asyncio.Future[int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.datagrams_in = 0
        self.registered = False
        self._registration_waiter: asyncio.Future[RegistrationChanged] | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        assert self.transport is not None
        self.port = self.transport.get_extra_info("sockname")[1]
        self.core = UserAgentCore((self.host, self.port), user=self.user, local_ip_for=self.local_ip_for)
        self.clock.start()

    async def close(self, *, grace: float = 2.0) -> None:
        """Hang up every call (BYE, reason shutdown), give the BYEs a moment to be answered, then stop."""
        for call in list(self.calls.values()):
            call.hangup("shutdown")
        deadline = time.monotonic() + grace
        while self.calls and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for call in list(self.calls.values()):
            self._finish(call, "shutdown")
        for task in list(self._tasks):
            task.cancel()
        self.clock.stop()
        if self._timer:
            self._timer.cancel()
        if self.transport:
            self.transport.close()

    def local_ip_for(self, peer: Address) -> str:
        if self.host not in ("0.0.0.0", ""):
            return self.host
        return _route_source(peer[0])

    # ---- datagrams and timers -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.datagrams_in += 1
        assert self.core is not None and self._loop is not None
        try:
            self.core.receive_datagram(data, addr[:2], self._loop.time())
        except Exception:  # never let one datagram stop the endpoint
            log.exception("error handling SIP datagram from %s", addr)
        self._flush()

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %s", exc)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        assert self.core is not None and self._loop is not None
        self.core.on_timer(self._loop.time())
        self._flush()

    def _flush(self) -> None:
        """Send what the core produced, act on its events, and re-arm its timer."""
        core = self.core
        assert core is not None and self._loop is not None
        while True:
            for data, destination in core.take_outbox():
                if self.transport is not None:
                    self.transport.sendto(data, destination)
            events = core.take_events()
            if not events:
                break
            for event in events:
                try:
                    self._dispatch(event)
                except Exception:
                    log.exception("error handling %s", type(event).__name__)
        deadline = core.next_deadline()
        if deadline != self._timer_at:
            if self._timer:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer) if deadline is not None else None
            self._timer_at = deadline

    # ---- core events ------------------------------------------------------------------------
    def _dispatch(self, event: UaEvent) -> None:
        if isinstance(event, RegistrationChanged):
            self.registered = event.registered
            waiter = self._registration_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
            return
        if isinstance(event, IncomingCall):
            self._incoming(event.session)
            return
        call = event.session.handle
        if isinstance(event, CallEnded):
            self._on_ended(event, call if isinstance(call, Call) else None)
            return
        if not isinstance(call, Call):
            return
        if isinstance(event, CallConfirmed):
            call._mark_confirmed()
            call.event("state", "confirmed")
            self._start_handler(call)
        elif isinstance(event, DtmfReceived):
            call._digit_received(event.digit, "info")
        elif isinstance(event, OfferReceived):
            self._reoffer(call, event.sdp)
        elif isinstance(event, CallProgress):
            call.event("state", "ringing" if event.status in (180, 183) else f"progress {event.status}")
        elif isinstance(event, CallAnswered):
            self._outbound_answered(call, event.sdp)
        elif isinstance(event, TransferStatus):
            call.event("transfer", str(event.status))
            future = self._refers.get(event.session)
            if event.final and future is not None and not future.done():
                future.set_result(event.status)

    def _incoming(self, session: Session) -> None:
        try:
            stream = RtpStream(self.ports, self.host)
        except PortsExhausted:
            log.warning("rejecting INVITE %s: no free RTP port", session.call_id)
            session.reject(503, "No media ports available", headers={"Retry-After": "5"})
            return
        invite = session.invite
        call = Call(
            self, session, stream, direction="inbound",
            from_uri=str(invite.from_address.uri), to_uri=str(invite.to_address.uri),
        )
        session.handle = call
        self.calls[call.id] = call
        self._observe("call_started", call)  # rejected calls get a record too
        try:
            if not invite.body:
                raise SdpError("an SDP offer is required")
            answer = answer_offer(
                parse_sdp(invite.body), local_ip=self.local_ip_for(session.peer), local_port=stream.local_port,
                codecs=self.codecs, session_id=secrets.randbelow(2**31), session_version=1,
            )
        except NoCommonCodec as exc:
            call.event("state", f"rejected 488: {exc}")
            session.reject(488, "Not Acceptable Here", headers={"Warning": f'304 hotline "{exc}"'})
            return
        except SdpError as exc:
            call.event("state", f"rejected 488: bad SDP: {exc}")
            session.reject(488, "Not Acceptable Here", headers={"Warning": f'399 hotline "bad SDP: {exc}"'})
            return
        self._apply(call, answer)
        self._spawn(self._answer(call, stream, answer))

    async def _answer(self, call: Call, stream: RtpStream, answer: MediaAnswer) -> None:
        await stream.open()
        self.clock.add(stream)
        session = call.session
        if self.answer_delay > 0:
            self._sync_clock()
            session.ring()
            call.event("state", "ringing")
            self._flush()
            await asyncio.sleep(self.answer_delay)
        if session.ended or call.hangup_reason:
            return
        self._sync_clock()
        session.answer(answer.sdp.to_bytes())
        call.answered_at = utcnow()
        self._observe("call_answered", call)
        call.event("state", "answered")
        self._flush()

    def _apply(self, call: Call, answer: MediaAnswer) -> None:
        call.codec = answer.codec.name
        call.stream.configure(
            answer.codec, answer.remote_address, answer.telephone_event_pt, answer.direction
        )
        call.stream.on_dtmf = lambda digit: call._digit_received(digit, "rfc4733")

    def _reoffer(self, call: Call, body: bytes) -> None:
        session = call.session
        try:
            offer = parse_sdp(body)
            call.sdp_version += 1
            answer = answer_offer(
                offer,
                local_ip=self.local_ip_for(session.peer),
                local_port=call.stream.local_port,
                codecs=self.codecs,
                session_id=secrets.randbelow(2**31),
                session_version=call.sdp_version,
            )
        except SdpError as exc:
            log.info("rejecting re-INVITE on %s: %s", call.sip_call_id, exc)
            session.reject_reoffer(488)
            return
        self._apply(call, answer)
        session.accept_reoffer(answer.sdp.to_bytes())
        hold = answer.direction in ("recvonly", "inactive")
        if hold != call.on_hold:
            call.on_hold = hold
            call.event("state", "hold" if hold else "resumed")

    def _on_ended(self, event: CallEnded, call: Call | None) -> None:
        future = self._pending.pop(event.session, None)
        if future is not None and not future.done():
            future.set_exception(CallFailed(event.status, event.reason))
        refer = self._refers.pop(event.session, None)
        if refer is not None and not refer.done():
            refer.set_result(487)
        if call is None:
            return
        reason = event.reason
        if reason == "remote_bye":
            reason = "caller_bye" if call.direction == "inbound" else "remote_bye"
        elif reason == "local_bye":
            reason = call.hangup_reason or "server_bye"
        elif reason == "rejected" and call.hangup_reason:
            reason = call.hangup_reason
        elif reason == "timeout":
            reason = "no_answer"
        self._finish(call, reason)

    def _finish(self, call: Call, reason: str) -> None:
        if call.ended:
            return
        call._mark_ended(reason)
        self.clock.remove(call.stream)
        call.stream.close()
        self.calls.pop(call.id, None)
        call.event("state", "ended")
        self._observe("call_ended", call)

    def _start_handler(self, call: Call) -> None:
        if self.handler is None or call.direction != "inbound":
            return

        async def run() -> None:
            try:
                await self.handler(call)  # type: ignore[misc]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("call handler failed for %s", call)
            if not call.ended:
                call.hangup("server_bye")

        task = self._spawn(run())
        ended = asyncio.ensure_future(call.wait_ended())
        ended.add_done_callback(lambda _f: task.cancel())

    # ---- called by Call -----------------------------------------------------------------
    def _sync_clock(self) -> None:
        """The core only learns the time from datagrams and timers; an action of ours (hang up, REFER,
        a delayed answer) can come seconds after either, and timers armed from a stale clock fire at
        once — a CANCEL retransmitted 2 ms after the first, which a strict peer rejects."""
        assert self.core is not None and self._loop is not None
        self.core.transactions.now = self._loop.time()

    def _hangup(self, call: Call) -> None:
        call.stream.stop_playback()
        self._sync_clock()
        call.session.hangup()
        self._flush()

    async def _refer(self, call: Call, target: str, timeout: float) -> int:
        assert self._loop is not None
        future: asyncio.Future[int] = self._loop.create_future()
        self._refers[call.session] = future
        call.event("transfer", f"refer {target}")
        self._sync_clock()
        call.session.refer(target)
        self._flush()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return 408
        finally:
            self._refers.pop(call.session, None)

    def _observe(self, method: str, call: Call, *args: str) -> None:
        if self.observer is None:
            return
        try:
            getattr(self.observer, method)(call, *args)
        except Exception:
            log.exception("call observer %s failed", method)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _check_rtp_timeouts(self) -> None:
        if self.rtp_timeout <= 0:
            return
        now = time.monotonic()
        for call in list(self.calls.values()):
            stream = call.stream
            if call.answered_at is None or call.hangup_reason or not stream.receiving:
                continue
            if now - stream.last_received > self.rtp_timeout:
                log.info("no RTP for %.0f s on %s: hanging up", self.rtp_timeout, call)
                call.hangup("rtp_timeout")

    # ---- upstream registration ------------------------------------------------------------
    async def keep_registered(
        self,
        registrar: Address,
        aor: str,
        *,
        username: str | None,
        password: str | None,
        expires: int = 300,
    ) -> None:
        """Register and refresh at 80 % of the granted time; retry every 30 s after a failure. Runs until
        cancelled, then unregisters (expires=0)."""
        assert self.core is not None and self._loop is not None
        registration: Registration | None = None
        try:
            while True:
                self._registration_waiter = self._loop.create_future()
                if registration is None:
                    registration = self.core.register(
                        registrar,
                        aor,
                        username=username,
                        password=password,
                        expires=expires,
                        now=self._loop.time(),
                    )
                else:
                    self._sync_clock()
                    registration.start()
                self._flush()
                result = await self._registration_waiter
                if result.registered:
                    log.info("registered %s with %s:%s for %d s", aor, *registrar, result.expires)
                    await asyncio.sleep(max(5.0, result.expires * 0.8))
                else:
                    log.warning("registration of %s failed (%s); retrying in 30 s", aor, result.status)
                    await asyncio.sleep(30.0)
        finally:
            if registration is not None and registration.registered and self.transport is not None:
                registration.start(expires=0)
                self._flush()

    # ---- outbound calls ---------------------------------------------------------------------
    async def dial(
        self,
        target: str,
        *,
        destination: Address | None = None,
        from_user: str | None = None,
        timeout: float = 30.0,
    ) -> Call:
        """Place a call to a SIP URI; returns the answered Call or raises CallFailed."""
        assert self.core is not None and self._loop is not None
        if destination is None:
            destination = _destination_of(target)
        stream = RtpStream(self.ports, self.host)
        await stream.open()
        offer = build_offer(
            local_ip=self.local_ip_for(destination),
            local_port=stream.local_port,
            codecs=self.codecs,
            session_id=secrets.randbelow(2**31),
            session_version=1,
        )
        session = self.core.invite(
            target, destination, offer.to_bytes(), from_user=from_user, now=self._loop.time()
        )
        call = Call(
            self,
            session,
            stream,
            direction="outbound",
            from_uri=str(session.invite.from_address.uri),
            to_uri=target,
        )
        session.handle = call
        self.calls[call.id] = call
        future: asyncio.Future[Call] = self._loop.create_future()
        self._pending[session] = future
        self._observe("call_started", call)
        self._flush()
        try:
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, asyncio.CancelledError):
            call.hangup("no_answer")
            raise
        finally:
            self._pending.pop(session, None)

    def _outbound_answered(self, call: Call, body: bytes) -> None:
        future = self._pending.pop(call.session, None)
        try:
            answer = accept_answer(parse_sdp(body))
        except SdpError as exc:
            call.hangup("bad_sdp")
            if future is not None and not future.done():
                future.set_exception(CallFailed(None, f"bad SDP answer: {exc}"))
            return
        self._apply(call, answer)
        self.clock.add(call.stream)
        call.answered_at = utcnow()
        call._mark_confirmed()
        self._observe("call_answered", call)
        call.event("state", "answered")
        if future is not None and not future.done():
            future.set_result(call)


def _destination_of(target: str) -> Address:
    from telephony.sip.uri import SipUri, parse_uri

    uri = parse_uri(target)
    if not isinstance(uri, SipUri):
        raise ValueError(f"cannot dial {target!r}: not a sip: URI")
    with contextlib.suppress(OSError):
        return (socket.gethostbyname(uri.host), uri.port or 5060)
    raise ValueError(f"cannot resolve {uri.host!r}")
