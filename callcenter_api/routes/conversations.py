"""Conversations for the people who handle them: list, read, reply as an agent, close, live events.

The WebSocket takes the token as `?token=` because browsers cannot set headers on a WebSocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter_api.auth import PrincipalDep, websocket_principal
from callcenter_api.chat import ChatClosed, ChatNotFound, ChatService, message_event
from callcenter_api.deps import SessionDep
from callcenter_api.history.conversations import TimelineItem, messages_of
from callcenter_api.models import Conversation, QueueEntry, Recording
from callcenter_api.people import Principal
from callcenter_api.routes.contacts import detail_out
from callcenter_api.routing import chats
from callcenter_api.schemas import ErrorOut
from callcenter_api.schemas.history import AgentMessageIn, ConversationDetail, ConversationOut, MessageOut

router = APIRouter(prefix="/conversations", tags=["conversations"])
ws_router = APIRouter()
NOT_FOUND = {status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "No such conversation."}}
MAX_PAGE = 500


def _chat(request: Request) -> ChatService:
    chat: ChatService | None = request.app.state.chat
    if chat is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="the chat channel is not configured")
    return chat


@router.get("", summary="Conversations, newest first (e.g. ?status=queued for chats waiting for an agent)")
def list_conversations(
    session: SessionDep,
    principal: PrincipalDep,
    status_: Annotated[str | None, Query(alias="status", pattern="^(bot|queued|agent|closed)$")] = None,
    channel: Annotated[str | None, Query(pattern="^(voice|webchat)$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ConversationOut]:
    stmt = select(Conversation).order_by(Conversation.started_at.desc(), Conversation.id.desc())
    if status_:
        stmt = stmt.where(Conversation.status == status_)
    if channel:
        stmt = stmt.where(Conversation.channel == channel)
    if not principal.sees_everything:  # an agent: only conversations offered to or handled by them
        mine = select(QueueEntry.conversation_id).where(QueueEntry.agent_id == principal.agent_id)
        stmt = stmt.where(Conversation.id.in_(mine))
    return [ConversationOut.model_validate(c) for c in session.scalars(stmt.limit(limit).offset(offset))]


@router.get("/{conversation_id}", summary="One conversation with its transcript", responses=NOT_FOUND)
def get_conversation(conversation_id: str, session: SessionDep, principal: PrincipalDep) -> ConversationDetail:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not may_see(session, principal, conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"conversation {conversation_id} not found")
    recordings = list(session.scalars(select(Recording).where(Recording.conversation_id == conversation_id)))
    return detail_out(TimelineItem(conversation, messages_of(session, conversation_id, limit=100_000), recordings))


@router.post(
    "/{conversation_id}/messages", status_code=status.HTTP_201_CREATED, summary="Reply as an agent (chat)",
    responses={**NOT_FOUND, status.HTTP_409_CONFLICT: {"model": ErrorOut, "description": "Closed or not a chat."}},
)  # fmt: skip
def agent_message(
    conversation_id: str, body: AgentMessageIn, request: Request, session: SessionDep, principal: PrincipalDep
) -> MessageOut:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not may_see(session, principal, conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"conversation {conversation_id} not found")
    if conversation.channel != "webchat":
        raise HTTPException(status.HTTP_409_CONFLICT, detail="only chat conversations take typed replies")
    try:
        return MessageOut.model_validate(_chat(request).agent_reply(conversation_id, agent=body.agent, text=body.text))
    except ChatClosed:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the conversation is closed") from None


@router.post("/{conversation_id}/close", summary="End a chat", responses=NOT_FOUND)
def close_conversation(
    conversation_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> ConversationOut:
    if not may_see(session, principal, conversation_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"conversation {conversation_id} not found")
    try:
        closed = _chat(request).close(conversation_id, by="agent")
    except ChatNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"conversation {conversation_id} not found") from None
    chats.chat_closed(request.app.state.router, request.app.state.session_factory, conversation_id, by="agent")
    return ConversationOut.model_validate(closed)


async def stream(
    websocket: WebSocket, topics: tuple[str, ...], backlog: list[dict[str, object]],
    only: Callable[[dict[str, Any]], bool] = lambda event: True,
) -> None:  # fmt: skip
    """Send the backlog, then every event of the topics (that `only` lets through) until the client leaves."""
    hub = websocket.app.state.hub
    async with hub.subscribe(*topics) as queue:
        for event in backlog:
            await websocket.send_json(event)
        receiver = asyncio.ensure_future(websocket.receive_text())
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    getter.cancel()
                    receiver.result()  # raises WebSocketDisconnect when the client left
                    receiver = asyncio.ensure_future(websocket.receive_text())  # clients may ping; ignored
                    continue
                event = getter.result()
                if only(event):
                    await websocket.send_json(event)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()


async def deny(websocket: WebSocket, reason: str) -> None:
    """Refuse a WebSocket with close code 4401 that the client can see.

    Closing before `accept()` makes the server answer the handshake with HTTP 403, which a browser reports only
    as close code 1006 (indistinguishable from a dropped connection), so the 4401 must follow an accept.
    Nothing is sent in between.
    """
    await websocket.accept()
    await websocket.close(code=4401, reason=reason)


def may_see(session: Session, principal: Principal, conversation_id: str) -> bool:
    """Supervisors and admins see every conversation; an agent only those offered to or handled by them."""
    if principal.sees_everything:
        return True
    if principal.agent_id is None:
        return False
    return session.scalar(
        select(QueueEntry.id).where(QueueEntry.conversation_id == conversation_id,
                                    QueueEntry.agent_id == principal.agent_id).limit(1)
    ) is not None  # fmt: skip


@ws_router.websocket("/api/v1/conversations/{conversation_id}/ws")
async def conversation_ws(websocket: WebSocket, conversation_id: str, token: str | None = None,
                          after: int = 0) -> None:  # fmt: skip
    """Agent/supervisor view of one conversation: messages since `after`, then live ones."""
    factory = websocket.app.state.session_factory
    principal = await asyncio.to_thread(websocket_principal, websocket, token)

    def allowed() -> bool:
        with factory() as session:
            return principal is not None and may_see(session, principal, conversation_id)

    if not await asyncio.to_thread(allowed):
        await deny(websocket, "invalid token, or not your conversation")
        return

    def backlog() -> list[dict[str, object]]:
        with factory() as session:
            return [message_event(m) for m in messages_of(session, conversation_id, after_id=after)]

    await websocket.accept()
    await stream(websocket, (f"conversation:{conversation_id}",), await asyncio.to_thread(backlog))


@ws_router.websocket("/api/v1/conversations/ws")
async def conversations_ws(websocket: WebSocket, token: str | None = None) -> None:
    """Every conversation's status changes (new chats, handoffs, agents taking over, closes)."""
    principal = await asyncio.to_thread(websocket_principal, websocket, token)
    if principal is None or not principal.sees_everything:
        await deny(websocket, "invalid or missing token")
        return
    await websocket.accept()
    await stream(websocket, ("conversations",), [])

