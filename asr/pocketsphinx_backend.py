"""pocketsphinx backend: the embedded default (English), decoding in worker processes.

pocketsphinx holds the GIL while it decodes — measured (bench/asr_rtf.py, 4.6 s utterances): two decodes on
two threads gain almost nothing over one after the other (speed-up 1.09-1.16x; 0.86x with 20 ms chunks), and
a 10 ms event-loop ticker is 173-181 ms late while one thread decodes 1 s chunks: the loop stalls for as
long as each `process_raw` call runs. So decoding runs in `workers` processes (default: one per CPU); each call's
session is pinned to one worker, which keeps its decoder state, and requests travel over a pipe in order.

In the parent: a writer thread per worker sends requests (so a full pipe never blocks the event loop), a
reader thread resolves their futures. Queued audio is bounded per session (see asr/session.py), so a
worker that falls behind costs dropped audio, not memory.

Results:
- free speech: the shipped en-US language model; word confidence is the word's posterior probability in the
  decoder's lattice (0..1: how much of the lattice's probability mass goes through this word at this time);
  the utterance's confidence is their mean.
- grammar: a JSGF rule with the phrases; confidence is a likelihood ratio against a phone loop decoded
  alongside, mapped to 0..1 (see `_ps_worker._grammar_confidence`): ≥ 0.5 means "the phrase explains the
  audio about as well as free phones do", out-of-grammar speech mostly scores well below.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from asr.recognizer import AsrError, Result
from asr.session import CFuture, StreamingSession, transcribe_buffer

log = logging.getLogger(__name__)

_START_TIMEOUT = 60.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class _WorkerProcess:
    """Parent-side handle of one decoding process."""

    def __init__(self, index: int, free_word_threshold: float, free_pool: int) -> None:
        self.index = index
        self.sessions = 0
        # A plain `python -m asr._ps_worker` over a socketpair rather than multiprocessing's spawn: spawn
        # re-runs the parent's __main__ module, which breaks any script that builds an engine unguarded.
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "asr._ps_worker", str(theirs.fileno()), repr(free_word_threshold), str(free_pool)],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        self._pending: dict[int, CFuture[Any]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._out: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.alive = False
        self.stopping = False
        self.load_seconds = 0.0

    def wait_ready(self, timeout: float) -> None:
        if not self._conn.poll(timeout):
            self.process.kill()
            raise AsrError(f"pocketsphinx worker {self.index} did not start within {timeout:.0f} s")
        try:
            status, detail = self._conn.recv()
        except EOFError:
            raise AsrError(f"pocketsphinx worker {self.index} exited while starting") from None
        if status != "ready":
            raise AsrError(f"pocketsphinx worker {self.index} cannot start: {detail}")
        self.load_seconds = float(detail)
        self.alive = True
        threading.Thread(target=self._write, name=f"asr-{self.index}-send", daemon=True).start()
        threading.Thread(target=self._read, name=f"asr-{self.index}-recv", daemon=True).start()

    def call(self, op: str, sid: int, arg: Any = None) -> CFuture[Any]:
        fut: CFuture[Any] = CFuture()
        with self._lock:
            if not self.alive:
                fut.set_exception(AsrError(f"pocketsphinx worker {self.index} is not running"))
                return fut
            rid = next(self._ids)
            self._pending[rid] = fut
        self._out.put((op, sid, rid, arg))
        return fut

    def _write(self) -> None:
        while (msg := self._out.get()) is not None:
            try:
                self._conn.send(msg)
            except (OSError, ValueError):
                break

    def _read(self) -> None:
        while True:
            try:
                rid, ok, payload = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                fut = self._pending.pop(rid, None)
            if fut is None:
                continue
            if ok:
                fut.set_result(payload)
            else:
                fut.set_exception(AsrError(f"pocketsphinx: {payload}"))
        with self._lock:
            was_alive, self.alive = self.alive, False
            pending, self._pending = list(self._pending.values()), {}
        if was_alive and not self.stopping:
            log.error("pocketsphinx worker %d exited (code %s)", self.index, self.process.poll())
        for fut in pending:
            fut.set_exception(AsrError(f"pocketsphinx worker {self.index} exited"))
        self._out.put(None)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        self._out.put(None)
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5.0)
        self._conn.close()


def _log_warnings(fut: CFuture[Any]) -> None:
    """The worker reports grammar problems (unknown words) with its answer to `start`; log them here."""
    if not fut.cancelled() and fut.exception() is None:
        for warning in fut.result() or ():
            log.warning("pocketsphinx: %s", warning)


class _RemoteDecoder:
    """A session's `Decoder`: operations become requests to the session's worker process."""

    def __init__(self, worker: _WorkerProcess, sid: int) -> None:
        self._worker = worker
        self._sid = sid

    def start(self, grammar: tuple[str, ...] | None) -> CFuture[None]:
        fut = self._worker.call("start", self._sid, grammar)
        fut.add_done_callback(_log_warnings)
        return fut

    def feed(self, pcm: bytes) -> CFuture[Result | None]:
        return self._worker.call("feed", self._sid, pcm)

    def end(self) -> CFuture[Result]:
        return self._worker.call("end", self._sid)

    def abort(self) -> CFuture[None]:
        return self._worker.call("abort", self._sid)

    def close(self) -> CFuture[None]:
        return self._worker.call("close", self._sid)


class PocketsphinxEngine:
    name = "pocketsphinx"

    def __init__(
        self, *, workers: int = 2, free_word_threshold: float = 0.0, max_pending_ms: int = 5000, free_pool: int = 8
    ) -> None:
        """`free_pool`: idle free-speech decoders each worker keeps (≈95 MB each; building one costs 0.25 s)."""
        start = time.perf_counter()
        self._workers = [_WorkerProcess(i, free_word_threshold, free_pool) for i in range(max(1, workers))]
        try:
            for w in self._workers:
                w.wait_ready(_START_TIMEOUT)
        except BaseException:
            for w in self._workers:
                w.stop(1.0)
            raise
        self.load_seconds = time.perf_counter() - start
        self.max_pending_ms = max_pending_ms
        self._sids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def session(self, *, max_pending_ms: int | None = None) -> StreamingSession:
        """A call's session; `max_pending_ms` bounds its queued audio (default: the engine's, 5 s)."""
        return self._session(max_pending_ms or self.max_pending_ms)

    def _session(self, max_pending_ms: int) -> StreamingSession:
        with self._lock:
            if self._closed:
                raise AsrError("the pocketsphinx engine is closed")
            live = [w for w in self._workers if w.alive]
            if not live:
                raise AsrError("no pocketsphinx worker is running (see the log for why they exited)")
            worker = min(live, key=lambda w: w.sessions)
            worker.sessions += 1
            sid = next(self._sids)

        def closed(_: StreamingSession) -> None:
            with self._lock:
                worker.sessions -= 1

        return StreamingSession(_RemoteDecoder(worker, sid), self.name, max_pending_ms=max_pending_ms, on_close=closed)

    async def transcribe(self, pcm: np.ndarray, rate: int, grammar: Sequence[str] | None = None) -> Result:
        return await transcribe_buffer(self._session, self.max_pending_ms, pcm, rate, grammar)

    async def aclose(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self._workers))
