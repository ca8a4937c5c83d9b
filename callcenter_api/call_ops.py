"""The write operations the call log queues, each applied by the writer thread inside a transaction.

Kept apart from the thread machinery in `call_log` so what is written and how it is scheduled can change
independently.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from callcenter_api.history import contacts
from callcenter_api.history.conversations import add_message
from callcenter_api.history.identity import Identity
from callcenter_api.models import Call, CallEvent, Conversation, Message, Recording

_CALL_ID = re.compile(r"[0-9a-f]{32}")
_EVENT_TYPE_MAX = 32

# Columns a caller may set with `CallLog.call_updated`; the key and start fields are fixed at call_started.
UPDATABLE_FIELDS = frozenset(
    {"caller_number", "answered_at", "ended_at", "end_reason", "codec", "flow", "remote_media"}
)
_DATETIME_FIELDS = frozenset({"answered_at", "ended_at"})


class CallNotFound(LookupError):
    """An update named a call that is not in the database."""


class Op(Protocol):
    call_id: str

    def apply(self, session: Session) -> object: ...


def new_call_id() -> str:
    """A fresh call id; the caller picks it so the call path never waits for the database to assign one."""
    return uuid.uuid4().hex


def check_call_id(call_id: str) -> None:
    if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
        raise ValueError(f"call id must be 32 lowercase hex characters (uuid4().hex), got {call_id!r}")


def check_aware(name: str, value: datetime) -> None:
    # Checked when queued so the mistake surfaces at the caller, not as a log line from another thread.
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def check_event_type(type_: str) -> None:
    if not isinstance(type_, str) or not 0 < len(type_) <= _EVENT_TYPE_MAX:
        raise ValueError(f"event type must be a non-empty string of at most {_EVENT_TYPE_MAX} chars")


def check_update_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"cannot update {sorted(unknown)}; updatable: {sorted(UPDATABLE_FIELDS)}")
    for name in _DATETIME_FIELDS & set(fields):
        if fields[name] is not None:
            check_aware(name, fields[name])


def caller_number(from_uri: str) -> str | None:
    """The user part of a SIP/tel From URI, e.g. ``"Ann" <sip:+15551234@pbx>;tag=x`` → ``+15551234``."""
    uri = from_uri.strip()
    if "<" in uri and ">" in uri:
        uri = uri[uri.index("<") + 1 : uri.index(">")]
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips", "tel"):
        return None
    if scheme.lower() == "tel":
        user = rest
    else:
        user, at, _host = rest.partition("@")
        if not at:
            return None
    # user parameters (";phone-context=..") and URI parameters/headers are not part of the number
    user = re.split(r"[;?]", user, maxsplit=1)[0].strip()
    return user or None


def _update_call(session: Session, call_id: str, values: dict[str, Any]) -> None:
    # session.execute autoflushes, so a call added earlier in the same batch is visible to this UPDATE.
    result = session.execute(update(Call).where(Call.id == call_id).values(**values))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise CallNotFound(f"call {call_id} not found")


@dataclass(slots=True)
class CallStarted:
    call_id: str
    sip_call_id: str
    from_uri: str
    to_uri: str
    at: datetime
    remote_media: str | None = None
    caller: Identity | None = None  # who is calling: links the call's conversation to the contact
    conversation: bool = True

    def apply(self, session: Session) -> None:
        """The CDR and the call's conversation (same id) in one go, linked to the caller's contact."""
        session.add(
            Call(
                id=self.call_id,
                sip_call_id=self.sip_call_id,
                from_uri=self.from_uri,
                to_uri=self.to_uri,
                caller_number=caller_number(self.from_uri),
                started_at=self.at,
                remote_media=self.remote_media,
            )
        )
        if not self.conversation:
            return
        session.flush()  # the conversation's foreign key needs the call row first (PostgreSQL checks at once)
        contact = contacts.resolve(session, [self.caller], now=self.at) if self.caller else None
        session.add(
            Conversation(
                id=self.call_id, contact_id=contact.id if contact else None, channel="voice",
                started_at=self.at, status="bot", call_id=self.call_id,
            )
        )  # fmt: skip


@dataclass(slots=True)
class CallUpdated:
    call_id: str
    fields: dict[str, Any]

    def apply(self, session: Session) -> None:
        _update_call(session, self.call_id, self.fields)


@dataclass(slots=True)
class EventAdded:
    call_id: str
    type: str
    value: str
    at: datetime
    # None when the log no longer tracks the call (late event): the next number is read from the database.
    seq: int | None

    def apply(self, session: Session) -> None:
        session.execute(insert(CallEvent), [self.row(session)])

    def row(self, session: Session) -> dict[str, Any]:
        """The event as a plain row. Events are the bulk of what calls write (every prompt, key, state), and
        ORM objects for them are cyclic garbage: at 400 calls they grew the collector's generation 2 until
        its pauses stalled the media clock for 100-240 ms (bench/sip_load). Rows go in with Core inserts."""
        seq = self.seq
        if seq is None:
            last = session.scalar(select(func.max(CallEvent.seq)).where(CallEvent.call_id == self.call_id))
            seq = 0 if last is None else last + 1
        return {"call_id": self.call_id, "seq": seq, "at": self.at, "type": self.type, "value": self.value}

    def __repr__(self) -> str:
        value = self.value if len(self.value) <= 60 else self.value[:57] + "..."
        return f"EventAdded(call_id={self.call_id!r}, seq={self.seq}, type={self.type!r}, value={value!r})"


# Conversation columns the call path may set as the call goes on.
CONVERSATION_FIELDS = frozenset({"ended_at", "status", "language", "queue", "agent", "flow", "disposition"})


@dataclass(slots=True)
class ConversationUpdated:
    call_id: str  # the conversation's id (a voice conversation has its call's id)
    fields: dict[str, Any]

    def apply(self, session: Session) -> None:
        result = session.execute(update(Conversation).where(Conversation.id == self.call_id).values(**self.fields))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise CallNotFound(f"conversation {self.call_id} not found")


@dataclass(slots=True)
class MessageAdded:
    call_id: str  # the conversation's id
    sender: str
    kind: str
    text: str
    at: datetime
    confidence: float | None = None
    offset_ms: int | None = None
    meta: dict[str, Any] | None = None

    def apply(self, session: Session) -> Message:
        return add_message(
            session, self.call_id, sender=self.sender, kind=self.kind, text=self.text, at=self.at,
            confidence=self.confidence, offset_ms=self.offset_ms, meta=self.meta,
        )  # fmt: skip

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"MessageAdded(call_id={self.call_id!r}, sender={self.sender!r}, kind={self.kind!r}, text={text!r})"


@dataclass(slots=True)
class RecordingAdded:
    call_id: str  # the conversation's id
    recording_id: str
    kind: str
    path: str
    at: datetime
    seconds: float | None = None

    def apply(self, session: Session) -> None:
        session.add(
            Recording(
                id=self.recording_id, conversation_id=self.call_id, kind=self.kind, path=self.path,
                created_at=self.at, seconds=self.seconds,
            )
        )  # fmt: skip
