"""Conversations and their messages: written as they happen, read back as a contact's timeline."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter_api.models import Conversation, Message, Recording

SENDERS = ("caller", "bot", "agent", "system")
KINDS = ("utterance", "prompt", "dtmf", "text", "answer", "note", "recording")


def add_message(
    session: Session,
    conversation_id: str,
    *,
    sender: str,
    kind: str,
    text: str,
    at: datetime,
    confidence: float | None = None,
    offset_ms: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    if sender not in SENDERS:
        raise ValueError(f"sender must be one of {SENDERS}, not {sender!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    message = Message(
        conversation_id=conversation_id, at=at, sender=sender, kind=kind, text=text,
        confidence=confidence, offset_ms=offset_ms, meta=meta,
    )  # fmt: skip
    session.add(message)
    return message


@dataclass
class TimelineItem:
    conversation: Conversation
    messages: list[Message]
    recordings: list[Recording]


@dataclass
class TimelinePage:
    items: list[TimelineItem]
    total: int


def timeline(
    session: Session, contact_id: str, *, limit: int, offset: int, order: Literal["asc", "desc"] = "asc",
    channel: str | None = None,
) -> TimelinePage:  # fmt: skip
    """A page of the contact's conversations in time order, each with all its messages and recordings.

    Three queries whatever the page size (conversations, then their messages, then their recordings), all on
    indexes: (contact_id, started_at) and (conversation_id, id).
    """
    where = [Conversation.contact_id == contact_id]
    if channel:
        where.append(Conversation.channel == channel)
    total = session.scalar(select(func.count()).select_from(Conversation).where(*where)) or 0
    direction = Conversation.started_at.asc() if order == "asc" else Conversation.started_at.desc()
    tiebreak = Conversation.id.asc() if order == "asc" else Conversation.id.desc()
    conversations = list(
        session.scalars(select(Conversation).where(*where).order_by(direction, tiebreak).limit(limit).offset(offset))
    )
    ids = [c.id for c in conversations]
    return TimelinePage([TimelineItem(c, m, r) for c, m, r in _attach(session, conversations, ids)], total)


def _attach(
    session: Session, conversations: Sequence[Conversation], ids: list[str]
) -> list[tuple[Conversation, list[Message], list[Recording]]]:
    messages: dict[str, list[Message]] = defaultdict(list)
    recordings: dict[str, list[Recording]] = defaultdict(list)
    if ids:
        for message in session.scalars(
            select(Message).where(Message.conversation_id.in_(ids)).order_by(Message.conversation_id, Message.id)
        ):
            messages[message.conversation_id].append(message)
        for recording in session.scalars(
            select(Recording).where(Recording.conversation_id.in_(ids)).order_by(Recording.created_at)
        ):
            recordings[recording.conversation_id].append(recording)
    return [(c, messages[c.id], recordings[c.id]) for c in conversations]


def messages_of(session: Session, conversation_id: str, *, after_id: int = 0, limit: int = 500) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.id > after_id)
            .order_by(Message.id)
            .limit(limit)
        )
    )
