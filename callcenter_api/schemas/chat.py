"""The customer side of the chat channel."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from callcenter_api.schemas.history import MessageOut


class ChatStartIn(BaseModel):
    """Whatever identity the customer has; all optional (an anonymous chat is fine)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=64, examples=["+44 7700 900123"])
    email: str | None = Field(None, max_length=320)
    chat_user_id: str | None = Field(None, max_length=320, description="the id your site or app knows them by")
    language: str = Field("en", pattern="^(en|zh)$")


class ChatStartOut(BaseModel):
    conversation_id: str
    token: str = Field(description="send as 'Authorization: Bearer <token>' (or ?token= on the WebSocket)")
    contact_id: str | None
    messages: list[MessageOut] = Field(description="the greeting")


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


class ChatMessagesOut(BaseModel):
    status: str = Field(description="bot, queued, agent, closed")
    messages: list[MessageOut]
