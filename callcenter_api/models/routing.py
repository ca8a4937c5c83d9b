"""Routing state: agents, queues, and the entries waiting in them (calls and chats alike).

Agent and entry states that belong to a live call are held under a lease renewed by the worker that owns
the call, so a crashed worker (or a lost BYE) can never leave an agent stuck `reserved` or `busy`: when the
lease runs out, the sweeper frees the agent and closes the entry (`callcenter_api.routing`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter_api.models.base import Base, JsonText, UtcDateTime


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_state_last_idle_at", "state", "last_idle_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    sip_uri: Mapped[str | None] = mapped_column(Text, doc="the agent's phone")
    skills: Mapped[dict[str, int]] = mapped_column(JsonText, doc="skill -> level 1..10")
    languages: Mapped[list[str]] = mapped_column(JsonText)
    max_chats: Mapped[int] = mapped_column(Integer, default=3)
    user_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("users.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), doc="offline, available, reserved, busy, wrap_up, break")
    state_since: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(Text, doc="worker holding reserved/busy")
    lease_expires: Mapped[datetime | None] = mapped_column(UtcDateTime)
    wrap_up_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    missed_offers: Mapped[int] = mapped_column(Integer, default=0)
    last_idle_at: Mapped[datetime | None] = mapped_column(UtcDateTime, doc="became available (longest idle)")
    last_offer_at: Mapped[datetime | None] = mapped_column(UtcDateTime, doc="last offered a call (round robin)")
    active_chats: Mapped[int] = mapped_column(Integer, default=0)


class AgentEvent(Base):
    """Every agent state change, with its reason: the audit trail and the source of the live view."""

    __tablename__ = "agent_events"
    __table_args__ = (Index("ix_agent_events_agent_id_at", "agent_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(32), ForeignKey("agents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    entry_id: Mapped[str | None] = mapped_column(String(32))


class Queue(Base):
    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    required_skills: Mapped[dict[str, int]] = mapped_column(JsonText, doc="skill -> minimum level")
    language: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    strategy: Mapped[str] = mapped_column(String(16), default="longest_idle", doc="longest_idle, round_robin")
    ring_timeout: Mapped[int] = mapped_column(Integer, default=20)
    max_wait: Mapped[int] = mapped_column(Integer, default=600)
    max_size: Mapped[int] = mapped_column(Integer, default=50)
    overflow: Mapped[dict[str, Any] | None] = mapped_column(
        JsonText, doc='{"kind": "queue"|"voicemail"|"callback", "target": "..."}'
    )
    music: Mapped[str | None] = mapped_column(Text, doc="WAV for music on hold (default: built-in)")
    announce_period: Mapped[int] = mapped_column(Integer, default=30)
    transfer: Mapped[str] = mapped_column(String(16), default="bridge", doc="bridge, refer")
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=10)
    max_missed_offers: Mapped[int] = mapped_column(Integer, default=2)
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20)


class QueueEntry(Base):
    """One customer waiting for (or talking to) an agent. Voice and chat share the queues and the agents."""

    __tablename__ = "queue_entries"
    __table_args__ = (
        Index("ix_queue_entries_state_queue", "state", "queue"),
        Index("ix_queue_entries_queue_ended_at", "queue", "ended_at"),  # recent handle times (expected wait)
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), ForeignKey("queues.name"))
    conversation_id: Mapped[str] = mapped_column(String(32), ForeignKey("conversations.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    skills: Mapped[dict[str, int]] = mapped_column(JsonText)
    language: Mapped[str | None] = mapped_column(String(16))
    caller: Mapped[str | None] = mapped_column(Text, doc="number or identity shown to the agent")
    enqueued_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    state: Mapped[str] = mapped_column(
        String(16), doc="waiting, offered, connected, done, abandoned, overflowed, callback, voicemail"
    )
    agent_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("agents.id"))
    offered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    worker: Mapped[str | None] = mapped_column(Text, doc="the worker that owns the customer's leg")
    lease_expires: Mapped[datetime | None] = mapped_column(UtcDateTime)
    callback_number: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(Text)
    declined: Mapped[list[str]] = mapped_column(JsonText, doc="agents that missed this entry's offers")
