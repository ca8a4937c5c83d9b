"""The pocketsphinx side of a worker process: decoders, grammars and confidence (runs in the child).

Why a process: pocketsphinx holds the GIL while it decodes (two decodes on two threads are hardly faster than
one after the other, and the event loop would freeze for the length of every `process_raw` call), so each
worker process decodes for the sessions assigned to it, one request at a time, in the order they were sent.

Per worker: a free-speech decoder (≈95 MB with its language model, 0.25 s to build) is taken from a pool for
the length of an utterance, so memory follows the number of *concurrent* questions, not of calls; grammar
decoders carry only their grammar's words (≈6 MB, built in ~10 ms) and are cached per grammar.

Telephone audio: the shipped en-US model is wideband (16 kHz features up to 6.8 kHz), so 8 kHz audio is
upsampled with soxr; the empty band above 4 kHz pulls the cepstral mean far from the model's default, which
costs accuracy on a call's first utterance. Every session therefore starts from a cepstral mean measured on
narrowband speech (`TELEPHONE_CMN`) and carries its own mean from utterance to utterance.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from asr.grammar import Grammar
from asr.priority import lower_this_process
from asr.recognizer import Result, Word

# Cepstral mean of 8 kHz speech upsampled to 16 kHz (averaged over 4 voices x 4 sentences, µ-law).
TELEPHONE_CMN = "46,27,-34,47,-23,2,16,-27,20,-15,4,10,-13"
FRAME_RATE = 100  # frames per second (-frate)
# Free speech: a histogram-pruned single pass (no fwdflat second pass: it costs ~100 ms after the caller
# stops, for 2 points of word error rate) with a lattice for word posteriors.
FREE_OPTIONS: dict[str, Any] = {"maxhmmpf": 3000, "fwdflat": False, "bestpath": True}
# Grammar confidence: log-likelihood ratio per frame of the phrase against a phone loop over the same frames,
# in logmath units (base 1.0001); the logistic's midpoint and scale were fitted on synthetic calls.
LR_MIDPOINT = -34000.0
LR_SCALE = 3500.0
_LOG_BASE = math.log(1.0001)
_FILLER = re.compile(r"^(<.*>|\[.*\]|\+.*\+)$")
_NON_SPEECH_PHONES = {"SIL", "+NSN+", "+SPN+"}


def _log(x: float) -> float:
    """Segment scores come back as probabilities; the log of an underflowed one is 'very unlikely'."""
    return math.log(x) / _LOG_BASE if x > 0 else -1e12


def _word(name: str) -> str:
    return name.split("(", 1)[0]


class Resources:
    """What one worker loads once: model paths, the shared LM, the pronunciation dictionary text."""

    def __init__(self, free_pool: int = 8) -> None:
        import pocketsphinx

        self.free_pool = free_pool
        self.ps = pocketsphinx
        self.hmm = pocketsphinx.get_model_path("en-us/en-us")
        self.lm_path = pocketsphinx.get_model_path("en-us/en-us.lm.bin")
        self.phone_lm = pocketsphinx.get_model_path("en-us/en-us-phone.lm.bin")
        self.dict_path = pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")
        with open(self.dict_path, encoding="utf-8") as f:
            self._dict_text = f.read()  # 3 MB; grammar words are looked up in it on demand
        self._prons: dict[str, list[str]] = {}
        self._tiny_dict = self._write_dict({"sil": ["SIL"]})
        self._free: list[Any] = []
        self._phone: list[Any] = []
        self._grammars: dict[tuple[str, ...], list[Any]] = {}
        self._grammar_order: list[tuple[str, ...]] = []
        self._free.append(self.free_decoder())  # one warm decoder: the first question waits for none

    # ---- dictionary -------------------------------------------------------------------------------
    def pronunciations(self, word: str) -> list[str]:
        prons = self._prons.get(word)
        if prons is None:
            pattern = re.compile(rf"^{re.escape(word)}(?:\(\d+\))? ([^\n]+)$", re.MULTILINE)
            prons = self._prons[word] = [m.group(1).split("#")[0].strip() for m in pattern.finditer(self._dict_text)]
        return prons

    def _write_dict(self, prons: dict[str, list[str]]) -> str:
        fd, path = tempfile.mkstemp(prefix="hotline-ps-", suffix=".dict")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for word, alternatives in prons.items():
                for i, phones in enumerate(alternatives):
                    f.write(f"{word if i == 0 else f'{word}({i + 1})'} {phones}\n")
        return path

    # ---- decoders ---------------------------------------------------------------------------------
    def _decoder(self, **options: Any) -> Any:
        return self.ps.Decoder(hmm=self.hmm, samprate=16000, loglevel="FATAL", **options)

    def free_decoder(self) -> Any:
        if self._free:
            return self._free.pop()
        # Each free decoder loads its own LM: one NGramModel shared through add_lm() decodes worse (measured).
        return self._decoder(lm=self.lm_path, dict=self.dict_path, **FREE_OPTIONS)

    def phone_decoder(self) -> Any:
        if self._phone:
            return self._phone.pop()
        return self._decoder(lm=None, dict=self._tiny_dict, allphone=self.phone_lm)

    def grammar_decoder(self, grammar: Grammar) -> Any:
        key = tuple(grammar.phrases)
        idle = self._grammars.get(key)
        if idle:
            return idle.pop()
        prons = {w: self.pronunciations(w) for w in grammar.words()}
        path = self._write_dict(prons)
        try:
            decoder = self._decoder(lm=None, dict=path)
        finally:
            os.unlink(path)
        rules = " | ".join(grammar.phrases)
        decoder.add_jsgf_string("menu", f"#JSGF V1.0;\ngrammar menu;\npublic <menu> = {rules};\n")
        decoder.activate_search("menu")
        return decoder

    def release(self, kind: str, decoder: Any, key: tuple[str, ...] = ()) -> None:
        """Keep a few idle decoders of each kind for the next utterance; the rest are freed."""
        if kind == "free":
            if len(self._free) < self.free_pool:
                self._free.append(decoder)
        elif kind == "phone":
            if len(self._phone) < 8:
                self._phone.append(decoder)
        else:
            self._grammars.setdefault(key, [])
            if key in self._grammar_order:
                self._grammar_order.remove(key)
            self._grammar_order.append(key)
            if len(self._grammars[key]) < 2:
                self._grammars[key].append(decoder)
            while len(self._grammar_order) > 32:  # least recently used grammars go
                self._grammars.pop(self._grammar_order.pop(0), None)


@dataclass
class _Utterance:
    decoder: Any
    kind: str  # "free" | "grammar"
    grammar: Grammar | None
    phone: Any | None
    resampler: Any
    key: tuple[str, ...] = ()
    samples: int = 0


@dataclass
class _Session:
    cmn: str = TELEPHONE_CMN
    utterance: _Utterance | None = None
    grammars: dict[tuple[str, ...], Grammar] = field(default_factory=dict)


class Worker:
    """Executes one request at a time for the sessions of this process."""

    def __init__(self, resources: Resources, free_word_threshold: float) -> None:
        self.res = resources
        self.free_word_threshold = free_word_threshold
        self.sessions: dict[int, _Session] = {}

    # ---- operations -------------------------------------------------------------------------------
    def start(self, sid: int, phrases: tuple[str, ...] | None) -> list[str]:
        """Begin an utterance; returns warnings for the parent to log (words without pronunciation)."""
        session = self.sessions.setdefault(sid, _Session())
        warnings: list[str] = []
        self.abort(sid)
        import soxr

        resampler = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")
        if phrases is None:
            decoder = self.res.free_decoder()
            utt = _Utterance(decoder, "free", None, None, resampler)
        else:
            grammar = session.grammars.get(phrases)
            if grammar is None:
                grammar = session.grammars[phrases] = self._grammar(phrases, warnings)
            if not grammar:
                session.utterance = _Utterance(None, "grammar", grammar, None, resampler)
                return warnings
            decoder = self.res.grammar_decoder(grammar)
            utt = _Utterance(decoder, "grammar", grammar, self.res.phone_decoder(), resampler, tuple(grammar.phrases))
        for d in (utt.decoder, utt.phone):
            if d is not None:
                d.set_cmn(session.cmn)
                d.start_utt()
        session.utterance = utt
        return warnings

    def _grammar(self, phrases: tuple[str, ...], warnings: list[str]) -> Grammar:
        grammar = Grammar(phrases)
        keep, missing = [], set()
        for norm in grammar.phrases:
            unknown = [w for w in norm.split() if not self.res.pronunciations(w)]
            if unknown:
                missing.update(unknown)
            else:
                keep.append(norm)
        if missing:
            warnings.append(f"no pronunciation for {sorted(missing)}; phrases with them are skipped")
        if not keep:
            warnings.append(f"no phrase of {list(phrases)} can be recognized: every answer is no match")
        return grammar.restrict(keep)

    def feed(self, sid: int, pcm: bytes) -> Result | None:
        utt = self.sessions[sid].utterance if sid in self.sessions else None
        if utt is None or utt.decoder is None:
            return None
        audio = utt.resampler.resample_chunk(np.frombuffer(pcm, dtype=np.int16))
        if not len(audio):  # the resampler's filter is still filling
            return None
        utt.samples += len(audio)
        data = audio.tobytes()
        utt.decoder.process_raw(data, False, False)
        if utt.phone is not None:
            utt.phone.process_raw(data, False, False)
        hyp = utt.decoder.hyp()
        return Result(hyp.hypstr if hyp else "", 0.0, [], False, "pocketsphinx")

    def end(self, sid: int) -> Result:
        session = self.sessions.get(sid)
        utt = session.utterance if session else None
        if session is None or utt is None or utt.decoder is None:
            if session is not None:
                session.utterance = None
            return Result("", 0.0, [], True, "pocketsphinx")
        session.utterance = None
        tail = utt.resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True).tobytes()
        for d in (utt.decoder, utt.phone):
            if d is not None:
                if tail:
                    d.process_raw(tail, False, False)
                d.end_utt()
        session.cmn = utt.decoder.get_cmn(False)
        try:
            if utt.kind == "free":
                return self._free_result(utt.decoder)
            assert utt.grammar is not None and utt.phone is not None
            return self._grammar_result(utt.decoder, utt.phone, utt.grammar)
        finally:
            self._release(utt)

    def abort(self, sid: int) -> None:
        session = self.sessions.get(sid)
        if session is None or session.utterance is None:
            return
        utt, session.utterance = session.utterance, None
        for d in (utt.decoder, utt.phone):
            if d is not None:
                d.end_utt()
        self._release(utt)

    def close(self, sid: int) -> None:
        self.abort(sid)
        self.sessions.pop(sid, None)

    def _release(self, utt: _Utterance) -> None:
        if utt.decoder is not None:
            self.res.release(utt.kind, utt.decoder, utt.key)
        if utt.phone is not None:
            self.res.release("phone", utt.phone)

    # ---- results ----------------------------------------------------------------------------------
    def _free_result(self, decoder: Any) -> Result:
        words = [
            Word(_word(s.word), s.start_frame / FRAME_RATE, (s.end_frame + 1) / FRAME_RATE, min(1.0, float(s.prob)))
            for s in decoder.seg() or []
            if not _FILLER.match(s.word)
        ]
        if not words:
            return Result("", 0.0, [], True, "pocketsphinx")
        kept = [w for w in words if w.confidence >= self.free_word_threshold]
        confidence = sum(w.confidence for w in words) / len(words)
        return Result(" ".join(w.text for w in kept), confidence, kept, True, "pocketsphinx")

    def _grammar_result(self, decoder: Any, phone: Any, grammar: Grammar) -> Result:
        segs = [s for s in decoder.seg() or [] if not _FILLER.match(s.word)]
        if not segs:
            return Result("", 0.0, [], True, "pocketsphinx")
        heard = " ".join(_word(s.word) for s in segs)
        phrase = grammar.phrases.get(heard)
        if phrase is None:
            return Result("", 0.0, [], True, "pocketsphinx")
        confidence = _grammar_confidence(segs, list(phone.seg() or []))
        words = [
            Word(_word(s.word), s.start_frame / FRAME_RATE, (s.end_frame + 1) / FRAME_RATE, confidence) for s in segs
        ]
        return Result(phrase, confidence, words, True, "pocketsphinx")


def _grammar_confidence(words: list[Any], phones: list[Any]) -> float:
    """How much better the phrase explains its frames than free phones do, times how much of the caller's
    speech the phrase covers.

    A grammar search always returns *some* phrase and its lattice posterior is ~1.0 even for "cancel my
    contract" heard as "yes", so the posterior cannot reject out-of-grammar speech. The phone loop is the
    unconstrained competitor: for the right phrase its acoustic score is close to the phrase's, for a wrong
    one it is far better. Speech the phrase does not cover (it matched one word of a sentence) lowers it too.
    """
    first, last = words[0].start_frame, words[-1].end_frame
    phrase_score = sum(_log(s.ascore) for s in words)
    phone_score = 0.0
    outside = 0
    for s in phones:
        n = s.end_frame - s.start_frame + 1
        overlap = min(s.end_frame, last) - max(s.start_frame, first) + 1
        if overlap > 0:
            phone_score += _log(s.ascore) * overlap / n
        if s.word not in _NON_SPEECH_PHONES:
            outside += n - max(overlap, 0)
    frames = last - first + 1
    ratio = (phrase_score - phone_score) / frames
    likelihood = 1.0 / (1.0 + math.exp(-(ratio - LR_MIDPOINT) / LR_SCALE))
    word_frames = sum(s.end_frame - s.start_frame + 1 for s in words)
    coverage = word_frames / (word_frames + outside)
    return likelihood * min(1.0, max(0.0, (coverage - 0.5) / 0.4))


# ---- process entry point ------------------------------------------------------------------------------
def main(conn: Connection, free_word_threshold: float, free_pool: int = 8) -> None:
    """Worker process: announce readiness, then serve (op, sid, request id, argument) until EOF/None."""
    lower_this_process()  # the server's media clock comes first
    start = time.perf_counter()
    try:
        worker = Worker(Resources(free_pool), free_word_threshold)
    except Exception as exc:  # report why we cannot start instead of dying silently
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", time.perf_counter() - start))
    ops = {"start": worker.start, "feed": worker.feed, "end": worker.end, "abort": worker.abort, "close": worker.close}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        op, sid, rid, arg = msg
        try:
            out = ops[op](sid, arg) if op in ("start", "feed") else ops[op](sid)
            reply: tuple[Any, ...] = (rid, True, out)
        except Exception as exc:
            reply = (rid, False, f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


if __name__ == "__main__":  # python -m asr._ps_worker FD THRESHOLD (started by PocketsphinxEngine)
    main(Connection(int(sys.argv[1])), float(sys.argv[2]), int(sys.argv[3]))
