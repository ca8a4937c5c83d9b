"""In-process publish/subscribe of conversation events, for the WebSockets of customers and agents.

Publishers are the API's worker threads and the event loop; subscribers are WebSocket handlers on the loop.
Each subscriber has a bounded queue: a client that stops reading loses its oldest events (and is told so)
instead of growing the server's memory. Across several workers, callcenter_api.event_relay carries each
worker's events to the others (PostgreSQL LISTEN/NOTIFY) and hands them to `deliver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256


class EventHub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def add_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Called with every published event, synchronously in the publisher's thread (metrics counters):
        it must be quick, thread-safe and never block."""
        self._listeners.append(listener)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        for topic in topics:
            self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            for topic in topics:
                self._subscribers[topic].discard(queue)
                if not self._subscribers[topic]:
                    del self._subscribers[topic]

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Safe from any thread; delivery happens on the event loop."""
        for listener in self._listeners:
            try:
                listener(topic, event)
            except Exception:  # a listener is an observer: it must never break the publisher
                log.exception("event listener failed on %s", topic)
        loop = self._loop
        if loop is None or loop.is_closed() or topic not in self._subscribers:
            return  # nobody listens (most call transcripts): no wake-up of the loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(topic, event)
        else:
            with contextlib.suppress(RuntimeError):  # loop shutting down
                loop.call_soon_threadsafe(self._deliver, topic, event)

    def deliver(self, topic: str, event: dict[str, Any]) -> None:
        """An event another worker published: to this worker's subscribers only (not to listeners, which
        observe what this worker does, nor back to the relay). On the event loop."""
        if topic in self._subscribers:
            self._deliver(topic, event)

    def _deliver(self, topic: str, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(topic, ())):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                log.warning("event subscriber on %s is not reading; dropped its oldest event", topic)
            queue.put_nowait({"topic": topic, **event})

    def subscribers(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))
