"""Vosk (Kaldi) backend: the production engine, any language Vosk has a model for.

Threads, not processes: libvosk releases the GIL while it decodes. Measured on the 2-core test machine
(bench/asr_rtf.py, 4.6 s utterances): two decodes on two threads take 0.33-0.38 s against 0.76-0.81 s one
after the other (speed-up 2.0-2.4x), and a 10 ms event-loop ticker is at most 2 ms late while a thread
decodes. So one process holds one
model (hundreds of MB to GBs, loaded once and shared by every call) and a thread pool decodes for all calls.

Recognizers:
- free speech: one `KaldiRecognizer(model, 8000)` per call, taken at its first question and reused for all its
  utterances. A fresh one spends its first seconds of audio building its lookahead caches (its first
  utterance decodes ~10x slower: 0.86 s for 1.5 s of audio against 0.07 s once warm; a warm one holds ~60 MB
  with the small Korean model), so finished calls hand their recognizer to a pool (`pool_size`, 16) and new
  calls take a warm one from it.
- grammar: `KaldiRecognizer(model, 8000, json_phrases)` per prompt (cheap to build, < 1 ms), kept while the
  call lives so a repeated menu reuses it. Phrases with words the model does not know are skipped with a
  warning; "[unk]" is added when the model has it, so out-of-grammar speech can come out as no match.
- `SetWords(True)`: word times and confidences. Free speech drops words below `word_threshold`; a grammar
  phrase whose least confident word is below it is no match.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asr.grammar import Grammar, normalize
from asr.recognizer import ModelError, Result, Word
from asr.session import CFuture, SerialExecutor, StreamingSession, transcribe_buffer

log = logging.getLogger(__name__)

RATE = 8000
_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


def check_model_dir(path: Path) -> Path:
    """Fail early, with a message an operator can act on, before libvosk logs a cryptic error."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"Vosk model directory {path} does not exist (download and unzip a model there)")
    if not path.is_dir():
        raise ModelError(f"Vosk model path {path} is a file; give the unzipped model directory")
    has_am = (path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()
    graph = path / "graph" if (path / "graph").is_dir() else path
    has_graph = any((graph / f).is_file() for f in ("HCLG.fst", "HCLr.fst"))
    if not (has_am and has_graph):
        inner = [p.name for p in path.iterdir() if p.is_dir() and (p / "am").is_dir()]
        hint = f" (did you mean {path / inner[0]}?)" if inner else ""
        raise ModelError(f"{path} is not a Vosk model directory: no am/final.mdl and graph/HCL*.fst{hint}")
    return path.resolve()


def load_model(path: Path) -> Any:
    """One `vosk.Model` per directory per process: every engine and call shares it."""
    import vosk

    path = check_model_dir(path)
    with _models_lock:
        model = _models.get(path)
        if model is None:
            vosk.SetLogLevel(-1)
            try:
                model = vosk.Model(str(path))
            except Exception as exc:
                raise ModelError(f"Vosk could not load the model in {path}: {exc}") from exc
            _models[path] = model
        return model


class _Rec:
    """A KaldiRecognizer plus how much audio it has consumed (Vosk's word times count from its creation)."""

    __slots__ = ("rec", "samples")

    def __init__(self, rec: Any) -> None:
        self.rec = rec
        self.samples = 0

    def accept(self, pcm: bytes) -> list[dict[str, Any]]:
        """Feed audio; returns the words of any segment Vosk's own endpointer closed meanwhile."""
        self.samples += len(pcm) // 2
        if self.rec.AcceptWaveform(pcm):
            return json.loads(self.rec.Result()).get("result", [])
        return []


class VoskEngine:
    name = "vosk"

    def __init__(
        self,
        model_path: Path,
        *,
        workers: int = 2,
        word_threshold: float = 0.5,
        max_pending_ms: int = 5000,
        pool_size: int = 16,
    ) -> None:
        start = time.perf_counter()
        self.model_path = check_model_dir(model_path)
        self.model = load_model(self.model_path)
        self.load_seconds = time.perf_counter() - start
        self.word_threshold = word_threshold
        self.max_pending_ms = max_pending_ms
        self.has_unk = self.model.vosk_model_find_word("[unk]") >= 0
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="vosk")
        self._idle: list[_Rec] = []  # warm free-speech recognizers of finished calls
        self._idle_lock = threading.Lock()
        self._pool_size = pool_size
        self._known: dict[str, bool] = {}
        self.sessions = 0

    # ---- recognizers (worker threads) -------------------------------------------------------------
    def _free_recognizer(self) -> _Rec:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        import vosk

        rec = vosk.KaldiRecognizer(self.model, RATE)
        rec.SetWords(True)
        return _Rec(rec)

    def _release(self, rec: _Rec) -> None:
        rec.rec.Reset()
        with self._idle_lock:
            if len(self._idle) < self._pool_size:
                self._idle.append(rec)

    def _grammar_recognizer(self, grammar: Grammar) -> _Rec:
        import vosk

        phrases = list(grammar.phrases) + (["[unk]"] if self.has_unk else [])
        rec = vosk.KaldiRecognizer(self.model, RATE, json.dumps(phrases, ensure_ascii=False))
        rec.SetWords(True)
        return _Rec(rec)

    def known_phrases(self, phrases: Sequence[str]) -> tuple[Grammar, list[str]]:
        """The grammar restricted to phrases the model can say, and the words it does not know.

        A word missing from the vocabulary is split into known words when it can be (Chinese and Japanese
        are written without spaces: "查询账单" -> "查询 账单"); otherwise its phrase is dropped.
        """
        grammar = Grammar(phrases)
        unknown: list[str] = []
        keep: list[tuple[str, str]] = []
        for norm, phrase in grammar.phrases.items():
            words: list[str] = []
            missing = False
            for word in norm.split():
                pieces = self._split(word)
                if pieces is None:
                    unknown.append(word)
                    missing = True
                else:
                    words.extend(pieces)
            if not missing:
                keep.append((" ".join(words), phrase))
        return Grammar.spelled(keep), unknown

    def _split(self, word: str, longest: int = 8) -> list[str] | None:
        """`word` as the fewest vocabulary words that spell it, or None."""
        if self._knows(word):
            return [word]
        best: list[list[str] | None] = [[]] + [None] * len(word)
        for end in range(1, len(word) + 1):
            for start in range(max(0, end - longest), end):
                head, current = best[start], best[end]
                shorter = current is None or (head is not None and len(head) + 1 < len(current))
                if head is not None and shorter and self._knows(word[start:end]):
                    best[end] = [*head, word[start:end]]
        return best[-1]

    def _knows(self, word: str) -> bool:
        known = self._known.get(word)
        if known is None:
            known = self._known[word] = self.model.vosk_model_find_word(word) >= 0
        return known

    # ---- results ----------------------------------------------------------------------------------
    def make_result(self, raw: list[dict[str, Any]], offset: float, grammar: Grammar | None) -> Result:
        words = [
            Word(w["word"], float(w["start"]) - offset, float(w["end"]) - offset, float(w.get("conf", 1.0)))
            for w in raw
            if w.get("word") and w["word"] != "[unk]"
        ]
        if grammar is not None:
            match = grammar.match(words)
            if match is None:
                return Result("", 0.0, [], True, self.name)
            return Result(match.phrase, match.confidence, match.words, True, self.name)
        if not words:
            return Result("", 0.0, [], True, self.name)
        kept = [w for w in words if w.confidence >= self.word_threshold]
        confidence = sum(w.confidence for w in words) / len(words)
        return Result(" ".join(w.text for w in kept), confidence, kept, True, self.name)

    # ---- Engine -----------------------------------------------------------------------------------
    def session(self, *, max_pending_ms: int | None = None) -> StreamingSession:
        """A call's session; `max_pending_ms` bounds its queued audio (default: the engine's, 5 s)."""
        return self._session(max_pending_ms or self.max_pending_ms)

    def _session(self, max_pending_ms: int) -> StreamingSession:
        self.sessions += 1
        return StreamingSession(_VoskDecoder(self), self.name, max_pending_ms=max_pending_ms)

    async def transcribe(self, pcm: np.ndarray, rate: int, grammar: Sequence[str] | None = None) -> Result:
        return await transcribe_buffer(self._session, self.max_pending_ms, pcm, rate, grammar)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        with self._idle_lock:
            self._idle.clear()


class _VoskDecoder:
    """One call's recognizers; every method runs on the engine's pool, serially for this call."""

    def __init__(self, engine: VoskEngine) -> None:
        self._engine = engine
        self._serial = SerialExecutor(engine._executor)
        self._free: _Rec | None = None
        self._grammars: dict[tuple[str, ...], tuple[Grammar, _Rec | None]] = {}
        self._rec: _Rec | None = None
        self._grammar: Grammar | None = None
        self._segments: list[dict[str, Any]] = []
        self._offset = 0.0
        self._fed = False

    def start(self, grammar: tuple[str, ...] | None) -> CFuture[None]:
        return self._serial.submit(lambda: self._start(grammar))

    def feed(self, pcm: bytes) -> CFuture[Result | None]:
        return self._serial.submit(lambda: self._feed(pcm))

    def end(self) -> CFuture[Result]:
        return self._serial.submit(self._end)

    def abort(self) -> CFuture[None]:
        return self._serial.submit(self._abort)

    def close(self) -> CFuture[None]:
        return self._serial.submit(self._close)

    def _start(self, phrases: tuple[str, ...] | None) -> None:
        self._abort()
        engine = self._engine
        if phrases is None:
            if self._free is None:
                self._free = engine._free_recognizer()
            self._rec, self._grammar = self._free, None
        else:
            key = tuple(normalize(p) for p in phrases)
            cached = self._grammars.get(key)
            if cached is None:
                grammar, unknown = engine.known_phrases(phrases)
                if unknown:
                    log.warning("vosk: model has no word(s) %s; phrases with them are skipped", sorted(set(unknown)))
                if len(self._grammars) >= 8:  # a call rarely has more distinct menus; keep the newest
                    self._grammars.pop(next(iter(self._grammars)))
                cached = self._grammars[key] = (grammar, engine._grammar_recognizer(grammar) if grammar else None)
            self._grammar, self._rec = cached
            if self._rec is None:
                log.warning("vosk: no phrase of %s is in the model's vocabulary: every answer is no match", phrases)
        self._offset = self._rec.samples / RATE if self._rec else 0.0
        self._segments = []

    def _feed(self, pcm: bytes) -> Result | None:
        rec = self._rec
        if rec is None:
            return None
        self._fed = True
        self._segments.extend(rec.accept(pcm))
        partial = json.loads(rec.rec.PartialResult()).get("partial", "")
        heard = " ".join([w["word"] for w in self._segments if w.get("word") != "[unk]"] + [partial]).strip()
        return Result(heard, 0.0, [], False, self._engine.name)

    def _end(self) -> Result:
        rec = self._rec
        if rec is None:
            return self._engine.make_result([], 0.0, self._grammar or Grammar(()))
        raw = self._segments + json.loads(rec.rec.FinalResult()).get("result", [])
        result = self._engine.make_result(raw, self._offset, self._grammar)
        self._rec, self._segments, self._fed = None, [], False
        return result

    def _abort(self) -> None:
        if self._rec is not None and self._fed:
            self._rec.rec.Reset()
        self._rec, self._segments, self._fed = None, [], False

    def _close(self) -> None:
        self._abort()
        if self._free is not None:
            self._engine._release(self._free)
            self._free = None
        self._grammars.clear()
