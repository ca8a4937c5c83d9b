"""Response models of the HTTP API; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CallEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime = Field(description="When it happened (UTC).")
    type: str = Field(description="dtmf, prompt, state, ...", examples=["dtmf"])
    value: str = Field(examples=["1"])


class CallOut(BaseModel):
    """One call record with its events in the order they happened."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["3f2c9a0e8b1d4c5fa6e7d8c9b0a1f2e3"])
    sip_call_id: str = Field(description="SIP Call-ID header of the inbound leg.")
    from_uri: str
    to_uri: str
    caller_number: str | None = Field(description="User part of the From URI.", examples=["+15551234567"])
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None = Field(description="null while the call is in progress.")
    end_reason: str | None
    codec: str | None = Field(examples=["PCMU"])
    flow: str | None = Field(description="IVR flow that handled the call, name@version.")
    remote_media: str | None = Field(description="Caller's RTP address, ip:port.")
    events: list[CallEventOut]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class ErrorOut(BaseModel):
    detail: str
