"""The omnichannel customer history: contacts, their identities, conversations on any channel, messages.

A voice call is a `Conversation` with channel ``voice`` whose id is the call's id (so the CDR and the
transcript join without a lookup); a chat is one with channel ``webchat``. Identities live in their own
table so two contacts can be merged without losing which phone number or email came from where.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter_api.models.base import Base, JsonText, UtcDateTime


class Contact(Base):
    """One customer. A merged contact is kept (its id may be in links and logs) and points at the survivor."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    merged_into: Mapped[str | None] = mapped_column(String(32), ForeignKey("contacts.id"), index=True)

    identities: Mapped[list[ContactIdentity]] = relationship(
        back_populates="contact", lazy="raise", order_by="ContactIdentity.id"
    )

    def __repr__(self) -> str:
        return f"Contact(id={self.id!r}, name={self.name!r})"


class ContactIdentity(Base):
    """How a customer can be recognised: ``phone`` (E.164), ``email`` (lower case), ``chat`` (a chat user id)
    or ``sip`` (a SIP user@host that is not a phone number). One identity belongs to exactly one contact."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(32), ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    contact: Mapped[Contact] = relationship(back_populates="identities", lazy="raise")


class ContactMerge(Base):
    """The record of a merge: who survived, who was merged, by whom, and exactly what moved."""

    __tablename__ = "contact_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survivor_id: Mapped[str] = mapped_column(String(32), ForeignKey("contacts.id"), index=True)
    merged_id: Mapped[str] = mapped_column(String(32), ForeignKey("contacts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(Text)
    moved: Mapped[dict[str, Any]] = mapped_column(JsonText, doc="identities and conversations moved, by id")


class Conversation(Base):
    """One interaction on one channel. Written when it starts and updated as it goes, never only at the end."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_contact_id_started_at", "contact_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contact_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(16), doc="voice, webchat")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), doc="bot, queued, agent, closed", index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    queue: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(Text)
    flow: Mapped[str | None] = mapped_column(Text, doc="name@version for voice")
    disposition: Mapped[str | None] = mapped_column(
        String(16), doc="contained, transferred, abandoned, voicemail, callback"
    )
    call_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("calls.id"), unique=True)
    access_hash: Mapped[str | None] = mapped_column(String(64), doc="sha256 of the customer's chat token")

    messages: Mapped[list[Message]] = relationship(back_populates="conversation", lazy="raise", order_by="Message.id")


class Message(Base):
    """A turn of a conversation. Ordered by id: the writer inserts in the order things happened."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(32), ForeignKey("conversations.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    sender: Mapped[str] = mapped_column(String(16), doc="caller, bot, agent, system")
    kind: Mapped[str] = mapped_column(String(16), doc="utterance, prompt, dtmf, text, answer, note, recording")
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    offset_ms: Mapped[int | None] = mapped_column(Integer, doc="ms since the conversation started")
    meta: Mapped[dict[str, Any] | None] = mapped_column(JsonText)

    conversation: Mapped[Conversation] = relationship(back_populates="messages", lazy="raise")
