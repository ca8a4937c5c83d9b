"""Live events across workers through PostgreSQL LISTEN/NOTIFY (callcenter_api.event_relay), with two
EventHubs standing for two `hotline serve` workers on one real database."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from callcenter_api.event_relay import MAX_PAYLOAD, PostgresEventRelay, channel_for
from callcenter_api.events import EventHub
from callcenter_api.testing import pg_test_url, pg_unreachable_reason, scratch_pg_schema


@functools.cache
def _skip_reason() -> str | None:
    return pg_unreachable_reason(pg_test_url())


@pytest.fixture
def pg_url() -> Iterator[URL]:
    if _skip_reason():
        pytest.skip(_skip_reason())
    with scratch_pg_schema(pg_test_url()) as url:
        yield url


async def next_event(queue: asyncio.Queue[dict[str, object]], timeout: float = 5.0) -> dict[str, object]:
    return await asyncio.wait_for(queue.get(), timeout)


async def test_an_event_published_on_one_worker_reaches_the_others_subscribers_once(pg_url: URL) -> None:
    hub_a, hub_b = EventHub(), EventHub()
    remote_seen: list[str] = []
    relay_a = PostgresEventRelay(hub_a, pg_url, origin="worker-a")
    relay_b = PostgresEventRelay(hub_b, pg_url, origin="worker-b", on_remote=lambda t, _e: remote_seen.append(t))
    await relay_a.start()
    await relay_b.start()
    try:
        async with hub_a.subscribe("agents") as on_a, hub_b.subscribe("agents") as on_b:
            hub_a.publish("agents", {"type": "agent", "name": "Ann", "state": "available"})  # from the loop
            thread = threading.Thread(target=hub_a.publish, args=("agents", {"type": "agent", "name": "Bea"}))
            thread.start()  # and from a worker thread (sync routes publish from there)
            thread.join()
            assert (await next_event(on_b))["name"] == "Ann"
            assert (await next_event(on_b))["name"] == "Bea"
            assert [(await next_event(on_a))["name"] for _ in range(2)] == ["Ann", "Bea"]  # locally, once each
            hub_b.publish("agents", {"type": "agent", "name": "Cy"})
            assert (await next_event(on_a))["name"] == "Cy"
            assert (await next_event(on_b))["name"] == "Cy"
            await asyncio.sleep(0.3)  # nothing comes back twice (a worker skips its own notifications)
            assert on_a.empty() and on_b.empty()
        assert remote_seen == ["agents", "agents"]
        assert (relay_a.sent, relay_b.received, relay_a.received) == (2, 2, 1)
    finally:
        await relay_a.aclose()
        await relay_b.aclose()


async def test_oversized_events_are_counted_not_sent_and_deployments_do_not_hear_each_other(pg_url: URL) -> None:
    other = pg_url.update_query_dict({"options": "-csearch_path=some_other_deployment"})
    assert channel_for(pg_url) != channel_for(other) and channel_for(pg_url) == channel_for(pg_url)
    hub_a, hub_b, hub_c = EventHub(), EventHub(), EventHub()
    relays = [
        PostgresEventRelay(hub_a, pg_url, origin="a"),
        PostgresEventRelay(hub_b, pg_url, origin="b"),
        PostgresEventRelay(hub_c, other, origin="c"),
    ]
    for relay in relays:
        await relay.start()
    try:
        async with hub_b.subscribe("t") as on_b, hub_c.subscribe("t") as on_c:
            hub_a.publish("t", {"text": "x" * (MAX_PAYLOAD + 1)})
            hub_a.publish("t", {"text": "small"})
            assert (await next_event(on_b))["text"] == "small"
            await asyncio.sleep(0.3)
            assert on_b.empty() and on_c.empty()
        assert relays[0].too_large == 1
    finally:
        for relay in relays:
            await relay.aclose()
