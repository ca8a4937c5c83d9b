"""Listening on a call: DTMF and speech at once, with barge-in.

A `SpeechListener` sits on the call's inbound audio (one 20 ms frame per media tick, on the event loop). It
feeds the endpointer (webrtcvad, microseconds per frame) and, while the caller speaks, the recognizer session
(which decodes on worker threads). While an interruptible prompt plays, speech that passes the guard stops
playback: enough voiced audio and, when the engine gives partial results, at least one recognized word, so
coughs, noise and a short "mhm" do not cut prompts off. DTMF always barges in (handled by the Call).

The reply should start as soon as the endpointing silence is confirmed. So once the caller has been silent
for all but `early_result_ms` of it, the session is asked for its final result already (`speculate`); when
the silence is confirmed the answer is waiting, and if the caller speaks again the session takes it back
(`resume`). Without that, every reply waited for a decode after the silence (11-20 ms for a menu word at
rest, up to ~200 ms for a question on a busy machine, docs/asr.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asr.recognizer import Engine, RecognizerSession, Result
from asr.vad import Endpointer, NoInput, SpeechEnded, SpeechStarted
from ivr_flows.channel import Heard, ListenRequest
from telephony.call import Call, CallEndedError, quiet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechSettings:
    vad_aggressiveness: int = 2
    start_ms: int = 60
    barge_in_ms: int = 300  # voiced audio needed before speech may cut a prompt off
    barge_in_words: int = 1  # ... and recognized words, where the engine gives partial results
    barge_in_fallback_ms: int = 700  # without any partial words, this much voiced audio still barges in
    min_confidence: float = 0.5  # below this a grammar result is no match, not a guess
    max_utterance_ms: int = 15_000
    early_result_ms: int = 100  # start the final decode this long before the endpointing silence is confirmed


class SpeechListener:
    """One call's ears. Reused for every prompt of the call (the recognizer session is per call)."""

    def __init__(self, call: Call, engine: Engine, settings: SpeechSettings) -> None:
        self.call = call
        self.engine = engine
        self.settings = settings
        self.session: RecognizerSession = engine.session()
        self.session.on_partial = self._on_partial
        self.endpointer = Endpointer(
            aggressiveness=settings.vad_aggressiveness, start_ms=settings.start_ms,
            max_utterance_ms=settings.max_utterance_ms,
        )  # fmt: skip
        self._active = False  # listening for this prompt at all
        self._prompt_playing = False
        self._interruptible = True
        self._no_input_armed = False
        self._grammar: Sequence[str] | None = None
        self._words = 0
        self._early_at_ms = 0  # silence after which the final decode starts (per prompt)
        self._speech_started_at: float | None = None
        self._event: asyncio.Future[str] | None = None  # "speech" | "no_input"
        self.last_voiced_at: float | None = None  # monotonic time of the caller's last voiced frame
        self.barged_in = 0
        call.add_audio_consumer(self._on_frame)

    # ---- per prompt ----------------------------------------------------------------------
    def arm(self, request: ListenRequest, *, prompt_playing: bool) -> asyncio.Future[str]:
        """Start listening for one answer. The no-input clock starts only once the prompt has finished."""
        loop = asyncio.get_running_loop()
        self._event = loop.create_future()
        self._active = request.speech
        self._grammar = list(request.grammar) or None
        self._interruptible = request.interruptible
        self._prompt_playing = prompt_playing
        self._words = 0
        self.endpointer.reset(no_input_ms=10**9, end_silence_ms=request.endpointing_ms)
        # never before half the silence: a pause that short is too often just a pause
        silence = request.endpointing_ms
        self._early_at_ms = max(silence // 2, silence - self.settings.early_result_ms)
        self._no_input_armed = False
        self._no_input_ms = int(request.timeout * 1000)
        if not prompt_playing:
            self.prompt_finished()
        return self._event

    def prompt_finished(self) -> None:
        self._prompt_playing = False
        if not self.endpointer.in_speech:
            self.endpointer.reset(no_input_ms=self._no_input_ms)
        self._no_input_armed = True

    def disarm(self) -> None:
        self._active = False
        if self.endpointer.in_speech:
            self.session.cancel()
        self._event = None

    # ---- media tick (event loop, every 20 ms) ----------------------------------------
    def _on_frame(self, frame: np.ndarray | None) -> None:
        if not self._active or self._event is None:
            return
        if frame is None:
            frame = _SILENCE
        endpointer = self.endpointer
        event = endpointer.feed(frame)
        if endpointer.in_speech and not isinstance(event, SpeechStarted):
            session = self.session
            if endpointer.frame_voiced:
                session.resume()  # no-op unless an early result stands: the caller was only pausing
                self.last_voiced_at = time.monotonic()
            session.push(frame)
            if endpointer.silence_ms >= self._early_at_ms:
                session.speculate()  # no-op once speculated
        if isinstance(event, SpeechStarted):
            self.session.begin(self._grammar)
            for early in self.endpointer.preroll():
                self.session.push(early)
            self._speech_started_at = time.monotonic()
            self.last_voiced_at = time.monotonic()
        elif isinstance(event, SpeechEnded):
            self._resolve("speech")
        elif isinstance(event, NoInput) and self._no_input_armed:
            self._resolve("no_input")
        if self._prompt_playing and self._interruptible and self.endpointer.in_speech:
            self._maybe_barge_in()

    def _maybe_barge_in(self) -> None:
        settings = self.settings
        voiced = self.endpointer.voiced_ms
        if voiced < settings.barge_in_ms:
            return
        if self._words < settings.barge_in_words and voiced < settings.barge_in_fallback_ms:
            return
        self._prompt_playing = False
        self.barged_in += 1
        self.call.stop_playback()
        self.call.event("barge_in", f"{voiced} ms voiced")

    def _on_partial(self, result: Result) -> None:
        self._words = len(result.text.split())

    def _resolve(self, what: str) -> None:
        if self._event is not None and not self._event.done():
            self._event.set_result(what)

    async def result(self) -> Result:
        return await self.session.finish()

    async def aclose(self) -> None:
        self.call.remove_audio_consumer(self._on_frame)
        await self.session.aclose()


_SILENCE = np.zeros(160, dtype=np.int16)


async def listen(
    call: Call, listener: SpeechListener | None, request: ListenRequest, prompt_task: asyncio.Task[bool] | None,
) -> Heard:  # fmt: skip
    """Wait for the caller's answer to a prompt (already playing in `prompt_task`): keys or speech."""
    speech_event = listener.arm(request, prompt_playing=prompt_task is not None) if listener else None
    digit: asyncio.Future[str | None] | None = None
    try:
        if prompt_task is not None:
            await _wait_prompt(call, listener, prompt_task, speech_event)
        if request.max_digits > 0 and call.has_pending_digits:
            return await _collect_digits(call, request, first_timeout=0.01)
        waiters: set[asyncio.Future[object]] = set()
        digit = quiet(asyncio.ensure_future(call.next_digit(None))) if request.max_digits > 0 else None
        if digit is not None:
            waiters.add(digit)
        if speech_event is not None:
            waiters.add(speech_event)  # type: ignore[arg-type]
        ended = asyncio.ensure_future(call.wait_ended())
        waiters.add(ended)  # type: ignore[arg-type]
        timeout = None if speech_event is not None else request.timeout
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        if digit is not None and digit not in done:
            digit.cancel()
        if ended in done:
            raise CallEndedError(call.id)
        if digit is not None and digit in done:
            first = digit.result()
            if listener:
                listener.disarm()
            return await _collect_digits(call, request, first=first)
        if speech_event is not None and speech_event in done and speech_event.result() == "speech":
            return await _recognized(call, listener, request)  # type: ignore[arg-type]
        return Heard("no_input")
    finally:
        if digit is not None and not digit.done():
            digit.cancel()  # the flow was torn down (the caller left) while we waited
        if listener:
            listener.disarm()


async def _wait_prompt(
    call: Call, listener: SpeechListener | None, prompt: asyncio.Task[bool], speech: asyncio.Future[str] | None
) -> None:
    """Let the prompt play; it ends early on barge-in (keys or speech)."""
    await asyncio.wait({prompt}, return_when=asyncio.FIRST_COMPLETED)
    if prompt.exception() is not None:
        raise prompt.exception()  # type: ignore[misc]
    if listener:
        listener.prompt_finished()


async def _collect_digits(call: Call, request: ListenRequest, *, first: str | None = None,
                          first_timeout: float | None = None) -> Heard:
    digits = first or ""
    if first is not None and request.finish_on_key and first == request.finish_on_key:
        return Heard("dtmf", digits=digits)
    timeout = request.inter_digit_timeout if first is not None else (first_timeout or request.timeout)
    while len(digits) < request.max_digits:
        digit = await call.next_digit(timeout)
        if digit is None:
            break
        digits += digit
        if request.finish_on_key and digit == request.finish_on_key:
            break
        timeout = request.inter_digit_timeout
    return Heard("dtmf", digits=digits) if digits else Heard("no_input")


RESULT_TIMEOUT = 10.0  # a decoder that fails or stalls must never hang the call


async def _recognized(call: Call, listener: SpeechListener, request: ListenRequest) -> Heard:
    decode_started = time.monotonic()
    try:
        result = await asyncio.wait_for(listener.result(), RESULT_TIMEOUT)
    except Exception as exc:  # decoder errors and time-outs: the caller said something we could not decode
        log.warning("speech recognition failed on %s: %s", call, str(exc) or type(exc).__name__)
        call.event("utterance", json.dumps({"text": "", "error": str(exc) or type(exc).__name__}))
        return Heard("speech", text="", confidence=0.0)
    offset_ms = int((time.monotonic() - (listener._speech_started_at or time.monotonic())) * 1000)
    call.event(
        "utterance",
        json.dumps({"text": result.text, "confidence": round(result.confidence, 3), "engine": result.engine,
                    "grammar": bool(request.grammar), "duration_ms": offset_ms,
                    "final_ms": round((time.monotonic() - decode_started) * 1000)}, ensure_ascii=False),
    )  # fmt: skip
    text = result.text.strip()
    if not text or (request.grammar and result.confidence < listener.settings.min_confidence):
        return Heard("speech", text="", confidence=result.confidence)  # heard something, understood nothing
    return Heard("speech", text=text, confidence=result.confidence)
