"""What runs while a caller and an agent are bridged: a two-channel recording and live transcription; and the
recording of a whole call (`CallRecorder`, when the flow asks for it) from the answer on.

Both hang off the legs' inbound audio (one 20 ms frame per leg per media tick, on the event loop), so they
add no delay to the conversation: the recording buffers frames and a background thread writes them once a
second (`recordings.writer`); each leg's utterances are cut by the endpointer and decoded whole by the ASR
engine off the loop, then written to the conversation as messages (sender caller / agent), which the agent's
console receives live over the conversation's WebSocket.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np

from asr.recognizer import Engine
from asr.vad import Endpointer, SpeechEnded, SpeechStarted
from callcenter_api.call_log import CallLog
from hotline.listen import SpeechSettings
from recordings.writer import Recording, RecordingWriter
from telephony.call import Call, utcnow

log = logging.getLogger(__name__)
MAX_UTTERANCE_FRAMES = 50 * 30  # 30 s


class LiveBudget:
    """Bounds live transcription for the whole process.

    Measured (bench/bridge_load.py): pocketsphinx needs ~1.3 cores for the speech of 5 bridged calls, so on a
    small machine live transcription of many calls cannot keep up; unbounded, the backlog grew to minutes and
    each waiting utterance held a decoder (8-17 GB), and the decoders took CPU from the calls' audio. So at
    most `concurrent` utterances decode at a time and at most `backlog` wait; beyond that an utterance is
    shed (counted and logged) — the recording still has it, and the calls' audio is never starved.
    """

    def __init__(self, concurrent: int = 2, backlog: int = 8) -> None:
        self.concurrent = concurrent
        self.backlog = backlog
        self.pending = 0
        self.shed = 0
        self._semaphore: asyncio.Semaphore | None = None

    def admit(self) -> bool:
        if self.pending >= self.backlog:
            self.shed += 1
            if self.shed == 1 or self.shed % 100 == 0:
                log.warning("live transcription is behind: %d utterance(s) shed so far (%d waiting)",
                            self.shed, self.pending)  # fmt: skip
            return False
        self.pending += 1
        return True

    async def __aenter__(self) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrent)
        await self._semaphore.acquire()

    async def __aexit__(self, *exc: object) -> None:
        assert self._semaphore is not None
        self._semaphore.release()

    def done(self) -> None:
        """An admitted utterance is finished (decoded, failed or cancelled)."""
        self.pending -= 1


LIVE_BUDGET = LiveBudget()


@dataclass
class _LegTranscriber:
    """Cuts one leg's speech into utterances and writes each one's text to the conversation."""

    call: Call
    sender: str
    conversation_id: str
    engine: Engine
    call_log: CallLog
    started_at: object
    endpointer: Endpointer = field(init=False)
    frames: list[np.ndarray] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.endpointer = Endpointer(end_silence_ms=500, max_utterance_ms=30_000, no_input_ms=10**9)

    def on_frame(self, frame: np.ndarray | None) -> None:
        if frame is None:
            return
        event = self.endpointer.feed(frame)
        if isinstance(event, SpeechStarted):
            self.frames = self.endpointer.preroll()
        elif self.endpointer.in_speech and len(self.frames) < MAX_UTTERANCE_FRAMES:
            self.frames.append(frame.copy())
        if isinstance(event, SpeechEnded) and self.frames:
            pcm, self.frames = np.concatenate(self.frames), []
            if not LIVE_BUDGET.admit():
                return
            task = asyncio.ensure_future(self._decode(pcm, utcnow()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _decode(self, pcm: np.ndarray, at: object) -> None:
        try:
            async with LIVE_BUDGET:
                result = await self.engine.transcribe(pcm, 8000)
        except Exception as exc:  # transcription is a convenience; the call goes on without it
            log.warning("live transcription of %s failed: %s", self.call, exc)
            return
        finally:
            LIVE_BUDGET.done()
        if not result.text.strip():
            return
        offset = int((at - self.started_at).total_seconds() * 1000)  # type: ignore[operator]
        self.call_log.message(
            self.conversation_id, sender=self.sender, kind="utterance", text=result.text,
            at=at, confidence=round(result.confidence, 3), offset_ms=offset,  # type: ignore[arg-type]
            meta={"engine": result.engine, "live": True},
        )  # fmt: skip


class CallRecorder:
    """The whole call from the answer, one channel per party: channel 1 what the caller sends us, channel 2
    what we send them — the bot's prompts and the music while in the IVR and the queue, then the agent (the
    bridge relays the agent's audio to the caller, so the same channel carries it).

    One row per media tick: the caller's frame of the tick's receive half with our frame of its send half.
    """

    def __init__(self, call: Call, recording: Recording) -> None:
        self.call = call
        self.recording: Recording | None = recording
        self._inbound: np.ndarray | None = None

    @classmethod
    def start(cls, call: Call, recordings: RecordingWriter, conversation_id: str | None = None) -> CallRecorder:
        recorder = cls(call, recordings.open(conversation_id or call.id, kind="call", channels=2))
        call.add_audio_consumer(recorder._received)
        call.add_sent_audio_consumer(recorder._sent)
        return recorder

    def _received(self, frame: np.ndarray | None) -> None:
        self._inbound = None if frame is None else frame.copy()

    def _sent(self, frame: np.ndarray | None) -> None:
        if self.recording is not None:
            self.recording.write(self._inbound, frame)
        self._inbound = None

    @property
    def active(self) -> bool:
        return self.recording is not None

    def stop(self) -> dict[str, object] | None:
        """Close the file; returns what the call's `recording` event says about it (None if already stopped)."""
        self.call.remove_audio_consumer(self._received)
        self.call.remove_sent_audio_consumer(self._sent)
        if self.recording is None:
            return None
        info = self.recording.close()
        self.recording = None
        log.info("recorded %s: %s (%.1f s)", self.call.id, info.path, info.seconds)
        return {"id": info.recording_id, "kind": "call", "path": info.path, "seconds": round(info.seconds, 2),
                "channels": 2}  # fmt: skip


class CallTaps:
    def __init__(self) -> None:
        self._consumers: list[tuple[Call, object]] = []
        self._recording: Recording | None = None
        self._transcribers: list[_LegTranscriber] = []
        self._call_log: CallLog | None = None
        self._conversation_id = ""

    @classmethod
    def start(
        cls, caller: Call, agent: Call, *, recordings: RecordingWriter | None, asr: Engine | None,
        call_log: CallLog | None, settings: SpeechSettings | None = None, conversation_id: str | None = None,
    ) -> CallTaps:  # fmt: skip
        """`conversation_id`: the customer's conversation (the caller's call id unless it is a callback)."""
        taps = cls()
        taps._call_log = call_log
        taps._conversation_id = conversation_id or caller.id
        if recordings is not None:
            taps._record(caller, agent, recordings)
        if asr is not None and call_log is not None:
            for leg, sender in ((caller, "caller"), (agent, "agent")):
                transcriber = _LegTranscriber(leg, sender, taps._conversation_id, asr, call_log, caller.started_at)
                taps._transcribers.append(transcriber)
                taps._attach(leg, transcriber.on_frame)
        return taps

    def _record(self, caller: Call, agent: Call, recordings: RecordingWriter) -> None:
        recording = recordings.open(self._conversation_id, kind="call", channels=2)
        self._recording = recording
        latest: dict[str, np.ndarray | None] = {"agent": None}

        def agent_frame(frame: np.ndarray | None) -> None:
            latest["agent"] = None if frame is None else frame.copy()

        def caller_frame(frame: np.ndarray | None) -> None:
            # one row per tick: channel 1 the caller, channel 2 the agent (their latest frame, or silence)
            recording.write(frame, latest["agent"])
            latest["agent"] = None

        self._attach(agent, agent_frame)
        self._attach(caller, caller_frame)

    def _attach(self, leg: Call, consumer: object) -> None:
        leg.add_audio_consumer(consumer)  # type: ignore[arg-type]
        self._consumers.append((leg, consumer))

    def stop(self) -> None:
        for leg, consumer in self._consumers:
            leg.remove_audio_consumer(consumer)  # type: ignore[arg-type]
        self._consumers.clear()
        if self._recording is not None:
            info = self._recording.close()
            if self._call_log is not None:
                self._call_log.recording(self._conversation_id, recording_id=info.recording_id, kind="call",
                                         path=info.path, at=utcnow(), seconds=info.seconds)  # fmt: skip
                self._call_log.message(self._conversation_id, sender="system", kind="recording",
                                       text=f"call recording ({info.seconds:.0f} s, caller + agent)", at=utcnow(),
                                       meta={"recording_id": info.recording_id, "channels": 2})  # fmt: skip
            log.info("recorded %s: %s (%.1f s)", self._conversation_id, info.path, info.seconds)
            self._recording = None


__all__ = ["CallTaps"]
