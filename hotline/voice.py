"""The voice adapter: a `telephony.Call` seen as an `ivr_flows.Channel` (say = TTS + play, listen = keys and
speech with barge-in, transfer = bridge or REFER, record = voicemail).

It lives in the composition layer because it is the one place that knows both sides.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import numpy as np

from asr.recognizer import Engine
from hotline.listen import SpeechListener, SpeechSettings, listen
from hotline.queue_call import QueueCall, QueueServices
from hotline.taps import CallRecorder
from ivr_flows.channel import (
    ChannelClosed,
    Heard,
    ListenRequest,
    RecordRequest,
    RecordResult,
    TransferRequest,
    TransferResult,
)
from ivr_flows.schema import Prompt, RecordingSettings
from recordings.writer import RecordingWriter
from telephony.bridge import Bridge
from telephony.call import Call, CallEndedError
from telephony.endpoint import CallFailed
from tts.base import Synthesizer

log = logging.getLogger(__name__)
_BEEP = (0.3 * 32767 * np.sin(2 * np.pi * 1000 * np.arange(1600) / 8000)).astype(np.int16)  # 200 ms, 1 kHz


class VoiceChannel:
    kind = "voice"

    def __init__(
        self, call: Call, synthesizer: Synthesizer, *, voice: str | None = None,
        queue_targets: dict[str, str] | None = None, recordings: RecordingWriter | None = None,
        asr: Engine | None = None, speech_settings: SpeechSettings | None = None,
        queues: QueueServices | None = None, recording: RecordingSettings | None = None,
    ) -> None:  # fmt: skip
        """`recording`: the flow's recording settings (whole call, agent part only, or never; consent)."""
        self.call = call
        self.synthesizer = synthesizer
        self.voice = voice
        self.queue_targets = queue_targets or {}
        self.recordings = recordings
        self.asr = asr
        self.speech_settings = speech_settings or SpeechSettings()
        self._speech: SpeechListener | None = None
        self.queues = queues
        self.recording = recording or RecordingSettings()
        self._recorder: CallRecorder | None = None

    @property
    def conversation_id(self) -> str:
        return self.call.id

    @property
    def caller(self) -> str | None:
        return self.call.caller_number

    async def say(
        self, text: str, *, interruptible: bool = True, language: str = "en", voice: str | None = None
    ) -> bool:
        pcm = await self.synthesizer.synthesize(text, voice=voice or self.voice, language=language)
        try:
            if interruptible and self.call.has_pending_digits:
                self.call.event("prompt_skipped", text)  # a key pressed earlier already barged in
                return False
            self.call.interrupt_on_digit = interruptible
            try:
                return await self.call.play(pcm, text=text)
            finally:
                self.call.interrupt_on_digit = False
        except CallEndedError:
            raise ChannelClosed(self.call.id) from None

    async def prompt_and_listen(
        self, prompts: list[str], request: ListenRequest, *, language: str = "en", voice: str | None = None
    ) -> Heard:
        """Play the prompts while already listening, so keys and (guarded) speech barge in."""
        prompt_task = (
            asyncio.ensure_future(self._play_prompts(prompts, request.interruptible, language, voice))
            if prompts else None
        )  # fmt: skip
        listener = self._listener() if request.speech else None
        try:
            return await listen(self.call, listener, request, prompt_task)
        except CallEndedError:
            raise ChannelClosed(self.call.id) from None
        finally:
            if prompt_task is not None and not prompt_task.done():
                prompt_task.cancel()

    async def _play_prompts(self, prompts: list[str], interruptible: bool, language: str, voice: str | None) -> bool:
        for text in prompts:
            if not await self.say(text, interruptible=interruptible, language=language, voice=voice):
                return False  # barged in: the rest of the prompts are skipped too
        return True

    def _listener(self) -> SpeechListener | None:
        if self.asr is None:
            return None
        if self._speech is None:
            self._speech = SpeechListener(self.call, self.asr, self.speech_settings)
        return self._speech

    async def start(self, *, language: str = "en", voice: str | None = None) -> None:
        """Before the flow's first node: the whole-call recording (scope `call`), then the consent prompt.

        The recording starts first, so it holds the consent announcement the caller heard."""
        policy = self.recording
        if policy.enabled and policy.scope == "call" and self.recordings is not None and not self.call.ended:
            self._recorder = CallRecorder.start(self.call, self.recordings)
        try:
            for text in _prompt_texts(policy.consent, language):
                await self.say(text, interruptible=False, language=language, voice=voice)
        except ChannelClosed:
            pass  # hung up during the announcement: the flow sees it at its first step

    def _stop_recorder(self) -> None:
        if self._recorder is not None:
            info = self._recorder.stop()
            self._recorder = None
            if info is not None:
                self.call.event("recording", json.dumps(info))

    async def aclose(self) -> None:
        self._stop_recorder()
        if self._speech is not None:
            await self._speech.aclose()
            self._speech = None

    async def transfer(self, request: TransferRequest) -> TransferResult:
        if request.queue and not request.to and self.queues is not None and request.queue not in self.queue_targets:
            # the caller's bridge is in the whole-call recording already; a callback's is recorded on its own
            waiting = QueueCall(
                self.call, self.say, self.record, self.queues.router, self.queues.acd, self.queues.taps,
                self.note, self.queues.keep,
                record_bridge=self.recording.enabled and self._recorder is None,
                record_callback=self.recording.enabled, written=self.queues.written, music=self.queues.music,
            )  # fmt: skip
            try:
                return await waiting.run(request)
            except CallEndedError:
                raise ChannelClosed(self.call.id) from None
        target = request.to or self.queue_targets.get(request.queue or "")
        if not target:
            return TransferResult(False, f"queue {request.queue!r} has no agents configured")
        if request.method == "refer":
            status = await self.call.refer(target)
            if 200 <= status < 300:
                self.call.event("transfer", f"referred to {target}")
                self.call.hangup("transferred")
                return TransferResult(True, f"REFER accepted ({status})")
            return TransferResult(False, f"REFER failed ({status})")
        try:
            other = await self.call.endpoint.dial(target, from_user=self.call.caller_number)
        except (CallFailed, TimeoutError, ValueError) as exc:
            return TransferResult(False, str(exc))
        self.call.event("transfer", f"bridged to {target}")
        await Bridge(self.call, other).run()
        return TransferResult(True, f"bridged to {target}")

    async def record(self, request: RecordRequest) -> RecordResult:
        if self.recordings is None:
            return RecordResult(None, 0.0)
        if request.beep:
            await self.say_pcm(_BEEP)
        writer = self.recordings.open(self.call.id, kind="voicemail")
        started = time.monotonic()
        finished = asyncio.get_running_loop().create_future()
        quiet = {"frames": 0}
        silence_frames = int(request.silence_timeout * 50)

        def on_frame(frame: np.ndarray | None) -> None:
            writer.write(frame)
            level = 0 if frame is None else int(np.abs(frame).mean())
            quiet["frames"] = quiet["frames"] + 1 if level < 300 else 0
            if quiet["frames"] >= silence_frames and not finished.done():
                finished.set_result("silence")

        self.call.add_audio_consumer(on_frame)
        digit_task: asyncio.Future[str | None] | None = None
        try:
            deadline = started + request.max_seconds
            while not finished.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                digit_task = asyncio.ensure_future(self.call.next_digit(remaining))
                done, _ = await asyncio.wait({digit_task, finished}, return_when=asyncio.FIRST_COMPLETED)
                if digit_task not in done:
                    break
                digit = digit_task.result()
                if digit is None or (request.finish_on_key and digit == request.finish_on_key):
                    break
        except CallEndedError:
            pass  # hanging up is the usual way to finish a voicemail
        finally:
            # also runs when the flow is torn down because the caller left: the message is always kept
            if digit_task is not None:
                digit_task.cancel()  # (cancelled with the flow, it would otherwise end in an unread error)
            self.call.remove_audio_consumer(on_frame)
            info = writer.close()
            self.call.event("recording", json.dumps(
                {"id": info.recording_id, "kind": "voicemail", "path": info.path, "seconds": round(info.seconds, 2)}
            ))  # fmt: skip
        return RecordResult(info.recording_id, info.seconds, {"path": info.path})

    async def say_pcm(self, pcm: np.ndarray) -> None:
        try:
            await self.call.play(pcm)
        except CallEndedError:
            raise ChannelClosed(self.call.id) from None

    async def hangup(self, reason: str = "flow_hangup") -> None:
        self.call.hangup("server_bye")

    def note(self, type: str, value: str) -> None:
        self.call.event(type, value)


def _prompt_texts(prompt: Prompt | None, language: str) -> list[str]:
    """A flow prompt (text, list, or language -> text/list) as the texts to say in `language`."""
    if prompt is None:
        return []
    if isinstance(prompt, dict):
        prompt = prompt.get(language) or next(iter(prompt.values()))
    return [text.strip() for text in ([prompt] if isinstance(prompt, str) else prompt) if text.strip()]
