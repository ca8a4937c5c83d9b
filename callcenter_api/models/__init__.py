"""SQLAlchemy models (design.md's data model), one module per concept, all on one `Base`."""

from callcenter_api.models.base import Base, JsonText, UtcDateTime
from callcenter_api.models.calls import Call, CallEvent
from callcenter_api.models.flows import FlowLive, FlowVersion
from callcenter_api.models.history import (
    Contact,
    ContactIdentity,
    ContactMerge,
    Conversation,
    Message,
)
from callcenter_api.models.knowledge import KnowledgeEntry, KnowledgeRevision
from callcenter_api.models.people import AuthToken, User
from callcenter_api.models.recordings import Recording
from callcenter_api.models.routing import Agent, AgentEvent, Queue, QueueEntry

__all__ = [
    "Agent",
    "AgentEvent",
    "AuthToken",
    "Base",
    "Call",
    "CallEvent",
    "Contact",
    "ContactIdentity",
    "ContactMerge",
    "Conversation",
    "FlowLive",
    "FlowVersion",
    "JsonText",
    "KnowledgeEntry",
    "KnowledgeRevision",
    "Message",
    "Queue",
    "QueueEntry",
    "Recording",
    "User",
    "UtcDateTime",
]
