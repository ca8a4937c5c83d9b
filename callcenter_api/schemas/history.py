"""Contacts, conversations, messages and the timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description="phone (E.164), email, chat (chat user id) or sip", examples=["phone"])
    value: str = Field(examples=["+447700900123"])


class ContactOut(BaseModel):
    id: str
    name: str | None
    created_at: datetime
    identities: list[IdentityOut]
    merged_into: str | None = Field(None, description="set when this contact was merged into another")


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merge: str = Field(description="id of the contact to merge INTO the one in the path; the path's survives")


class MergeOut(BaseModel):
    survivor: ContactOut
    merged_id: str
    moved_identities: list[int]
    moved_conversations: list[str]
    at: datetime
    by: str


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: str
    at: datetime
    sender: str = Field(description="caller, bot, agent or system", examples=["caller"])
    kind: str = Field(description="utterance, prompt, dtmf, text, answer, note, recording", examples=["utterance"])
    text: str
    confidence: float | None = Field(None, description="ASR confidence of an utterance, bot confidence of an answer")
    offset_ms: int | None = Field(None, description="ms since the conversation started (voice: into the call)")
    meta: dict[str, Any] | None = None


class RecordingOut(BaseModel):
    id: str
    kind: str = Field(examples=["voicemail"])
    seconds: float | None
    created_at: datetime
    url: str = Field(description="download (WAV), with the same authorization as this request")


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    channel: str = Field(examples=["voice", "webchat"])
    contact_id: str | None
    started_at: datetime
    ended_at: datetime | None
    status: str = Field(description="bot, queued, agent, closed")
    language: str | None
    queue: str | None
    agent: str | None
    flow: str | None = Field(description="voice: the IVR flow name@version")
    disposition: str | None = Field(description="contained, transferred, abandoned, voicemail, callback")
    call_id: str | None = Field(description="voice: the call record (/api/v1/calls/{id})")


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]
    recordings: list[RecordingOut]


class TimelineOut(BaseModel):
    contact: ContactOut
    total: int = Field(description="conversations of this contact in all")
    limit: int
    offset: int
    order: Literal["asc", "desc"]
    next_offset: int | None = Field(description="offset of the next page, null on the last")
    items: list[ConversationDetail]


class AgentMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)
    agent: str = Field("agent", min_length=1, max_length=120, description="who is writing")
