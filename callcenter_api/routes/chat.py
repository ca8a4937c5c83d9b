"""The customer side of the chat channel: no admin token; each conversation has its own secret token.

Anyone may start a chat (like a website widget). Starting returns a token that opens that one conversation
and nothing else, so a customer can never read another customer's chat.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callcenter_api.chat import ChatClosed, ChatNotFound, ChatService, message_event
from callcenter_api.history.conversations import messages_of
from callcenter_api.history.identity import InvalidIdentity
from callcenter_api.models import Conversation
from callcenter_api.routes.conversations import deny, stream
from callcenter_api.routing import chats
from callcenter_api.schemas import ErrorOut
from callcenter_api.schemas.chat import ChatMessageIn, ChatMessagesOut, ChatStartIn, ChatStartOut
from callcenter_api.schemas.history import MessageOut

router = APIRouter(prefix="/api/v1/chat", tags=["chat"])
_bearer = HTTPBearer(auto_error=False, description="The token returned when the chat started.")
DENIED = {
    status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "Missing or wrong chat token."},
    status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "No such chat."},
}


def _chat(request: Request) -> ChatService:
    chat: ChatService | None = request.app.state.chat
    if chat is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="the chat channel is not configured")
    return chat


def customer(
    conversation_id: str,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Conversation:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing chat token (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    try:
        return _chat(request).authorize(conversation_id, credentials.credentials)
    except ChatNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"chat {conversation_id} not found") from None
    except PermissionError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from None  # fmt: skip


CustomerDep = Annotated[Conversation, Depends(customer)]


@router.post("/conversations", status_code=status.HTTP_201_CREATED, summary="Start a chat")
def start_chat(body: ChatStartIn, request: Request) -> ChatStartOut:
    chat = _chat(request)
    try:
        identities = chat.identities(phone=body.phone, email=body.email, chat_user_id=body.chat_user_id)
    except InvalidIdentity as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    started = chat.start(identities, name=body.name, language=body.language)
    return ChatStartOut(
        conversation_id=started.conversation.id, token=started.token, contact_id=started.conversation.contact_id,
        messages=[MessageOut.model_validate(m) for m in started.messages],
    )  # fmt: skip


ENDED = {status.HTTP_409_CONFLICT: {"model": ErrorOut, "description": "Chat ended."}}


@router.post("/conversations/{conversation_id}/messages", summary="Send a message; the bot's reply comes back",
             responses={**DENIED, **ENDED})  # fmt: skip
def post_message(body: ChatMessageIn, conversation: CustomerDep, request: Request) -> ChatMessagesOut:
    try:
        updated, messages = _chat(request).post(conversation.id, body.text.strip() or body.text)
    except ChatClosed:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this chat has ended; start a new one") from None
    if updated.status == "queued":  # handed off by the bot: into the agents' queue (once)
        chats.queue_handed_off_chat(request.app.state.router, request.app.state.session_factory, conversation.id)
    return ChatMessagesOut(status=updated.status, messages=[MessageOut.model_validate(m) for m in messages])


@router.get("/conversations/{conversation_id}/messages", summary="Messages after a message id", responses=DENIED)
def get_messages(conversation: CustomerDep, request: Request, after: int = 0) -> ChatMessagesOut:
    updated, messages = _chat(request).messages(conversation.id, after_id=after)
    visible = [m for m in messages if m.sender != "system" or m.kind != "note" or not m.text.startswith("bot:")]
    return ChatMessagesOut(status=updated.status, messages=[MessageOut.model_validate(m) for m in visible])


@router.post("/conversations/{conversation_id}/close", summary="End the chat", responses=DENIED)
def close_chat(conversation: CustomerDep, request: Request) -> ChatMessagesOut:
    closed = _chat(request).close(conversation.id, by="customer")
    chats.chat_closed(request.app.state.router, request.app.state.session_factory, conversation.id, by="customer")
    return ChatMessagesOut(status=closed.status, messages=[])


@router.websocket("/conversations/{conversation_id}/ws")
async def chat_ws(websocket: WebSocket, conversation_id: str, token: str | None = None, after: int = 0) -> None:
    """The customer's live feed: messages after `after`, then new ones as they are written."""
    chat: ChatService | None = websocket.app.state.chat
    try:
        if chat is None or token is None:
            raise PermissionError("missing token")
        await asyncio.to_thread(chat.authorize, conversation_id, token)
    except (PermissionError, ChatNotFound):
        await deny(websocket, "invalid chat token")
        return
    factory = websocket.app.state.session_factory

    def backlog() -> list[dict[str, object]]:
        with factory() as session:
            return [message_event(m) for m in messages_of(session, conversation_id, after_id=after)]

    await websocket.accept()
    await stream(websocket, (f"conversation:{conversation_id}",), await asyncio.to_thread(backlog))
