"""The call-record write path used by the live call path.

Every method only validates its arguments and puts an operation on a queue, so the asyncio event loop that
drives hundreds of calls never waits for the database. One writer thread takes whatever has accumulated,
applies it in a single transaction and commits: records reach the disk a few milliseconds after they happen
(design.md: nothing is kept only in memory until hang-up), and 400 busy calls cost one transaction per
batch instead of one per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.call_ops import (
    CONVERSATION_FIELDS,
    CallStarted,
    CallUpdated,
    ConversationUpdated,
    EventAdded,
    MessageAdded,
    Op,
    RecordingAdded,
    check_aware,
    check_call_id,
    check_event_type,
    check_update_fields,
)
from callcenter_api.history.identity import Identity
from callcenter_api.models import CallEvent, Message
from callcenter_api.schemas.history import MessageOut

log = logging.getLogger(__name__)


class _Marker:
    """Queued behind earlier operations; fires once everything before it has been committed (or logged).

    The stop request is a marker too, so it is ordered after every operation queued before close().
    """

    __slots__ = ("_callback", "stop")

    def __init__(self, callback: Callable[[], None] = lambda: None, *, stop: bool = False) -> None:
        self._callback = callback
        self.stop = stop

    def fire(self) -> None:
        self._callback()


class CallLog:
    """Asynchronous, batched writer of call records.

    Methods are safe to call from the event loop and from other threads; they never block on I/O. Argument
    mistakes (naive datetimes, malformed ids) raise at the call site; database errors are logged by the
    writer with the failing operation and never stop it.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        max_batch: int = 2000,
        retry_delays: Sequence[float] = (0.1, 0.5, 1.0, 2.0, 4.0),
        publish: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """`retry_delays`: waits before re-running a whole batch after a connection-level error, so a brief
        database outage (a PostgreSQL failover takes seconds) delays records instead of dropping them.

        `publish(topic, event)` (an `EventHub.publish`) is told what each committed batch wrote: every message
        on ``conversation:<id>`` (so a console sees a call's transcript live) and calls starting, being
        answered and ending on ``calls``. Nothing is published for a batch that did not commit."""
        self._session_factory = session_factory
        self._publish = publish
        self._max_batch = max_batch
        self._retry_delays = tuple(retry_delays)
        self._queue: queue.SimpleQueue[Op | _Marker] = queue.SimpleQueue()
        # One lock orders seq numbers, queue position and the closed flag together.
        self._lock = threading.Lock()
        self._next_seq: dict[str, int] = {}  # calls in progress; ended calls fall back to the database
        self._closed = False
        self._thread: threading.Thread | None = None
        self.written_ops = 0
        self.failed_ops = 0
        self.batches = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("call log is closed")
            if self._thread is None:
                self._start_thread()

    def _start_thread(self) -> None:
        # Daemon, so a forgotten close() cannot hang interpreter exit; close() is what guarantees the drain.
        self._thread = threading.Thread(target=self._run, name="call-log-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write everything queued so far, then stop the writer. Later calls are dropped with a warning."""
        with self._lock:
            if self._closed:
                thread = self._thread
            else:
                self._closed = True
                if self._thread is None:
                    self._start_thread()  # never started: still drain what was queued
                self._queue.put(_Marker(stop=True))
                thread = self._thread
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "call log: writer still busy after %.1fs; about %d items not yet written",
                timeout,
                self._queue.qsize(),
            )

    async def aclose(self, timeout: float = 5.0) -> None:
        """`close` for shutdown code running on the event loop: the drain waits in a worker thread."""
        await asyncio.to_thread(self.close, timeout)

    @property
    def pending(self) -> int:
        """Approximate number of queued items; a growing value means the database cannot keep up."""
        return self._queue.qsize()

    # -- the write API ---------------------------------------------------------------------------------

    def call_started(
        self,
        call_id: str,
        *,
        sip_call_id: str,
        from_uri: str,
        to_uri: str,
        at: datetime,
        remote_media: str | None = None,
        caller: Identity | None = None,
        conversation: bool = True,
    ) -> None:
        """`conversation`: also open the call's conversation (inbound calls; not our own outbound legs)."""
        check_call_id(call_id)
        check_aware("at", at)
        op = CallStarted(call_id, sip_call_id, from_uri, to_uri, at, remote_media, caller, conversation)
        with self._lock:
            if self._put_locked(op):
                self._next_seq.setdefault(call_id, 0)

    def call_answered(self, call_id: str, *, at: datetime, codec: str) -> None:
        check_aware("at", at)
        self._put(CallUpdated(call_id, {"answered_at": at, "codec": codec}))

    def event(self, call_id: str, type: str, value: str, *, at: datetime) -> None:
        check_event_type(type)
        check_aware("at", at)
        if not isinstance(value, str):
            raise TypeError(f"event value must be str, got {value.__class__.__name__}")
        with self._lock:
            if self._closed:
                self._dropped(EventAdded(call_id, type, value, at, None))
                return
            seq = self._next_seq.get(call_id)
            if seq is not None:
                self._next_seq[call_id] = seq + 1
            self._queue.put(EventAdded(call_id, type, value, at, seq))

    def call_updated(self, call_id: str, **fields: Any) -> None:
        """Set other columns as they become known, e.g. ``flow="main@3"``."""
        check_update_fields(fields)
        if fields:
            self._put(CallUpdated(call_id, dict(fields)))

    def message(
        self, call_id: str, *, sender: str, kind: str, text: str, at: datetime,
        confidence: float | None = None, offset_ms: int | None = None, meta: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """A turn of the call's conversation (what the caller said or pressed, what we said), as it happens."""
        check_aware("at", at)
        self._put(MessageAdded(call_id, sender, kind, text, at, confidence, offset_ms, meta))

    def conversation_updated(self, call_id: str, **fields: Any) -> None:
        unknown = set(fields) - CONVERSATION_FIELDS
        if unknown:
            raise TypeError(f"cannot update {sorted(unknown)}; updatable: {sorted(CONVERSATION_FIELDS)}")
        if "ended_at" in fields:
            check_aware("ended_at", fields["ended_at"])
        if fields:
            self._put(ConversationUpdated(call_id, dict(fields)))

    def recording(
        self, call_id: str, *, recording_id: str, kind: str, path: str, at: datetime, seconds: float | None = None
    ) -> None:
        check_aware("at", at)
        self._put(RecordingAdded(call_id, recording_id, kind, path, at, seconds))

    def call_ended(self, call_id: str, *, at: datetime, reason: str) -> None:
        check_aware("at", at)
        with self._lock:
            if self._put_locked(CallUpdated(call_id, {"ended_at": at, "end_reason": reason})):
                self._next_seq.pop(call_id, None)

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed (or has failed and been logged)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone; nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, done)

        self._put_marker(_Marker(wake))
        await done

    def flush_sync(self, timeout: float | None = None) -> None:
        """Blocking `flush` for threads and tests; raises TimeoutError if the writer does not catch up."""
        done = threading.Event()
        self._put_marker(_Marker(done.set))
        if not done.wait(timeout):
            raise TimeoutError(f"call log not flushed within {timeout}s ({self.pending} items queued)")

    # -- queueing --------------------------------------------------------------------------------------

    def _put(self, op: Op) -> None:
        with self._lock:
            self._put_locked(op)

    def _put_locked(self, op: Op) -> bool:
        if self._closed:
            self._dropped(op)
            return False
        self._queue.put(op)
        return True

    def _put_marker(self, marker: _Marker) -> None:
        with self._lock:
            if self._closed or self._thread is None:
                raise RuntimeError("call log is not running (start() it first; close() stops it)")
            self._queue.put(marker)

    @staticmethod
    def _dropped(op: Op) -> None:
        log.warning("call log: closed, dropped %r", op)

    # -- writer thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            items = self._take_batch()
            ops = [item for item in items if not isinstance(item, _Marker)]
            try:
                if ops:
                    self._write(ops)
            except Exception:  # the writer must survive anything; a bug here must not stop call records
                log.exception("call log: unexpected error writing %d operations", len(ops))
                self.failed_ops += len(ops)
            for item in items:
                if isinstance(item, _Marker):
                    try:
                        item.fire()
                    except Exception:
                        log.exception("call log: flush callback failed")
            if any(isinstance(item, _Marker) and item.stop for item in items):
                return

    def _take_batch(self) -> list[Op | _Marker]:
        items: list[Op | _Marker] = [self._queue.get()]
        while len(items) < self._max_batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _write(self, ops: list[Op]) -> None:
        error: Exception | None = None
        for delay in (*self._retry_delays, None):
            try:
                self._commit(ops)
            except Exception as exc:
                error = exc
                if delay is None or not _is_transient(exc):
                    break
                log.warning(
                    "call log: database unavailable (%s); retry of %d ops in %.2fs",
                    _short(exc),
                    len(ops),
                    delay,
                )
                time.sleep(delay)
            else:
                self.written_ops += len(ops)
                self.batches += 1
                return
        if len(ops) == 1:
            self._failed(ops[0], error)
            return
        log.warning("call log: batch of %d failed (%s); retrying one by one", len(ops), _short(error))
        for op in ops:
            try:
                self._commit([op])
            except Exception as exc:
                self._failed(op, exc)
            else:
                self.written_ops += 1
                self.batches += 1

    def _commit(self, ops: list[Op]) -> None:
        events: list[tuple[str, dict[str, Any]]] = []
        with self._session_factory() as session, session.begin():
            rows: list[dict[str, Any]] = []  # call events: one executemany for the batch (EventAdded.row)
            for op in ops:
                if isinstance(op, EventAdded):
                    if op.seq is None and rows:  # it reads the call's last number: write the earlier ones first
                        session.execute(insert(CallEvent), rows)
                        rows = []
                    rows.append(op.row(session))
                    continue
                written = op.apply(session)
                if self._publish is not None:
                    events += _events_of(op, written)
            if rows:
                session.execute(insert(CallEvent), rows)  # after the batch's calls: their rows are flushed first
            if events:
                session.flush()  # message ids for the events
                events = [(topic, event() if callable(event) else event) for topic, event in events]
        for topic, event in events:
            try:
                self._publish(topic, event)  # type: ignore[misc]
            except Exception:  # a broken subscriber must never stop call records
                log.exception("call log: publishing %s failed", topic)

    def _failed(self, op: Op, error: Exception | None) -> None:
        self.failed_ops += 1
        log.error("call log: could not write %r: %s", op, _short(error))


def _events_of(op: Op, written: object) -> list[tuple[str, Any]]:
    """What a committed op tells the live views (message events are built after the flush gave them ids)."""
    if isinstance(op, MessageAdded) and isinstance(written, Message):
        return [(f"conversation:{op.call_id}", lambda: message_event(written))]
    if isinstance(op, CallStarted):
        return [("calls", {"type": "call", "event": "started", "call_id": op.call_id, "inbound": op.conversation})]
    if isinstance(op, CallUpdated) and "ended_at" in op.fields:
        return [("calls", {"type": "call", "event": "ended", "call_id": op.call_id,
                           "reason": op.fields.get("end_reason")})]  # fmt: skip
    if isinstance(op, CallUpdated) and "answered_at" in op.fields:
        return [("calls", {"type": "call", "event": "answered", "call_id": op.call_id})]
    return []


def message_event(message: Message) -> dict[str, Any]:
    """The same event the chat channel publishes for a message (`callcenter_api.chat.message_event`)."""
    return {"type": "message", "message": MessageOut.model_validate(message).model_dump(mode="json")}


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _is_transient(exc: Exception) -> bool:
    """Connection-level failures are worth waiting out; constraint violations are not."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _short(exc: Exception | None) -> str:
    # SQLAlchemy errors carry the statement and all parameters; the first line says what went wrong.
    text = str(exc).splitlines()[0] if exc is not None else "unknown error"
    return f"{exc.__class__.__name__}: {text}" if exc is not None else text
