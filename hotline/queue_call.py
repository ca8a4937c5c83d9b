"""A caller waiting in a queue, until an agent takes them (or they choose a callback or voicemail).

While waiting the caller hears their position and expected wait, then music, every `announce_period`;
pressing 1 keeps their place and hangs up (we call back when it is their turn), pressing 2 leaves a
message. When the ACD reserves an agent we ring the agent's phone; no answer within the ring timeout
puts the caller back at the front for the next agent. Answered, the two legs are bridged through our
media path (recorded and transcribed by the taps), or the caller is REFERred when the queue says so.
Every step goes to the router, so the agent is freed whatever happens — including the caller hanging up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from callcenter_api.models import Queue
from callcenter_api.routing.router import Offer, QueueFull, QueueNotFound, Router
from hotline.acd import Acd
from hotline.hold_music import BUILT_IN, HoldMusic
from ivr_flows.channel import ChannelClosed, RecordRequest, TransferRequest, TransferResult
from telephony.bridge import Bridge
from telephony.call import Call, CallEndedError, quiet
from telephony.endpoint import CallFailed

log = logging.getLogger(__name__)

TEXTS = {
    "en": {
        "position": "You are number {position} in the queue.",
        "wait": "The expected wait is about {minutes} {unit}.",
        "options": "To keep your place and be called back, press 1. To leave a message, press 2.",
        "connecting": "Connecting you now.",
        "callback": "Thank you. We will call you back on this number when an agent is free. Goodbye.",
        "voicemail": "Please leave your message after the tone. Press hash when you are done.",
        "thanks": "Thank you for your message. Goodbye.",
        "busy": "All our agents are busy.",
    },
    "zh": {
        "position": "您前面还有{ahead}位客户。",
        "wait": "预计等待约{minutes}分钟。",
        "options": "保留排队位置并等待回电，请按1；留言请按2。",
        "connecting": "正在为您接通。",
        "callback": "好的，客服有空时会回拨这个号码。再见。",
        "voicemail": "请在提示音后留言，结束请按井号键。",
        "thanks": "感谢您的留言，再见。",
        "busy": "客服忙，请稍候。",
    },
}


class Taps(Protocol):
    """What runs while a caller and an agent are bridged (recording both sides, live transcription).

    The factory gets (customer leg, agent leg, the customer's conversation id): for a callback the customer's
    leg is an outbound call of ours, whose words and recording belong to the conversation of the call in which
    they asked to be called back."""

    def stop(self) -> None: ...


TapsFactory = Callable[..., Taps]  # (customer, agent, conversation_id, *, record: bool) -> Taps


class _NoTaps:
    def stop(self) -> None:
        pass


QUICK_MATCH_SECONDS = 0.8  # how long to wait for a free agent before the first announcement


def callback_uri(call: Call) -> str | None:
    """Where to call the caller back: their From address (without tag and display name)."""
    match = re.search(r"<?(sips?:[^>;\s]+)", call.from_uri)
    return match.group(1) if match else None


@dataclass(frozen=True)
class QueueServices:
    """What a call needs to wait in a queue; given to each VoiceChannel by the service."""

    router: Router
    acd: Acd
    taps: TapsFactory | None = None
    keep: Callable[[Any], None] | None = None  # keeps background tasks (callbacks) alive
    # waits until the call's records are in the database (the queue entry refers to its conversation)
    written: Callable[[], Awaitable[None]] | None = None
    music: HoldMusic = field(default_factory=HoldMusic)  # queues' music files, decoded once


@dataclass
class QueueCall:
    call: Call
    say: Callable[..., Any]  # VoiceChannel.say
    record: Callable[[RecordRequest], Any]  # VoiceChannel.record
    router: Router
    acd: Acd
    taps: TapsFactory | None = None
    note: Callable[[str, str], None] = lambda type, value: None
    callbacks: Callable[[Any], None] | None = None  # where callback tasks are kept (the service)
    record_bridge: bool = True  # record the bridge with the agent (not when the whole call is recorded already)
    record_callback: bool = True  # record a callback's bridge (a leg of its own, after this call ended)
    written: Callable[[], Awaitable[None]] | None = None  # see QueueServices.written
    music: HoldMusic | None = None  # see QueueServices.music
    _music: np.ndarray = field(default_factory=lambda: BUILT_IN, init=False, repr=False)

    async def run(self, request: TransferRequest) -> TransferResult:
        assert request.queue is not None
        if self.written is not None:
            await self.written()  # a flow may transfer at once: the call's conversation row must exist first
        try:
            queue = await asyncio.to_thread(self.router.queue, request.queue)
            entry = await asyncio.to_thread(
                lambda: self.router.enqueue(
                    request.queue or "", self.call.id, channel="voice", priority=request.priority,
                    skills=dict.fromkeys(request.skills, 1), language=request.language,
                    caller=self.call.caller_number,
                )
            )  # fmt: skip
        except (QueueNotFound, QueueFull) as exc:
            return TransferResult(False, str(exc))
        texts = TEXTS.get(request.language, TEXTS["en"])
        self.call.event("queue", f"{queue.name} entry {entry.id}")
        if self.music is not None:
            self._music = await asyncio.to_thread(self.music.for_queue, queue.music)
        resolved = False
        try:
            result = await self._wait(queue, entry.id, texts, request)
            resolved = True
            return result
        finally:
            self.acd.forget(entry.id)
            if not resolved:
                await asyncio.to_thread(self.router.caller_left, entry.id)

    async def _wait(
        self, queue: Queue, entry_id: str, texts: dict[str, str], request: TransferRequest
    ) -> TransferResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + queue.max_wait
        offer_future = self.acd.offers_for(entry_id)
        with contextlib.suppress(TimeoutError):  # a free agent: no announcement at all
            await asyncio.wait_for(asyncio.shield(offer_future), QUICK_MATCH_SECONDS)
        first = True
        while True:
            if not offer_future.done():
                await self._announce(entry_id, texts, first, offer_future)
                first = False
            offer = await self._hold(offer_future, min(queue.announce_period, max(0.0, deadline - loop.time())))
            if isinstance(offer, Offer):
                result = await self._connect(offer, texts)
                if result is not None:
                    return result
                offer_future = self.acd.offers_for(entry_id)  # not answered: back at the front, next agent
                continue
            if offer == "1":
                return await self._callback(entry_id, texts)
            if offer == "2":
                return await self._voicemail(entry_id, texts)
            if loop.time() >= deadline:
                return await self._overflow(queue, entry_id, texts, request)

    async def _announce(
        self, entry_id: str, texts: dict[str, str], first: bool, offer: asyncio.Future[Offer]
    ) -> None:
        """Position and expected wait; an offer arriving meanwhile cuts it short."""
        position = await asyncio.to_thread(self.router.position, entry_id)
        minutes = max(1, round(position.estimated_wait / 60))
        parts = [texts["position"].format(position=position.position, ahead=position.position - 1),
                 texts["wait"].format(minutes=minutes, unit="minute" if minutes == 1 else "minutes")]  # fmt: skip
        if first:
            parts.append(texts["options"])
        self.note("queue_position", f"{position.position} of {position.waiting}, ~{position.estimated_wait} s")
        speaking = asyncio.ensure_future(self.say(" ".join(parts), interruptible=True))
        done, _ = await asyncio.wait({speaking, offer}, return_when=asyncio.FIRST_COMPLETED)
        if speaking not in done:
            self.call.stop_playback()
        await speaking  # raises if the caller hung up

    async def _hold(self, offer_future: asyncio.Future[Offer], seconds: float) -> Offer | str | None:
        """Music until an offer, a key (1/2), or `seconds` pass. Raises CallEndedError if they hang up."""
        if offer_future.done():
            return offer_future.result()
        music = quiet(asyncio.ensure_future(self._play_music(seconds)))
        digit = quiet(asyncio.ensure_future(self.call.next_digit(seconds)))
        ended = asyncio.ensure_future(self.call.wait_ended())
        try:
            done, _ = await asyncio.wait({offer_future, digit, ended, music}, return_when=asyncio.FIRST_COMPLETED)
            if ended in done:
                raise CallEndedError(self.call.id)
            if offer_future in done:
                return offer_future.result()
            if digit in done:
                pressed = digit.result()
                return pressed if pressed in ("1", "2") else None
            return None
        finally:
            self.call.stop_playback()
            for task in (music, digit, ended):
                task.cancel()

    async def _play_music(self, seconds: float) -> None:
        """`seconds` of the queue's music (at least one), the file played again and again: each play encodes
        at most the file (a minute), not the whole wait."""
        left = int(max(1.0, seconds) * 8000)
        while left > 0:
            part = self._music[:left]
            if not await self.call.play(part):
                return  # stopped (an offer, a key)
            left -= len(part)

    async def _connect(self, offer: Offer, texts: dict[str, str]) -> TransferResult | None:
        """Ring the reserved agent; None if they did not answer (the router has put the caller back)."""
        if offer.transfer == "refer" and offer.sip_uri:
            status = await self.call.refer(offer.sip_uri)
            if 200 <= status < 300:
                await asyncio.to_thread(self.router.answered, offer.entry_id)
                self.call.event("transfer", f"referred to {offer.sip_uri}")
                await asyncio.to_thread(self.router.ended, offer.entry_id, "referred")
                self.call.hangup("transferred")
                return TransferResult(True, f"REFER to {offer.agent_name} accepted ({status})")
            await asyncio.to_thread(self.router.not_answered, offer.entry_id, f"refer_{status}")
            return None
        # the caller keeps hearing the music while the agent's phone rings (not silence for up to ring_timeout)
        music = quiet(asyncio.ensure_future(self._play_music(offer.ring_timeout)))
        try:
            self.note("offer", f"ringing {offer.agent_name}")
            agent = await self.call.endpoint.dial(
                offer.sip_uri or "", from_user=self.call.caller_number, timeout=offer.ring_timeout
            )
        except (CallFailed, TimeoutError, ValueError, OSError) as exc:
            log.info("agent %s did not take %s: %s", offer.agent_name, self.call, exc)
            await asyncio.to_thread(self.router.not_answered, offer.entry_id, "no_answer")
            return None
        finally:
            self.call.stop_playback()
            music.cancel()
        if self.call.ended:
            agent.hangup("caller_gone")
            raise CallEndedError(self.call.id)
        await asyncio.to_thread(self.router.answered, offer.entry_id)
        self.call.event("transfer", f"bridged to {offer.agent_name} <{offer.sip_uri}>")
        await self._bridge(self.call, agent, offer)
        return TransferResult(True, f"bridged to {offer.agent_name}")

    async def _bridge(self, customer: Call, agent: Call, offer: Offer) -> None:
        """Bridge the legs (recorded and transcribed) until one hangs up, then end the entry (wrap-up).

        When the caller hangs up, the flow's task is cancelled inside `Bridge.run`: the entry is still ended
        (as the caller's hang-up) before the cancellation goes on.
        """
        record = self.record_callback if customer is not self.call else self.record_bridge
        taps = self.taps(customer, agent, offer.conversation_id, record=record) if self.taps else _NoTaps()
        first = "a"  # a cancelled bridge: the customer's side went away
        try:
            first = await Bridge(customer, agent).run()
        finally:
            taps.stop()
            reason = "agent_bye" if first == "b" else "caller_bye"
            await asyncio.to_thread(self.router.ended, offer.entry_id, reason)

    async def _callback(self, entry_id: str, texts: dict[str, str]) -> TransferResult:
        uri = callback_uri(self.call)
        if uri is None:
            return TransferResult(False, "no number to call back")
        await asyncio.to_thread(self.router.set_callback, entry_id, uri)
        self.acd.forget(entry_id)
        await self.say(texts["callback"], interruptible=False)
        self.call.event("callback", uri)
        task = asyncio.ensure_future(self._call_back(entry_id, uri))
        if self.callbacks is not None:
            self.callbacks(task)
        self.call.hangup("server_bye")
        return TransferResult(True, f"callback to {uri}")

    async def _call_back(self, entry_id: str, uri: str) -> None:
        """Our side of a callback: wait for the turn, ring the agent, then the customer, then bridge them."""
        endpoint = self.call.endpoint
        while True:
            offer = await self.acd.offers_for(entry_id)
            try:
                agent = await endpoint.dial(offer.sip_uri or "", timeout=offer.ring_timeout)
            except (CallFailed, TimeoutError, ValueError, OSError):
                await asyncio.to_thread(self.router.not_answered, offer.entry_id, "no_answer")
                continue
            try:
                customer = await endpoint.dial(uri, timeout=30)
            except (CallFailed, TimeoutError, ValueError, OSError) as exc:
                log.info("callback to %s failed: %s", uri, exc)
                agent.hangup("callback_failed")
                await asyncio.to_thread(self.router.caller_left, offer.entry_id)
                return
            await asyncio.to_thread(self.router.answered, offer.entry_id)
            customer.event("transfer", f"callback bridged to {offer.agent_name}")
            await self._bridge(customer, agent, offer)
            return

    async def _voicemail(self, entry_id: str, texts: dict[str, str]) -> TransferResult:
        await asyncio.to_thread(self.router.leave, entry_id, "voicemail", "caller chose voicemail")
        self.acd.forget(entry_id)
        await self.say(texts["voicemail"], interruptible=False)
        result = await self.record(RecordRequest(beep=True, max_seconds=120, finish_on_key="#", silence_timeout=5.0))
        with contextlib.suppress(CallEndedError, ChannelClosed):
            await self.say(texts["thanks"], interruptible=False)
        return TransferResult(True, f"voicemail {result.recording_id}")

    async def _overflow(self, queue: Queue, entry_id: str, texts: dict[str, str],
                        request: TransferRequest) -> TransferResult:  # fmt: skip
        overflow = queue.overflow or {}
        kind = overflow.get("kind")
        if kind == "voicemail":
            return await self._voicemail(entry_id, texts)
        if kind == "callback":
            return await self._callback(entry_id, texts)
        await asyncio.to_thread(self.router.leave, entry_id, "overflowed", f"waited {queue.max_wait} s")
        self.acd.forget(entry_id)
        if kind == "queue" and overflow.get("target"):
            self.note("transfer", f"overflow to {overflow['target']}")
            target = TransferRequest(queue=overflow["target"], priority=request.priority, skills=request.skills,
                                     language=request.language)  # fmt: skip
            return await dataclasses.replace(self).run(target)
        await self.say(texts["busy"], interruptible=False)
        return TransferResult(False, f"no agent within {queue.max_wait} s")
