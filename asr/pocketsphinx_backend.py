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
import concurrent.futures
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
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from asr.recognizer import AsrBusy, AsrError, Result
from asr.session import CFuture, StreamingSession, transcribe_buffer

log = logging.getLogger(__name__)

_START_TIMEOUT = 60.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def _settle(fut: CFuture[Any], ok: bool, payload: Any) -> None:
    """Resolve a request; one whose waiter gave up (a cancelled wait_for cancels it) is skipped, where
    set_result would raise InvalidStateError and kill the thread that serves every other request."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if ok:
            fut.set_result(payload)
        else:
            fut.set_exception(AsrError(payload))


# Requests a worker may have unanswered before it refuses new utterances (AsrBusy). A worker keeps up with
# 8-16 concurrent recognitions in real time (bench/asr_rtf); each has one feed in flight at a time.
MAX_OUTSTANDING = 16


class _WorkerProcess:
    """Parent-side handle of one decoding process, and of the replacements started when it dies.

    A worker that exits (crash, OOM kill, SIGKILL) takes the decoder state of its sessions' utterances with it.
    Those utterances fail (their pending and later requests raise `AsrError`, so the call gets an empty result:
    the flow's no_match path); the sessions pinned here stay usable: a replacement process is started at once,
    and requests of utterances begun after the death wait for it (a start takes ~0.4 s). `epoch` counts the
    processes: every request carries the epoch its utterance began in, and one from an older epoch fails.
    If a replacement cannot start, requests fail fast and it is retried with a growing pause (1 s .. 30 s).
    """

    def __init__(self, index: int, free_word_threshold: float, free_pool: int) -> None:
        self.index = index
        self.sessions = 0
        self._argv = [sys.executable, "-m", "asr._ps_worker", "", repr(free_word_threshold), str(free_pool)]
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, CFuture[Any]] = {}  # sent to the current process, not answered yet
        self._held: list[tuple[tuple[Any, ...], CFuture[Any]]] = []  # made while a replacement starts
        self._out: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.epoch = 0
        self.refused = 0  # utterances refused while saturated
        self.alive = False
        self.starting = True  # a process is being started: requests are held for it
        self.stopping = False
        self.restarts = 0
        self.load_seconds = 0.0
        self._spawn()

    # ---- process lifecycle --------------------------------------------------------------------------
    def _spawn(self) -> None:
        # A plain `python -m asr._ps_worker` over a socketpair rather than multiprocessing's spawn: spawn
        # re-runs the parent's __main__ module, which breaks any script that builds an engine unguarded.
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        argv = list(self._argv)
        argv[3] = str(theirs.fileno())
        try:
            self.process = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())

    def wait_ready(self, timeout: float) -> None:
        """Wait for the process started last to load its model, then serve requests (held ones first)."""
        conn = self._conn
        try:
            if not conn.poll(timeout):
                raise AsrError(f"pocketsphinx worker {self.index} did not start within {timeout:.0f} s")
            try:
                status, detail = conn.recv()
            except (EOFError, OSError):
                raise AsrError(f"pocketsphinx worker {self.index} exited while starting") from None
            if status != "ready":
                raise AsrError(f"pocketsphinx worker {self.index} cannot start: {detail}")
        except (AsrError, OSError) as exc:  # OSError: the engine closed the connection while we waited
            conn.close()
            self.process.kill()
            self.process.wait()
            if isinstance(exc, AsrError):
                raise
            raise AsrError(f"pocketsphinx worker {self.index} stopped while starting") from exc
        self.load_seconds = float(detail)
        out: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        with self._lock:
            stopped = self.stopping
            if not stopped:
                self._out = out
                self.alive, self.starting = True, False
                for msg, fut in self._held:
                    self._pending[msg[2]] = fut
                    out.put(msg)
                self._held = []
        if stopped:  # the engine closed while this replacement loaded
            conn.close()
            self.process.kill()
            self.process.wait()
            return
        threading.Thread(target=self._write, args=(conn, out), name=f"asr-{self.index}-send", daemon=True).start()
        threading.Thread(target=self._read, args=(conn, out), name=f"asr-{self.index}-recv", daemon=True).start()

    def _restart(self, code: int | None) -> None:
        """Runs on its own thread after the process died: start replacements until one comes up."""
        pause = 1.0
        while True:
            started = time.perf_counter()
            try:
                if self.stopping:
                    return
                self._spawn()  # not under the lock: call() runs on the event loop and must never wait for a fork
                self.wait_ready(_START_TIMEOUT)
            except (AsrError, OSError) as exc:
                with self._lock:
                    held, self._held = self._held, []
                    self.starting = False
                for _, fut in held:
                    _settle(fut, False, f"pocketsphinx worker {self.index} is restarting: {exc}")
                if self.stopping:
                    return
                log.error("pocketsphinx worker %d: replacement failed (%s); next try in %.0f s", self.index, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 30.0)
                with self._lock:
                    if self.stopping:
                        return
                    self.starting = True
                continue
            if self.stopping:
                return
            self.restarts += 1
            log.warning(
                "pocketsphinx worker %d replaced after exit code %s: pid %d, ready in %.1f s",
                self.index, code, self.process.pid, time.perf_counter() - started,
            )  # fmt: skip
            return

    # ---- requests -----------------------------------------------------------------------------------
    def saturated(self) -> bool:
        """More requests unanswered than the process keeps up with: new utterances should be refused."""
        with self._lock:
            return len(self._pending) >= MAX_OUTSTANDING

    def refuse(self) -> CFuture[Any]:
        """A start refused because the worker is saturated: counted, logged now and then, failed at once."""
        with self._lock:
            self.refused += 1
            refused = self.refused
        if refused in (1, 100) or refused % 1000 == 0:
            log.warning("pocketsphinx worker %d is saturated: %d utterance(s) refused so far", self.index, refused)
        fut: CFuture[Any] = CFuture()
        fut.set_exception(AsrBusy(f"pocketsphinx worker {self.index} is saturated"))
        return fut

    def call(self, op: str, sid: int, arg: Any = None, epoch: int | None = None) -> CFuture[Any]:
        """Send one request; `epoch`: the worker epoch the request's utterance began in (None: any)."""
        fut: CFuture[Any] = CFuture()
        with self._lock:
            if epoch is not None and epoch != self.epoch:
                fut.set_exception(AsrError(f"pocketsphinx worker {self.index} exited during this utterance"))
                return fut
            if self.stopping or not (self.alive or self.starting):
                fut.set_exception(AsrError(f"pocketsphinx worker {self.index} is not running"))
                return fut
            rid = next(self._ids)
            msg = (op, sid, rid, arg)
            if not self.alive:
                self._held.append((msg, fut))
                return fut
            self._pending[rid] = fut
            out = self._out
        out.put(msg)
        return fut

    def _write(self, conn: Connection, out: queue.SimpleQueue[tuple[Any, ...] | None]) -> None:
        while (msg := out.get()) is not None:
            try:
                conn.send(msg)
            except (OSError, ValueError):
                break  # the reader sees the process die and fails what is pending

    def _read(self, conn: Connection, out: queue.SimpleQueue[tuple[Any, ...] | None]) -> None:
        while True:
            try:
                rid, ok, payload = conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                fut = self._pending.pop(rid, None)
            if fut is not None:
                _settle(fut, ok, payload if ok else f"pocketsphinx: {payload}")
        out.put(None)  # stops this process's writer
        conn.close()
        code = self.process.wait()
        with self._lock:
            self.alive = False
            pending, self._pending = list(self._pending.values()), {}
            restart = not self.stopping
            if restart:
                self.epoch += 1  # utterances begun so far are gone with the process
                self.starting = True
        for fut in pending:
            _settle(fut, False, f"pocketsphinx worker {self.index} exited (code {code})")
        if restart:
            log.error(
                "pocketsphinx worker %d (pid %d) exited with code %s: %d request(s) of its utterances in progress "
                "failed; starting a replacement", self.index, self.process.pid, code, len(pending),
            )  # fmt: skip
            threading.Thread(target=self._restart, args=(code,), name=f"asr-{self.index}-restart", daemon=True).start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self.stopping = True
            held, self._held = self._held, []
            out = self._out
        for _, fut in held:
            _settle(fut, False, f"pocketsphinx worker {self.index} is not running")
        out.put(None)
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
    """A session's `Decoder`: operations become requests to the session's worker process.

    It remembers the worker epoch its utterance began in, so after a worker restart the rest of that
    utterance fails instead of silently decoding nothing on the replacement; the next `start` goes on there.
    """

    def __init__(self, worker: _WorkerProcess, sid: int, *, shed: bool = True) -> None:
        self._worker = worker
        self._sid = sid
        self._epoch = worker.epoch
        self._shed = shed  # refuse new utterances while the worker is saturated (live calls)

    def start(self, grammar: tuple[str, ...] | None) -> CFuture[None]:
        if self._shed and self._worker.saturated():
            # Refuse the new utterance now rather than queue it behind work that is already late (unbounded,
            # 400 talking calls queued ~37,000 requests and stalled the event loop in garbage collection). The
            # worker still drops this session's previous utterance; the session sends nothing more for it.
            self._worker.call("abort", self._sid)
            return self._worker.refuse()
        self._epoch = self._worker.epoch
        fut = self._worker.call("start", self._sid, grammar, self._epoch)
        fut.add_done_callback(_log_warnings)
        return fut

    def feed(self, pcm: bytes) -> CFuture[Result | None]:
        return self._worker.call("feed", self._sid, pcm, self._epoch)

    def end(self) -> CFuture[Result]:
        return self._worker.call("end", self._sid, None, self._epoch)

    def abort(self) -> CFuture[None]:
        return self._worker.call("abort", self._sid)  # on a replacement it is a no-op: fine at any epoch

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
        """The current process of each worker (a replaced worker shows its replacement)."""
        return [w.process.pid for w in self._workers]

    @property
    def restarts(self) -> int:
        """Worker processes replaced after they died, since the engine started."""
        return sum(w.restarts for w in self._workers)

    def session(self, *, max_pending_ms: int | None = None) -> StreamingSession:
        """A call's session; `max_pending_ms` bounds its queued audio (default: the engine's, 5 s). A saturated
        worker refuses its utterances (a caller must not wait seconds for an answer)."""
        return self._session(max_pending_ms or self.max_pending_ms)

    def _session(self, max_pending_ms: int, *, shed: bool = True) -> StreamingSession:
        with self._lock:
            if self._closed:
                raise AsrError("the pocketsphinx engine is closed")
            # a worker whose replacement is starting takes sessions too: their requests wait for it
            live = [w for w in self._workers if w.alive] or [w for w in self._workers if w.starting]
            if not live:
                raise AsrError("no pocketsphinx worker is running (see the log for why they exited)")
            worker = min(live, key=lambda w: w.sessions)
            worker.sessions += 1
            sid = next(self._sids)

        def closed(_: StreamingSession) -> None:
            with self._lock:
                worker.sessions -= 1

        decoder = _RemoteDecoder(worker, sid, shed=shed)
        return StreamingSession(decoder, self.name, max_pending_ms=max_pending_ms, on_close=closed)

    async def transcribe(self, pcm: np.ndarray, rate: int, grammar: Sequence[str] | None = None) -> Result:
        """A whole recording (`hotline asr transcribe`, evaluations): it waits its turn, never refused."""
        return await transcribe_buffer(partial(self._session, shed=False), self.max_pending_ms, pcm, rate, grammar)

    async def aclose(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self._workers))
