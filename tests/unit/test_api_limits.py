"""More requests in flight than worker threads must not deadlock the pooled sessions (callcenter_api.limits).

Without the bound, 128 concurrent requests to a sync route with `SessionDep` left every thread waiting for a
connection held by a request waiting for a thread, until the pool timed out (500s). SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import URL

from callcenter_api.app import create_app
from callcenter_api.db import make_engine, make_session_factory, migrate
from callcenter_api.limits import ConcurrencyLimit

TOKEN = "limits-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(db_url: str | URL) -> AsyncIterator[httpx.AsyncClient]:
    migrate(db_url)
    engine = make_engine(db_url, pool_timeout=5)  # a deadlock shows as 500s after 5 s, not 30
    app = create_app(session_factory=make_session_factory(engine), admin_token=TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hotline", timeout=60) as c:
        yield c
    engine.dispose()


async def test_a_burst_beyond_the_thread_pool_is_served(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(client.get("/api/v1/flows", headers=AUTH) for _ in range(128)))
    codes = [r.status_code for r in responses]
    assert codes == [200] * 128, {code: codes.count(code) for code in set(codes)}


async def test_requests_beyond_the_waiting_room_are_refused_with_503() -> None:
    release = asyncio.Event()

    async def slow_app(scope: dict, receive: object, send: object) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    app = ConcurrencyLimit(slow_app, max_in_flight=2, max_waiting=3)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        admitted = [asyncio.ensure_future(c.get("/")) for _ in range(5)]  # 2 running, 3 waiting
        while app.waiting < 3:
            await asyncio.sleep(0.01)
        refused = await c.get("/")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "overloaded" in refused.json()["detail"]
        release.set()
        assert [r.status_code for r in await asyncio.gather(*admitted)] == [204] * 5
