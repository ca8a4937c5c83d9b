"""Live events across workers: every worker's EventHub relays what it publishes through PostgreSQL
LISTEN/NOTIFY and delivers what the others publish.

Without it, an agent's console connected to worker B never heard of a call that worker A queued for them
(docs/operator.md, "Several workers"). The database is already the one thing all workers share, so no broker
is added. NOTIFY is fire-and-forget: a worker that is disconnected misses events (the consoles refetch state
on reconnect and the supervisor view refreshes every 2 s anyway), and a payload over PostgreSQL's 8,000-byte
limit is not relayed (counted, logged once) — event payloads are messages and state changes, far smaller.

Publishing never waits for the database: events go into a bounded queue drained by one sender task; if the
database is slower than the events, the oldest wait and the newest are dropped (counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url

from callcenter_api.events import EventHub

log = logging.getLogger(__name__)

MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses NOTIFY payloads of 8,000 or more
QUEUE_LIMIT = 10_000
RECONNECT_SECONDS = 1.0


def channel_for(url: str | URL) -> str:
    """One channel per deployment: NOTIFY is database-wide, so two deployments (or test schemas) sharing a
    database must not hear each other. Workers of one deployment use the same URL, hence the same channel."""
    u = make_url(url)
    scope = f"{u.host}:{u.port}/{u.database}?{u.query.get('options', '')}"
    return "hotline_events_" + hashlib.sha1(scope.encode()).hexdigest()[:16]


def _conninfo(url: str | URL) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresEventRelay:
    def __init__(
        self,
        hub: EventHub,
        url: str | URL,
        *,
        origin: str,
        on_remote: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """`origin` names this worker (its own notifications come back and are skipped); `on_remote` is told of
        each event from another worker (the ACD wakes when an agent elsewhere becomes available)."""
        self.hub = hub
        self.channel = channel_for(url)
        self.origin = origin
        self.on_remote = on_remote
        self._conninfo = _conninfo(url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        self.sent = self.received = self.dropped = self.too_large = 0

    async def start(self) -> None:
        """Returns once this worker listens, so nothing published after start-up is missed."""
        self._loop = asyncio.get_running_loop()
        self.hub.add_listener(self._outgoing)
        self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._send())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 10)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- out: any thread ---------------------------------------------------------------------------
    def _outgoing(self, topic: str, event: dict[str, Any]) -> None:
        payload = json.dumps({"o": self.origin, "t": topic, "e": event}, default=str, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            self.too_large += 1
            if self.too_large == 1:
                log.warning("an event on %s is too large to relay to other workers (%d bytes)", topic, len(payload))
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._enqueue(payload)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._enqueue, payload)

    def _enqueue(self, payload: str) -> None:
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _send(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    while True:
                        payload = await self._outbox.get()
                        await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
                        self.sent += 1
            except (psycopg.Error, OSError) as exc:
                log.warning("event relay: cannot send to PostgreSQL (%s); retrying in %.0f s", exc, RECONNECT_SECONDS)
                await asyncio.sleep(RECONNECT_SECONDS)

    # ---- in: the event loop --------------------------------------------------------------------------
    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    self._listening.set()
                    async for notify in conn.notifies():
                        self._incoming(notify.payload)
            except (psycopg.Error, OSError) as exc:
                self._listening.clear()
                log.warning("event relay: lost PostgreSQL (%s); listening again in %.0f s", exc, RECONNECT_SECONDS)
                await asyncio.sleep(RECONNECT_SECONDS)

    def _incoming(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            origin, topic, event = data["o"], data["t"], data["e"]
        except (ValueError, KeyError, TypeError):
            log.warning("event relay: ignored a malformed notification on %s", self.channel)
            return
        if origin == self.origin:
            return
        self.received += 1
        self.hub.deliver(topic, event)
        if self.on_remote is not None:
            try:
                self.on_remote(topic, event)
            except Exception:
                log.exception("event relay: on_remote failed for %s", topic)
