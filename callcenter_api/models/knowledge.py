"""The knowledge base the shared bot answers from (voice and chat)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter_api.models.base import Base, JsonText, UtcDateTime


class KnowledgeEntry(Base):
    __tablename__ = "kb_entries"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), index=True)
    questions: Mapped[list[str]] = mapped_column(JsonText)
    answer: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JsonText)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class KnowledgeRevision(Base):
    """One row whose number goes up with every change to the knowledge base, so every worker sharing the
    database knows cheaply when to rebuild its index."""

    __tablename__ = "kb_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
