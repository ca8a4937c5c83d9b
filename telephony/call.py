"""`Call`: what the rest of hotline sees of one call leg — play audio, get digits, hang up, transfer.

It hides SIP and RTP: flows, the bridge and the call-record writer use only this object and the
`CallObserver` protocol. Times are timezone-aware UTC, as they go into call records.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from telephony.endpoint import SipEndpoint
    from telephony.media import FrameConsumer, RtpStream
    from telephony.sip.useragent import Session


class CallEndedError(Exception):
    """Raised by waiting operations when the call is gone."""


T = TypeVar("T")


def quiet(task: asyncio.Future[T]) -> asyncio.Future[T]:
    """A helper task of a call (a key wait, music) whose failure — the caller hung up — matters only through
    the call itself: its exception is read when it ends, so asyncio does not log it as never retrieved."""
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


class CallObserver(Protocol):
    """Receives every step of every call as it happens (the call-record writer implements this)."""

    def call_started(self, call: Call) -> None: ...
    def call_answered(self, call: Call) -> None: ...
    def call_event(self, call: Call, type: str, value: str) -> None: ...
    def call_ended(self, call: Call) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def _user_of(uri: str) -> str | None:
    text = uri.split(":", 1)[1] if ":" in uri else uri
    if "@" not in text:
        return None
    return text.split("@", 1)[0].split(";", 1)[0] or None


class Call:
    def __init__(
        self,
        endpoint: SipEndpoint,
        session: Session,
        stream: RtpStream,
        *,
        direction: str,
        from_uri: str,
        to_uri: str,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.endpoint = endpoint
        self.session = session
        self.stream = stream
        self.direction = direction
        self.sip_call_id = session.call_id
        self.from_uri = from_uri
        self.to_uri = to_uri
        self.caller_number = _user_of(from_uri)
        self.started_at = utcnow()
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.end_reason: str | None = None
        self.hangup_reason: str | None = None  # why we are hanging up, once we started to
        self.codec: str | None = None
        self.on_hold = False
        self.variables: dict[str, str] = {}
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._ended = asyncio.Event()
        self._confirmed = asyncio.Event()
        self.sdp_version = 1
        self.interrupt_on_digit = False  # set while an interruptible prompt plays: DTMF barges in

    def __repr__(self) -> str:
        return f"<Call {self.id[:8]} {self.direction} {self.from_uri} -> {self.to_uri} {self.state}>"

    @property
    def state(self) -> str:
        if self.ended_at is not None:
            return "ended"
        if self.answered_at is not None:
            return "answered"
        return "ringing"

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def remote_media(self) -> str | None:
        remote = self.stream.remote
        return f"{remote[0]}:{remote[1]}" if remote else None

    # ---- audio out -----------------------------------------------------------------------
    async def play(self, pcm: np.ndarray, *, text: str | None = None) -> bool:
        """Play 8 kHz int16 PCM; True when it played to the end, False if stopped (barge-in, hang-up)."""
        if self.ended:
            raise CallEndedError(self.id)
        if text is not None:
            self.event("prompt", text)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def finished(completed: bool) -> None:
            if not done.done():
                done.set_result(completed)

        self.stream.play(pcm, finished)
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({done, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if not done.done():
            raise CallEndedError(self.id)
        return done.result()

    def stop_playback(self) -> None:
        self.stream.stop_playback()

    def send_dtmf(self, digits: str) -> None:
        for digit in digits:
            self.stream.send_dtmf(digit)

    # ---- input ---------------------------------------------------------------------------
    async def next_digit(self, timeout: float | None = None) -> str | None:
        """The next DTMF digit (RFC 4733 or SIP INFO), or None on timeout. Raises CallEndedError."""
        if not self._digits.empty():
            return self._digits.get_nowait()
        if self.ended:
            raise CallEndedError(self.id)
        getter = asyncio.ensure_future(self._digits.get())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            done, _ = await asyncio.wait(
                {getter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ended.cancel()
            if not getter.done():
                getter.cancel()
        if getter in done:
            return getter.result()
        if self.ended:
            raise CallEndedError(self.id)
        return None

    def pending_digits(self) -> str:
        out = []
        while not self._digits.empty():
            out.append(self._digits.get_nowait())
        return "".join(out)

    def add_audio_consumer(self, consumer: FrameConsumer) -> None:
        """Receive the caller's audio, one 20 ms int16 frame (or None for a gap) per media tick."""
        self.stream.consumers.append(consumer)

    def remove_audio_consumer(self, consumer: FrameConsumer) -> None:
        if consumer in self.stream.consumers:
            self.stream.consumers.remove(consumer)

    def add_sent_audio_consumer(self, consumer: FrameConsumer) -> None:
        """Receive what we send to this leg (prompts, music, a bridged party), one frame (or None) per tick."""
        self.stream.sent_consumers.append(consumer)

    def remove_sent_audio_consumer(self, consumer: FrameConsumer) -> None:
        if consumer in self.stream.sent_consumers:
            self.stream.sent_consumers.remove(consumer)

    # ---- control -------------------------------------------------------------------------
    def hangup(self, reason: str = "server_bye") -> None:
        if self.ended or self.hangup_reason is not None:
            return
        self.hangup_reason = reason
        self.endpoint._hangup(self)

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def wait_confirmed(self) -> None:
        await self._confirmed.wait()

    async def refer(self, target: str, timeout: float = 32.0) -> int:
        """Blind transfer with REFER; returns the final status the transferee reported (200 = success)."""
        return await self.endpoint._refer(self, target, timeout)

    # ---- called by the endpoint ------------------------------------------------------------
    def event(self, type: str, value: str) -> None:
        self.endpoint._observe("call_event", self, type, value)

    @property
    def has_pending_digits(self) -> bool:
        return not self._digits.empty()

    def _digit_received(self, digit: str, how: str) -> None:
        self._digits.put_nowait(digit)
        self.event("dtmf", digit)
        if self.interrupt_on_digit:
            self.stream.stop_playback()

    def _mark_confirmed(self) -> None:
        self._confirmed.set()

    def _mark_ended(self, reason: str) -> None:
        if self.ended_at is None:
            self.ended_at = utcnow()
            self.end_reason = reason
        self._ended.set()
        self._confirmed.set()
