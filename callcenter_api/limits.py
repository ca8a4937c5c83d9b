"""A bound on HTTP requests in flight, so the worker threads and pooled connections cannot deadlock.

Sync routes (and `SessionDep`) run in AnyIO's worker threads (40 by default) and hold a pooled database
connection across several thread hops. With more requests in flight than threads, every thread can end up
waiting for a connection held by a request that is itself waiting for a thread: nothing moves until the
pool's 30 s timeout, then 500s (bench/history_load, 64 concurrent requests). Admitting at most
`MAX_IN_FLIGHT` requests (below both the thread count and the pool size) makes that impossible; the rest
wait here, on the event loop, holding nothing. WebSockets are long-lived and not counted.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_IN_FLIGHT = 32  # < AnyIO's 40 threads; make_engine's pool holds as many connections
MAX_WAITING = 2000  # beyond this a request is refused at once (503) rather than queued for seconds


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, *, max_in_flight: int = MAX_IN_FLIGHT, max_waiting: int = MAX_WAITING) -> None:
        self.app = app
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_in_flight)
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._slots.locked() and self.waiting >= self.max_waiting:
            await _overloaded(send)
            return
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


async def _overloaded(send: Send) -> None:
    body = json.dumps({"detail": "the server is overloaded; retry shortly"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
