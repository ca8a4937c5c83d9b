"""The engine-independent half of a recognizer session: queueing, back-pressure, ordering, partials.

A session talks to its engine through a `Decoder`: five operations that each return a
`concurrent.futures.Future` and run **in the order they were submitted** (the engine guarantees it: a
per-session serial queue on a thread pool for Vosk, a per-worker pipe for pocketsphinx). That lets `begin`,
`cancel` and `push` stay synchronous and non-blocking on the event loop: they only submit work.

Audio waits in a bounded queue (`max_pending_ms`, 5 s by default). At most one `feed` per session is in
flight; what arrives meanwhile is sent as one chunk when it returns, so a decoder that falls behind gets
bigger chunks, not more requests. If the queue overflows anyway, the oldest audio is dropped and counted
(logged once per session), so memory never grows without bound. An engine that is saturated refuses a new
utterance at once (`AsrBusy` from `start`): the session then sends none of its audio and `finish()` returns
an empty result, so overload costs recognition, not latency or memory.

**Early final results.** The caller's reply should start the moment the endpointing silence is confirmed,
not a decode later. So while the silence is still being counted, the listener may call `speculate()`: what
was pushed so far is decoded to a final result at once, and audio pushed afterwards (the rest of the
silence) is held, not decoded. If the silence is confirmed, `finish()` returns that result without waiting.
If the caller speaks again, `resume()` restarts the decoder on the whole utterance (the session keeps its
audio, up to `max_keep_ms`), held audio included, and the utterance goes on as if nothing happened: the
result is the same as without speculation, at the cost of decoding the utterance twice. Either way the
decoder sees the utterance up to the point of speculation, so the result does not depend on whether the
speculation was confirmed or taken back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from asr.audio import to_8k
from asr.recognizer import AsrBusy, Result

log = logging.getLogger(__name__)

CFuture = concurrent.futures.Future


class Decoder(Protocol):
    """One session's decoder on the engine side; every call returns at once."""

    def start(self, grammar: tuple[str, ...] | None) -> CFuture[None]: ...
    def feed(self, pcm: bytes) -> CFuture[Result | None]: ...  # 8 kHz int16; returns a partial result
    def end(self) -> CFuture[Result]: ...
    def abort(self) -> CFuture[None]: ...
    def close(self) -> CFuture[None]: ...


class SerialExecutor:
    """Runs one session's jobs on a shared thread pool one at a time, in submission order."""

    def __init__(self, pool: concurrent.futures.Executor) -> None:
        self._pool = pool
        self._jobs: deque[tuple[Callable[[], Any], CFuture[Any]]] = deque()
        self._lock = threading.Lock()
        self._running = False

    def submit(self, fn: Callable[[], Any]) -> CFuture[Any]:
        fut: CFuture[Any] = CFuture()
        with self._lock:
            self._jobs.append((fn, fut))
            if self._running:
                return fut
            self._running = True
        self._next()
        return fut

    def _next(self) -> None:
        with self._lock:
            if not self._jobs:
                self._running = False
                return
            fn, fut = self._jobs.popleft()
        try:
            self._pool.submit(self._run, fn, fut)
        except RuntimeError as exc:  # pool shut down
            fut.set_exception(exc)
            self._drain(exc)

    def _run(self, fn: Callable[[], Any], fut: CFuture[Any]) -> None:
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)
        self._next()

    def _drain(self, exc: BaseException) -> None:
        with self._lock:
            jobs, self._jobs = list(self._jobs), deque()
            self._running = False
        for _, fut in jobs:
            fut.set_exception(exc)


def _consume(fut: CFuture[Any]) -> None:
    """Log failures of fire-and-forget operations instead of losing them (an engine refusing work under
    overload counts its refusals itself, so those are not logged one by one)."""
    if not fut.cancelled() and fut.exception() is not None and not isinstance(fut.exception(), AsrBusy):
        log.warning("recognizer operation failed: %s", fut.exception())


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """A speculative result nobody collects (taken back, cancelled) must not log 'never retrieved'."""
    if not fut.cancelled():
        fut.exception()


class StreamingSession:
    """`RecognizerSession` on top of a `Decoder`. All methods are called on one event loop."""

    def __init__(
        self,
        decoder: Decoder,
        engine: str,
        *,
        max_pending_ms: int = 5000,
        min_feed_ms: int = 100,
        max_keep_ms: int = 30_000,
        on_close: Callable[[StreamingSession], None] | None = None,
    ) -> None:
        self._decoder = decoder
        self.engine = engine
        self.on_partial: Callable[[Result], None] | None = None
        self._max_pending = max_pending_ms * 16  # bytes of 8 kHz int16
        self._min_feed = min_feed_ms * 16
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._inflight: asyncio.Future[Result | None] | None = None
        self._active = False
        self._finishing = False
        self._closed = False
        self._gen = 0  # utterance number: results of a cancelled utterance are ignored
        self._last_partial = ""
        self._grammar: tuple[str, ...] | None = None
        # The current utterance's audio, kept so a speculation can be taken back (see the module docstring).
        self._max_keep = max_keep_ms * 16
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._early: asyncio.Future[Result] | None = None  # the speculative final result, while one stands
        self._on_close = on_close
        self.dropped_ms = 0  # audio dropped because the decoder fell behind (whole session)
        self.utterances = 0
        self.refused = 0  # utterances the engine refused under overload (whole session)
        self._refused = False  # the current one was

    @property
    def active(self) -> bool:
        return self._active

    @property
    def speculating(self) -> bool:
        """An early final result has been asked for and not taken back."""
        return self._early is not None

    # ---- RecognizerSession ------------------------------------------------------------------
    def begin(self, grammar: Sequence[str] | None) -> None:
        self._check_open()
        if self._active:
            self.cancel()
        self._gen += 1
        self._active = True
        self._finishing = False
        self._last_partial = ""
        self.utterances += 1
        self._kept.clear()
        self._kept_bytes = 0
        self._grammar = tuple(grammar) if grammar is not None else None
        self._start()

    def push(self, pcm: np.ndarray) -> None:
        self._check_open()
        if not self._active:
            self.begin(None)  # lenient: audio without begin() is free speech
        if self._refused:
            return
        data = np.asarray(pcm, dtype=np.int16).tobytes()
        if not data:
            return
        self._keep(data)
        if self._early is not None:
            return  # held: decoded only if the speculation is taken back
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes > self._max_pending:
            self._drop_oldest()
        self._maybe_feed()

    def speculate(self) -> None:
        """Decode the utterance pushed so far to a final result now; hold audio pushed after this.

        Called while the endpointing silence is still being confirmed, so `finish()` has its answer ready.
        Does nothing when no utterance is active, one is already speculated, or the utterance outgrew the
        audio kept for `resume()` (then `finish()` decodes as usual).
        """
        if not self._active or self._finishing or self._early is not None or self._closed or self._refused:
            return
        if self._kept_bytes > self._max_keep - self._max_pending:  # no room left to hold the rest
            return
        if self._pending:  # decoder operations run in order: this feed completes before the end
            chunk = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            self._decoder.feed(chunk).add_done_callback(_consume)
        early = asyncio.wrap_future(self._decoder.end())
        early.add_done_callback(_retrieve)
        self._early = early

    def resume(self) -> None:
        """The caller went on speaking: drop the early result and decode the whole utterance again."""
        if self._early is None or self._closed:
            return
        self._early = None
        self._gen += 1  # partials and feeds of the speculated decode are stale
        self._pending.clear()
        self._pending_bytes = 0
        if not self._start():  # the restart was refused: the utterance ends empty
            return
        gen = self._gen
        fut = asyncio.wrap_future(self._decoder.feed(b"".join(self._kept)))
        self._inflight = fut
        fut.add_done_callback(lambda f: self._fed(f, gen))

    async def finish(self) -> Result:
        self._check_open()
        if not self._active:
            return Result("", 0.0, [], True, self.engine)
        if self._refused:  # not recognized (overload): an empty result, as for silence
            self._active = False
            return Result("", 0.0, [], True, self.engine)
        early = self._early
        if early is not None:
            self._early = None
            self._active = False
            self._pending.clear()
            self._pending_bytes = 0
            self._kept.clear()
            self._kept_bytes = 0
            return await early
        gen = self._gen
        self._finishing = True
        self._maybe_feed()
        while self._inflight is not None or self._pending:
            if self._inflight is not None:
                await asyncio.wait({self._inflight})
            if gen != self._gen:  # cancelled (or restarted) while we waited
                return Result("", 0.0, [], True, self.engine)
            self._maybe_feed()
        self._active = False
        self._finishing = False
        self._kept.clear()
        self._kept_bytes = 0
        return await asyncio.wrap_future(self._decoder.end())

    def cancel(self) -> None:
        if not self._active or self._closed:
            return
        self._gen += 1
        self._active = False
        self._finishing = False
        self._early = None  # its end already closed the utterance; the abort below is then a no-op
        self._pending.clear()
        self._pending_bytes = 0
        self._kept.clear()
        self._kept_bytes = 0
        self._decoder.abort().add_done_callback(_consume)

    async def aclose(self) -> None:
        if self._closed:
            return
        self.cancel()
        self._closed = True
        try:
            await asyncio.wrap_future(self._decoder.close())
        finally:
            if self._on_close is not None:
                self._on_close(self)

    # ---- internals --------------------------------------------------------------------------
    def _start(self) -> bool:
        """Begin the decoder's utterance; False if the engine refused it (overload: it says so at once), and
        then the utterance sends nothing more."""
        started = self._decoder.start(self._grammar)
        started.add_done_callback(_consume)
        self._refused = started.done() and isinstance(started.exception(), AsrBusy)
        if self._refused:
            self.refused += 1
        return not self._refused

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("recognizer session is closed")

    def _keep(self, data: bytes) -> None:
        """Keep the utterance's audio for `resume()`, up to `max_keep_ms` (the listener's own limit, 15 s, is
        well below the default 30 s). Past that, speculation is off for this utterance; audio held during a
        speculation beyond it is dropped and counted, like audio a slow decoder cannot take."""
        if self._kept_bytes + len(data) <= self._max_keep:
            self._kept.append(data)
            self._kept_bytes += len(data)
        elif self._early is not None:
            self.dropped_ms += len(data) // 16
        else:
            self._kept.clear()
            self._kept_bytes = self._max_keep + 1  # speculate() now refuses until the next begin()

    def _drop_oldest(self) -> None:
        dropped = 0
        while self._pending_bytes > self._max_pending and len(self._pending) > 1:
            chunk = self._pending.popleft()
            self._pending_bytes -= len(chunk)
            dropped += len(chunk)
        if dropped and self.dropped_ms == 0:
            log.warning(
                "%s decoder falls behind: dropping the oldest queued audio (more than %d ms queued)",
                self.engine,
                self._max_pending // 16,
            )
        self.dropped_ms += dropped // 16

    def _maybe_feed(self) -> None:
        if self._inflight is not None or not self._pending:
            return
        if self._pending_bytes < self._min_feed and not self._finishing:
            return
        chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        gen = self._gen
        fut = asyncio.wrap_future(self._decoder.feed(chunk))
        self._inflight = fut
        fut.add_done_callback(lambda f: self._fed(f, gen))

    def _fed(self, fut: asyncio.Future[Result | None], gen: int) -> None:
        if fut is self._inflight:
            self._inflight = None
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.warning("%s decoding failed: %s", self.engine, exc)
        elif gen == self._gen:
            partial = fut.result()
            if partial is not None and partial.text != self._last_partial:
                self._last_partial = partial.text
                if self.on_partial is not None:
                    try:
                        self.on_partial(partial)
                    except Exception:
                        log.exception("on_partial callback failed")
        if self._active:
            self._maybe_feed()  # audio queued meanwhile (of this utterance or of the next one)


async def transcribe_buffer(
    make_session: Callable[[int], StreamingSession], default_pending_ms: int, pcm: np.ndarray, rate: int,
    grammar: Sequence[str] | None,
) -> Result:
    """Decode a whole recording through a session sized to hold all of it (a file is not real time)."""
    audio = to_8k(pcm, rate)
    session = make_session(max(default_pending_ms, len(audio) // 8 + 1000))
    try:
        session.begin(grammar)
        session.push(audio)
        return await session.finish()
    finally:
        await session.aclose()
