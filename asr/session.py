"""The engine-independent half of a recognizer session: queueing, back-pressure, ordering, partials.

A session talks to its engine through a `Decoder`: five operations that each return a
`concurrent.futures.Future` and run **in the order they were submitted** (the engine guarantees it: a
per-session serial queue on a thread pool for Vosk, a per-worker pipe for pocketsphinx). That lets `begin`,
`cancel` and `push` stay synchronous and non-blocking on the event loop: they only submit work.

Audio waits in a bounded queue (`max_pending_ms`, 5 s by default). At most one `feed` per session is in
flight; what arrives meanwhile is sent as one chunk when it returns, so a decoder that falls behind gets
bigger chunks, not more requests. If the queue overflows anyway, the oldest audio is dropped and counted
(logged once per session), so memory never grows without bound.
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
from asr.recognizer import Result

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
    """Log failures of fire-and-forget operations instead of losing them."""
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("recognizer operation failed: %s", fut.exception())


class StreamingSession:
    """`RecognizerSession` on top of a `Decoder`. All methods are called on one event loop."""

    def __init__(
        self,
        decoder: Decoder,
        engine: str,
        *,
        max_pending_ms: int = 5000,
        min_feed_ms: int = 100,
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
        self._on_close = on_close
        self.dropped_ms = 0  # audio dropped because the decoder fell behind (whole session)
        self.utterances = 0

    @property
    def active(self) -> bool:
        return self._active

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
        phrases = tuple(grammar) if grammar is not None else None
        self._decoder.start(phrases).add_done_callback(_consume)

    def push(self, pcm: np.ndarray) -> None:
        self._check_open()
        if not self._active:
            self.begin(None)  # lenient: audio without begin() is free speech
        data = np.asarray(pcm, dtype=np.int16).tobytes()
        if not data:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes > self._max_pending:
            self._drop_oldest()
        self._maybe_feed()

    async def finish(self) -> Result:
        self._check_open()
        if not self._active:
            return Result("", 0.0, [], True, self.engine)
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
        return await asyncio.wrap_future(self._decoder.end())

    def cancel(self) -> None:
        if not self._active or self._closed:
            return
        self._gen += 1
        self._active = False
        self._finishing = False
        self._pending.clear()
        self._pending_bytes = 0
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
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("recognizer session is closed")

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
