"""Flow versions in the database, on SQLite and on PostgreSQL (a throwaway schema per test)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api import flow_store as store
from callcenter_api.db import alembic_config, make_session_factory
from callcenter_api.models import FlowLive, FlowVersion
from ivr_flows.registry import FlowRegistry

DEMO = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hi\n"
DEMO_2 = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hello again\n"
BROKEN = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hi\n    nxt: x\n"
MAIN_CALLS_SUB = "flow: main\nstart: hello\nnodes:\n  hello:\n    subflow: sub\n"
SUB = "flow: sub\nstart: x\nnodes:\n  x:\n    say: sub\n"


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as s:
        yield s


def count_rows(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return len(s.scalars(select(FlowVersion)).all())


def test_versions_count_up_and_identical_uploads_are_idempotent(
    session: Session, factory: sessionmaker[Session]
) -> None:
    v1 = store.create_version(session, "demo", DEMO, created_by="api")
    assert (v1.name, v1.version, v1.created_by) == ("demo", 1, "api")
    assert v1.checksum == store.source_checksum(DEMO) and len(v1.checksum) == 64
    assert v1.created_at.utcoffset() == timedelta(0)
    again = store.create_version(session, "demo", DEMO, created_by="api")
    assert (again.id, again.version) == (v1.id, 1)
    assert count_rows(factory) == 1
    v2 = store.create_version(session, "demo", DEMO_2, created_by="hot-reload:/x/demo.yaml")
    assert (v2.version, v2.created_by) == (2, "hot-reload:/x/demo.yaml")
    # identical to an older version but not to the latest: a new version (rolling forward to old text)
    v3 = store.create_version(session, "demo", DEMO, created_by="api")
    assert (v3.version, v3.checksum) == (3, v1.checksum)
    assert [v.version for v in store.list_versions(session, "demo")] == [1, 2, 3]
    with factory() as fresh:  # really committed, read back from the database
        stored = store.get_version(fresh, "demo", 2)
        assert stored is not None and stored.source == DEMO_2
        assert stored.created_at.tzinfo is not None
        assert store.get_version(fresh, "demo", 4) is None
        assert store.list_versions(fresh, "nope") == []


def test_save_version_reports_whether_it_created(session: Session) -> None:
    first = store.save_version(session, "demo", DEMO, created_by="api")
    second = store.save_version(session, "demo", DEMO, created_by="api", activate=True)
    assert (first.created, first.live) == (True, False)
    assert (second.created, second.live, second.row.version) == (False, True, 1)


def test_name_mismatch_is_a_located_problem(session: Session, factory: sessionmaker[Session]) -> None:
    with pytest.raises(store.FlowInvalid) as caught:
        store.create_version(session, "other", DEMO, created_by="api")
    [problem] = caught.value.problems
    assert (problem.line, problem.column, problem.severity) == (1, 7, "error")
    assert "'demo'" in problem.message and "'other'" in problem.message
    assert count_rows(factory) == 0


def test_invalid_flow_is_refused_with_positions(session: Session, factory: sessionmaker[Session]) -> None:
    with pytest.raises(store.FlowInvalid) as caught:
        store.create_version(session, "demo", BROKEN, created_by="api")
    assert [(p.line, p.column) for p in caught.value.errors] == [(6, 5)]
    assert "nxt" in caught.value.errors[0].message
    with pytest.raises(store.FlowInvalid) as syntax:
        store.create_version(session, "demo", "flow: [\n", created_by="api")
    assert syntax.value.errors[0].line == 2
    assert count_rows(factory) == 0


def test_warnings_do_not_stop_a_flow(session: Session) -> None:
    with_orphan = DEMO + "  orphan:\n    say: nobody comes here\n"
    saved = store.save_version(session, "demo", with_orphan, created_by="api")
    assert saved.created and saved.row.version == 1
    assert [(w.line, w.column, w.severity) for w in saved.warnings] == [(6, 3, "warning")]


def test_subflows_must_name_a_stored_flow(session: Session) -> None:
    with pytest.raises(store.FlowInvalid, match="subflow 'sub' is not a known flow"):
        store.create_version(session, "main", MAIN_CALLS_SUB, created_by="api")
    store.create_version(session, "sub", SUB, created_by="api")
    assert store.create_version(session, "main", MAIN_CALLS_SUB, created_by="api").version == 1


def test_activate_moves_the_live_alias(session: Session, factory: sessionmaker[Session]) -> None:
    store.create_version(session, "demo", DEMO, created_by="api")
    store.create_version(session, "demo", DEMO_2, created_by="api")
    assert store.live_version(session, "demo") is None
    first = store.activate(session, "demo", 1)
    activated_at = first.activated_at
    assert activated_at.tzinfo is not None
    live = store.live_version(session, "demo")
    assert live is not None and live.version == 1
    assert store.activate(session, "demo", 1).activated_at == activated_at  # no-op keeps the time
    store.activate(session, "demo", 2)
    with factory() as fresh:
        live = store.live_version(fresh, "demo")
        assert live is not None and (live.version, live.source) == (2, DEMO_2)
        row = fresh.get(FlowLive, "demo")
        assert row is not None and row.activated_at >= activated_at
    with pytest.raises(store.FlowNotFound):
        store.activate(session, "demo", 3)
    with pytest.raises(store.FlowNotFound):
        store.activate(session, "nope", 1)
    assert store.live_version(session, "demo").version == 2  # type: ignore[union-attr]


def test_live_pointer_cannot_name_a_missing_version(session: Session) -> None:
    store.create_version(session, "demo", DEMO, created_by="api")
    session.add(FlowLive(name="demo", version=7, activated_at=store.datetime.now(UTC)))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_versions_are_unique_per_name(session: Session) -> None:
    store.create_version(session, "demo", DEMO, created_by="api")
    session.add(
        FlowVersion(
            name="demo",
            version=1,
            source=DEMO_2,
            checksum=store.source_checksum(DEMO_2),
            created_at=store.datetime.now(UTC),
            created_by="test",
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_list_flows(session: Session) -> None:
    store.create_version(session, "sub", SUB, created_by="api")
    store.create_version(session, "demo", DEMO, created_by="api")
    store.create_version(session, "demo", DEMO_2, created_by="api")
    store.activate(session, "demo", 1)
    summaries = store.list_flows(session)
    assert [(s.name, s.latest_version, s.live_version) for s in summaries] == [
        ("demo", 2, 1),
        ("sub", 1, None),
    ]
    assert summaries[0].activated_at is not None and summaries[1].activated_at is None


def test_load_registry(session: Session) -> None:
    store.create_version(session, "demo", DEMO, created_by="api")
    store.create_version(session, "demo", DEMO_2, created_by="api")
    store.create_version(session, "sub", SUB, created_by="api")
    store.activate(session, "demo", 1)
    registry = FlowRegistry()
    assert store.load_registry(session, registry) == 3
    assert registry.names() == ["demo", "sub"]
    assert registry.versions("demo") == [1, 2]
    live = registry.live("demo")
    assert live is not None and live.version == 1
    assert live.flow.nodes["hello"].say.text == "Hi"  # type: ignore[attr-defined]
    assert registry.live("sub") is None
    assert registry.source("demo", 2) == DEMO_2


def test_load_registry_skips_a_version_that_no_longer_parses(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    # As if the schema had changed under a stored version: store text the loader now refuses.
    session.add(
        FlowVersion(
            name="demo",
            version=1,
            source=BROKEN,
            checksum=store.source_checksum(BROKEN),
            created_at=store.datetime.now(UTC),
            created_by="test",
        )
    )
    session.flush()  # no ORM relationship orders the two inserts
    session.add(FlowLive(name="demo", version=1, activated_at=store.datetime.now(UTC)))
    session.commit()
    store.create_version(session, "sub", SUB, created_by="api")
    registry = FlowRegistry()
    assert store.load_registry(session, registry) == 1
    assert registry.names() == ["sub"] and registry.live("demo") is None
    assert "demo@1 cannot be loaded" in caplog.text and "unknown key 'nxt'" in caplog.text


def test_concurrent_writers_get_distinct_versions(
    factory: sessionmaker[Session], db_url: str | URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Across processes only the unique key + retry protect version numbers; on PostgreSQL, drop this
    # process's lock to exercise exactly that path. (SQLite is single-node: the lock is what protects it.)
    if str(db_url).startswith("postgresql"):
        monkeypatch.setattr(store, "_write_lock", contextlib.nullcontext())
    sources = [DEMO.replace("Hi", f"writer {i}") for i in range(8)]
    barrier = threading.Barrier(len(sources))
    results: list[int] = []
    errors: list[BaseException] = []

    def write(src: str) -> None:
        try:
            with factory() as s:
                barrier.wait()
                results.append(store.create_version(s, "demo", src, created_by="api").version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(src,)) for src in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(results) == list(range(1, len(sources) + 1))
    with factory() as s:
        assert sorted(v.source for v in store.list_versions(s, "demo")) == sorted(sources)


def test_migration_0002_downgrades_and_upgrades(engine: Engine) -> None:
    def tables() -> set[str]:
        return set(inspect(engine).get_table_names())

    assert {"flow_versions", "flow_live", "calls"} <= tables()
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert "flow_versions" not in tables() and "flow_live" not in tables() and "calls" in tables()
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert {"flow_versions", "flow_live"} <= tables()


def test_activate_is_not_fooled_by_a_stale_session(session: Session, factory: sessionmaker[Session]) -> None:
    store.create_version(session, "demo", DEMO, created_by="api")
    store.create_version(session, "demo", DEMO_2, created_by="api")
    held = store.activate(session, "demo", 1)  # this session now holds the live row (version 1)
    with factory() as other:  # another worker moves it
        store.activate(other, "demo", 2)
    store.activate(session, "demo", 1)  # must really move it back, not trust the cached row
    assert held.version == 1
    with factory() as fresh:
        assert store.live_version(fresh, "demo").version == 1  # type: ignore[union-attr]
    assert store.save_version(session, "demo", DEMO_2, created_by="api").live is False
