"""The routing state machines, as data: which agent and entry transitions exist, and why.

Every change the router makes goes through `check_agent` / `check_entry`, so an impossible transition (an
agent `busy` twice, a finished call offered again) is a loud error instead of a silently wrong database.
The property tests drive random sequences through the router and check these tables and the invariants.
"""

from __future__ import annotations

AGENT_STATES = ("offline", "available", "reserved", "busy", "wrap_up", "break")
# who may set it: "agent" (the person, via API/console) or "router" (offers, calls, timers, leases)
AGENT_TRANSITIONS: dict[tuple[str, str], str] = {
    ("offline", "available"): "agent",
    ("offline", "break"): "agent",
    ("available", "offline"): "agent",
    ("available", "break"): "agent",
    ("break", "available"): "agent",
    ("break", "offline"): "agent",
    ("wrap_up", "available"): "agent",  # done early
    ("wrap_up", "break"): "agent",
    ("wrap_up", "offline"): "agent",
    ("available", "reserved"): "router",  # a call is offered (ringing)
    ("reserved", "busy"): "router",  # answered
    ("reserved", "available"): "router",  # no answer / caller left / lease expired
    ("reserved", "break"): "router",  # missed too many offers in a row
    ("busy", "wrap_up"): "router",  # the call ended
    ("busy", "available"): "router",  # ended with no wrap-up time, or the lease expired
    ("wrap_up", "wrap_up"): "router",  # (no-op refresh)
}

ENTRY_STATES = ("waiting", "offered", "connected", "done", "abandoned", "overflowed", "callback", "voicemail")
FINAL_ENTRY_STATES = frozenset({"done", "abandoned", "overflowed", "voicemail"})
ENTRY_TRANSITIONS = frozenset(
    {
        ("waiting", "offered"),
        ("offered", "connected"),
        ("offered", "waiting"),  # not answered: next agent
        ("offered", "abandoned"),  # the caller left while it rang
        ("connected", "done"),
        ("waiting", "abandoned"),
        ("waiting", "overflowed"),
        ("waiting", "voicemail"),
        ("waiting", "callback"),  # keeps its place; we call them back when it is their turn
        ("callback", "offered"),
        ("callback", "abandoned"),
        ("offered", "callback"),  # a callback offer not answered: back to waiting as a callback
        ("connected", "abandoned"),  # lease expired mid-call: the worker is gone
    }
)


class RoutingError(RuntimeError):
    """A transition the state machine does not allow (the message names it)."""


def check_agent(current: str, new: str, by: str) -> None:
    if current == new and by == "agent":
        return
    allowed_by = AGENT_TRANSITIONS.get((current, new))
    if allowed_by is None or (by == "agent" and allowed_by != "agent"):
        raise RoutingError(f"an agent cannot go from {current} to {new} ({by})")


def check_entry(current: str, new: str) -> None:
    if (current, new) not in ENTRY_TRANSITIONS:
        raise RoutingError(f"a queue entry cannot go from {current} to {new}")
