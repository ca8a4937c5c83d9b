"""Keeps a running bot's index in step with the knowledge base in the database.

Changes through this process's API refresh at once; changes by another worker (or `hotline kb import`
while the service runs) are noticed by polling the revision number, one indexed single-row read a second.
Rebuilding runs on a worker thread and the new index is swapped in whole, so questions asked meanwhile are
answered from the previous one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from bot.engine import KnowledgeBot
from callcenter_api import kb_store

log = logging.getLogger(__name__)


class KnowledgeSync:
    def __init__(self, bot: KnowledgeBot, session_factory: sessionmaker[Session], *, interval: float = 1.0) -> None:
        self.bot = bot
        self.session_factory = session_factory
        self.interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def load_now(self) -> int:
        """Blocking load (start-up, CLI): read the entries and build the index."""
        with self.session_factory() as session:
            revision, entries = kb_store.snapshot(session)
        started = time.perf_counter()
        self.bot.replace(entries, revision)
        enabled = sum(1 for e in entries if e.enabled)
        log.info(
            "knowledge base revision %d: %d entries (%d enabled), index built in %.0f ms",
            revision, len(entries), enabled, (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        return revision

    def _changed(self) -> bool:
        with self.session_factory() as session:
            return kb_store.revision(session) != self.bot.revision

    async def refresh(self) -> None:
        """Reload if the revision moved (cheap when it did not)."""
        async with self._lock:
            if await asyncio.to_thread(self._changed):
                await asyncio.to_thread(self.load_now)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception as exc:  # a database hiccup must not stop future refreshes
                log.warning("knowledge base refresh failed: %s", exc)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
