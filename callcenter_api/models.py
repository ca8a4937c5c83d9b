"""SQLAlchemy models: call records and IVR flow versions (slices of design.md's data model).

The live call path writes call records through `callcenter_api.call_log.CallLog`; the HTTP API only reads
them. Flow versions are written through `callcenter_api.flow_store`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Explicit constraint names keep SQLite (batch mode) and PostgreSQL migrations in step.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    SQLite has no timezone-aware type and returns naive values; PostgreSQL returns them in the session's
    time zone. Normalising both to UTC means callers can compare and serialise timestamps without caring
    which backend they run on. Naive input is refused because its meaning would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        # SQLite stores the text without an offset; keep it plain UTC so string order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


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


class FlowVersion(Base):
    """One immutable version of an IVR flow: the YAML exactly as uploaded, numbered 1, 2, 3... per name.

    Rows are never updated: call records say `name@version`, so that pair must always mean the same text.
    """

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64), doc="sha256 of the UTF-8 source, hex")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(Text, doc='"api", "hot-reload:<path>", ...')

    def __repr__(self) -> str:
        return f"FlowVersion({self.name}@{self.version}, checksum={self.checksum[:12]!r})"


class FlowLive(Base):
    """The live alias: which version of each flow new calls get. Moving it never touches running calls."""

    __tablename__ = "flow_live"
    # The composite key makes it impossible to point the alias at a version that does not exist.
    __table_args__ = (
        ForeignKeyConstraint(
            ["name", "version"],
            ["flow_versions.name", "flow_versions.version"],
        ),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    activated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"FlowLive({self.name}@{self.version})"
