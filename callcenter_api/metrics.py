"""Prometheus metrics for `GET /metrics`: what the call center is doing now, and counts of what happened.

Two sources, each for what it is right about:
- **Gauges are read from the database at scrape time** (waiting customers and the longest wait per queue,
  callbacks, agents per state, chats open). The routing state lives in the shared database, not in any one
  process, so every worker reports the same, correct figure even right after a restart (aggregate them with
  `max`, not `sum`). They are a handful of indexed `GROUP BY` counts per scrape.
- **Counters and histograms are counted in this process from the events it publishes** (an `EventHub`
  listener: the router's entry/offer events, the call log's call and message events): calls, queue entries,
  offers, answers, abandons, missed offers, queue waits, bot answers vs no answers. Each worker counts what it
  did, so `sum(rate(...))` over the workers is the call center's rate; counting rows in the database at every
  scrape would instead rescan a growing messages table. `hotline_calls_in_progress` is this process's legs.
- Process metrics (CPU, memory, file descriptors, GC) come from prometheus-client's own collectors.

Every app has its own `CollectorRegistry`, so tests (and embedders) can create several apps in one process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.models import Agent, Conversation, Queue, QueueEntry
from callcenter_api.routing.states import AGENT_STATES

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
WAIT_BUCKETS = (2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)
FINAL = frozenset({"done", "abandoned", "overflowed", "voicemail"})
MAX_TRACKED = 100_000  # entries whose enqueue time we remember (a bound, in case final events are missed)


class _DatabaseGauges(Collector):
    """The "now" gauges, computed from the shared routing tables on each scrape."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("hotline_database_up", "1 when the scrape could read the routing state")
        try:
            families = self._read()
        except Exception as exc:  # a database blip must not break the scrape of the other metrics
            log.warning("metrics: routing state unreadable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        now = datetime.now(UTC)
        waiting = GaugeMetricFamily("hotline_queue_waiting", "Customers waiting in the queue now (ringing included)",
                                    labels=["queue"])  # fmt: skip
        longest = GaugeMetricFamily("hotline_queue_longest_wait_seconds", "Longest current wait in the queue",
                                    labels=["queue"])  # fmt: skip
        callbacks = GaugeMetricFamily("hotline_queue_callbacks", "Callers keeping their place for a callback",
                                      labels=["queue"])  # fmt: skip
        agents = GaugeMetricFamily("hotline_agents", "Agents by state", labels=["state"])
        chats = GaugeMetricFamily("hotline_chats_open", "Web chats not closed (with the bot, queued or an agent)")
        with self.session_factory() as session:
            names = list(session.scalars(select(Queue.name).order_by(Queue.name)))
            rows = session.execute(
                select(QueueEntry.queue, QueueEntry.state, func.count(), func.min(QueueEntry.enqueued_at))
                .where(QueueEntry.state.in_(("waiting", "offered", "callback")))
                .group_by(QueueEntry.queue, QueueEntry.state)
            ).all()  # fmt: skip
            by_state = dict(session.execute(select(Agent.state, func.count()).group_by(Agent.state)).all())
            open_chats = session.scalar(select(func.count()).select_from(Conversation).where(
                Conversation.channel == "webchat", Conversation.status != "closed")) or 0  # fmt: skip
        counts: dict[str, int] = dict.fromkeys(names, 0)
        oldest: dict[str, datetime] = {}
        held: dict[str, int] = dict.fromkeys(names, 0)
        for queue, state, count, first in rows:
            if state == "callback":
                held[queue] = held.get(queue, 0) + count
                continue
            counts[queue] = counts.get(queue, 0) + count
            first = first.replace(tzinfo=UTC) if first.tzinfo is None else first
            oldest[queue] = min(first, oldest.get(queue, first))
        for queue in sorted(counts):
            waiting.add_metric([queue], counts[queue])
            longest.add_metric([queue], (now - oldest[queue]).total_seconds() if queue in oldest else 0.0)
            callbacks.add_metric([queue], held.get(queue, 0))
        for state in sorted({*AGENT_STATES, *by_state}):
            agents.add_metric([state], by_state.get(state, 0))
        chats.add_metric([], open_chats)
        return [waiting, longest, callbacks, agents, chats]


class Metrics:
    """This app's registry and the counters fed by `on_event` (an `EventHub` listener)."""

    def __init__(self, session_factory: sessionmaker[Session], *, process: bool = True) -> None:
        self.registry = registry = CollectorRegistry()
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        registry.register(_DatabaseGauges(session_factory))
        self.calls = Counter("hotline_calls", "Calls started (inbound: customers; outbound: agent legs, callbacks)",
                             ["direction"], registry=registry)  # fmt: skip
        self.calls_ended = Counter("hotline_calls_ended", "Calls ended, by end reason", ["reason"], registry=registry)
        self.calls_in_progress = Gauge("hotline_calls_in_progress", "Call legs up on this worker", ["direction"],
                                       registry=registry)  # fmt: skip
        self.entries = Counter("hotline_queue_entries", "Customers who entered a queue", ["queue"], registry=registry)
        self.offers = Counter("hotline_queue_offers", "Offers of a customer to an agent", ["queue", "channel"],
                              registry=registry)  # fmt: skip
        self.answers = Counter("hotline_queue_answered", "Customers answered by an agent", ["queue"],
                               registry=registry)  # fmt: skip
        self.abandons = Counter("hotline_queue_abandoned", "Customers who left before an agent answered", ["queue"],
                                registry=registry)  # fmt: skip
        self.missed = Counter("hotline_queue_offers_missed", "Offers the agent did not take (next agent)", ["queue"],
                              registry=registry)  # fmt: skip
        self.left = Counter("hotline_queue_left", "Customers who left a queue, by how", ["queue", "outcome"],
                            registry=registry)  # fmt: skip
        self.wait = Histogram("hotline_queue_wait_seconds", "Time in the queue until answered or gone",
                              ["queue", "outcome"], buckets=WAIT_BUCKETS, registry=registry)  # fmt: skip
        self.bot = Counter("hotline_bot_decisions", "The bot's decisions: answered, no_answer, clarify, handoff",
                           ["channel", "outcome"], registry=registry)  # fmt: skip
        for direction in ("inbound", "outbound"):
            self.calls_in_progress.labels(direction)
        self._lock = threading.Lock()
        self._legs: dict[str, str] = {}  # call id -> direction, while up
        self._entries: dict[str, tuple[float, bool]] = {}  # entry id -> (monotonic enqueue time, answered)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ---- the listener ---------------------------------------------------------------------------------
    def on_event(self, topic: str, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if topic == "calls" and kind == "call":
            self._call(event)
        elif topic == "queues" and kind == "entry":
            self._entry(event)
        elif topic == "queues" and kind == "offer":
            self.offers.labels(str(event.get("queue")), str(event.get("channel"))).inc()
        elif topic.startswith("conversation:") and kind == "message":
            self._message(event.get("message") or {})

    def _call(self, event: dict[str, Any]) -> None:
        call_id = str(event.get("call_id"))
        if event.get("event") == "started":
            direction = "inbound" if event.get("inbound") else "outbound"
            self.calls.labels(direction).inc()
            with self._lock:
                if call_id not in self._legs:
                    self._legs[call_id] = direction
                    self.calls_in_progress.labels(direction).inc()
        elif event.get("event") == "ended":
            self.calls_ended.labels(str(event.get("reason") or "unknown")).inc()
            with self._lock:
                direction = self._legs.pop(call_id, None)
                if direction is not None:
                    self.calls_in_progress.labels(direction).dec()

    def _entry(self, event: dict[str, Any]) -> None:
        entry_id, queue, state = str(event.get("entry_id")), str(event.get("queue")), event.get("state")
        now = time.monotonic()
        with self._lock:
            tracked = self._entries.get(entry_id)
            if state == "waiting" and tracked is None and not event.get("outcome"):
                self.entries.labels(queue).inc()
                if len(self._entries) >= MAX_TRACKED:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[entry_id] = (now, False)
                return
            if state == "waiting" and event.get("outcome"):
                self.missed.labels(queue).inc()  # an offer not taken: back in the queue for the next agent
                return
            if state == "connected":
                self.answers.labels(queue).inc()
                if tracked is not None and not tracked[1]:
                    self.wait.labels(queue, "answered").observe(now - tracked[0])
                    self._entries[entry_id] = (tracked[0], True)
                return
            if state not in FINAL:
                return
            self._entries.pop(entry_id, None)
        answered = tracked is not None and tracked[1]
        if state == "done" or answered:
            return  # the conversation with the agent ended: counted as answered already
        outcome = "abandoned" if state == "abandoned" else str(state)
        self.left.labels(queue, outcome).inc()
        if state == "abandoned":
            self.abandons.labels(queue).inc()
        if tracked is not None:
            self.wait.labels(queue, outcome).observe(now - tracked[0])

    def _message(self, message: dict[str, Any]) -> None:
        sender, kind, text = message.get("sender"), message.get("kind"), str(message.get("text") or "")
        meta = message.get("meta") or {}
        if sender == "system" and kind == "note" and text.startswith("bot: "):
            # voice: the call path's notes of the bot's decisions; chat: its handoff note (its no-answer
            # note is counted below, from the reply, as clarify or no_answer)
            if isinstance(meta, dict) and meta.get("channel") == "webchat":
                return
            channel = "voice" if "caller" in text or "answered with" in text or "no confident" in text else "webchat"
            if text.startswith("bot: answered with"):
                self.bot.labels(channel, "answered").inc()
            elif text.startswith("bot: no confident answer"):
                self.bot.labels(channel, "no_answer").inc()
            elif "asked for a person" in text:
                self.bot.labels(channel, "handoff").inc()
        elif sender == "bot" and kind == "answer":
            self.bot.labels("webchat", "answered").inc()
        elif sender == "bot" and kind == "text" and isinstance(meta, dict) and "confidence" in meta:
            self.bot.labels("webchat", "clarify" if meta.get("suggestions") else "no_answer").inc()


__all__ = ["CONTENT_TYPE", "Metrics"]
