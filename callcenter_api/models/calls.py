"""Call records (CDRs) and their events.

The live call path writes them through `callcenter_api.call_log.CallLog`; the HTTP API only reads them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter_api.models.base import Base, UtcDateTime


class Call(Base):
    """One voice call (the CDR). `id` is chosen by the writer so writes never wait for the database."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sip_call_id: Mapped[str] = mapped_column(Text, index=True)
    from_uri: Mapped[str] = mapped_column(Text)
    to_uri: Mapped[str] = mapped_column(Text)
    caller_number: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_reason: Mapped[str | None] = mapped_column(Text)
    codec: Mapped[str | None] = mapped_column(Text)
    flow: Mapped[str | None] = mapped_column(Text)
    remote_media: Mapped[str | None] = mapped_column(Text)

    # lazy="raise": readers must load events explicitly (selectinload), so an N+1 cannot creep in.
    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call", order_by="CallEvent.seq", lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Call(id={self.id!r}, sip_call_id={self.sip_call_id!r}, started_at={self.started_at!r})"


class CallEvent(Base):
    """Something that happened during a call (DTMF, prompt, state change...), in order via `seq`."""

    __tablename__ = "call_events"
    # The unique (call_id, seq) index also serves every "events of this call" lookup.
    __table_args__ = (Index("ix_call_events_call_id_seq", "call_id", "seq", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(32), ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)

    call: Mapped[Call] = relationship(back_populates="events", lazy="raise")

    def __repr__(self) -> str:
        return f"CallEvent(call_id={self.call_id!r}, seq={self.seq}, type={self.type!r})"
