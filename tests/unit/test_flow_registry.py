"""FlowRegistry: immutable versions, a live alias per name, and snapshots that activations never disturb."""

from __future__ import annotations

import threading

import pytest

from ivr_flows.loader import parse_flow
from ivr_flows.registry import FlowRegistry, LiveFlow
from ivr_flows.schema import Flow


def source(name: str = "demo", text: str = "Hi") -> str:
    return f"flow: {name}\nstart: hello\nnodes:\n  hello:\n    say: {text}\n"


def flow_of(src: str) -> Flow:
    return parse_flow(src)[0]


def said(flow: Flow) -> object:
    return flow.nodes["hello"].say.text  # type: ignore[attr-defined]


@pytest.fixture
def registry() -> FlowRegistry:
    reg = FlowRegistry()
    for version, text in ((1, "one"), (2, "two"), (3, "three")):
        src = source(text=text)
        reg.add("demo", version, flow_of(src), src)
    return reg


def test_nothing_is_live_until_activated(registry: FlowRegistry) -> None:
    assert registry.live("demo") is None
    assert registry.lookup("demo") is None
    assert registry.names() == ["demo"]
    assert registry.versions("demo") == [1, 2, 3]
    assert registry.versions("other") == []
    assert registry.live("other") is None


def test_set_live_and_get(registry: FlowRegistry) -> None:
    live = registry.set_live("demo", 2)
    assert (live.name, live.version, live.label) == ("demo", 2, "demo@2")
    assert said(live.flow) == "two"
    assert registry.live("demo") == live
    got = registry.get("demo", 3)
    assert got is not None and said(got.flow) == "three"
    assert registry.get("demo", 4) is None
    assert registry.source("demo", 1) == source(text="one")
    found = registry.lookup("demo")
    assert found is not None and found[1] == 2 and said(found[0]) == "two"


def test_live_flow_taken_before_activation_is_unchanged_after(registry: FlowRegistry) -> None:
    registry.set_live("demo", 1)
    taken = registry.live("demo")  # a call starts
    snapshot = registry.snapshot()
    registry.set_live("demo", 3)  # a supervisor activates another version mid-call
    assert taken is not None and taken.version == 1 and said(taken.flow) == "one"
    pinned = snapshot("demo")
    assert pinned is not None and pinned[1] == 1 and said(pinned[0]) == "one"
    assert snapshot.get("demo") == taken
    new = registry.live("demo")
    assert new is not None and new.version == 3  # the next call gets the new one
    with pytest.raises(AttributeError):
        taken.version = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.flows["demo"] = new  # type: ignore[index]


def test_versions_are_immutable(registry: FlowRegistry) -> None:
    registry.add("demo", 2, flow_of(source(text="two")), source(text="two"))  # same again: fine
    with pytest.raises(ValueError, match="different source"):
        registry.add("demo", 2, flow_of(source(text="changed")), source(text="changed"))
    assert said(registry.get("demo", 2).flow) == "two"  # type: ignore[union-attr]


def test_refuses_unknown_versions_and_wrong_names(registry: FlowRegistry) -> None:
    with pytest.raises(KeyError):
        registry.set_live("demo", 9)
    with pytest.raises(KeyError):
        registry.set_live("nope", 1)
    with pytest.raises(ValueError, match="named 'demo'"):
        registry.add("other", 1, flow_of(source()), source())
    with pytest.raises(ValueError, match="start at 1"):
        registry.add("demo", 0, flow_of(source()), source())
    assert registry.live("demo") is None


def test_set_live_again_keeps_the_same_object(registry: FlowRegistry) -> None:
    first = registry.set_live("demo", 1)
    assert registry.set_live("demo", 1) is first


def test_concurrent_activations_and_reads() -> None:
    reg = FlowRegistry()
    flows = {v: flow_of(source(text=f"v{v}")) for v in range(1, 21)}
    for version, flow in flows.items():
        reg.add("demo", version, flow, source(text=f"v{version}"))
    reg.set_live("demo", 1)
    seen: list[LiveFlow] = []
    errors: list[BaseException] = []

    def activate() -> None:
        for _ in range(50):
            for version in flows:
                reg.set_live("demo", version)

    def read() -> None:
        try:
            for _ in range(2000):
                live = reg.live("demo")
                assert live is not None
                # a LiveFlow is always consistent: its flow is the one of its version
                assert said(live.flow) == f"v{live.version}"
                seen.append(live)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=activate)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(seen) == 6000
