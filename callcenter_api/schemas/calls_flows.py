"""Response models of the HTTP API; the OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


# ---- IVR flows ---------------------------------------------------------------------------------------


class ProblemOut(BaseModel):
    """One lint finding, located in the uploaded YAML (1-based line and column)."""

    line: int = Field(examples=[4])
    column: int = Field(examples=[5])
    message: str = Field(examples=["unknown key 'sya'"])
    severity: str = Field(description="error or warning", examples=["error"])


class FlowInvalidOut(BaseModel):
    detail: str = Field(examples=["flow is invalid"])
    problems: list[ProblemOut]


class FlowVersionOut(BaseModel):
    name: str = Field(examples=["main"])
    version: int = Field(description="1, 2, 3... per flow name.", examples=[3])
    checksum: str = Field(description="sha256 of the YAML source (UTF-8), hex.")
    created_at: datetime
    created_by: str = Field(description='"api", or "hot-reload:<file>" for flows from the flows directory.')
    live: bool = Field(description="Whether new calls get this version.")


class FlowVersionCreated(FlowVersionOut):
    created: bool = Field(description="false when the source equalled the latest version, which is returned.")
    warnings: list[ProblemOut] = Field(description="Lint warnings (they do not stop the upload).")


class FlowVersionDetail(FlowVersionOut):
    source: str = Field(description="The YAML exactly as uploaded.")


class FlowSummaryOut(BaseModel):
    name: str = Field(examples=["main"])
    live_version: int | None = Field(description="null if no version has been activated yet.", examples=[3])
    latest_version: int = Field(examples=[4])
    activated_at: datetime | None = Field(description="When the live version was activated.")


class SimulateIn(BaseModel):
    """A simulator script (see `hotline flow simulate`) plus the version to run."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1, description="Version to run; default: the live version.")
    inputs: list[Any] = Field(
        default_factory=list,
        description='Caller steps in order: {"press": "1"}, {"say": "hi"}, "silence", {"expect": "text"}.',
        examples=[[{"expect": "Thanks for calling"}, {"press": "1"}]],
    )
    expect: dict[str, Any] | None = Field(
        None,
        description="Checks when the flow ends: node, outcome, variables, transfer.",
        examples=[{"node": "billing_queue", "outcome": "transferred"}],
    )
    caller: str | None = Field(None, description="Caller number the flow sees.", examples=["+15550100"])
    variables: dict[str, Any] = Field(default_factory=dict, description="Extra variables at the start.")
    now: datetime | None = Field(None, description="Frozen clock for `hours` nodes (default: real time).")


class TranscriptLine(BaseModel):
    who: str = Field(description="flow, caller or system", examples=["flow"])
    text: str


class SimulationOut(BaseModel):
    name: str
    version: int
    passed: bool
    failures: list[str]
    path: list[str] = Field(description="Nodes visited, in order (subflow nodes as flow:node).")
    end_node: str | None
    outcome: str = Field(description="ended, hangup, transferred, caller_hangup or error")
    transcript: list[TranscriptLine]
    variables: dict[str, Any]
