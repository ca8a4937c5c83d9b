"""Agents and queues (supervisors configure them) and the agent's own view (state, offers, screen-pop,
accepting chats, wrap-up), plus the agent's live WebSocket."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter_api.auth import PrincipalDep, require, websocket_principal
from callcenter_api.deps import SessionDep
from callcenter_api.history import contacts
from callcenter_api.history.conversations import TimelineItem, add_message, messages_of, timeline
from callcenter_api.models import Agent, Conversation, Queue, QueueEntry, Recording
from callcenter_api.people import Principal
from callcenter_api.routes.contacts import contact_out, detail_out
from callcenter_api.routes.conversations import deny, stream
from callcenter_api.routing.router import Router
from callcenter_api.routing.states import RoutingError
from callcenter_api.schemas import ErrorOut
from callcenter_api.schemas.history import ContactOut, ConversationDetail

supervise = [Depends(require("admin", "supervisor"))]
router = APIRouter(tags=["agents"])
ws_router = APIRouter()
NOT_FOUND = {status.HTTP_404_NOT_FOUND: {"model": ErrorOut}}


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    sip_uri: str | None = Field(None, pattern=r"^sips?:", description="the agent's phone, e.g. sip:ann@10.0.0.5")
    skills: dict[str, int] = Field(default_factory=dict, description="skill -> level 1..10")
    languages: list[str] = Field(default_factory=lambda: ["en"])
    max_chats: int = Field(3, ge=0, le=20)
    user_id: str | None = Field(None, description="the user who signs in as this agent")


class AgentOut(AgentIn):
    model_config = ConfigDict(from_attributes=True)

    id: str
    state: str
    state_since: datetime
    missed_offers: int
    active_chats: int
    wrap_up_until: datetime | None


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required_skills: dict[str, int] = Field(default_factory=dict)
    language: str | None = None
    priority: int = 0
    strategy: str = Field("longest_idle", pattern="^(longest_idle|round_robin)$")
    ring_timeout: int = Field(20, ge=5, le=120)
    max_wait: int = Field(600, ge=10, le=7200)
    max_size: int = Field(50, ge=1, le=10_000)
    overflow: dict[str, str] | None = Field(None, description='{"kind": "queue"|"voicemail"|"callback", "target": ...}')
    music: str | None = Field(None, description="WAV file for music on hold (default: built-in)")
    announce_period: int = Field(30, ge=5, le=600)
    transfer: str = Field("bridge", pattern="^(bridge|refer)$")
    wrap_up_seconds: int = Field(10, ge=0, le=600)
    max_missed_offers: int = Field(2, ge=1, le=20)
    service_level_seconds: int = Field(20, ge=1, le=600)


class QueueOut(QueueIn):
    model_config = ConfigDict(from_attributes=True)

    name: str


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str = Field(pattern="^(available|break|offline)$")


class WrapUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disposition: str = Field(min_length=1, max_length=64, examples=["resolved", "follow-up", "escalated"])
    notes: str = Field("", max_length=4000)
    done: bool = Field(True, description="end the wrap-up now (become available)")


class OfferOut(BaseModel):
    entry_id: str
    queue: str
    channel: str
    state: str = Field(description="offered (ringing / waiting to be accepted) or connected")
    conversation_id: str
    caller: str | None
    enqueued_at: datetime
    offered_at: datetime | None


class ScreenPop(BaseModel):
    offer: OfferOut
    contact: ContactOut | None
    conversation: ConversationDetail = Field(description="the IVR or chat transcript so far")
    ivr_path: list[str] = Field(description="flow steps the caller took (menu choices, bot decisions)")
    history: list[ConversationDetail] = Field(description="the contact's earlier conversations, newest first")


def _router(request: Request) -> Router:
    acd: Router | None = request.app.state.router
    if acd is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="routing is not configured")
    return acd


def _me(principal: Principal) -> str:
    if principal.agent_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this user is not an agent")
    return principal.agent_id


# ---- configuration (supervisors) ----------------------------------------------------------------------


@router.get("/agents", dependencies=supervise, summary="Agents and their states")
def list_agents(session: SessionDep) -> list[AgentOut]:
    return [AgentOut.model_validate(a) for a in session.scalars(select(Agent).order_by(Agent.name))]


@router.post("/agents", dependencies=supervise, status_code=status.HTTP_201_CREATED, summary="Add an agent")
def add_agent(body: AgentIn, session: SessionDep) -> AgentOut:
    now = datetime.now(UTC)
    with session.begin():
        agent = Agent(id=uuid.uuid4().hex, state="offline", state_since=now, missed_offers=0, active_chats=0,
                      **body.model_dump())  # fmt: skip
        session.add(agent)
    return AgentOut.model_validate(agent)


@router.put("/agents/{agent_id}", dependencies=supervise, summary="Change an agent", responses=NOT_FOUND)
def change_agent(agent_id: str, body: AgentIn, session: SessionDep) -> AgentOut:
    with session.begin():
        agent = session.get(Agent, agent_id)
        if agent is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"agent {agent_id} not found")
        for key, value in body.model_dump().items():
            setattr(agent, key, value)
    return AgentOut.model_validate(agent)


@router.get("/queues", dependencies=supervise, summary="Queues")
def list_queues(session: SessionDep) -> list[QueueOut]:
    return [QueueOut.model_validate(q) for q in session.scalars(select(Queue).order_by(Queue.name))]


@router.put("/queues/{name}", dependencies=supervise, summary="Create or change a queue")
def put_queue(name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")], body: QueueIn,
              session: SessionDep) -> QueueOut:  # fmt: skip
    with session.begin():
        queue = session.get(Queue, name) or Queue(name=name)
        for key, value in body.model_dump().items():
            setattr(queue, key, value)
        session.add(queue)
    return QueueOut.model_validate(queue)


# ---- the agent's own view ------------------------------------------------------------------------------


def _offer_out(entry: QueueEntry) -> OfferOut:
    return OfferOut(entry_id=entry.id, queue=entry.queue, channel=entry.channel, state=entry.state,
                    conversation_id=entry.conversation_id, caller=entry.caller, enqueued_at=entry.enqueued_at,
                    offered_at=entry.offered_at)  # fmt: skip


@router.get("/agents/me", summary="This agent")
def my_agent(session: SessionDep, principal: PrincipalDep) -> AgentOut:
    agent = session.get(Agent, _me(principal))
    assert agent is not None
    return AgentOut.model_validate(agent)


@router.post("/agents/me/state", summary="Set my state: available, break or offline",
             responses={status.HTTP_409_CONFLICT: {"model": ErrorOut}})  # fmt: skip
def set_my_state(body: StateIn, request: Request, principal: PrincipalDep) -> AgentOut:
    try:
        return AgentOut.model_validate(_router(request).set_agent_state(_me(principal), body.state))
    except RoutingError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


# declared after /agents/me/state: routes match in order, and "me" must not be taken for an agent id
@router.post("/agents/{agent_id}/state", dependencies=supervise, summary="Set an agent's state (supervisor)")
def supervisor_sets_state(agent_id: str, body: StateIn, request: Request) -> AgentOut:
    try:
        return AgentOut.model_validate(_router(request).set_agent_state(agent_id, body.state, reason="supervisor"))
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except RoutingError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.get("/agents/me/offers", summary="Calls and chats offered to me or connected with me")
def my_offers(session: SessionDep, principal: PrincipalDep) -> list[OfferOut]:
    rows = session.scalars(
        select(QueueEntry).where(QueueEntry.agent_id == _me(principal), QueueEntry.state.in_(("offered", "connected")))
        .order_by(QueueEntry.offered_at)
    )  # fmt: skip
    return [_offer_out(e) for e in rows]


def screen_pop(session: Session, entry: QueueEntry) -> ScreenPop:
    conversation = session.get(Conversation, entry.conversation_id)
    assert conversation is not None
    messages = messages_of(session, conversation.id, limit=100_000)
    recordings = list(session.scalars(select(Recording).where(Recording.conversation_id == conversation.id)))
    contact = contacts.current(session, conversation.contact_id) if conversation.contact_id else None
    earlier: list[ConversationDetail] = []
    if contact is not None:
        page = timeline(session, contact.id, limit=6, offset=0, order="desc")
        earlier = [detail_out(i) for i in page.items if i.conversation.id != conversation.id][:5]
    path = [m.text for m in messages if m.sender == "system" and m.kind == "note"]
    return ScreenPop(
        offer=_offer_out(entry), contact=contact_out(session, contact) if contact else None,
        conversation=detail_out(TimelineItem(conversation, messages, recordings)), ivr_path=path, history=earlier,
    )  # fmt: skip


def _my_entry(session: Session, entry_id: str, principal: Principal) -> QueueEntry:
    entry = session.get(QueueEntry, entry_id)
    if entry is None or (entry.agent_id != principal.agent_id and not principal.sees_everything):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"offer {entry_id} not found")
    return entry


@router.get("/agents/me/offers/{entry_id}", summary="Screen-pop: caller, IVR path and transcript, history",
            responses=NOT_FOUND)  # fmt: skip
def offer_detail(entry_id: str, session: SessionDep, principal: PrincipalDep) -> ScreenPop:
    return screen_pop(session, _my_entry(session, entry_id, principal))


@router.post("/agents/me/offers/{entry_id}/accept", summary="Take an offered chat", responses=NOT_FOUND)
def accept_chat(entry_id: str, request: Request, session: SessionDep, principal: PrincipalDep) -> OfferOut:
    entry = _my_entry(session, entry_id, principal)
    if entry.channel == "voice":
        raise HTTPException(status.HTTP_409_CONFLICT, detail="calls are answered on the phone")
    try:
        _router(request).answered(entry_id)
    except RoutingError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    agent = session.get(Agent, principal.agent_id) if principal.agent_id else None
    chat = request.app.state.chat
    if chat is not None:
        chat.agent_joined(entry.conversation_id, agent=agent.name if agent else principal.username)
    session.expire_all()
    return _offer_out(session.get(QueueEntry, entry_id))  # type: ignore[arg-type]


@router.post("/agents/me/conversations/{conversation_id}/wrap-up", summary="Disposition and notes after a call",
             responses=NOT_FOUND)  # fmt: skip
def wrap_up(conversation_id: str, body: WrapUpIn, request: Request, session: SessionDep,
            principal: PrincipalDep) -> dict[str, Any]:  # fmt: skip
    entry = session.scalar(select(QueueEntry).where(QueueEntry.conversation_id == conversation_id,
                                                    QueueEntry.agent_id == _me(principal)))  # fmt: skip
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no conversation {conversation_id} of yours")
    now = datetime.now(UTC)
    # the lookup above already began the session's transaction (autobegin): write in it, then commit
    conversation = session.get(Conversation, conversation_id)
    assert conversation is not None
    offset = max(0, int((now - conversation.started_at).total_seconds() * 1000))
    meta = {"wrap_up": body.disposition, "agent_id": principal.agent_id}
    add_message(session, conversation_id, sender="agent", kind="note", text=body.notes or body.disposition,
                at=now, offset_ms=offset, meta=meta)  # fmt: skip
    session.commit()
    state = None
    if body.done:
        agent = session.get(Agent, principal.agent_id)
        if agent is not None and agent.state == "wrap_up":
            state = _router(request).set_agent_state(agent.id, "available", reason="wrap-up done").state
    return {"conversation_id": conversation_id, "disposition": body.disposition, "agent_state": state}


@ws_router.websocket("/api/v1/agents/me/ws")
async def agent_ws(websocket: WebSocket, token: str | None = None) -> None:
    """Live events for one agent's console: offers, their own state, queue changes, conversation messages
    of the calls and chats they hold (subscribe to those with /api/v1/conversations/{id}/ws)."""
    principal = await asyncio.to_thread(websocket_principal, websocket, token)
    if principal is None or principal.agent_id is None:
        await deny(websocket, "sign in as an agent")
        return
    await websocket.accept()
    await stream(websocket, (f"agent:{principal.agent_id}", "agents", "queues"), [],
                 only=lambda e: e.get("agent_id") in (None, principal.agent_id))  # fmt: skip
