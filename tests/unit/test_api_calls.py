"""HTTP API over call records: auth, health, call detail and listing, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.app import create_app
from callcenter_api.call_log import CallLog
from callcenter_api.call_ops import new_call_id

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CALL_KEYS = {
    "id",
    "sip_call_id",
    "from_uri",
    "to_uri",
    "caller_number",
    "started_at",
    "answered_at",
    "ended_at",
    "end_reason",
    "codec",
    "flow",
    "remote_media",
    "events",
}


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), f"not UTC: {value}"
    return parsed


@pytest.fixture
def call_log(session_factory: sessionmaker[Session]) -> Iterator[CallLog]:
    log = CallLog(session_factory)
    log.start()
    yield log
    log.close()


@pytest.fixture
async def client(session_factory: sessionmaker[Session]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(session_factory=session_factory, admin_token=TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hotline") as c:
        yield c


def start_call(log: CallLog, *, at: datetime = T0, sip_call_id: str | None = None) -> str:
    call_id = new_call_id()
    log.call_started(
        call_id,
        sip_call_id=sip_call_id or f"{call_id[:10]}@198.51.100.7",
        from_uri="<sip:+15551234@198.51.100.7>;tag=1",
        to_uri="sip:hotline@203.0.113.1",
        at=at,
        remote_media="198.51.100.7:40000",
    )
    return call_id


async def get_call(client: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/calls/{call_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- health and auth -------------------------------------------------------------------------------------


async def test_healthz_needs_no_token_and_follows_readiness(session_factory: sessionmaker[Session]) -> None:
    ready = [False]
    app = create_app(session_factory=session_factory, admin_token=TOKEN, is_ready=lambda: ready[0])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hotline") as c:
        starting = await c.get("/healthz")
        assert (starting.status_code, starting.json()) == (503, {"status": "starting"})
        ready[0] = True
        up = await c.get("/healthz")
        assert (up.status_code, up.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("path", ["/api/v1/calls", f"/api/v1/calls/{'0' * 32}"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "longer", "basic", "empty"],
)
async def test_api_rejects_missing_or_wrong_token(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "token" in detail


async def test_api_accepts_the_right_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/calls", headers=AUTH)
    assert (response.status_code, response.json()) == (200, [])


def test_empty_admin_token_is_refused(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError):
        create_app(session_factory=session_factory, admin_token="")


# -- calls -----------------------------------------------------------------------------------------------


async def test_call_and_its_events_are_readable_while_in_progress(
    client: httpx.AsyncClient, call_log: CallLog
) -> None:
    call_id = start_call(call_log)
    call_log.call_answered(call_id, at=t(0.5), codec="PCMU")
    call_log.call_updated(call_id, flow="main@2")
    call_log.event(call_id, "prompt", "greeting", at=t(0.6))
    call_log.event(call_id, "dtmf", "2", at=t(3.25))
    await call_log.flush()

    live = await get_call(client, call_id)
    assert set(live) == CALL_KEYS
    assert live["id"] == call_id
    assert (live["caller_number"], live["codec"], live["flow"]) == ("+15551234", "PCMU", "main@2")
    assert live["remote_media"] == "198.51.100.7:40000"
    assert (parse_time(live["started_at"]), parse_time(live["answered_at"])) == (T0, t(0.5))
    assert live["ended_at"] is None and live["end_reason"] is None
    assert [(e["type"], e["value"]) for e in live["events"]] == [("prompt", "greeting"), ("dtmf", "2")]
    assert [parse_time(e["at"]) for e in live["events"]] == [t(0.6), t(3.25)]
    assert set(live["events"][0]) == {"at", "type", "value"}

    call_log.event(call_id, "state", "transfer:support", at=t(4))
    call_log.call_ended(call_id, at=t(30), reason="agent hung up")
    await call_log.flush()

    done = await get_call(client, call_id)
    assert (parse_time(done["ended_at"]), done["end_reason"]) == (t(30), "agent hung up")
    assert [e["value"] for e in done["events"]] == ["greeting", "2", "transfer:support"]


async def test_events_are_ordered_by_sequence_not_timestamp(
    client: httpx.AsyncClient, call_log: CallLog
) -> None:
    call_id = start_call(call_log)
    # Timestamps from different sources can disagree; the order they were logged in is what counts.
    for n, offset in enumerate([5, 1, 3, 1, 0]):
        call_log.event(call_id, "state", f"s{n}", at=t(offset))
    await call_log.flush()
    body = await get_call(client, call_id)
    assert [e["value"] for e in body["events"]] == ["s0", "s1", "s2", "s3", "s4"]


async def test_unknown_call_is_404(client: httpx.AsyncClient) -> None:
    missing = new_call_id()
    response = await client.get(f"/api/v1/calls/{missing}", headers=AUTH)
    assert (response.status_code, response.json()) == (404, {"detail": f"call {missing} not found"})


async def test_list_is_newest_first_with_paging_and_filter(
    client: httpx.AsyncClient, call_log: CallLog
) -> None:
    ids = [start_call(call_log, at=t(60 * i)) for i in range(7)]
    twin_a = start_call(call_log, at=t(1000), sip_call_id="shared@pbx")
    twin_b = start_call(call_log, at=t(2000), sip_call_id="shared@pbx")
    for i, call_id in enumerate(ids):
        call_log.event(call_id, "dtmf", str(i), at=t(60 * i + 1))
    await call_log.flush()

    everything = (await client.get("/api/v1/calls", headers=AUTH)).json()
    assert [c["id"] for c in everything] == [twin_b, twin_a, *reversed(ids)]
    assert all(set(c) == CALL_KEYS for c in everything)
    assert everything[2]["events"] == [{"at": everything[2]["events"][0]["at"], "type": "dtmf", "value": "6"}]

    page = (await client.get("/api/v1/calls", params={"limit": 3, "offset": 4}, headers=AUTH)).json()
    assert [c["id"] for c in page] == [ids[4], ids[3], ids[2]]
    assert [[e["value"] for e in c["events"]] for c in page] == [["4"], ["3"], ["2"]]

    twins = (await client.get("/api/v1/calls", params={"sip_call_id": "shared@pbx"}, headers=AUTH)).json()
    assert [c["id"] for c in twins] == [twin_b, twin_a]
    assert (await client.get("/api/v1/calls?sip_call_id=nope", headers=AUTH)).json() == []


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=ten", "offset=-1", "offset=x"], ids=lambda q: q.replace("=", "-")
)
async def test_list_rejects_bad_parameters(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/api/v1/calls?{query}", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


async def test_list_accepts_the_largest_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/calls?limit=500", headers=AUTH)
    assert response.status_code == 200


async def test_list_loads_events_of_a_page_in_one_query(
    client: httpx.AsyncClient, call_log: CallLog, engine: Engine
) -> None:
    for i in range(25):
        call_id = start_call(call_log, at=t(i))
        for n in range(3):
            call_log.event(call_id, "dtmf", str(n), at=t(i + n))
    await call_log.flush()

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        body = (await client.get("/api/v1/calls?limit=20", headers=AUTH)).json()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(body) == 20 and all(len(c["events"]) == 3 for c in body)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects


async def test_openapi_describes_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "hotline"
    assert {tag["name"] for tag in spec["tags"]} >= {"calls", "health"}
    list_op = spec["paths"]["/api/v1/calls"]["get"]
    assert list_op["tags"] == ["calls"] and list_op["security"]
    assert "401" in list_op["responses"]
    assert "404" in spec["paths"]["/api/v1/calls/{call_id}"]["get"]["responses"]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
