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

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from callcenter_api.models import Call, CallEvent

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

    def apply(self, session: Session) -> None: ...


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

    def apply(self, session: Session) -> None:
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
        seq = self.seq
        if seq is None:
            last = session.scalar(select(func.max(CallEvent.seq)).where(CallEvent.call_id == self.call_id))
            seq = 0 if last is None else last + 1
        session.add(CallEvent(call_id=self.call_id, seq=seq, at=self.at, type=self.type, value=self.value))

    def __repr__(self) -> str:
        value = self.value if len(self.value) <= 60 else self.value[:57] + "..."
        return f"EventAdded(call_id={self.call_id!r}, seq={self.seq}, type={self.type!r}, value={value!r})"
