"""Where each node can go: the one definition of exits that both the runner and the linter follow.

If the linter and the runner disagreed about where an outcome leads, a flow could lint clean and still
strand a caller, so both read the rules from here.

Rules
-----
An outcome is resolved by walking its *fallback chain* (`FALLBACKS`) and taking the first source that is set:

- `on.X` is the action's `on:` map entry for outcome X;
- `next` is the node-level `next`;
- `else` / `default` are a branch's `else` and a switch's `default`; `goto` is a goto's target.

If no source is set the target is None. Outcomes per node kind:

==========  ==========================================================================================
say         next (None = the call ends after the prompt: allowed, it is a hang-up)
menu        ``option:K`` for each option key K (the option's own `next`); no_input -> on.no_input, next;
            no_match -> on.no_match, next; question -> on.question, then no_match's chain
input       ok -> next; no_input -> on.no_input, next; no_match -> on.no_match, next
ask         answered -> on.answered, next; no_answer -> on.no_answer, next;
            handoff -> on.handoff, then no_answer's chain; no_input -> on.no_input, then no_answer's chain
transfer    failed -> on.failed, next (a successful transfer ends the flow)
set, language, record, subflow   next (None = the call ends)
branch      ``case:I`` for each case (0-based index, the case's `next`); else -> else, next
switch      ``case:V`` for each case value V; default -> default, next
goto        goto -> its target
hangup      none
http        ok -> on.ok, next; error -> on.error, next; timeout -> on.timeout, then error's chain
hours       open -> on.open, next; closed -> on.closed, next
==========  ==========================================================================================

For the kinds in `NEEDS_TARGET` an outcome without a target is a flow error (the runner would have nowhere
to go); for the others a missing target ends the call. Data-driven outcomes carry a prefix (``option:``,
``case:``) so a switch case called "default" never collides with the default outcome.

Each `Exit` also carries the data path of the YAML value that names its target, so errors point at it.
When the target is None the path is the action's key (``("nodes", name, kind)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr_flows.schema import Flow, NodeBase, node_kind

DataPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Exit:
    outcome: str
    target: str | None
    path: DataPath  # of the YAML value naming `target`, relative to the file's root


# Fixed outcomes per kind and the sources tried in order. Option/case outcomes are added by `exits`.
FALLBACKS: dict[str, dict[str, tuple[str, ...]]] = {
    "say": {"next": ("next",)},
    "menu": {
        "no_input": ("on.no_input", "next"),
        "no_match": ("on.no_match", "next"),
        "question": ("on.question", "on.no_match", "next"),
    },
    "input": {"ok": ("next",), "no_input": ("on.no_input", "next"), "no_match": ("on.no_match", "next")},
    "ask": {
        "answered": ("on.answered", "next"),
        "no_answer": ("on.no_answer", "next"),
        "handoff": ("on.handoff", "on.no_answer", "next"),
        "no_input": ("on.no_input", "on.no_answer", "next"),
    },
    "transfer": {"failed": ("on.failed", "next")},
    "set": {"next": ("next",)},
    "language": {"next": ("next",)},
    "record": {"next": ("next",)},
    "subflow": {"next": ("next",)},
    "branch": {"else": ("else", "next")},
    "switch": {"default": ("default", "next")},
    "goto": {"goto": ("goto",)},
    "hangup": {},
    "http": {
        "ok": ("on.ok", "next"),
        "error": ("on.error", "next"),
        "timeout": ("on.timeout", "on.error", "next"),
    },
    "hours": {"open": ("on.open", "next"), "closed": ("on.closed", "next")},
}

# Kinds whose every outcome must lead somewhere.
NEEDS_TARGET = frozenset({"menu", "input", "ask", "transfer", "http", "hours"})

# Kinds that pause for the caller (or another party); a loop through one of these is not a busy loop.
WAITING_KINDS = frozenset({"menu", "input", "ask", "record", "transfer"})


def waits_for_input(node: NodeBase) -> bool:
    return node_kind(node) in WAITING_KINDS


def _source(kind: str, action: Any, node: NodeBase, source: str) -> tuple[str | None, DataPath]:
    """The value of one fallback source and its path relative to the node."""
    if source == "next":
        return node.next, ("next",)
    if source == "goto":
        return action, ("goto",)
    if source.startswith("on."):
        outcome = source[3:]
        return getattr(action.on, outcome), (kind, "on", outcome)
    if source == "else":
        return action.otherwise, (kind, "else")
    return getattr(action, source), (kind, source)  # switch default


def resolve(kind: str, action: Any, node: NodeBase, sources: tuple[str, ...]) -> tuple[str | None, DataPath]:
    for source in sources:
        target, path = _source(kind, action, node, source)
        if target is not None:
            return target, path
    return None, (kind,)


def exits(name: str, node: NodeBase, flow: Flow | None = None) -> list[Exit]:
    """Every outcome the runner can take from `node`, in a stable order, with its target.

    `flow` is accepted for symmetry with the runner's call sites; the rules need only the node.
    """
    kind = node_kind(node)
    if kind is None:  # pragma: no cover - the schema guarantees exactly one action
        return []
    action = getattr(node, kind)
    base: DataPath = ("nodes", name)
    result: list[Exit] = []
    if kind == "menu":
        for key, option in action.options.items():
            result.append(Exit(f"option:{key}", option.next, (*base, kind, "options", key, "next")))
    elif kind == "branch":
        for index, case in enumerate(action.cases):
            result.append(Exit(f"case:{index}", case.next, (*base, kind, "cases", index, "next")))
    elif kind == "switch":
        for value, target in action.cases.items():
            result.append(Exit(f"case:{value}", target, (*base, kind, "cases", value)))
    for outcome, sources in FALLBACKS[kind].items():
        target, path = resolve(kind, action, node, sources)
        result.append(Exit(outcome, target, (*base, *path)))
    return result


def target_of(name: str, node: NodeBase, outcome: str) -> str | None:
    """Where `outcome` leads from `node` (None: the call ends or the flow is invalid)."""
    for candidate in exits(name, node):
        if candidate.outcome == outcome:
            return candidate.target
    raise KeyError(f"node {name!r} has no outcome {outcome!r}")


def successors(flow: Flow) -> dict[str, set[str]]:
    """Node -> the existing nodes it can lead to (targets that name no node are left out)."""
    graph: dict[str, set[str]] = {}
    for name, node in flow.nodes.items():
        graph[name] = {e.target for e in exits(name, node, flow) if e.target is not None and e.target in flow.nodes}
    return graph
