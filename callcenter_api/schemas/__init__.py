"""Request and response models of the HTTP API, one module per area; the OpenAPI document comes from these."""

from callcenter_api.schemas.calls_flows import (
    CallEventOut,
    CallOut,
    ErrorOut,
    FlowInvalidOut,
    FlowSummaryOut,
    FlowVersionCreated,
    FlowVersionDetail,
    FlowVersionOut,
    Health,
    ProblemOut,
    SimulateIn,
    SimulationOut,
    TranscriptLine,
)

__all__ = [
    "CallEventOut",
    "CallOut",
    "ErrorOut",
    "FlowInvalidOut",
    "FlowSummaryOut",
    "FlowVersionCreated",
    "FlowVersionDetail",
    "FlowVersionOut",
    "Health",
    "ProblemOut",
    "SimulateIn",
    "SimulationOut",
    "TranscriptLine",
]
