"""Two `hotline serve` workers on one PostgreSQL: a supervisor's live view connected to one worker hears
what happens on the other (callcenter_api.event_relay), and both see one agent's state."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
import yaml
from harness import HotlineServer, run_sipp

from callcenter_api.testing import pg_test_url, pg_unreachable_reason, scratch_pg_schema


def wait_until(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.2)


@pytest.fixture
def pg_url() -> Iterator[str]:
    reason = pg_unreachable_reason(pg_test_url())
    if reason:
        pytest.skip(reason)
    with scratch_pg_schema(pg_test_url()) as url:
        yield url.render_as_string(hide_password=False)


def test_the_supervisor_view_on_one_worker_hears_the_other(
    pg_url: str, start_hotline: Callable[..., HotlineServer], tmp_path: Path
) -> None:  # pg_url first: its schema is dropped after the servers stop
    config = tmp_path / "callcenter.yaml"
    agents = [{"name": "Ann", "sip_uri": "sip:ann@127.0.0.1:9"}]
    config.write_text(yaml.safe_dump({"queues": {"general": {}}, "agents": agents}))
    common = ["--db", pg_url, "--callcenter", str(config), "--kb-seed", "none", "--asr-engine", "off"]
    worker_a = start_hotline(extra_args=[*common, "--worker-id", "worker-a"])
    worker_b = start_hotline(extra_args=[*common, "--worker-id", "worker-b"])
    auth = {"Authorization": f"Bearer {worker_a.admin_token}"}
    ann = next(a for a in httpx.get(f"{worker_a.base_url}/api/v1/agents", headers=auth).json() if a["name"] == "Ann")

    async def scenario() -> list[dict[str, object]]:
        ws_url = worker_b.base_url.replace("http", "ws") + f"/api/v1/supervisor/ws?token={worker_b.admin_token}"
        async with websockets.connect(ws_url) as socket:
            await asyncio.sleep(0.5)  # subscribed
            async with httpx.AsyncClient(base_url=worker_a.base_url, headers=auth) as client:
                response = await client.post(f"/api/v1/agents/{ann['id']}/state", json={"state": "available"})
                assert response.status_code == 200, response.text
            heard: list[dict[str, object]] = []
            async with asyncio.timeout(10):
                while not any(e.get("agent_id") == ann["id"] and e.get("state") == "available" for e in heard):
                    heard.append(json.loads(await socket.recv()))
            return heard

    heard = asyncio.run(scenario())
    assert any(e.get("topic") == "agents" for e in heard), heard
    on_b = httpx.get(f"{worker_b.base_url}/api/v1/agents", headers=auth).json()
    assert [a["state"] for a in on_b if a["id"] == ann["id"]] == ["available"]


def test_a_flow_activated_through_one_worker_answers_calls_on_the_other(
    pg_url: str, start_hotline: Callable[..., HotlineServer]
) -> None:
    common = ["--db", pg_url, "--kb-seed", "none", "--asr-engine", "off"]
    worker_a = start_hotline(extra_args=[*common, "--worker-id", "worker-a"])
    worker_b = start_hotline(extra_args=[*common, "--worker-id", "worker-b"])
    source = (
        "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Activated on worker A.\n    next: bye\n"
        "  bye:\n    hangup: Goodbye.\n"
    )
    response = httpx.post(
        f"{worker_a.base_url}/api/v1/flows/demo/versions", params={"activate": "true"}, content=source,
        headers={"Authorization": f"Bearer {worker_a.admin_token}", "Content-Type": "application/yaml"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    version = response.json()["version"]
    wait_until(lambda: f"flow demo@{version} is live (activated on another worker)" in worker_b.log_path.read_text(),
               "worker B follows the activation")  # fmt: skip
    result = run_sipp("t_uac_silent_wait_bye.xml", worker_b, call_id="e2e-workers-flow")  # we hang up
    assert result.ok, result.describe()
    record = worker_b.wait_for_call("e2e-workers-flow", lambda r: r.get("ended_at") is not None)
    assert record["flow"] == f"demo@{version}"
    assert next(e["value"] for e in record["events"] if e["type"] == "prompt") == "Activated on worker A."
