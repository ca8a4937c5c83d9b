"""The chat channel: a customer's conversation with the shared bot, handed to an agent when needed.

The bot is the very one voice calls use (same knowledge base, same confidence rules, same follow-up
context keyed by conversation). What differs is only presentation: on chat an uncertain bot can offer
the close candidates ("did you mean...?") instead of going straight to a person. Every message is stored
before it is pushed to the WebSockets, so a reconnecting client can always catch up from the database.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.interface import BotAnswer, BotRequest
from callcenter_api.events import EventHub
from callcenter_api.history import contacts
from callcenter_api.history.conversations import add_message
from callcenter_api.history.identity import Identity, normalize
from callcenter_api.history.notes import NO_ANSWER_NOTE
from callcenter_api.models import Contact, Conversation, Message
from callcenter_api.schemas.history import ConversationOut, MessageOut

log = logging.getLogger(__name__)

HANDOFF_QUEUE = "general"
TEXTS = {
    "en": {
        "greeting": "Hi! I'm the Northwind assistant. Ask me anything, or type 'agent' to chat with a person.",
        "no_answer": "Sorry, I'm not sure about that. Could you put it another way, or type 'agent' for a person?",
        "clarify": "Did you mean:",
        "clarify_end": "Reply with the number.",
        "handoff": "I'm connecting you with an agent. Please stay in this chat; someone will be with you shortly.",
        "queued": "You're in the queue for an agent; they'll see everything you've written so far.",
        "closed": "This chat has ended. Thank you!",
    },
    "zh": {
        "greeting": "您好！我是北风移动智能助手，有什么可以帮您？输入“人工”可转人工客服。",
        "no_answer": "抱歉，我不太确定。您可以换个说法，或者输入“人工”转人工客服。",
        "clarify": "您是想问：",
        "clarify_end": "请回复序号。",
        "handoff": "正在为您转接人工客服，请不要离开对话，客服马上就来。",
        "queued": "您正在排队等待人工客服，客服会看到您之前的全部对话。",
        "closed": "本次对话已结束，谢谢！",
    },
}


class AnswersQuestions(Protocol):
    def answer(self, request: BotRequest) -> BotAnswer: ...


class ChatNotFound(LookupError):
    pass


class ChatClosed(RuntimeError):
    pass


@dataclass(frozen=True)
class Started:
    conversation: Conversation
    token: str
    messages: list[Message]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def message_event(message: Message) -> dict[str, Any]:
    return {"type": "message", "message": MessageOut.model_validate(message).model_dump(mode="json")}


def conversation_event(conversation: Conversation) -> dict[str, Any]:
    out = ConversationOut.model_validate(conversation)
    return {"type": "conversation", "conversation": out.model_dump(mode="json")}


class ChatService:
    def __init__(
        self, session_factory: sessionmaker[Session], bot: AnswersQuestions, hub: EventHub, *,
        phone_region: str | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.session_factory = session_factory
        self.bot = bot
        self.hub = hub
        self.phone_region = phone_region
        self.clock = clock

    # ---- customer ----------------------------------------------------------------------------------
    def identities(self, *, phone: str | None, email: str | None, chat_user_id: str | None) -> list[Identity]:
        """Normalised identities; `InvalidIdentity` (a 422 for the API) names the one that is wrong."""
        given = (("phone", phone), ("email", email), ("chat", chat_user_id))
        return [normalize(kind, value, region=self.phone_region) for kind, value in given if value]

    def start(self, identities: Sequence[Identity], *, name: str | None, language: str) -> Started:
        token = secrets.token_urlsafe(24)
        now = self.clock()
        with self.session_factory() as session, session.begin():
            contact = contacts.resolve(session, identities, name=name, now=now)
            if contact is None:  # anonymous: still one contact, so the timeline works once they identify
                contact = Contact(id=contacts.new_id(), name=name, created_at=now)
                session.add(contact)
            conversation = Conversation(
                id=uuid.uuid4().hex, contact_id=contact.id, channel="webchat", started_at=now, status="bot",
                language=language, access_hash=token_hash(token),
            )  # fmt: skip
            session.add(conversation)
            session.flush()
            greeting = add_message(
                session, conversation.id, sender="bot", kind="text", text=TEXTS[language]["greeting"], at=now,
                offset_ms=0,
            )  # fmt: skip
        self.hub.publish("conversations", conversation_event(conversation))
        return Started(conversation, token, [greeting])

    def authorize(self, conversation_id: str, token: str) -> Conversation:
        with self.session_factory() as session:
            conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.channel != "webchat" or not conversation.access_hash:
            raise ChatNotFound(conversation_id)
        if not secrets.compare_digest(conversation.access_hash, token_hash(token)):
            raise PermissionError("this token does not open this conversation")
        return conversation

    def post(self, conversation_id: str, text: str) -> tuple[Conversation, list[Message]]:
        """Store the customer's message and whatever the bot (or nobody, once an agent has it) replies."""
        now = self.clock()
        with self.session_factory() as session, session.begin():
            conversation = _open_for_update(session, conversation_id)
            language = conversation.language or "en"
            texts = TEXTS.get(language, TEXTS["en"])
            offset = _offset(conversation, now)
            new = [add_message(session, conversation_id, sender="caller", kind="text", text=text, at=now,
                               offset_ms=offset)]  # fmt: skip
            status_changed = False
            if conversation.status == "bot":
                answer = self.bot.answer(BotRequest(text, language, conversation_id, "webchat"))
                new += self._bot_reply(session, conversation, text, answer, texts, now, offset)
                status_changed = conversation.status != "bot"
            elif conversation.status == "queued" and _count_since_handoff(session, conversation_id) == 1:
                new.append(add_message(session, conversation_id, sender="system", kind="note", text=texts["queued"],
                                       at=now, offset_ms=offset))  # fmt: skip
            session.flush()
        for message in new:
            self.hub.publish(f"conversation:{conversation_id}", message_event(message))
        if status_changed:
            self._announce(conversation)
        return conversation, new

    def _bot_reply(
        self, session: Session, conversation: Conversation, question: str, answer: BotAnswer, texts: dict[str, str],
        now: datetime, offset: int,
    ) -> list[Message]:  # fmt: skip
        cid = conversation.id
        meta: dict[str, Any] = {"entry_id": answer.entry_id, "confidence": round(answer.confidence, 3)}
        if answer.extra.get("context"):
            meta["context"] = answer.extra["context"]
        if answer.handoff:
            conversation.status = "queued"
            conversation.queue = HANDOFF_QUEUE
            return [
                add_message(session, cid, sender="system", kind="note", text="bot: the customer asked for a person",
                            at=now, offset_ms=offset, meta={"handoff": True}),
                add_message(session, cid, sender="bot", kind="text", text=texts["handoff"], at=now, offset_ms=offset),
            ]  # fmt: skip
        if answer.answered and answer.answer:
            return [add_message(session, cid, sender="bot", kind="answer", text=answer.answer, at=now,
                                confidence=answer.confidence, offset_ms=offset, meta=meta)]  # fmt: skip
        # The same note the voice channel writes, so the supervisor view's unanswered questions cover chat too.
        unsure = add_message(session, cid, sender="system", kind="note", text=NO_ANSWER_NOTE, at=now,
                             offset_ms=offset, meta={**meta, "question": question, "channel": "webchat"})  # fmt: skip
        if answer.suggestions:
            lines = [texts["clarify"], *(f"{i}. {s.question}" for i, s in enumerate(answer.suggestions, 1)),
                     texts["clarify_end"]]  # fmt: skip
            meta["suggestions"] = [s.entry_id for s in answer.suggestions]
            return [unsure, add_message(session, cid, sender="bot", kind="text", text="\n".join(lines), at=now,
                                        confidence=answer.confidence, offset_ms=offset, meta=meta)]  # fmt: skip
        return [unsure, add_message(session, cid, sender="bot", kind="text", text=texts["no_answer"], at=now,
                                    confidence=answer.confidence, offset_ms=offset, meta=meta)]  # fmt: skip

    def messages(self, conversation_id: str, *, after_id: int = 0) -> tuple[Conversation, list[Message]]:
        with self.session_factory() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ChatNotFound(conversation_id)
            rows = list(session.scalars(
                select(Message).where(Message.conversation_id == conversation_id, Message.id > after_id)
                .order_by(Message.id)
            ))  # fmt: skip
        return conversation, rows

    def close(self, conversation_id: str, *, by: str) -> Conversation:
        now = self.clock()
        with self.session_factory() as session, session.begin():
            conversation = session.get(Conversation, conversation_id, with_for_update=True)
            if conversation is None:
                raise ChatNotFound(conversation_id)
            if conversation.status == "closed":
                return conversation
            agent_spoke = session.scalar(
                select(func.count()).select_from(Message)
                .where(Message.conversation_id == conversation_id, Message.sender == "agent")
            )  # fmt: skip
            if agent_spoke:
                conversation.disposition = "transferred"
            elif conversation.status == "queued":
                conversation.disposition = "abandoned"  # handed off, left before an agent answered
            else:
                conversation.disposition = "contained"
            conversation.status = "closed"
            conversation.ended_at = now
            texts = TEXTS.get(conversation.language or "en", TEXTS["en"])
            message = add_message(
                session, conversation_id, sender="system", kind="note", text=f"{texts['closed']} ({by})", at=now,
                offset_ms=_offset(conversation, now),
            )  # fmt: skip
            session.flush()
        self.hub.publish(f"conversation:{conversation_id}", message_event(message))
        self._announce(conversation)
        return conversation

    # ---- agent -------------------------------------------------------------------------------------
    def agent_reply(self, conversation_id: str, *, agent: str, text: str) -> Message:
        now = self.clock()
        with self.session_factory() as session, session.begin():
            conversation = _open_for_update(session, conversation_id)
            taking_over = conversation.status != "agent"
            conversation.status = "agent"
            conversation.agent = agent
            message = add_message(session, conversation_id, sender="agent", kind="text", text=text, at=now,
                                  offset_ms=_offset(conversation, now), meta={"agent": agent})  # fmt: skip
            session.flush()
        self.hub.publish(f"conversation:{conversation_id}", message_event(message))
        if taking_over:
            self._announce(conversation)
        return message

    def agent_joined(self, conversation_id: str, *, agent: str) -> None:
        """An agent accepted the chat from the queue: the customer is told who is there."""
        now = self.clock()
        with self.session_factory() as session, session.begin():
            conversation = session.get(Conversation, conversation_id, with_for_update=True)
            if conversation is None or conversation.status == "closed":
                return
            conversation.status = "agent"
            conversation.agent = agent
            texts = TEXTS.get(conversation.language or "en", TEXTS["en"])
            joined = "已为您接通人工客服" if texts is TEXTS["zh"] else "joined the chat"
            message = add_message(session, conversation_id, sender="system", kind="note", text=f"{agent} {joined}",
                                  at=now, offset_ms=_offset(conversation, now), meta={"agent": agent})  # fmt: skip
            session.flush()
        self.hub.publish(f"conversation:{conversation_id}", message_event(message))
        self._announce(conversation)

    def _announce(self, conversation: Conversation) -> None:
        event = conversation_event(conversation)
        self.hub.publish(f"conversation:{conversation.id}", event)
        self.hub.publish("conversations", event)


def _open_for_update(session: Session, conversation_id: str) -> Conversation:
    """The conversation, locked for this transaction (two messages at once keep their order), if still open."""
    conversation = session.get(Conversation, conversation_id, with_for_update=True)
    if conversation is None:
        raise ChatNotFound(conversation_id)
    if conversation.status == "closed":
        raise ChatClosed(conversation_id)
    return conversation


def _offset(conversation: Conversation, now: datetime) -> int:
    return max(0, int((now - conversation.started_at).total_seconds() * 1000))


def _count_since_handoff(session: Session, conversation_id: str) -> int:
    """Customer messages since the bot handed off (the first one gets a "you're in the queue" note)."""
    handoff_id = session.scalar(
        select(func.max(Message.id)).where(
            Message.conversation_id == conversation_id, Message.sender == "system", Message.kind == "note",
            Message.text.like("bot: %person"),
        )
    )  # fmt: skip
    if handoff_id is None:
        return 0
    return session.scalar(
        select(func.count()).select_from(Message).where(
            Message.conversation_id == conversation_id, Message.sender == "caller", Message.id > handoff_id
        )
    ) or 0  # fmt: skip
