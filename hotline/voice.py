"""The voice adapter: a `telephony.Call` seen as an `ivr_flows.Channel` (say = TTS + play).

It lives in the composition layer because it is the one place that knows both sides.
"""

from __future__ import annotations

from ivr_flows.channel import ChannelClosed
from telephony.call import Call, CallEndedError
from tts.base import Synthesizer


class VoiceChannel:
    def __init__(self, call: Call, synthesizer: Synthesizer, *, voice: str | None = None) -> None:
        self.call = call
        self.synthesizer = synthesizer
        self.voice = voice

    @property
    def conversation_id(self) -> str:
        return self.call.id

    @property
    def caller(self) -> str | None:
        return self.call.caller_number

    async def say(self, text: str, *, interruptible: bool = True, language: str = "en") -> bool:
        pcm = await self.synthesizer.synthesize(text, voice=self.voice, language=language)
        try:
            if interruptible and self.call.has_pending_digits:
                self.call.event("prompt_skipped", text)  # a key pressed earlier already barged in
                return False
            if interruptible:
                self.call.interrupt_on_digit = True
            try:
                return await self.call.play(pcm, text=text)
            finally:
                self.call.interrupt_on_digit = False
        except CallEndedError:
            raise ChannelClosed(self.call.id) from None

    async def next_digit(self, timeout: float | None) -> str | None:
        try:
            return await self.call.next_digit(timeout)
        except CallEndedError:
            raise ChannelClosed(self.call.id) from None

    async def hangup(self) -> None:
        self.call.hangup("server_bye")

    def note(self, type: str, value: str) -> None:
        self.call.event(type, value)
