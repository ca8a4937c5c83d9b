"""Conversations and their messages: written as they happen, read back as a contact's timeline."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from callcenter_api.models import Contact, ContactIdentity, Conversation, Message, Recording

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
    where = _where(contact_id, channel)
    total = session.scalar(select(func.count()).select_from(Conversation).where(*where)) or 0
    conversations = list(
        session.scalars(select(Conversation).where(*where).order_by(*_order(order)).limit(limit).offset(offset))
    )
    ids = [c.id for c in conversations]
    return TimelinePage([TimelineItem(c, m, r) for c, m, r in _attach(session, conversations, ids)], total)


def _where(contact_id: str, channel: str | None) -> list[Any]:
    where = [Conversation.contact_id == contact_id]
    if channel:
        where.append(Conversation.channel == channel)
    return where


def _order(order: Literal["asc", "desc"]) -> tuple[Any, Any]:
    if order == "asc":
        return Conversation.started_at.asc(), Conversation.id.asc()
    return Conversation.started_at.desc(), Conversation.id.desc()


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


# What a timeline shows of each row (not, for instance, a chat's access_hash), in the API's field order.
_CONVERSATION_COLUMNS = tuple(
    getattr(Conversation, name)
    for name in ("id", "channel", "contact_id", "started_at", "ended_at", "status", "language", "queue", "agent",
                 "flow", "disposition", "call_id")
)  # fmt: skip
_CONVERSATION_KEYS = tuple(column.key for column in _CONVERSATION_COLUMNS)
_MESSAGE_KEYS = tuple(column.key for column in Message.__table__.c)  # the API's MessageOut order
_RECORDING_KEYS = ("id", "kind", "seconds", "created_at")


def _page_statements(order: Literal["asc", "desc"], by_channel: bool) -> tuple[Any, Any]:
    where = [Conversation.contact_id == bindparam("contact_id")]
    if by_channel:
        where.append(Conversation.channel == bindparam("channel"))
    page = select(*_CONVERSATION_COLUMNS).where(*where).order_by(*_order(order))
    count = select(func.count()).select_from(Conversation).where(*where)
    return page.limit(bindparam("limit")).offset(bindparam("offset")), count


# Built once: constructing a statement costs more than SQLite takes to run it.
_PAGES = {(order, by_channel): _page_statements(order, by_channel) for order in ("asc", "desc")
          for by_channel in (False, True)}  # fmt: skip
_MESSAGES = (
    select(*Message.__table__.c)
    .where(Message.conversation_id.in_(bindparam("ids", expanding=True)))
    .order_by(Message.conversation_id, Message.id)
)
_RECORDINGS = (
    select(Recording.conversation_id, Recording.id, Recording.kind, Recording.seconds, Recording.created_at)
    .where(Recording.conversation_id.in_(bindparam("ids", expanding=True)))
    .order_by(Recording.created_at)
)
_CONTACT = select(Contact.id, Contact.name, Contact.created_at, Contact.merged_into).where(
    Contact.id == bindparam("id")
)
_IDENTITIES = (
    select(ContactIdentity.kind, ContactIdentity.value)
    .where(ContactIdentity.contact_id == bindparam("id"))
    .order_by(ContactIdentity.id)
)


def contact_row(session: Session, contact_id: str) -> dict[str, Any] | None:
    """The contact (or the one it was merged into, as `contacts.current`) as a plain dict in the API's
    ContactOut order, with its identities (kind, value) — for the timeline, without ORM objects."""
    connection = session.connection()
    seen: set[str] = set()
    row = connection.execute(_CONTACT, {"id": contact_id}).first()
    while row is not None and row[3] is not None and row[0] not in seen:
        seen.add(row[0])
        row = connection.execute(_CONTACT, {"id": row[3]}).first()
    if row is None:
        return None
    identities = [{"kind": kind, "value": value} for kind, value in connection.execute(_IDENTITIES, {"id": row[0]})]
    return {"id": row[0], "name": row[1], "created_at": row[2], "identities": identities, "merged_into": row[3]}


def timeline_rows(
    session: Session, contact_id: str, *, limit: int, offset: int, order: Literal["asc", "desc"] = "asc",
    channel: str | None = None,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """The page `timeline` returns, as plain dicts for serialisation, and the total: each conversation's
    columns plus its "messages" (all columns) and "recordings" (id, kind, seconds, created_at), every dict
    in the field order of the API's models (schemas.history), so it can be encoded without a model.

    For the timeline API, where building statements and ORM objects (identity map, instance state) for every
    message cost more than the queries themselves (bench/history_load): prepared statements and tuple rows.
    A page shorter than `limit` is the last one, so its total needs no count query.
    """
    connection = session.connection()
    page, count = _PAGES[(order, bool(channel))]
    params: dict[str, Any] = {"contact_id": contact_id, "channel": channel, "limit": limit, "offset": offset}
    keys = _CONVERSATION_KEYS
    conversations = [dict(zip(keys, row, strict=True)) for row in connection.execute(page, params)]
    if len(conversations) < limit and (conversations or offset == 0):
        total = offset + len(conversations)
    else:
        total = connection.execute(count, params).scalar() or 0
    messages: dict[str, list[dict[str, Any]]] = {}
    recordings: dict[str, list[dict[str, Any]]] = {}
    for conversation in conversations:
        conversation["messages"] = messages[conversation["id"]] = []
        conversation["recordings"] = recordings[conversation["id"]] = []
    if conversations:
        ids = {"ids": list(messages)}
        keys = _MESSAGE_KEYS
        for row in connection.execute(_MESSAGES, ids):
            messages[row[1]].append(dict(zip(keys, row, strict=True)))
        keys = _RECORDING_KEYS
        for row in connection.execute(_RECORDINGS, ids):
            recordings[row[0]].append(dict(zip(keys, row[1:], strict=True)))
    return conversations, total
