"""The supervisor's figures (callcenter_api.routing.stats), who may see them, and who sees which offers —
through the real app on SQLite and PostgreSQL, with the real router and sign-in tokens; plus /metrics and
the agent console / supervisor pages being served."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bot.engine import KnowledgeBot
from bot.knowledge import parse
from callcenter_api.app import create_app
from callcenter_api.events import EventHub
from callcenter_api.history.conversations import add_message
from callcenter_api.models import Agent, Conversation, Queue, QueueEntry
from callcenter_api.people import create_user
from callcenter_api.routing.router import Router
from callcenter_api.routing.stats import call_center_stats

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ADMIN = "stats-admin-token"
PASSWORD = "correct horse battery"
QUEUE_DEFAULTS = {
    "language": None, "priority": 0, "strategy": "longest_idle", "ring_timeout": 20, "max_wait": 600,
    "max_size": 50, "overflow": None, "music": None, "announce_period": 30, "transfer": "bridge",
    "wrap_up_seconds": 10, "max_missed_offers": 2,
}  # fmt: skip


def ago(seconds: float) -> datetime:
    return T0 - timedelta(seconds=seconds)


def _agent(agent_id: str, state: str, skills: dict[str, int], user_id: str | None = None) -> Agent:
    return Agent(id=agent_id, name=f"Agent {agent_id}", sip_uri=f"sip:{agent_id}@127.0.0.1", skills=skills,
                 languages=["en"], max_chats=2, state=state, state_since=ago(600), missed_offers=0, active_chats=0,
                 user_id=user_id, last_idle_at=ago(600))  # fmt: skip


def _conversation(
    cid: str, *, channel: str = "voice", flow: str | None = None, started: float = 3600, ended: float | None = None,
    disposition: str | None = None, status: str = "closed",
) -> Conversation:  # fmt: skip
    end = ago(ended) if ended is not None else None
    return Conversation(id=cid, contact_id=None, channel=channel, started_at=ago(started), status=status,
                        ended_at=end, flow=flow, disposition=disposition)  # fmt: skip


def _entry(eid: str, cid: str, state: str, enqueued: float, answered: float | None = None,
           ended: float | None = None, queue: str = "support") -> QueueEntry:  # fmt: skip
    return QueueEntry(id=eid, queue=queue, conversation_id=cid, channel="voice", priority=0, skills={}, language=None,
                      caller="+447700900123", enqueued_at=ago(enqueued), state=state,
                      answered_at=ago(answered) if answered is not None else None,
                      ended_at=ago(ended) if ended is not None else None, declined=[], attempts=1)  # fmt: skip


def seed_call_center(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        s.add(Queue(name="support", required_skills={}, service_level_seconds=20, **QUEUE_DEFAULTS))
        s.add(Queue(name="billing", required_skills={"billing": 2}, service_level_seconds=30, **QUEUE_DEFAULTS))
        s.add_all([
            _agent("a1", "available", {}), _agent("a2", "busy", {"billing": 3}), _agent("a3", "offline", {}),
            _agent("a4", "wrap_up", {"billing": 1}),
        ])  # fmt: skip
        s.add_all([
            _conversation("c1", flow="carrier_en@3", ended=3000, disposition="contained"),
            _conversation("c2", flow="carrier_en@3", ended=3000, disposition="contained"),
            _conversation("c3", flow="carrier_en@3", ended=2800, disposition="transferred"),
            _conversation("c4", flow="carrier_en@3", ended=1900, disposition="abandoned"),
            _conversation("c5", flow="carrier_en@4", ended=1000, disposition="contained"),
            _conversation("c6", flow="demo@1", started=60, status="bot"),  # in progress
            _conversation("c7", flow="demo@1", started=2 * 86400, ended=2 * 86400 - 60, disposition="contained"),
            _conversation("c8", channel="webchat", ended=3000, disposition="contained"),
            _conversation("c9", channel="webchat", started=120, status="bot"),  # open chat
        ])  # fmt: skip
        s.flush()
        s.add_all([
            _entry("e1", "c3", "done", 3600, answered=3590, ended=3290),  # waited 10 s, handled 300 s
            _entry("e2", "c3", "done", 3000, answered=2970, ended=2870),  # waited 30 s (> 20 s), handled 100 s
            _entry("e3", "c4", "abandoned", 2000, ended=1950),
            _entry("e4", "c6", "waiting", 120),
            _entry("e5", "c6", "offered", 60),
            _entry("e6", "c1", "callback", 500),
            _entry("e7", "c7", "done", 2 * 86400, answered=2 * 86400 - 5, ended=2 * 86400 - 60),  # before the period
            _entry("e8", "c2", "voicemail", 1000, ended=900),
        ])  # fmt: skip
        notes = [("c1", "Can I pay with Bitcoin?", 1500), ("c2", "can i pay with  bitcoin", 1400),
                 ("c4", "Do you sell routers?", 1300), ("c7", "Old question?", 2 * 86400 - 10)]  # fmt: skip
        for cid, question, at in notes:
            add_message(s, cid, sender="system", kind="note", text="bot: no confident answer", at=ago(at),
                        meta={"question": question, "entry_id": None, "confidence": 0.1, "handoff": False})  # fmt: skip
        add_message(s, "c1", sender="system", kind="note", text="bot: answered with puk-code", at=ago(1200),
                    meta={"question": "where is my puk", "entry_id": "puk-code", "confidence": 0.9})  # fmt: skip
        add_message(s, "c5", sender="system", kind="note", text="bot: no confident answer", at=ago(900), meta=None)


def test_stats_of_queues_flows_and_unanswered_questions(session_factory: sessionmaker[Session]) -> None:
    seed_call_center(session_factory)
    with session_factory() as session:
        stats = call_center_stats(session, now=T0)
    assert stats.since == T0 - timedelta(hours=24)
    assert stats.agents == {"offline": 1, "available": 1, "reserved": 0, "busy": 1, "wrap_up": 1, "break": 0}
    assert (stats.calls_in_progress, stats.chats_in_progress) == (1, 1)
    billing, support = stats.queues
    assert support.name == "support"
    assert (support.waiting, support.callbacks, support.longest_wait_seconds) == (2, 1, 120.0)
    assert support.agents == {"offline": 1, "available": 1, "reserved": 0, "busy": 1, "wrap_up": 1, "break": 0}
    assert (support.entered, support.answered, support.abandoned) == (7, 2, 1)
    assert support.service_level == 0.5  # 10 s is within 20 s, 30 s is not
    assert support.abandon_rate == 0.25  # 1 of the 4 that left the queue (2 answered, 1 abandoned, 1 voicemail)
    assert support.average_handle_seconds == 200.0
    assert support.average_wait_seconds == 20.0
    assert billing.agents["busy"] == 1 and sum(billing.agents.values()) == 1  # only a2 has billing >= 2
    assert (billing.waiting, billing.longest_wait_seconds, billing.service_level, billing.abandon_rate) == (
        0, None, None, None)  # fmt: skip

    flows = {f.flow: f for f in stats.flows}
    assert set(flows) == {"carrier_en", "webchat"}  # demo: one in progress, one before the period
    carrier = flows["carrier_en"]
    assert (carrier.ended, carrier.contained, carrier.transferred, carrier.abandoned) == (5, 3, 1, 1)
    assert carrier.containment_rate == 0.6  # both versions of the flow together
    assert flows["webchat"].containment_rate == 1.0 and flows["webchat"].channel == "webchat"
    top = [(q.question, q.count) for q in stats.unanswered]
    assert top == [("can i pay with  bitcoin", 2), ("Do you sell routers?", 1)]  # folded; the latest wording
    assert stats.unanswered[0].last_asked == ago(1400) and stats.unanswered[0].flows == ["carrier_en"]
    assert [q.question for q in carrier.unanswered] == ["can i pay with  bitcoin", "Do you sell routers?"]

    with session_factory() as session:  # a shorter period: only what happened in the last 25 minutes
        recent = call_center_stats(session, now=T0, since=ago(1500))
    support = next(q for q in recent.queues if q.name == "support")
    assert (support.entered, support.answered, support.service_level, support.waiting) == (4, 0, None, 2)
    assert support.abandon_rate == 0.0  # the one that left the queue left a voicemail
    assert [(q.question, q.count) for q in recent.unanswered] == [("can i pay with  bitcoin", 2),
                                                                  ("Do you sell routers?", 1)]  # fmt: skip


# ---- the API: roles and ownership ---------------------------------------------------------------------------


@dataclass
class World:
    client: TestClient
    router: Router
    factory: sessionmaker[Session]
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> Iterator[World]:
    with session_factory() as s, s.begin():
        s.add(Queue(name="support", required_skills={}, service_level_seconds=20, **QUEUE_DEFAULTS))
        users = {name: create_user(s, name, PASSWORD, role=role).id
                 for name, role in (("ann", "agent"), ("bob", "agent"), ("sue", "supervisor"))}  # fmt: skip
        s.add_all([_agent("ann", "offline", {}, users["ann"]), _agent("bob", "offline", {}, users["bob"])])
        s.add_all([_conversation(f"conv{i}", started=30, status="bot") for i in (1, 2)])
    hub = EventHub()
    router = Router(session_factory, worker="w1", publish=hub.publish)
    app = create_app(session_factory=session_factory, admin_token=ADMIN, hub=hub, router=router)
    with TestClient(app) as client:
        tokens = {"admin": ADMIN}
        for name in ("ann", "bob", "sue"):
            response = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            assert response.status_code == 200, response.text
            tokens[name] = response.json()["token"]
        yield World(client, router, session_factory, tokens)


def subscribed(world: World, topic: str) -> None:
    """Until the WebSocket handler has subscribed (it does so just after accepting)."""
    hub: EventHub = world.client.app.state.hub  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not hub.subscribers(topic):
        assert time.monotonic() < deadline, f"nobody subscribed to {topic}"
        time.sleep(0.01)


SUPERVISOR_ROUTES = [
    ("GET", "/api/v1/stats", None),
    ("GET", "/api/v1/agents", None),
    ("GET", "/api/v1/queues", None),
    ("PUT", "/api/v1/queues/support", {"service_level_seconds": 30}),
    ("POST", "/api/v1/agents/bob/state", {"state": "available"}),
    ("GET", "/api/v1/calls", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SUPERVISOR_ROUTES)
def test_agents_get_403_on_supervisor_routes_supervisors_do_not(world: World, method: str, path: str,
                                                                body: object) -> None:  # fmt: skip
    refused = world.client.request(method, path, json=body, headers=world.headers("ann"))
    assert refused.status_code == 403, refused.text
    assert world.client.request(method, path, json=body).status_code == 401  # no token at all
    for who in ("sue", "admin"):
        allowed = world.client.request(method, path, json=body, headers=world.headers(who))
        assert allowed.status_code == 200, (who, allowed.text)


def test_the_supervisor_websocket_refuses_agents(world: World) -> None:
    url = f"/api/v1/supervisor/ws?token={world.tokens['ann']}"
    with world.client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as refused:
        ws.receive_json()
    assert refused.value.code == 4401
    with world.client.websocket_connect(f"/api/v1/supervisor/ws?token={world.tokens['sue']}") as ws:
        subscribed(world, "agents")
        world.router.set_agent_state("bob", "available")
        event = ws.receive_json()
    assert (event["topic"], event["type"], event["agent_id"], event["state"]) == ("agents", "agent", "bob", "available")


def test_an_agent_sees_only_their_own_offers_and_conversations(world: World) -> None:
    client = world.client
    for who in ("ann", "bob"):  # the agent's own state (not shadowed by the supervisor's /agents/{id}/state)
        response = client.post("/api/v1/agents/me/state", json={"state": "available"}, headers=world.headers(who))
        assert response.status_code == 200 and response.json()["state"] == "available", response.text
    with client.websocket_connect(f"/api/v1/agents/me/ws?token={world.tokens['ann']}") as ann_ws:
        subscribed(world, "queues")
        entries = [world.router.enqueue("support", f"conv{i}", channel="voice").id for i in (1, 2)]
        offers = {o.agent_id: o for o in world.router.reserve()}
        assert set(offers) == {"ann", "bob"}
        world.router.publish("queues", {"type": "entry", "entry_id": "sentinel", "state": "waiting"})
        seen = []
        while (event := ann_ws.receive_json()).get("entry_id") != "sentinel":
            seen.append(event)
    assert all(e.get("agent_id") in (None, "ann") for e in seen), seen  # nothing of Bob's
    assert any(e["type"] == "offer" and e["entry_id"] == offers["ann"].entry_id for e in seen), seen

    mine = client.get("/api/v1/agents/me/offers", headers=world.headers("ann")).json()
    assert [o["entry_id"] for o in mine] == [offers["ann"].entry_id]
    pop = client.get(f"/api/v1/agents/me/offers/{offers['ann'].entry_id}", headers=world.headers("ann"))
    assert pop.status_code == 200 and pop.json()["conversation"]["id"] == offers["ann"].conversation_id
    theirs = client.get(f"/api/v1/agents/me/offers/{offers['bob'].entry_id}", headers=world.headers("ann"))
    assert theirs.status_code == 404
    listed = client.get("/api/v1/conversations", headers=world.headers("ann")).json()
    assert [c["id"] for c in listed] == [offers["ann"].conversation_id]
    other = client.get(f"/api/v1/conversations/{offers['bob'].conversation_id}", headers=world.headers("ann"))
    assert other.status_code == 404
    wrap = client.post(f"/api/v1/agents/me/conversations/{offers['bob'].conversation_id}/wrap-up",
                       json={"disposition": "resolved"}, headers=world.headers("ann"))  # fmt: skip
    assert wrap.status_code == 404

    # supervisors see every offer and conversation (but have no offers of their own: they are no agents)
    for entry_id in entries:
        assert client.get(f"/api/v1/agents/me/offers/{entry_id}", headers=world.headers("sue")).status_code == 200
    assert {c["id"] for c in client.get("/api/v1/conversations", headers=world.headers("sue")).json()} == {
        "conv1", "conv2"}  # fmt: skip
    assert client.get("/api/v1/agents/me/offers", headers=world.headers("sue")).status_code == 403
    stats = client.get("/api/v1/stats", headers=world.headers("sue")).json()
    (support,) = stats["queues"]
    assert (support["waiting"], support["agents"]["reserved"]) == (2, 2)


def test_wrap_up_after_the_call_records_the_disposition_and_frees_the_agent(world: World) -> None:
    client = world.client
    client.post("/api/v1/agents/me/state", json={"state": "available"}, headers=world.headers("ann"))
    entry = world.router.enqueue("support", "conv1", channel="voice")
    (offer,) = world.router.reserve()
    world.router.answered(offer.entry_id)
    world.router.ended(offer.entry_id, "caller_bye")
    assert client.get("/api/v1/agents/me", headers=world.headers("ann")).json()["state"] == "wrap_up"
    body = {"disposition": "resolved", "notes": "PUK given"}
    response = client.post("/api/v1/agents/me/conversations/conv1/wrap-up", json=body, headers=world.headers("ann"))
    assert response.status_code == 200, response.text
    assert response.json() == {"conversation_id": "conv1", "disposition": "resolved", "agent_state": "available"}
    conversation = client.get("/api/v1/conversations/conv1", headers=world.headers("ann")).json()
    note = conversation["messages"][-1]
    assert (note["sender"], note["kind"], note["text"], note["meta"]["wrap_up"]) == ("agent", "note", "PUK given",
                                                                                   "resolved")  # fmt: skip
    stats = client.get("/api/v1/stats", headers=world.headers("sue")).json()
    (support,) = stats["queues"]
    assert (support["entered"], support["answered"], support["service_level"]) == (1, 1, 1.0)
    assert entry.id == offer.entry_id

    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for line in ('hotline_queue_entries_total{queue="support"} 1.0',
                 'hotline_queue_answered_total{queue="support"} 1.0',
                 'hotline_queue_offers_total{channel="voice",queue="support"} 1.0',
                 'hotline_queue_wait_seconds_count{outcome="answered",queue="support"} 1.0',
                 'hotline_queue_waiting{queue="support"} 0.0', 'hotline_agents{state="available"} 1.0',
                 "hotline_database_up 1.0"):  # fmt: skip
        assert line in text, f"{line} not in\n{text}"


def test_metrics_count_abandons_and_bot_decisions(world: World) -> None:
    entry = world.router.enqueue("support", "conv1", channel="voice")
    world.router.caller_left(entry.id)
    hub: EventHub = world.client.app.state.hub  # type: ignore[attr-defined]
    note = {"sender": "system", "kind": "note", "text": "bot: no confident answer", "meta": {"question": "x"}}
    hub.publish("conversation:conv2", {"type": "message", "message": note})
    hub.publish("conversation:conv2", {"type": "message", "message": {**note, "text": "bot: answered with puk"}})
    hub.publish("calls", {"type": "call", "event": "started", "call_id": "k1", "inbound": True})
    text = world.client.get("/metrics").text
    assert 'hotline_queue_abandoned_total{queue="support"} 1.0' in text
    assert 'hotline_queue_wait_seconds_count{outcome="abandoned",queue="support"} 1.0' in text
    assert 'hotline_bot_decisions_total{channel="voice",outcome="no_answer"} 1.0' in text
    assert 'hotline_bot_decisions_total{channel="voice",outcome="answered"} 1.0' in text
    assert 'hotline_calls_in_progress{direction="inbound"} 1.0' in text
    hub.publish("calls", {"type": "call", "event": "ended", "call_id": "k1", "reason": "caller_bye"})
    text = world.client.get("/metrics").text
    assert 'hotline_calls_in_progress{direction="inbound"} 0.0' in text
    assert 'hotline_calls_ended_total{reason="caller_bye"} 1.0' in text
    assert "process_cpu_seconds_total" in text


def test_the_pages_are_served(world: World) -> None:
    for path, marker in (("/agent", 'data-testid="wrap-up-form"'), ("/supervisor", 'data-testid="queues"')):
        page = world.client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert marker in page.text and 'aria-live="polite"' in page.text


# ---- chats handed off by the bot: the same queues and agents -------------------------------------------------

KB = Path(__file__).resolve().parents[2] / "bot" / "examples" / "northwind_kb.yaml"


@pytest.fixture(scope="module")
def bot() -> KnowledgeBot:
    return KnowledgeBot(parse(KB.read_text(encoding="utf-8")))


@pytest.fixture
def chat_world(session_factory: sessionmaker[Session], bot: KnowledgeBot) -> Iterator[World]:
    with session_factory() as s, s.begin():
        s.add(Queue(name="general", required_skills={}, service_level_seconds=20, **QUEUE_DEFAULTS))
        ann = create_user(s, "ann", PASSWORD, role="agent").id
        s.add(_agent("ann", "offline", {}, ann))
    hub = EventHub()
    router = Router(session_factory, worker="w1", publish=hub.publish)
    app = create_app(session_factory=session_factory, admin_token=ADMIN, hub=hub, router=router, bot=bot)
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/login", json={"username": "ann", "password": PASSWORD}).json()["token"]
        yield World(client, router, session_factory, {"ann": token, "admin": ADMIN})


def _chat(world: World, text: str) -> tuple[str, dict[str, str]]:
    started = world.client.post("/api/v1/chat/conversations", json={"phone": "+447700900777"}).json()
    customer = {"Authorization": f"Bearer {started['token']}"}
    said = world.client.post(f"/api/v1/chat/conversations/{started['conversation_id']}/messages",
                             json={"text": text}, headers=customer)  # fmt: skip
    assert said.json()["status"] == "queued", said.text
    return started["conversation_id"], customer


def test_a_handed_off_chat_is_offered_accepted_answered_and_closed(chat_world: World) -> None:
    client, me = chat_world.client, chat_world.headers("ann")
    client.post("/api/v1/agents/me/state", json={"state": "available"}, headers=me)
    cid, customer = _chat(chat_world, "can I speak to a real person please")
    again = client.post(f"/api/v1/chat/conversations/{cid}/messages", json={"text": "hello?"}, headers=customer)
    assert again.status_code == 200  # still queued: not enqueued twice
    (offer,) = chat_world.router.reserve()
    assert (offer.agent_id, offer.channel, offer.queue, offer.conversation_id) == ("ann", "webchat", "general", cid)
    (mine,) = client.get("/api/v1/agents/me/offers", headers=me).json()
    assert mine["caller"] == "+447700900777" and mine["state"] == "offered"
    pop = client.get(f"/api/v1/agents/me/offers/{offer.entry_id}", headers=me).json()
    assert [m["text"] for m in pop["conversation"]["messages"] if m["sender"] == "caller"] == [
        "can I speak to a real person please", "hello?"]  # fmt: skip
    accepted = client.post(f"/api/v1/agents/me/offers/{offer.entry_id}/accept", headers=me)
    assert accepted.status_code == 200 and accepted.json()["state"] == "connected", accepted.text
    reply = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Hi, Ann here.", "agent": "Ann"},
                        headers=me)  # fmt: skip
    assert reply.status_code == 201, reply.text
    seen = client.get(f"/api/v1/chat/conversations/{cid}/messages", headers=customer).json()["messages"]
    assert "Hi, Ann here." in [m["text"] for m in seen]
    assert client.post(f"/api/v1/conversations/{cid}/close", headers=me).status_code == 200
    with chat_world.factory() as session:
        assert session.get(QueueEntry, offer.entry_id).state == "done"  # type: ignore[union-attr]
        assert session.get(Agent, "ann").active_chats == 0  # type: ignore[union-attr]
    wrap = client.post(f"/api/v1/agents/me/conversations/{cid}/wrap-up", json={"disposition": "resolved"},
                       headers=me)  # fmt: skip
    assert wrap.status_code == 200, wrap.text


def test_a_chat_closed_by_the_customer_while_waiting_is_abandoned(chat_world: World) -> None:
    cid, customer = _chat(chat_world, "can I speak to a real person please")
    assert client_close(chat_world, cid, customer) == 200
    with chat_world.factory() as session:
        (entry,) = session.scalars(select(QueueEntry).where(QueueEntry.conversation_id == cid))
        assert (entry.state, entry.outcome) == ("abandoned", "caller_left")
    assert chat_world.router.reserve() == []


def client_close(world: World, cid: str, customer: dict[str, str]) -> int:
    return world.client.post(f"/api/v1/chat/conversations/{cid}/close", headers=customer).status_code
