"""Exits of every node kind: the fallback rules the runner and the linter share, and the YAML each exit names."""

from __future__ import annotations

from typing import Any

import pytest

from ivr_flows.graph import NEEDS_TARGET, WAITING_KINDS, exits, successors, target_of, waits_for_input
from ivr_flows.loader import parse_flow
from ivr_flows.schema import NODE_KINDS, node_kind

FLOW = """\
flow: graph
start: hours
nodes:
  hours:
    hours: {timezone: UTC, weekly: {mon: ["09:00-17:00"]}, on: {open: menu}}
    next: closed
  menu:
    menu:
      options:
        "1": {next: input}
        "2": {next: ask}
      on: {no_match: wrong}
    next: agent
  input:
    input: {store: pin, on: {no_input: agent}}
    next: http
  http:
    http: {url: "http://127.0.0.1:9/", on: {error: agent}}
    next: branch
  branch:
    branch:
      cases:
        - {when: pin == '1', next: switch}
        - {when: pin == '2', next: set}
    next: say
  switch:
    switch: {value: "{{ pin }}", cases: {"1": set, default: say}}
  set:
    set: {x: 1}
    next: language
  language:
    language: zh
    next: record
  record:
    record: {}
    next: subflow
  subflow:
    subflow: other
    next: goto
  goto:
    goto: say
  ask:
    ask: {on: {no_answer: agent, answered: menu}}
  agent:
    transfer: {queue: general}
    next: say
  say:
    say: Goodbye.
  wrong:
    say: Wrong.
    next: hangup
  closed:
    hangup: true
  hangup:
    hangup: Bye.
"""


@pytest.fixture(scope="module")
def parsed():  # type: ignore[no-untyped-def]
    return parse_flow(FLOW, "graph.yaml")


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


EXPECTED = {
    "hours": [("open", "menu"), ("closed", "closed")],
    "menu": [("option:1", "input"), ("option:2", "ask"), ("no_input", "agent"), ("no_match", "wrong"),
             ("question", "wrong")],
    "input": [("ok", "http"), ("no_input", "agent"), ("no_match", "http")],
    "http": [("ok", "branch"), ("error", "agent"), ("timeout", "agent")],
    "branch": [("case:0", "switch"), ("case:1", "set"), ("else", "say")],
    "switch": [("case:1", "set"), ("case:default", "say"), ("default", None)],
    "set": [("next", "language")],
    "language": [("next", "record")],
    "record": [("next", "subflow")],
    "subflow": [("next", "goto")],
    "goto": [("goto", "say")],
    "ask": [("answered", "menu"), ("no_answer", "agent"), ("handoff", "agent"), ("no_input", "agent")],
    "agent": [("failed", "say")],
    "say": [("next", None)],
    "wrong": [("next", "hangup")],
    "closed": [],
    "hangup": [],
}  # fmt: skip


def test_flow_covers_every_node_kind(parsed) -> None:  # type: ignore[no-untyped-def]
    flow, _ = parsed
    assert {node_kind(node) for node in flow.nodes.values()} == set(NODE_KINDS)
    assert set(EXPECTED) == set(flow.nodes)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_exits_follow_the_fallback_rules(parsed, name: str) -> None:  # type: ignore[no-untyped-def]
    flow, _ = parsed
    assert [(e.outcome, e.target) for e in exits(name, flow.nodes[name], flow)] == EXPECTED[name]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_exit_paths_name_the_yaml_value_of_the_target(parsed, name: str) -> None:  # type: ignore[no-untyped-def]
    flow, loaded = parsed
    for exit_ in exits(name, flow.nodes[name], flow):
        if exit_.target is None:
            kind = node_kind(flow.nodes[name])
            assert exit_.path == ("nodes", name, kind)
        else:
            assert _at(loaded.data, exit_.path) == exit_.target
            assert exit_.path in loaded.values  # so the linter can point at it exactly


def test_fallback_paths_point_at_the_value_actually_used(parsed) -> None:  # type: ignore[no-untyped-def]
    flow, _ = parsed
    by_outcome = {e.outcome: e.path for e in exits("menu", flow.nodes["menu"], flow)}
    assert by_outcome["no_input"] == ("nodes", "menu", "next")
    assert by_outcome["question"] == ("nodes", "menu", "menu", "on", "no_match")
    http = {e.outcome: e.path for e in exits("http", flow.nodes["http"], flow)}
    assert http["timeout"] == ("nodes", "http", "http", "on", "error")


def test_target_of(parsed) -> None:  # type: ignore[no-untyped-def]
    flow, _ = parsed
    assert target_of("ask", flow.nodes["ask"], "handoff") == "agent"
    assert target_of("say", flow.nodes["say"], "next") is None
    with pytest.raises(KeyError):
        target_of("say", flow.nodes["say"], "open")


def test_successors_leave_out_the_end_of_the_call(parsed) -> None:  # type: ignore[no-untyped-def]
    flow, _ = parsed
    graph = successors(flow)
    assert graph["menu"] == {"input", "ask", "agent", "wrong"}
    assert graph["say"] == set() and graph["hangup"] == set()
    assert graph["switch"] == {"set", "say"}


def test_successors_skip_targets_that_are_not_nodes() -> None:
    flow, _ = parse_flow("flow: f\nstart: a\nnodes:\n  a: {say: Hi., next: nowhere}\n")
    assert successors(flow) == {"a": set()}


def test_waiting_kinds(parsed) -> None:  # type: ignore[no-untyped-def]
    flow, _ = parsed
    waiting = {node_kind(node) for node in flow.nodes.values() if waits_for_input(node)}
    assert waiting == {"menu", "input", "ask", "record", "transfer"} == set(WAITING_KINDS)
    assert {"menu", "input", "ask", "transfer", "http", "hours"} == NEEDS_TARGET
