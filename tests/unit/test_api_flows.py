"""HTTP API over flow versions: upload + lint, listing, activation, simulation, auth; SQLite and PG."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api import flow_store as store
from callcenter_api.app import create_app
from callcenter_api.routes.flows import MAX_SOURCE_BYTES
from ivr_flows.registry import FlowRegistry

Client = httpx.AsyncClient

TOKEN = "flow-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
YAML = {**AUTH, "Content-Type": "application/yaml"}
DEMO = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hi\n"
DEMO_2 = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hello again\n"
BROKEN = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hi\n    nxt: x\n"
MENU = """\
flow: menu
start: ask
nodes:
  ask:
    menu:
      prompt: Press 1 for sales
      options:
        "1": {say_as: [sales], next: sales}
      on: {no_input: bye, no_match: bye}
  sales:
    transfer: {queue: sales, on: {failed: bye}}
  bye:
    hangup: Goodbye
"""


@pytest.fixture
def registry() -> FlowRegistry:
    return FlowRegistry()


@pytest.fixture
async def client(session_factory: sessionmaker[Session], registry: FlowRegistry) -> AsyncIterator[Client]:
    app = create_app(session_factory=session_factory, admin_token=TOKEN, flow_registry=registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hotline") as c:
        yield c


async def upload(client: httpx.AsyncClient, name: str, source: str, *, query: str = "") -> httpx.Response:
    return await client.post(f"/api/v1/flows/{name}/versions{query}", content=source, headers=YAML)


async def uploaded(client: httpx.AsyncClient, name: str, source: str, *, query: str = "") -> dict[str, Any]:
    response = await upload(client, name, source, query=query)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/flows"),
        ("POST", "/api/v1/flows/demo/versions"),
        ("GET", "/api/v1/flows/demo/versions"),
        ("GET", "/api/v1/flows/demo/versions/1"),
        ("POST", "/api/v1/flows/demo/versions/1/activate"),
        ("POST", "/api/v1/flows/demo/simulate"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
async def test_every_flow_endpoint_needs_the_token(
    client: httpx.AsyncClient, registry: FlowRegistry, method: str, path: str, headers: dict[str, str]
) -> None:
    body = DEMO if method == "POST" and path.endswith("versions") else "{}"
    headers = {**headers, "Content-Type": "application/yaml"}
    response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert registry.names() == []


# -- upload -------------------------------------------------------------------------------------------


async def test_upload_creates_versions_and_updates_the_registry(
    client: httpx.AsyncClient, registry: FlowRegistry, session_factory: sessionmaker[Session]
) -> None:
    body = await uploaded(client, "demo", DEMO)
    assert body["name"] == "demo" and body["version"] == 1 and body["live"] is False
    assert body["checksum"] == store.source_checksum(DEMO)
    assert body["created"] is True and body["warnings"] == [] and body["created_by"] == "api"
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")
    assert registry.versions("demo") == [1] and registry.live("demo") is None

    same = await upload(client, "demo", DEMO)
    assert same.status_code == 200
    assert (same.json()["version"], same.json()["created"]) == (1, False)

    as_json = await client.post("/api/v1/flows/demo/versions", json={"source": DEMO_2}, headers=AUTH)
    assert as_json.status_code == 201 and as_json.json()["version"] == 2
    as_text = await client.post(
        "/api/v1/flows/demo/versions",
        content=DEMO,
        headers={**AUTH, "Content-Type": "text/plain; charset=utf-8"},
    )
    assert as_text.status_code == 201 and as_text.json()["version"] == 3
    assert registry.versions("demo") == [1, 2, 3]
    with session_factory() as session:
        assert [v.version for v in store.list_versions(session, "demo")] == [1, 2, 3]


async def test_upload_with_activate_makes_it_live(client: httpx.AsyncClient, registry: FlowRegistry) -> None:
    await uploaded(client, "demo", DEMO, query="?activate=true")
    body = await uploaded(client, "demo", DEMO_2, query="?activate=true")
    assert (body["version"], body["live"]) == (2, True)
    live = registry.live("demo")
    assert live is not None and live.version == 2
    assert live.flow.nodes["hello"].say.text == "Hello again"  # type: ignore[attr-defined]


async def test_invalid_flow_gets_422_with_located_problems(
    client: httpx.AsyncClient, registry: FlowRegistry, session_factory: sessionmaker[Session]
) -> None:
    response = await upload(client, "demo", BROKEN)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "flow is invalid"
    assert body["problems"] == [{"line": 6, "column": 5, "message": "unknown key 'nxt'", "severity": "error"}]

    mismatch = await upload(client, "other", DEMO)
    assert mismatch.status_code == 422
    [problem] = mismatch.json()["problems"]
    assert (problem["line"], problem["column"]) == (1, 7) and "'other'" in problem["message"]

    syntax = await upload(client, "demo", "flow: demo\nstart: [\n")
    assert syntax.status_code == 422 and syntax.json()["problems"][0]["line"] == 3

    assert registry.names() == []
    with session_factory() as session:
        assert store.list_flows(session) == []


async def test_warnings_come_back_with_201(client: httpx.AsyncClient) -> None:
    body = await uploaded(client, "demo", DEMO + "  orphan:\n    say: nobody comes here\n")
    [warning] = body["warnings"]
    assert (warning["line"], warning["column"], warning["severity"]) == (6, 3, "warning")


async def test_subflow_must_be_known(client: httpx.AsyncClient) -> None:
    main = "flow: main\nstart: a\nnodes:\n  a:\n    subflow: menu\n"
    refused = await upload(client, "main", main)
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["message"].startswith("subflow 'menu' is not a known flow")
    await uploaded(client, "menu", MENU)
    await uploaded(client, "main", main)


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({"Content-Type": "application/x-www-form-urlencoded"}, DEMO, 415),
        ({}, DEMO, 415),
        ({"Content-Type": "application/json"}, '{"yaml": "x"}', 422),
        ({"Content-Type": "application/json"}, "not json", 422),
        ({"Content-Type": "application/yaml"}, b"flow: d\xe9mo\n", 422),
        ({"Content-Type": "application/yaml"}, "#" * (MAX_SOURCE_BYTES + 1), 413),
    ],
    ids=["form", "no-type", "json-shape", "json-syntax", "not-utf8", "too-big"],
)
async def test_bad_bodies(
    client: httpx.AsyncClient,
    registry: FlowRegistry,
    headers: dict[str, str],
    content: str | bytes,
    status: int,
) -> None:
    response = await client.post("/api/v1/flows/demo/versions", content=content, headers={**AUTH, **headers})
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)
    assert registry.names() == []


# -- reading ------------------------------------------------------------------------------------------


async def test_listing_and_reading_versions(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/flows", headers=AUTH)).json() == []
    await uploaded(client, "demo", DEMO)
    await uploaded(client, "demo", DEMO_2)
    await uploaded(client, "menu", MENU, query="?activate=true")
    await client.post("/api/v1/flows/demo/versions/1/activate", headers=AUTH)

    flows = (await client.get("/api/v1/flows", headers=AUTH)).json()
    assert [(f["name"], f["live_version"], f["latest_version"]) for f in flows] == [
        ("demo", 1, 2),
        ("menu", 1, 1),
    ]
    assert all(f["activated_at"] for f in flows)

    versions = (await client.get("/api/v1/flows/demo/versions", headers=AUTH)).json()
    assert [(v["version"], v["live"]) for v in versions] == [(1, True), (2, False)]
    assert "source" not in versions[0]

    detail = await client.get("/api/v1/flows/demo/versions/2", headers=AUTH)
    assert detail.status_code == 200
    assert (detail.json()["source"], detail.json()["live"]) == (DEMO_2, False)

    for path in (
        "/api/v1/flows/nope/versions",
        "/api/v1/flows/demo/versions/3",
        "/api/v1/flows/nope/versions/1",
    ):
        missing = await client.get(path, headers=AUTH)
        assert missing.status_code == 404
        assert missing.json()["detail"] in (
            "flow nope not found",
            "flow demo has no version 3",
            "flow nope has no version 1",
        )


# -- activation ---------------------------------------------------------------------------------------


async def test_activate_moves_live_and_running_calls_keep_theirs(
    client: httpx.AsyncClient, registry: FlowRegistry
) -> None:
    await uploaded(client, "demo", DEMO, query="?activate=true")
    await uploaded(client, "demo", DEMO_2)
    in_progress = registry.live("demo")  # a call that started on v1
    response = await client.post("/api/v1/flows/demo/versions/2/activate", headers=AUTH)
    assert response.status_code == 200
    assert (response.json()["version"], response.json()["live"]) == (2, True)
    live = registry.live("demo")
    assert live is not None and live.version == 2
    assert in_progress is not None and in_progress.version == 1
    assert in_progress.flow.nodes["hello"].say.text == "Hi"  # type: ignore[attr-defined]
    versions = (await client.get("/api/v1/flows/demo/versions", headers=AUTH)).json()
    assert [v["live"] for v in versions] == [False, True]

    back = await client.post("/api/v1/flows/demo/versions/1/activate", headers=AUTH)
    assert back.status_code == 200 and registry.live("demo").version == 1  # type: ignore[union-attr]

    for path in ("/api/v1/flows/demo/versions/9/activate", "/api/v1/flows/nope/versions/1/activate"):
        missing = await client.post(path, headers=AUTH)
        assert missing.status_code == 404
    assert registry.live("demo").version == 1  # type: ignore[union-attr]


async def test_a_private_registry_is_filled_from_the_database(
    session_factory: sessionmaker[Session], client: httpx.AsyncClient
) -> None:
    """Versions stored by another app (another worker) can still be activated and simulated here."""
    await uploaded(client, "demo", DEMO)
    other = create_app(session_factory=session_factory, admin_token=TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://hotline") as c:
        assert (await c.post("/api/v1/flows/demo/versions/1/activate", headers=AUTH)).status_code == 200
        registry: FlowRegistry = other.state.flow_registry
        assert registry.live("demo").version == 1  # type: ignore[union-attr]
        result = await c.post("/api/v1/flows/demo/simulate", json={}, headers=AUTH)
        assert result.status_code == 200 and result.json()["path"] == ["hello"]


# -- simulation ---------------------------------------------------------------------------------------


async def test_simulate_the_live_version(client: httpx.AsyncClient) -> None:
    await uploaded(client, "menu", MENU, query="?activate=true")
    body = {
        "inputs": [{"expect": "Press 1"}, {"press": "1"}],
        "expect": {"node": "sales", "outcome": "transferred", "transfer": {"queue": "sales"}},
    }
    response = await client.post("/api/v1/flows/menu/simulate", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["name"], result["version"], result["passed"], result["failures"]) == ("menu", 1, True, [])
    assert result["path"] == ["ask", "sales"] and result["end_node"] == "sales"
    assert result["transcript"][0] == {"who": "flow", "text": "Press 1 for sales"}
    assert {"who": "caller", "text": "[keys 1]"} in result["transcript"]

    failing = {"inputs": ["silence", "silence", "silence"], "expect": {"node": "sales"}}
    response = await client.post("/api/v1/flows/menu/simulate", json=failing, headers=AUTH)
    result = response.json()
    assert result["passed"] is False and result["end_node"] == "bye"
    assert any("sales" in failure for failure in result["failures"])


async def test_simulate_a_version_that_is_not_live(client: httpx.AsyncClient) -> None:
    await uploaded(client, "demo", DEMO, query="?activate=true")
    await uploaded(client, "demo", DEMO_2)
    for version, said in ((None, "Hi"), (2, "Hello again"), (1, "Hi")):
        body = {} if version is None else {"version": version}
        response = await client.post("/api/v1/flows/demo/simulate", json=body, headers=AUTH)
        assert response.status_code == 200
        assert response.json()["transcript"][0] == {"who": "flow", "text": said}


async def test_simulate_errors(client: httpx.AsyncClient) -> None:
    await uploaded(client, "demo", DEMO)
    no_live = await client.post("/api/v1/flows/demo/simulate", json={}, headers=AUTH)
    assert no_live.status_code == 404 and "no live version" in no_live.json()["detail"]
    no_version = await client.post("/api/v1/flows/demo/simulate", json={"version": 5}, headers=AUTH)
    assert no_version.status_code == 404
    unknown = await client.post("/api/v1/flows/nope/simulate", json={}, headers=AUTH)
    assert unknown.status_code == 404
    bad_step = await client.post(
        "/api/v1/flows/demo/simulate", json={"version": 1, "inputs": [{"press": "x"}]}, headers=AUTH
    )
    assert bad_step.status_code == 422
    assert bad_step.json()["detail"][0]["loc"][:3] == ["body", "inputs", 0]
    two_in_one = await client.post(
        "/api/v1/flows/demo/simulate",
        json={"version": 1, "inputs": [{"press": "1", "say": "hi"}]},
        headers=AUTH,
    )
    assert two_in_one.status_code == 422 and "exactly one" in two_in_one.json()["detail"][0]["msg"]
    extra = await client.post("/api/v1/flows/demo/simulate", json={"version": 1, "bogus": 1}, headers=AUTH)
    assert extra.status_code == 422


async def test_openapi_documents_the_flow_endpoints(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    upload_op = paths["/api/v1/flows/{name}/versions"]["post"]
    assert set(upload_op["requestBody"]["content"]) == {"application/yaml", "text/plain", "application/json"}
    assert {"201", "422", "401"} <= set(upload_op["responses"])
    assert "/api/v1/flows/{name}/versions/{version}/activate" in paths
    assert "/api/v1/flows/{name}/simulate" in paths
