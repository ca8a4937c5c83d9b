"""Voice activity detection and endpointing on 20 ms telephone frames.

webrtcvad (the `webrtcvad-wheels` distribution) classifies each frame as voiced or not; the `Endpointer` turns
those decisions into the three events a prompt cares about: the caller started speaking, stopped speaking
(after `end_silence_ms` of silence, or because the utterance got too long), or never said anything.

webrtcvad alone is not enough on a phone line (measured, tests/unit/test_asr_vad.py and docs/asr.md):
- it calls the first ~4 frames of *any* non-silent audio speech while it adapts, so line noise at call start
  looked like a caller speaking;
- after any burst it holds "speech" for 3-4 more frames (its hangover): a 20 ms click or cough became 100 ms
  of "speech", enough to start an utterance, and every utterance ended ~80 ms late;
- white noise from -30 dBFS up is "speech" in modes 0-2 for nearly every frame (mode 3: 7% at -30 dBFS,
  100% at -25 dBFS).
So a frame only counts as voiced when webrtcvad says so *and* it is `margin_db` (6 dB) above the line's noise
floor (the quietest frame of the last 2 s). With that gate no noise level and no short burst started speech
in any mode, and speech onsets and ends are unchanged or earlier.

That floor gate cannot help on a line with no noise at all (digital silence: most VoIP calls between quiet
phones, and every sipp caller): the floor is 0 and webrtcvad calls a word's fading tail speech all the way
down to the last µ-law step. flite's "billing" ends with 180 ms of tail from -46 down to -80 dBFS, which
webrtcvad marked voiced, so the 300 ms of endpointing silence only began counting ~190 ms after anybody
could hear the caller (measured with bench/reply_latency.py: that was most of the 220 ms of extra reply
delay). So once speech has started, a frame also has to be within `tail_db` (30 dB) of the loudest frame of
the last second to keep the utterance going: the weakest speech sounds (/f/, /θ/) sit ~28 dB below a
strong vowel, a word's decay falls through that line within a frame or two.

It runs on the event loop once per frame for every listening call, so `feed` allocates nothing: each frame is
copied into a preallocated pre-roll ring and webrtcvad reads that slot through a memoryview made once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import webrtcvad

__all__ = ["EndpointEvent", "Endpointer", "NoInput", "SpeechEnded", "SpeechStarted"]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """`at_ms`: start of the first voiced frame of the run that confirmed speech (ms since `reset`)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """`at_ms`: when the end was decided (ms since `reset`); `last_voiced_ms`: end of the last voiced frame,
    the moment the caller actually stopped (what reply latency is measured from)."""

    at_ms: int
    reason: Literal["silence", "max_length"]
    voiced_ms: int
    last_voiced_ms: int = 0


@dataclass(frozen=True, slots=True)
class NoInput:
    """No speech started within `no_input_ms` of the last `reset` (emitted once per reset)."""

    at_ms: int


EndpointEvent = SpeechStarted | SpeechEnded | NoInput

_VALID_RATES = (8000, 16000, 32000, 48000)


class Endpointer:
    """Speech start/end decisions for one call's inbound audio.

    Speech starts after `start_ms` of consecutive voiced frames: shorter bursts (a cough, a click, a breath)
    never start an utterance. It ends after `end_silence_ms` of consecutive unvoiced frames, or when it has
    lasted `max_utterance_ms`. `NoInput` fires once when `no_input_ms` pass after `reset` without speech.
    After an utterance ends the endpointer listens for the next one; the no-input clock restarts only on
    `reset`.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        frame_ms: int = 20,
        aggressiveness: int = 2,
        start_ms: int = 60,
        end_silence_ms: int = 300,
        max_utterance_ms: int = 15000,
        no_input_ms: int = 5000,
        preroll_ms: int = 200,
        margin_db: float = 6.0,
        floor_window_ms: int = 2000,
        tail_db: float = 30.0,
        tail_window_ms: int = 1000,
    ) -> None:
        if sample_rate not in _VALID_RATES:
            raise ValueError(f"webrtcvad supports {_VALID_RATES} Hz, not {sample_rate}")
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtcvad takes 10, 20 or 30 ms frames, not {frame_ms}")
        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"aggressiveness is 0..3, not {aggressiveness}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self.aggressiveness = aggressiveness
        self.start_ms = start_ms
        self.end_silence_ms = end_silence_ms
        self.max_utterance_ms = max_utterance_ms
        self.no_input_ms = no_input_ms
        self._vad = webrtcvad.Vad(aggressiveness)
        # The pre-roll must at least hold the start run, or the confirmed speech itself would be lost.
        slots = max(preroll_ms, start_ms + frame_ms) // frame_ms
        self._ring = np.zeros((slots, self.frame_samples), dtype=np.int16)
        self._views = [memoryview(row).cast("B") for row in self._ring]
        # Noise floor: the quietest frame of the last `floor_window_ms` (kept across `reset`: it belongs to the
        # line, not to the prompt). Frames not `margin_db` above it are not speech, whatever webrtcvad says.
        self.margin_db = margin_db
        self._energy = np.full(max(1, floor_window_ms // frame_ms), np.inf)
        self._energy_head = 0
        # Speech level: the loudest frame of the last `tail_window_ms`. In speech, frames more than `tail_db`
        # below it are the fading tail of a word, not speech (see the module docstring).
        self.tail_db = tail_db
        self._loud = np.zeros(max(1, tail_window_ms // frame_ms), dtype=np.float64)
        self._loud_head = 0
        self._f64 = np.zeros(self.frame_samples, dtype=np.float64)
        self.reset()

    # ---- state --------------------------------------------------------------------------------
    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def voiced_ms(self) -> int:
        """Voiced time of the current utterance so far (0 when not in speech)."""
        return self._voiced_frames * self.frame_ms if self._in_speech else 0

    @property
    def elapsed_ms(self) -> int:
        """Audio fed since the last `reset`."""
        return self._frames * self.frame_ms

    @property
    def frame_voiced(self) -> bool:
        """Whether the last frame fed was speech (webrtcvad, the noise-floor gate and, in speech, the tail gate)."""
        return self._last_voiced

    @property
    def silence_ms(self) -> int:
        """Unvoiced time since the last voiced frame of the current utterance (0 when not in speech): the
        endpointing silence counted so far, so a caller can prepare for the end before it is decided."""
        return self._run * self.frame_ms if self._in_speech else 0

    @property
    def speech_started_ms(self) -> int | None:
        return self._speech_start_ms if self._in_speech else None

    def reset(self, *, no_input_ms: int | None = None, end_silence_ms: int | None = None) -> None:
        """Start a new listening period: no-input clock from zero, no utterance in progress.

        The values given replace the configured ones for this and later periods; None keeps them.
        """
        if no_input_ms is not None:
            self.no_input_ms = no_input_ms
        if end_silence_ms is not None:
            self.end_silence_ms = end_silence_ms
        self._frames = 0
        self._in_speech = False
        self._heard_speech = False
        self._no_input_sent = False
        self._run = 0  # consecutive voiced frames (before start) / unvoiced frames (in speech)
        self._voiced_frames = 0
        self._speech_start_ms = 0
        self._last_voiced_end_ms = 0
        self._last_voiced = False
        self._head = 0  # next ring slot to write
        self._filled = 0

    # ---- per frame ----------------------------------------------------------------------------
    def feed(self, frame: np.ndarray) -> EndpointEvent | None:
        """Classify one frame (`frame_samples` int16 samples) and return the event it caused, if any."""
        slot = self._head
        self._ring[slot] = frame  # copies; also raises on a frame of the wrong size
        self._head = (slot + 1) % len(self._ring)
        if self._filled < len(self._ring):
            self._filled += 1
        voiced = self._vad.is_speech(self._views[slot], self.sample_rate, self.frame_samples)
        np.copyto(self._f64, self._ring[slot])
        level = 10.0 * math.log10(float(np.dot(self._f64, self._f64)) / self.frame_samples + 1.0)
        self._energy[self._energy_head] = level
        self._energy_head = (self._energy_head + 1) % len(self._energy)
        self._loud[self._loud_head] = level
        self._loud_head = (self._loud_head + 1) % len(self._loud)
        voiced = voiced and level >= float(self._energy.min()) + self.margin_db
        if voiced and self._in_speech:
            voiced = level >= float(self._loud.max()) - self.tail_db
        self._last_voiced = voiced
        self._frames += 1
        now = self._frames * self.frame_ms  # end of this frame
        if voiced:
            self._last_voiced_end_ms = now
        return self._speaking(voiced, now) if self._in_speech else self._waiting(voiced, now)

    def _waiting(self, voiced: bool, now: int) -> EndpointEvent | None:
        self._run = self._run + 1 if voiced else 0
        if self._run * self.frame_ms >= self.start_ms and self._run > 0:
            self._in_speech = True
            self._heard_speech = True
            self._voiced_frames = self._run
            self._speech_start_ms = now - self._run * self.frame_ms
            self._run = 0
            return SpeechStarted(self._speech_start_ms)
        if not self._heard_speech and not self._no_input_sent and now >= self.no_input_ms:
            self._no_input_sent = True
            return NoInput(now)
        return None

    def _speaking(self, voiced: bool, now: int) -> EndpointEvent | None:
        if voiced:
            self._voiced_frames += 1
            self._run = 0
        else:
            self._run += 1
        reason: Literal["silence", "max_length"] | None = None
        if self._run * self.frame_ms >= self.end_silence_ms:
            reason = "silence"
        elif now - self._speech_start_ms >= self.max_utterance_ms:
            reason = "max_length"
        if reason is None:
            return None
        event = SpeechEnded(now, reason, self._voiced_frames * self.frame_ms, self._last_voiced_end_ms)
        self._in_speech = False
        self._run = 0
        self._voiced_frames = 0
        return event

    def preroll(self) -> list[np.ndarray]:
        """The buffered frames, oldest first, ending with the frame that confirmed speech.

        Call it on `SpeechStarted` and push these to the recognizer first, so the word's onset (and a little
        silence before it, which the decoders like) is not lost. Returns copies: the ring is reused.
        """
        n = self._filled
        start = (self._head - n) % len(self._ring)
        order = [(start + i) % len(self._ring) for i in range(n)]
        return [self._ring[i].copy() for i in order]
