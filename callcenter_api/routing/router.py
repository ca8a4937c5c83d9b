"""The automatic call distributor: queues, offers, answers, misses, hang-ups, wrap-up and leases.

All state lives in the database and every decision is one transaction, so several workers can share it:
reservation takes the waiting entries and the available agents with `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL (two workers never pick the same agent or entry; SQLite has one writer at a time and runs the
same code). What a live call holds (an agent `reserved` or `busy`, an entry being offered or connected) is
under a lease that the worker owning the caller's leg renews; `sweep` frees whatever a crashed worker or a
lost BYE left behind. Methods are synchronous (call them from worker threads) and publish events for the
consoles after their transaction commits.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.models import Agent, AgentEvent, Queue, QueueEntry
from callcenter_api.routing.states import (
    ENTRY_STATES,
    FINAL_ENTRY_STATES,
    RoutingError,
    check_agent,
    check_entry,
)

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0
RESERVE_BATCH = 200  # waiting entries read per page of a reservation pass
RESERVE_SCAN = 5000  # at most this many entries considered per pass: bounds the cost of one pass
# The states an entry can be in before it is final, spelled out (`state IN (...)`) so the (state, queue) index
# serves the lease queries instead of a scan of every entry ever made (`state NOT IN (final)`).
LIVE_ENTRY_STATES = tuple(state for state in ENTRY_STATES if state not in FINAL_ENTRY_STATES)


class QueueNotFound(LookupError):
    pass


class QueueFull(RuntimeError):
    pass


@dataclass(frozen=True)
class Offer:
    entry_id: str
    agent_id: str
    agent_name: str
    sip_uri: str | None
    queue: str
    channel: str
    conversation_id: str
    worker: str | None
    ring_timeout: int
    transfer: str  # bridge | refer


@dataclass(frozen=True)
class Position:
    position: int  # 1 = next
    waiting: int
    estimated_wait: int  # seconds
    state: str
    agent_id: str | None


def _needs(entry: QueueEntry, queue: Queue) -> tuple[dict[str, int], str | None]:
    """The skills (queue's, then the entry's own) and the language an agent must have for this entry."""
    return {**(queue.required_skills or {}), **(entry.skills or {})}, entry.language or queue.language


def _qualified(agent: Agent, needed: dict[str, int], language: str | None, voice: bool) -> bool:
    """The part of eligibility that depends only on what the entry needs, not on the entry itself."""
    if any(agent.skills.get(skill, 0) < level for skill, level in needed.items()):
        return False
    if language and agent.languages and language not in agent.languages:
        return False
    return bool(agent.sip_uri) if voice else True


def _eligible(agent: Agent, entry: QueueEntry, queue: Queue) -> bool:
    needed, language = _needs(entry, queue)
    voice = entry.channel == "voice"
    if not _qualified(agent, needed, language, voice):
        return False
    if agent.id in (entry.declined or []):
        return False
    return True if voice else agent.active_chats < agent.max_chats


class _Matcher:
    """`_eligible` for every entry of a reservation pass, without testing every (entry, agent) pair.

    Most waiting entries need the same thing as many others (their queue's skills and language), so the
    agents qualified for a need are found once per pass and kept; each entry then only drops the agents
    already taken in this pass, the ones who declined it, and (chats) those with no free chat slot. Agents
    only leave `free` during a pass, so a kept list never needs to grow.
    """

    def __init__(self, agents: Sequence[Agent]) -> None:
        self.agents = list(agents)
        self.free: dict[str, Agent] = {agent.id: agent for agent in agents}
        self._qualified: dict[tuple[frozenset[tuple[str, int]], str | None, bool], list[tuple[str, Agent]]] = {}

    def take(self, agent: Agent) -> None:
        del self.free[agent.id]

    def eligible(self, entry: QueueEntry, queue: Queue) -> list[Agent]:
        needed, language = _needs(entry, queue)
        voice = entry.channel == "voice"
        key = (frozenset(needed.items()), language, voice)
        kept = self._qualified.get(key)
        if kept is None:
            kept = [(a.id, a) for a in self.agents if a.id in self.free and _qualified(a, needed, language, voice)]
        free = self.free
        kept = self._qualified[key] = [(agent_id, a) for agent_id, a in kept if agent_id in free]
        declined = entry.declined or []
        return [a for agent_id, a in kept
                if agent_id not in declined and (voice or a.active_chats < a.max_chats)]  # fmt: skip


def _pick(agents: Sequence[Agent], strategy: str) -> Agent:
    floor = datetime.min.replace(tzinfo=UTC)
    if strategy == "round_robin":
        return min(agents, key=lambda a: (a.last_offer_at or floor, a.id))
    return min(agents, key=lambda a: (a.last_idle_at or floor, a.id))  # longest idle


class Router:
    def __init__(
        self, session_factory: sessionmaker[Session], *, worker: str = "worker-1",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), lease_seconds: float = LEASE_SECONDS,
        publish: Callable[[str, dict[str, Any]], None] = lambda topic, event: None,
    ) -> None:  # fmt: skip
        self.session_factory = session_factory
        self.worker = worker
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.publish = publish
        self._local = threading.local()  # each thread's transaction collects its own events

    @property
    def _changes(self) -> list[tuple[str, dict[str, Any]]]:
        return self._local.changes  # type: ignore[no-any-return]

    @_changes.setter
    def _changes(self, value: list[tuple[str, dict[str, Any]]]) -> None:
        self._local.changes = value

    # ---- agents -------------------------------------------------------------------------------------
    def _move(self, session: Session, agent: Agent, new: str, reason: str, *, by: str = "router",
              entry_id: str | None = None, now: datetime) -> None:  # fmt: skip
        check_agent(agent.state, new, by)
        session.add(AgentEvent(agent_id=agent.id, at=now, from_state=agent.state, to_state=new, reason=reason,
                               entry_id=entry_id))  # fmt: skip
        if new == "available":
            agent.last_idle_at = now
            agent.wrap_up_until = None
        if new in ("available", "offline", "break", "wrap_up"):
            agent.lease_owner = None
            agent.lease_expires = None
        if new in ("offline", "break"):
            agent.missed_offers = 0 if by == "agent" else agent.missed_offers
        agent.state = new
        agent.state_since = now
        self._changes.append(("agent", {"agent_id": agent.id, "state": new, "reason": reason}))

    def set_agent_state(self, agent_id: str, state: str, *, reason: str = "agent") -> Agent:
        """What an agent (or a supervisor for them) asks for: available, break, offline."""
        if state not in ("available", "break", "offline"):
            raise RoutingError(f"agents set themselves available, break or offline, not {state}")
        with self._transaction() as session:
            agent = session.get(Agent, agent_id, with_for_update=True)
            if agent is None:
                raise LookupError(f"agent {agent_id} not found")
            if agent.state != state:
                self._move(session, agent, state, reason, by="agent", now=self.clock())
            if state == "available":
                agent.missed_offers = 0
            return agent

    # ---- entries ------------------------------------------------------------------------------------
    def enqueue(
        self, queue_name: str, conversation_id: str, *, channel: str, priority: int = 0,
        skills: dict[str, int] | None = None, language: str | None = None, caller: str | None = None,
        owned: bool = True,
    ) -> QueueEntry:  # fmt: skip
        """Put a customer in a queue. `owned`: this worker holds the customer's leg (calls); chats are not."""
        now = self.clock()
        with self._transaction() as session:
            queue = session.get(Queue, queue_name)
            if queue is None:
                raise QueueNotFound(f"queue {queue_name!r} does not exist")
            waiting = session.scalar(
                select(func.count()).select_from(QueueEntry)
                .where(QueueEntry.queue == queue_name, QueueEntry.state.in_(("waiting", "offered", "callback")))
            ) or 0  # fmt: skip
            if waiting >= queue.max_size:
                raise QueueFull(f"queue {queue_name} is full ({waiting} waiting)")
            entry = QueueEntry(
                id=uuid.uuid4().hex, queue=queue_name, conversation_id=conversation_id, channel=channel,
                priority=priority + queue.priority, skills=skills or {}, language=language, caller=caller,
                enqueued_at=now, state="waiting", worker=self.worker if owned else None,
                lease_expires=now + self.lease if owned else None, declined=[],
            )  # fmt: skip
            session.add(entry)
            self._changes.append(("entry", {"entry_id": entry.id, "state": "waiting", "queue": queue_name}))
            return entry

    def _entry(self, session: Session, entry_id: str) -> QueueEntry:
        entry = session.get(QueueEntry, entry_id, with_for_update=True)
        if entry is None:
            raise LookupError(f"queue entry {entry_id} not found")
        return entry

    def _entry_to(self, entry: QueueEntry, new: str, now: datetime, outcome: str | None = None) -> None:
        check_entry(entry.state, new)
        entry.state = new
        if new in FINAL_ENTRY_STATES:
            entry.ended_at = now
            entry.lease_expires = None
        if outcome:
            entry.outcome = outcome
        self._changes.append(("entry", {"entry_id": entry.id, "state": new, "queue": entry.queue,
                                        "outcome": outcome}))  # fmt: skip

    def position(self, entry_id: str) -> Position:
        """Where the entry stands and how long it will likely wait (from recent answered calls)."""
        with self.session_factory() as session:
            entry = session.get(QueueEntry, entry_id)
            if entry is None:
                raise LookupError(entry_id)
            ahead = session.scalar(
                select(func.count()).select_from(QueueEntry).where(
                    QueueEntry.queue == entry.queue, QueueEntry.state.in_(("waiting", "callback")),
                    (QueueEntry.priority > entry.priority)
                    | ((QueueEntry.priority == entry.priority) & (QueueEntry.enqueued_at < entry.enqueued_at)),
                )
            ) or 0  # fmt: skip
            waiting = session.scalar(select(func.count()).select_from(QueueEntry).where(
                QueueEntry.queue == entry.queue, QueueEntry.state.in_(("waiting", "callback")))) or 0  # fmt: skip
            estimate = self._estimate(session, entry.queue, ahead)
            return Position(ahead + 1, waiting, estimate, entry.state, entry.agent_id)

    def _estimate(self, session: Session, queue: str, ahead: int) -> int:
        """Expected wait: (ahead + 1) x average handle time / agents who can take the queue's calls, with
        the average over the last 50 answered calls (60 s when there is no history yet)."""
        recent = session.execute(
            select(QueueEntry.answered_at, QueueEntry.ended_at).where(
                QueueEntry.queue == queue, QueueEntry.answered_at.is_not(None), QueueEntry.ended_at.is_not(None)
            ).order_by(QueueEntry.ended_at.desc()).limit(50)
        ).all()  # fmt: skip
        handle = [(end - start).total_seconds() for start, end in recent if end and start]
        average = sum(handle) / len(handle) if handle else 60.0
        working = ("available", "reserved", "busy", "wrap_up")
        staffed = session.scalar(select(func.count()).select_from(Agent).where(Agent.state.in_(working))) or 1
        return round((ahead + 1) * average / max(1, staffed))

    # ---- the decision -------------------------------------------------------------------------------
    def reserve(self, *, own_only: bool = False) -> list[Offer]:
        """Match waiting entries (priority, then longest waiting) with eligible available agents.

        `own_only`: only this worker's callers and chats (which no worker owns) — what a running worker does,
        so the worker that holds a caller's leg is the one that bridges it.
        """
        now = self.clock()
        offers: list[Offer] = []
        with self._transaction() as session:
            agents = list(session.scalars(
                select(Agent).where(Agent.state == "available").with_for_update(skip_locked=True)
            ))  # fmt: skip
            if not agents:
                return []  # nobody to offer (the usual pass): no need to read and lock the waiting entries
            waiting = select(QueueEntry).where(QueueEntry.state.in_(("waiting", "callback")))
            if own_only:
                waiting = waiting.where((QueueEntry.worker == self.worker) | QueueEntry.worker.is_(None))
            queues: dict[str, Queue] | None = None
            matcher = _Matcher(agents)
            for entry in self._waiting_pages(session, waiting, matcher):
                if queues is None:
                    queues = {q.name: q for q in session.scalars(select(Queue))}
                queue = queues[entry.queue]
                eligible = matcher.eligible(entry, queue)
                if not eligible:
                    continue
                agent = _pick(eligible, queue.strategy)
                self._entry_to(entry, "offered", now)
                entry.agent_id = agent.id
                entry.offered_at = now
                entry.attempts += 1
                agent.last_offer_at = now
                if entry.channel == "voice":
                    self._move(session, agent, "reserved", f"offered {entry.queue}", entry_id=entry.id, now=now)
                    agent.lease_owner = entry.worker
                    agent.lease_expires = now + self.lease
                    matcher.take(agent)
                else:
                    agent.active_chats += 1  # a chat offer holds a chat slot, not the agent
                    if agent.active_chats >= agent.max_chats:
                        matcher.take(agent)
                offers.append(Offer(
                    entry.id, agent.id, agent.name, agent.sip_uri, entry.queue, entry.channel,
                    entry.conversation_id, entry.worker, queue.ring_timeout, queue.transfer,
                ))  # fmt: skip
                event = {"entry_id": entry.id, "agent_id": agent.id, "queue": entry.queue,
                         "conversation_id": entry.conversation_id, "channel": entry.channel}  # fmt: skip
                self._changes.append(("offer", event))
        return offers

    @staticmethod
    def _waiting_pages(session: Session, waiting: Any, matcher: _Matcher) -> Iterator[QueueEntry]:
        """Waiting entries in routing order (priority, then longest waiting), a page at a time, for as long as
        an agent is still free: a page of callers nobody free can serve (a skill no free agent has) must not
        hide the ones behind it. At most RESERVE_SCAN entries a pass, so one pass stays quick."""
        order = (QueueEntry.priority.desc(), QueueEntry.enqueued_at, QueueEntry.id)
        last: QueueEntry | None = None
        scanned = 0
        while matcher.free and scanned < RESERVE_SCAN:
            page = waiting
            if last is not None:  # keyset: strictly after the last entry of the previous page
                page = page.where(or_(
                    QueueEntry.priority < last.priority,
                    and_(QueueEntry.priority == last.priority, or_(
                        QueueEntry.enqueued_at > last.enqueued_at,
                        and_(QueueEntry.enqueued_at == last.enqueued_at, QueueEntry.id > last.id),
                    )),
                ))  # fmt: skip
            page = page.order_by(*order).limit(RESERVE_BATCH).with_for_update(skip_locked=True)
            entries = list(session.scalars(page))
            scanned += len(entries)
            for entry in entries:
                if not matcher.free:
                    return
                yield entry
            if len(entries) < RESERVE_BATCH:
                return
            last = entries[-1]

    def answered(self, entry_id: str) -> None:
        now = self.clock()
        with self._transaction() as session:
            entry = self._entry(session, entry_id)
            self._entry_to(entry, "connected", now)
            entry.answered_at = now
            agent = session.get(Agent, entry.agent_id, with_for_update=True) if entry.agent_id else None
            if agent is not None:
                agent.missed_offers = 0
                if entry.channel == "voice":
                    self._move(session, agent, "busy", f"answered {entry.queue}", entry_id=entry.id, now=now)
                    agent.lease_owner = entry.worker
                    agent.lease_expires = now + self.lease

    def not_answered(self, entry_id: str, reason: str = "no_answer") -> None:
        """The agent did not take the offer: the entry goes back to the front of its queue (next agent), and
        an agent who misses `max_missed_offers` in a row goes on break."""
        now = self.clock()
        with self._transaction() as session:
            entry = self._entry(session, entry_id)
            if entry.state != "offered":
                return  # already resolved (the caller left, a lease expired)
            agent = session.get(Agent, entry.agent_id, with_for_update=True) if entry.agent_id else None
            queue = session.get(Queue, entry.queue)
            self._entry_to(entry, "waiting", now, outcome=reason)
            entry.declined = [*(entry.declined or []), entry.agent_id] if entry.agent_id else entry.declined
            entry.agent_id = None
            if agent is not None:
                self._release_offer(session, agent, entry, queue, reason, now, missed=True)

    def _release_offer(self, session: Session, agent: Agent, entry: QueueEntry, queue: Queue | None, reason: str,
                       now: datetime, *, missed: bool) -> None:  # fmt: skip
        if entry.channel != "voice":
            agent.active_chats = max(0, agent.active_chats - 1)
            return
        if agent.state != "reserved":
            return
        if missed:
            agent.missed_offers += 1
            limit = queue.max_missed_offers if queue else 2
            if agent.missed_offers >= limit:
                missed_reason = f"missed {agent.missed_offers} offers"
                self._move(session, agent, "break", missed_reason, entry_id=entry.id, now=now)
                return
        self._move(session, agent, "available", reason, entry_id=entry.id, now=now)

    def caller_left(self, entry_id: str) -> None:
        """The customer hung up (or closed the chat) before or while being offered: abandoned, agent freed."""
        now = self.clock()
        with self._transaction() as session:
            entry = self._entry(session, entry_id)
            if entry.state in FINAL_ENTRY_STATES:
                return
            if entry.state == "connected":
                self._end_connected(session, entry, now, "caller_bye")
                return
            agent = session.get(Agent, entry.agent_id, with_for_update=True) if entry.agent_id else None
            was_offered = entry.state == "offered"
            self._entry_to(entry, "abandoned", now, outcome="caller_left")
            if agent is not None and was_offered:
                self._release_offer(session, agent, entry, session.get(Queue, entry.queue), "caller_left", now,
                                    missed=False)  # fmt: skip

    def ended(self, entry_id: str, reason: str = "hangup") -> None:
        """The conversation with the agent is over: the agent goes to wrap-up (timed) or straight back."""
        now = self.clock()
        with self._transaction() as session:
            entry = self._entry(session, entry_id)
            if entry.state == "connected":
                self._end_connected(session, entry, now, reason)
            elif entry.state not in FINAL_ENTRY_STATES:
                raise RoutingError(f"entry {entry_id} is {entry.state}, not connected")

    def _end_connected(self, session: Session, entry: QueueEntry, now: datetime, reason: str) -> None:
        self._entry_to(entry, "done", now, outcome=reason)
        agent = session.get(Agent, entry.agent_id, with_for_update=True) if entry.agent_id else None
        if agent is None:
            return
        if entry.channel != "voice":
            agent.active_chats = max(0, agent.active_chats - 1)
            return
        if agent.state != "busy":
            return
        queue = session.get(Queue, entry.queue)
        wrap = queue.wrap_up_seconds if queue else 0
        if wrap > 0:
            self._move(session, agent, "wrap_up", reason, entry_id=entry.id, now=now)
            agent.wrap_up_until = now + timedelta(seconds=wrap)
        else:
            self._move(session, agent, "available", reason, entry_id=entry.id, now=now)

    def leave(self, entry_id: str, to: str, outcome: str) -> None:
        """The customer chose (or overflow sent them) elsewhere: overflowed, voicemail or callback."""
        now = self.clock()
        with self._transaction() as session:
            entry = self._entry(session, entry_id)
            if entry.state in FINAL_ENTRY_STATES:
                return
            self._entry_to(entry, to, now, outcome=outcome)

    def set_callback(self, entry_id: str, number: str) -> None:
        """Keep the caller's place; when their turn comes we call `number` (the entry stays owned by us)."""
        now = self.clock()
        with self._transaction() as session:
            entry = self._entry(session, entry_id)
            self._entry_to(entry, "callback", now, outcome="callback requested")
            entry.callback_number = number
            entry.lease_expires = now + self.lease

    # ---- leases and timers --------------------------------------------------------------------------
    def heartbeat(self) -> int:
        """Renew the leases this worker holds (its callers' entries and the agents reserved/busy with them)."""
        now = self.clock()
        until = now + self.lease
        with self._transaction() as session:
            # two UPDATE statements, not a row loaded and written back per lease (2,000 callers: 0.3-0.5 s)
            entries = session.execute(
                update(QueueEntry).where(QueueEntry.worker == self.worker, QueueEntry.state.in_(LIVE_ENTRY_STATES))
                .values(lease_expires=until).execution_options(synchronize_session=False)
            ).rowcount  # fmt: skip
            agents = session.execute(
                update(Agent).where(Agent.lease_owner == self.worker)
                .values(lease_expires=until).execution_options(synchronize_session=False)
            ).rowcount  # fmt: skip
            return entries + agents

    def sweep(self) -> dict[str, int]:
        """Free what expired: wrap-up timers, offers nobody answered within the ring timeout (chats), and
        leases of a worker that stopped renewing them (crashed, or lost the call)."""
        now = self.clock()
        counts = {"wrap_up": 0, "agent_lease": 0, "entry_lease": 0, "chat_offer": 0}
        with self._transaction() as session:
            done_wrapping = select(Agent).where(Agent.state == "wrap_up", Agent.wrap_up_until <= now)
            for agent in session.scalars(done_wrapping.with_for_update(skip_locked=True)):
                self._move(session, agent, "available", "wrap-up over", now=now)
                counts["wrap_up"] += 1
            for entry in session.scalars(select(QueueEntry).where(
                    QueueEntry.state.in_(LIVE_ENTRY_STATES), QueueEntry.lease_expires.is_not(None),
                    QueueEntry.lease_expires < now).with_for_update(skip_locked=True)):  # fmt: skip
                agent = session.get(Agent, entry.agent_id, with_for_update=True) if entry.agent_id else None
                state = entry.state
                self._entry_to(entry, "abandoned", now, outcome="lease_expired")
                holds_agent = state in ("offered", "connected") and entry.channel == "voice"
                if holds_agent and agent is not None and agent.state in ("reserved", "busy"):
                    self._move(session, agent, "available", "lease expired", entry_id=entry.id, now=now)
                counts["entry_lease"] += 1
            for agent in session.scalars(select(Agent).where(
                    Agent.state.in_(("reserved", "busy")), Agent.lease_expires.is_not(None),
                    Agent.lease_expires < now).with_for_update(skip_locked=True)):  # fmt: skip
                self._move(session, agent, "available", "lease expired", now=now)
                counts["agent_lease"] += 1
            queues = {q.name: q for q in session.scalars(select(Queue))}
            chat_offers = select(QueueEntry).where(QueueEntry.state == "offered", QueueEntry.channel != "voice")
            for entry in session.scalars(chat_offers.with_for_update(skip_locked=True)):
                queue = queues.get(entry.queue)
                if entry.offered_at and queue and entry.offered_at + timedelta(seconds=queue.ring_timeout) < now:
                    agent = session.get(Agent, entry.agent_id, with_for_update=True) if entry.agent_id else None
                    self._entry_to(entry, "waiting", now, outcome="not accepted")
                    entry.declined = [*(entry.declined or []), entry.agent_id] if entry.agent_id else entry.declined
                    entry.agent_id = None
                    if agent is not None:
                        agent.active_chats = max(0, agent.active_chats - 1)
                    counts["chat_offer"] += 1
        return counts

    def overdue(self) -> list[str]:
        """Waiting entries of this worker past their queue's max_wait (the caller then overflows)."""
        now = self.clock()
        with self.session_factory() as session:
            rows = session.execute(
                select(QueueEntry.id, QueueEntry.enqueued_at, Queue.max_wait)
                .join(Queue, Queue.name == QueueEntry.queue)
                .where(QueueEntry.state == "waiting", QueueEntry.worker == self.worker)
            ).all()  # fmt: skip
        return [entry_id for entry_id, at, max_wait in rows if at + timedelta(seconds=max_wait) <= now]

    def queue(self, name: str) -> Queue:
        with self.session_factory() as session:
            queue = session.get(Queue, name)
            if queue is None:
                raise QueueNotFound(f"queue {name!r} does not exist")
            return queue

    # ---- plumbing -----------------------------------------------------------------------------------
    def _transaction(self) -> _Transaction:
        return _Transaction(self)


class _Transaction:
    """One transaction; the events it produced are published only if it commits."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def __enter__(self) -> Session:
        self.session = self.router.session_factory()
        self.session.begin()
        self.router._changes = []
        return self.session

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        changes, self.router._changes = self.router._changes, []
        try:
            if kind is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()
        if kind is None:
            for what, event in changes:
                topic = "agents" if what == "agent" else "queues"
                self.router.publish(topic, {"type": what, **event})
                if what == "offer":
                    self.router.publish(f"agent:{event['agent_id']}", {"type": what, **event})
