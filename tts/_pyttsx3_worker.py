"""The one thread that owns pyttsx3.

pyttsx3 is not thread-safe, and its espeak driver is process-global underneath: libespeak-ng is initialised
once per process and has a single synthesis callback, so a second engine would silently steal the first one's
audio. Hence one worker per process, shared by every Pyttsx3Synthesizer, fed through a queue.

Observed in pyttsx3 2.99 (drivers/espeak.py, libespeak-ng 1.51 in AUDIO_OUTPUT_RETRIEVAL mode), worked around:
- `runAndWait()` does not wait for `save_to_file` on a fresh engine: espeak renders on its own thread and the
  driver's loop ends after one 10 ms tick, so longer prompts return before the WAV exists. We always wait for
  the "finished-utterance" notification, which the driver sends after writing the file.
- `runAndWait()` first runs `endLoop`, which calls `stop()`, which calls espeak_Cancel whenever espeak's
  command FIFO is busy. That silently drops property changes still queued there (a new rate showed up one
  prompt late) and leaves a `_stopping` flag that cancels the *next* render. So the worker waits for espeak
  to go idle after creating the engine and after setting properties, and never calls runAndWait while busy;
  a first render with no property changes brings the driver's command queue into its steady state.
- A render cannot be cancelled: in retrieval mode espeak_Cancel blocks until the whole text is rendered
  (measured: 10 s for a 2000 s text). A caller's time-out only withdraws that caller; the worker still lets
  the render finish, otherwise its audio would land in the next prompt's file. If espeak never reports
  completion, the engine is declared wedged and later requests fail fast instead of queueing forever.
- Dropping an engine unregisters the single global espeak callback in its destructor, so an old engine kept
  alive by a traceback would later silence a new one. The engine is never replaced while the worker runs,
  and exceptions handed to callers are fresh objects without tracebacks.
- The driver `print()`s "Audio saved to ..." for every file, which would corrupt CLI output on stdout; its
  module-level `print` is rebound to a debug logger.
- A bad voice does not raise: the driver swallows the exception, emits an "error" notification and renders
  with the previous voice. We resolve voices ourselves and turn "error" notifications into failures.
- The WAV header always says 22050 Hz; true for espeak's own voices, wrong for MBROLA ones, which are
  therefore not offered.
Headless operation is fine: save_to_file never touches an audio device (only `say()` shells out to aplay).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import difflib
import gc
import logging
import queue
import shutil
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .base import SynthesisError, wav_to_prompt

log = logging.getLogger(__name__)


@dataclass
class RenderJob:
    """One prompt handed to the worker; `abandoned` lets a timed-out caller withdraw it."""

    text: str
    voice: str | None
    language: str
    rate_wpm: int
    volume: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[np.ndarray]
    abandoned: threading.Event = field(default_factory=threading.Event)

    def settle(self, result: np.ndarray | None, error: BaseException | None) -> None:
        """Hand the outcome back to the caller's loop; thread-safe, and harmless if nobody waits."""

        def _apply() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the caller's loop is closed; nobody is left to tell
            self.loop.call_soon_threadsafe(_apply)


_WEDGED_AFTER_S = 120.0
"""A render that has not finished after this long is not going to; far beyond any real prompt."""
_IDLE_WITHIN_S = 10.0
"""espeak's command FIFO drains in milliseconds once a render is done; longer means it is stuck."""


class _EngineWedged(SynthesisError):
    """The engine stopped reporting completions; it cannot be safely reused or replaced."""


@dataclass(frozen=True)
class _Voice:
    id: str
    name: str
    languages: tuple[str, ...]


def _fold(name: str) -> str:
    """espeak spells display names both "English (America)" and "English_(America)"."""
    return name.lower().replace("_", " ")


def _log_driver_print(*args: Any, **_: Any) -> None:
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


class EngineWorker:
    """Serves RenderJobs one at a time on a dedicated thread that creates and owns the engine."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[RenderJob | None] = queue.SimpleQueue()
        self._finished = threading.Event()
        self._errors: list[str] = []
        self._voices: list[_Voice] = []
        self._espeak: Any = None
        self._variants: set[str] = set()
        self._tmpdir = Path(tempfile.mkdtemp(prefix="hotline-pyttsx3-"))
        self._counter = 0
        self._thread = threading.Thread(target=self._run, name="hotline-pyttsx3", daemon=True)
        self._thread.start()

    def submit(self, job: RenderJob) -> None:
        self._jobs.put(job)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish queued jobs, drop the engine, end the thread. Blocks: call via asyncio.to_thread."""
        self._jobs.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("pyttsx3 worker did not stop within %.0f s; abandoning it", timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- everything below runs on the worker thread only ---

    def _run(self) -> None:
        engine: Any = None
        broken: SynthesisError | None = None
        try:
            engine = self._create_engine()
        except Exception as exc:
            broken = SynthesisError(f"pyttsx3 cannot start its espeak-ng driver: {type(exc).__name__}: {exc}")
            log.error("%s", broken)
        try:
            while (job := self._jobs.get()) is not None:
                if job.abandoned.is_set():
                    continue
                if broken is not None:
                    job.settle(None, broken)
                    continue
                try:
                    job.settle(self._render(engine, job), None)
                except _EngineWedged as exc:
                    broken = SynthesisError(str(exc))
                    log.error("%s", broken)
                    job.settle(None, broken)
                except SynthesisError as exc:
                    # A fresh exception: the original's traceback pins the engine (see module docstring).
                    job.settle(None, SynthesisError(str(exc)))
                except Exception as exc:  # pyttsx3's loop state is unknown now: stop using it
                    log.exception("pyttsx3 render failed; disabling the pyttsx3 engine")
                    broken = SynthesisError(f"pyttsx3 engine failed and was disabled: {exc}")
                    job.settle(None, broken)
        finally:
            # Free the engine now, so its destructor clears the espeak callback before a successor sets one.
            ref = weakref.ref(engine) if engine is not None else None
            engine = None
            if ref is not None and ref() is not None:
                gc.collect()
            if ref is not None and ref() is not None:
                log.warning("pyttsx3 engine still referenced after shutdown; a later engine may stay silent")
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _create_engine(self) -> Any:
        from pyttsx3.engine import Engine  # imported here so libespeak-ng is loaded on the owning thread

        engine = Engine("espeak")
        driver_module = sys.modules["pyttsx3.drivers.espeak"]
        driver_module.print = _log_driver_print  # type: ignore[attr-defined]
        self._espeak = sys.modules["pyttsx3.drivers._espeak"]  # the driver's ctypes binding: IsPlaying()
        engine.connect("finished-utterance", lambda **_: self._finished.set())
        engine.connect("error", lambda exception=None, **_: self._errors.append(str(exception)))
        self._wait_idle()  # the driver's constructor queued rate/volume commands
        self._run_to_file(engine, "ready", self._tmpdir / "warm-up.wav")
        self._voices = [
            _Voice(
                str(v.id).lower(), _fold(str(v.name)), tuple(str(lang).lower() for lang in v.languages or ())
            )
            for v in engine.getProperty("voices")
            if not str(v.id).startswith("mb/")
        ]
        # espeak ignores an unknown "+variant" silently, so we keep the list to check against.
        spec = self._espeak.VOICE(languages=b"variant")
        self._variants = set()
        for v in self._espeak.ListVoices(ctypes.pointer(spec)):
            self._variants |= {_fold(v.identifier.decode().rsplit("/", 1)[-1]), _fold(v.name.decode())}
        return engine

    def resolve_voice(self, voice: str | None, language: str) -> str:
        """Map a voice id, file name, display name or language to an espeak voice id (+variant)."""
        wanted = (voice or language).strip()
        base, plus, variant = wanted.partition("+")
        key = _fold(base)
        candidates = [key]
        if voice is None and "-" in key:
            candidates.append(key.split("-", 1)[0])  # "en-ca" has no voice of its own: fall back to "en"
        if variant and _fold(variant) not in self._variants:
            raise SynthesisError(f"pyttsx3/espeak-ng has no voice variant {variant!r}")
        for cand in candidates:
            for matches in (
                lambda v, c=cand: v.id == c,
                lambda v, c=cand: v.id.rsplit("/", 1)[-1] == c,
                lambda v, c=cand: v.name == c,
                lambda v, c=cand: c in v.languages,
            ):
                found = next((v for v in self._voices if matches(v)), None)
                if found is not None:
                    return found.id + plus + variant
        what = f"voice {voice!r}" if voice else f"language {language!r}"
        ids = [v.id.rsplit("/", 1)[-1] for v in self._voices]
        close = difflib.get_close_matches(key, ids, n=6, cutoff=0.4) or ids[:6]
        raise SynthesisError(f"pyttsx3/espeak-ng has no {what}; close matches: {', '.join(close)}")

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + _IDLE_WITHIN_S
        while self._espeak.IsPlaying():
            if time.monotonic() > deadline:
                raise _EngineWedged(f"espeak-ng stayed busy for {_IDLE_WITHIN_S:g} s; pyttsx3 is disabled")
            time.sleep(0.002)

    def _run_to_file(self, engine: Any, text: str, path: Path) -> bytes:
        """Render `text` into `path` and return the WAV bytes; espeak must be idle on entry and is on exit."""
        self._finished.clear()
        engine.save_to_file(text, str(path))
        engine.runAndWait()
        if not self._finished.wait(_WEDGED_AFTER_S):
            raise _EngineWedged(
                f"pyttsx3 never finished a {len(text)}-character prompt within {_WEDGED_AFTER_S:g} s; "
                "the engine is disabled until restart (use the espeak-ng or flite engine instead)"
            )
        self._wait_idle()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SynthesisError(f"pyttsx3 reported success but wrote no WAV: {exc}") from exc
        finally:
            path.unlink(missing_ok=True)

    def _render(self, engine: Any, job: RenderJob) -> np.ndarray:
        voice_id = self.resolve_voice(job.voice, job.language)
        self._counter += 1
        self._errors.clear()
        # In steady state these run at once (voice synchronously, rate/volume via espeak's FIFO); waiting
        # for idle makes sure they have landed before runAndWait's stop() could cancel them.
        engine.setProperty("voice", voice_id)
        engine.setProperty("rate", job.rate_wpm)
        engine.setProperty("volume", job.volume)
        self._wait_idle()
        if self._errors:
            detail = "; ".join(self._errors)
            raise SynthesisError(f"pyttsx3 rejected voice {voice_id!r}: {detail}")
        data = self._run_to_file(engine, job.text, self._tmpdir / f"prompt-{self._counter}.wav")
        if self._errors:
            raise SynthesisError(f"pyttsx3 failed to render: {'; '.join(self._errors)}")
        return wav_to_prompt(data)


_registry_lock = threading.Lock()
_shared: EngineWorker | None = None
_users = 0


def acquire_worker() -> EngineWorker:
    """The process-wide worker, started on first use."""
    global _shared, _users
    with _registry_lock:
        if _shared is None or not _shared.alive:
            _shared = EngineWorker()
        _users += 1
        return _shared


def release_worker() -> None:
    """Drop one user; the last one stops the thread (blocking, so call via asyncio.to_thread)."""
    global _shared, _users
    with _registry_lock:
        _users = max(0, _users - 1)
        if _users == 0 and _shared is not None:
            _shared.stop()
            _shared = None
