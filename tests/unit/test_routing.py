"""The ACD against a real database: unit cases, then random sequences (hypothesis) with invariants.

Invariants after every step: an agent is `reserved` exactly while one voice entry is offered to it and
`busy` exactly while one is connected to it (so no call is offered to two agents and no agent holds two);
chat slots in use equal the chats offered/connected to the agent; entries are never lost (each is in a
known state); and once every worker stops renewing its leases and they expire, a sweep leaves no agent
reserved or busy — nothing stays stuck.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from callcenter_api.models import Agent, AgentEvent, Base, Contact, Conversation, Queue, QueueEntry
from callcenter_api.routing.router import QueueFull, QueueNotFound, Router
from callcenter_api.routing.states import ENTRY_STATES, RoutingError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def memory_db() -> sessionmaker[Session]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA foreign_keys=ON"))
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def seed(factory: sessionmaker[Session], *, agents: int = 3, wrap_up: int = 5, max_missed: int = 2) -> None:
    with factory() as s, s.begin():
        common = {"max_wait": 300, "overflow": None, "music": None, "announce_period": 30, "transfer": "bridge",
                  "max_missed_offers": max_missed, "service_level_seconds": 20, "ring_timeout": 15}  # fmt: skip
        s.add(Queue(name="support", required_skills={"support": 1}, language=None, priority=0,
                    strategy="longest_idle", max_size=20, wrap_up_seconds=wrap_up, **common))  # fmt: skip
        s.add(Queue(name="billing", required_skills={"billing": 2}, language="en", priority=5,
                    strategy="round_robin", max_size=2, wrap_up_seconds=0, **common))  # fmt: skip
        for i in range(agents):
            skills = {"support": 3} if i % 2 == 0 else {"support": 1, "billing": 3}
            s.add(Agent(id=f"a{i}", name=f"Agent {i}", sip_uri=f"sip:a{i}@127.0.0.1", skills=skills,
                        languages=["en"], max_chats=2, state="offline", state_since=T0, missed_offers=0,
                        active_chats=0))  # fmt: skip
        s.add(Contact(id="c" * 32, name=None, created_at=T0))


def conversation(factory: sessionmaker[Session], n: int, channel: str = "voice") -> str:
    cid = f"{n:032x}"
    with factory() as s, s.begin():
        s.add(Conversation(id=cid, contact_id="c" * 32, channel=channel, started_at=T0, status="bot"))
    return cid


@pytest.fixture
def setup() -> Iterator[tuple[Router, Clock, sessionmaker[Session]]]:
    factory = memory_db()
    seed(factory)
    clock = Clock()
    yield Router(factory, worker="w1", clock=clock, lease_seconds=10), clock, factory


def agent(factory: sessionmaker[Session], agent_id: str) -> Agent:
    with factory() as s:
        return s.get(Agent, agent_id)  # type: ignore[return-value]


def test_offer_answer_end_wrap_up(setup: tuple[Router, Clock, sessionmaker[Session]]) -> None:
    router, clock, factory = setup
    for a in ("a0", "a1", "a2"):
        router.set_agent_state(a, "available")
        clock.advance(1)  # a0 has been idle longest
    entry = router.enqueue("support", conversation(factory, 1), channel="voice", caller="+447700900123")
    assert router.position(entry.id).position == 1
    (offer,) = router.reserve()
    assert (offer.agent_id, offer.sip_uri, offer.entry_id) == ("a0", "sip:a0@127.0.0.1", entry.id)
    assert agent(factory, "a0").state == "reserved"
    assert router.reserve() == []  # nothing else waits
    router.answered(entry.id)
    assert agent(factory, "a0").state == "busy"
    clock.advance(30)
    router.ended(entry.id)
    assert agent(factory, "a0").state == "wrap_up"
    clock.advance(6)
    assert router.sweep()["wrap_up"] == 1
    assert agent(factory, "a0").state == "available"
    with factory() as s:
        reasons = [
            e.reason for e in s.scalars(select(AgentEvent).where(AgentEvent.agent_id == "a0").order_by(AgentEvent.id))
        ]
    assert reasons == ["agent", "offered support", "answered support", "hangup", "wrap-up over"]


def test_skills_priority_and_round_robin(setup: tuple[Router, Clock, sessionmaker[Session]]) -> None:
    router, clock, factory = setup
    for a in ("a0", "a1", "a2"):
        router.set_agent_state(a, "available")
    support = router.enqueue("support", conversation(factory, 1), channel="voice")
    clock.advance(1)
    billing = router.enqueue("billing", conversation(factory, 2), channel="voice")  # later, higher priority
    offers = {o.entry_id: o.agent_id for o in router.reserve()}
    assert offers[billing.id] == "a1"  # the only billing-skilled agent
    assert offers[support.id] in ("a0", "a2")


def test_no_answer_goes_to_the_next_agent_and_misses_lead_to_break(
    setup: tuple[Router, Clock, sessionmaker[Session]],
) -> None:
    router, clock, factory = setup
    router.set_agent_state("a0", "available")
    router.set_agent_state("a2", "available")
    first = router.enqueue("support", conversation(factory, 1), channel="voice")
    (offer,) = router.reserve()
    router.not_answered(first.id)
    (second,) = router.reserve()
    assert second.entry_id == first.id and second.agent_id != offer.agent_id
    assert agent(factory, offer.agent_id).state == "available"
    router.not_answered(first.id)
    clock.advance(1)
    other = router.enqueue("support", conversation(factory, 2), channel="voice")
    offers = router.reserve()
    assert [o.entry_id for o in offers] == [other.id]  # `first` was declined by both agents
    router.not_answered(other.id)  # that agent's second miss in a row
    assert agent(factory, offers[0].agent_id).state == "break"


def test_caller_hangs_up_while_ringing_frees_the_agent(setup: tuple[Router, Clock, sessionmaker[Session]]) -> None:
    router, _clock, factory = setup
    router.set_agent_state("a0", "available")
    entry = router.enqueue("support", conversation(factory, 1), channel="voice")
    router.reserve()
    router.caller_left(entry.id)
    assert agent(factory, "a0").state == "available"
    with factory() as s:
        assert s.get(QueueEntry, entry.id).state == "abandoned"  # type: ignore[union-attr]


def test_a_crashed_worker_never_leaves_an_agent_stuck(setup: tuple[Router, Clock, sessionmaker[Session]]) -> None:
    router, clock, factory = setup
    router.set_agent_state("a0", "available")
    router.set_agent_state("a2", "available")
    ringing = router.enqueue("support", conversation(factory, 1), channel="voice")
    talking = router.enqueue("support", conversation(factory, 2), channel="voice")
    router.reserve()
    router.answered(talking.id)
    clock.advance(8)
    router.heartbeat()  # still alive
    clock.advance(8)
    assert router.sweep() == {"wrap_up": 0, "agent_lease": 0, "entry_lease": 0, "chat_offer": 0}  # all renewed
    # the worker dies: no more heartbeats
    clock.advance(11)
    other = Router(factory, worker="w2", clock=clock, lease_seconds=10)
    counts = other.sweep()
    assert counts["entry_lease"] == 2
    assert {agent(factory, a).state for a in ("a0", "a2")} == {"available"}
    with factory() as s:
        assert {s.get(QueueEntry, e.id).state for e in (ringing, talking)} == {"abandoned"}  # type: ignore[union-attr]


def test_chats_share_agents_within_their_chat_capacity(setup: tuple[Router, Clock, sessionmaker[Session]]) -> None:
    router, clock, factory = setup
    router.set_agent_state("a0", "available")
    chats = [
        router.enqueue("support", conversation(factory, n, "webchat"), channel="webchat", owned=False) for n in range(3)
    ]
    offers = router.reserve()
    assert [o.agent_id for o in offers] == ["a0", "a0"]  # max_chats = 2
    assert agent(factory, "a0").state == "available" and agent(factory, "a0").active_chats == 2
    assert {o.entry_id for o in offers} < {c.id for c in chats}
    router.answered(offers[0].entry_id)
    clock.advance(16)  # the second offer is not accepted within the ring timeout
    assert router.sweep()["chat_offer"] == 1
    assert agent(factory, "a0").active_chats == 1
    router.ended(offers[0].entry_id)
    assert agent(factory, "a0").active_chats == 0


def test_bad_requests_are_refused(setup: tuple[Router, Clock, sessionmaker[Session]]) -> None:
    router, _clock, factory = setup
    with pytest.raises(QueueNotFound):
        router.enqueue("nope", conversation(factory, 1), channel="voice")
    router.enqueue("billing", conversation(factory, 2), channel="voice")
    router.enqueue("billing", conversation(factory, 3), channel="voice")
    with pytest.raises(QueueFull):
        router.enqueue("billing", conversation(factory, 4), channel="voice")
    with pytest.raises(RoutingError):
        router.set_agent_state("a0", "busy")
    router.set_agent_state("a1", "available")
    (offer,) = router.reserve()
    assert offer.agent_id == "a1"
    with pytest.raises(RoutingError, match="reserved to break"):
        router.set_agent_state("a1", "break")  # ringing: the agent answers or misses it first
    with pytest.raises(RoutingError, match="not connected"):
        router.ended(offer.entry_id)


# ---- random sequences ---------------------------------------------------------------------------------------


class RoutingMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.factory = memory_db()
        seed(self.factory, agents=4, wrap_up=3)
        self.clock = Clock()
        self.workers = {name: Router(self.factory, worker=name, clock=self.clock, lease_seconds=10)
                        for name in ("w1", "w2")}  # fmt: skip
        self.alive = {"w1", "w2"}
        self.entries: list[str] = []
        self.n = 0

    def _router(self, worker: str) -> Router:
        return self.workers[worker]

    def _entries(self, *states: str) -> list[QueueEntry]:
        with self.factory() as s:
            return list(s.scalars(select(QueueEntry).where(QueueEntry.state.in_(states))))

    @rule(worker=st.sampled_from(["w1", "w2"]), queue=st.sampled_from(["support", "billing"]),
          chat=st.booleans())  # fmt: skip
    def arrive(self, worker: str, queue: str, chat: bool) -> None:
        self.n += 1
        channel = "webchat" if chat else "voice"
        try:
            entry = self._router(worker).enqueue(queue, conversation(self.factory, self.n, channel), channel=channel,
                                                 owned=not chat)  # fmt: skip
        except QueueFull:
            return
        self.entries.append(entry.id)

    @rule(agent_id=st.sampled_from(["a0", "a1", "a2", "a3"]), state=st.sampled_from(["available", "break", "offline"]))
    def agent_sets_state(self, agent_id: str, state: str) -> None:
        try:
            self.workers["w1"].set_agent_state(agent_id, state)
        except RoutingError:
            assert agent(self.factory, agent_id).state in ("reserved", "busy")

    @rule(worker=st.sampled_from(["w1", "w2"]))
    def reserve(self, worker: str) -> None:
        self._router(worker).reserve()

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        offered = self._entries("offered")
        if offered:
            self.workers["w1"].answered(data.draw(st.sampled_from([e.id for e in offered])))

    @rule(data=st.data())
    def no_answer(self, data: st.DataObject) -> None:
        offered = self._entries("offered")
        if offered:
            self.workers["w1"].not_answered(data.draw(st.sampled_from([e.id for e in offered])))

    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        live = self._entries("waiting", "offered", "connected", "callback")
        if live:
            self.workers["w1"].caller_left(data.draw(st.sampled_from([e.id for e in live])))

    @rule(data=st.data())
    def agent_hangs_up(self, data: st.DataObject) -> None:
        connected = self._entries("connected")
        if connected:
            self.workers["w1"].ended(data.draw(st.sampled_from([e.id for e in connected])))

    @rule(seconds=st.sampled_from([1, 4, 9, 16]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        for name in self.alive:
            self.workers[name].heartbeat()
        self.workers["w1"].sweep()

    @precondition(lambda self: "w2" in self.alive)
    @rule()
    def crash_w2(self) -> None:
        self.alive.discard("w2")

    @invariant()
    def agents_hold_exactly_their_calls(self) -> None:
        if not hasattr(self, "factory"):
            return
        with self.factory() as s:
            agents = {a.id: a for a in s.scalars(select(Agent))}
            entries = list(s.scalars(select(QueueEntry)))
        for a in agents.values():
            offered = [e for e in entries if e.agent_id == a.id and e.channel == "voice" and e.state == "offered"]
            connected = [e for e in entries if e.agent_id == a.id and e.channel == "voice" and e.state == "connected"]
            assert len(offered) + len(connected) <= 1, f"{a.id} holds {len(offered) + len(connected)} calls"
            assert (a.state == "reserved") == (len(offered) == 1), (a.id, a.state, len(offered))
            assert (a.state == "busy") == (len(connected) == 1), (a.id, a.state, len(connected))
            chats = [e for e in entries if e.agent_id == a.id and e.channel != "voice"
                     and e.state in ("offered", "connected")]  # fmt: skip
            assert a.active_chats == len(chats) and a.active_chats <= a.max_chats
        assert {e.id for e in entries} == set(self.entries), "an entry was lost"
        assert all(e.state in ENTRY_STATES for e in entries)

    def teardown(self) -> None:
        if not hasattr(self, "factory"):
            return
        # every worker stops; once their leases run out nothing may be left reserved or busy
        self.clock.advance(60)
        self.workers["w1"].sweep()
        with self.factory() as s:
            stuck = [a.id for a in s.scalars(select(Agent).where(Agent.state.in_(("reserved", "busy"))))]
        assert stuck == [], f"agents stuck after every lease expired: {stuck}"


RoutingMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_random_routing_sequences = RoutingMachine.TestCase


def test_a_free_agent_is_found_work_behind_a_long_backlog_nobody_free_can_take(
    setup: tuple[Router, Clock, sessionmaker[Session]],
) -> None:
    """More than a page of higher-priority callers that need a skill no free agent has must not leave that
    agent idle while a caller they can take waits further down (the pass reads page after page)."""
    router, clock, factory = setup
    with factory() as s, s.begin():
        s.add(Queue(name="french", required_skills={"french": 1}, language=None, priority=9,
                    strategy="longest_idle", max_size=1000, wrap_up_seconds=0, max_wait=300, overflow=None,
                    music=None, announce_period=30, transfer="bridge", max_missed_offers=2,
                    service_level_seconds=20, ring_timeout=15))  # fmt: skip
    for n in range(450):  # over two pages of RESERVE_BATCH (200)
        router.enqueue("french", conversation(factory, 1000 + n), channel="voice")
    clock.advance(1)
    support = router.enqueue("support", conversation(factory, 1), channel="voice")
    router.set_agent_state("a0", "available")  # support only
    offers = router.reserve()
    assert [(o.entry_id, o.agent_id) for o in offers] == [(support.id, "a0")]
