"""Recordings of conversations (voicemail today; whole calls with agents next). The audio is a WAV file on
disk; the row says whose it is, so it is only served to someone allowed to see that conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter_api.models.base import Base, UtcDateTime


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(32), ForeignKey("conversations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), doc="voicemail, call")
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    seconds: Mapped[float | None] = mapped_column(Float)
