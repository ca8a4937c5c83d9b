"""Hot reload under a live call: the running call keeps its flow version, the next call gets the new one,
and a broken file never replaces the live version."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import HotlineServer, call_ended, dtmf_digits, event_values, run_sipp, start_sipp

pytestmark = pytest.mark.e2e

FLOW = """\
flow: demo
start: greeting
defaults: {{timeout: 30, retries: {{no_input: 0, no_match: 0}}}}
nodes:
  greeting:
    say: {greeting}
    next: key
  key:
    input: {{store: key, max_length: 1, finish_on_key: null, on: {{no_input: bye, no_match: key}}}}
    next: echo
  echo:
    say: "{echo} {{{{ key }}}}."
    next: key
  bye:
    hangup: Goodbye.
"""


def _write(path: Path, greeting: str, echo: str) -> None:
    path.write_text(FLOW.format(greeting=greeting, echo=echo))


def _wait_live(server: HotlineServer, version: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flows = {f["name"]: f for f in server.api_get("/api/v1/flows")}
        if flows.get("demo", {}).get("live_version") == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"demo@{version} never went live; flows: {server.api_get('/api/v1/flows')}")


def test_running_call_keeps_its_version_and_next_call_gets_the_new_one(
    tmp_path: Path, start_hotline: Callable[..., HotlineServer]
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    flow_file = flows / "demo.yaml"
    _write(flow_file, "Version one greeting.", "One says")
    server = start_hotline(flows_dir=flows)
    _wait_live(server, 1)

    first = start_sipp("t_uac_slow_digits.xml", server, call_id="e2e-reload-a", timeout=40)
    with first:
        server.wait_for_call("e2e-reload-a", lambda r: dtmf_digits(r) == "1", timeout=15)
        _write(flow_file, "Version two greeting.", "Two says")
        _wait_live(server, 2)
        flow_file.write_text("flow: demo\nstart: greeting\nnodes:\n  greeting: {say: Hi, next: nowhere}\n")
        time.sleep(2.5)  # two watcher passes: the broken file must be reported and ignored
        _wait_live(server, 2)
        result = first.wait(timeout=40)
    assert result.ok, result.describe()

    old = server.wait_for_call("e2e-reload-a", call_ended)
    assert old["flow"] == "demo@1"
    assert dtmf_digits(old) == "123"
    assert event_values(old, "prompt") == [
        "Version one greeting.", "One says 1.", "One says 2.", "One says 3."
    ]  # fmt: skip

    second = run_sipp("uac_dtmf_2833.xml", server, call_id="e2e-reload-b")
    assert second.ok, second.describe()
    new = server.wait_for_call("e2e-reload-b", call_ended)
    assert new["flow"] == "demo@2"
    assert event_values(new, "prompt")[:2] == ["Version two greeting.", "Two says 1."]

    log = server.log_path.read_text()
    assert f"{flow_file}:4:" in log and "nowhere" in log  # the lint error, located, in the service log
