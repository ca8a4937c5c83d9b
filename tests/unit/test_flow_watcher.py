"""Hot reload from the flows directory: valid changes go live; invalid ones are reported, change nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api import flow_store as store
from callcenter_api.db import make_session_factory
from hotline.flow_watcher import FlowWatcher, start_flows
from ivr_flows.registry import FlowRegistry

DEMO = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hi\n"
DEMO_2 = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hello again\n"
DEMO_3 = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Third time\n"
BROKEN = "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hi\n    nxt: x\n"


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "flows"
    directory.mkdir()
    return directory


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def live_version(registry: FlowRegistry, name: str = "demo") -> int | None:
    live = registry.live(name)
    return None if live is None else live.version


def db_live(factory: sessionmaker[Session], name: str = "demo") -> int | None:
    with factory() as session:
        row = store.live_version(session, name)
        return None if row is None else row.version


def said(registry: FlowRegistry) -> object:
    live = registry.live("demo")
    assert live is not None
    return live.flow.nodes["hello"].say.text  # type: ignore[attr-defined]


async def test_change_break_fix(
    factory: sessionmaker[Session], flows_dir: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    path = flows_dir / "demo.yaml"
    path.write_text(DEMO)
    registry, watcher = await start_flows(flows_dir, factory)  # a fresh database
    assert live_version(registry) == 1 and db_live(factory) == 1
    assert f"flow demo@1 is live (from {path})" in caplog_info.text

    path.write_text(DEMO_2)
    assert watcher.sync_once() == ["demo@2"]
    assert live_version(registry) == 2 and db_live(factory) == 2 and said(registry) == "Hello again"
    running_call = registry.live("demo")

    caplog_info.clear()
    path.write_text(BROKEN)
    assert watcher.sync_once() == []
    assert live_version(registry) == 2 and db_live(factory) == 2
    errors = [r.getMessage() for r in caplog_info.records if r.levelno == logging.ERROR]
    assert f"{path}:6:5: unknown key 'nxt'" in errors
    assert any("demo@2 stays live" in message for message in errors)
    assert watcher.sync_once() == []  # reported once, not on every poll
    assert sum(f"{path}:6:5" in r.getMessage() for r in caplog_info.records) == 1

    path.write_text(DEMO_3)
    assert watcher.sync_once() == ["demo@3"]
    assert live_version(registry) == 3 and said(registry) == "Third time"
    assert running_call is not None and running_call.version == 2  # untouched by later activations
    with factory() as session:
        rows = store.list_versions(session, "demo")
    assert [(r.version, r.created_by) for r in rows] == [(v, f"hot-reload:{path}") for v in (1, 2, 3)]


async def test_revert_to_live_text_changes_nothing(factory: sessionmaker[Session], flows_dir: Path) -> None:
    path = flows_dir / "demo.yaml"
    path.write_text(DEMO)
    registry, watcher = await start_flows(flows_dir, factory)
    path.write_text(BROKEN)
    watcher.sync_once()
    path.write_text(DEMO)
    assert watcher.sync_once() == ["demo@1"]
    assert live_version(registry) == 1
    with factory() as session:
        assert len(store.list_versions(session, "demo")) == 1


async def test_restart_keeps_versions_and_api_flows(factory: sessionmaker[Session], flows_dir: Path) -> None:
    (flows_dir / "demo.yaml").write_text(DEMO)
    await start_flows(flows_dir, factory)
    with factory() as session:  # a flow that only exists through the API
        store.save_version(session, "other", DEMO.replace("demo", "other"), created_by="api", activate=True)

    registry, _ = await start_flows(flows_dir, factory)  # restart, same files
    assert live_version(registry) == 1 and live_version(registry, "other") == 1
    with factory() as session:
        assert len(store.list_versions(session, "demo")) == 1

    (flows_dir / "demo.yaml").write_text(DEMO_2)  # edited while the service was down
    registry, _ = await start_flows(flows_dir, factory)
    assert live_version(registry) == 2 and registry.versions("demo") == [1, 2]


async def test_same_size_same_mtime_change_is_seen(factory: sessionmaker[Session], flows_dir: Path) -> None:
    path = flows_dir / "demo.yaml"
    path.write_text(DEMO)
    before = path.stat()
    registry, watcher = await start_flows(flows_dir, factory)
    path.write_text(DEMO.replace("Hi", "Yo"))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    assert watcher.sync_once() == ["demo@2"]
    assert said(registry) == "Yo"


async def test_settled_files_are_not_read_again(
    factory: sessionmaker[Session], flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = flows_dir / "demo.yaml"
    path.write_text(DEMO)
    old = time.time() - 60
    os.utime(path, (old, old))
    _, watcher = await start_flows(flows_dir, factory)
    reads: list[Path] = []
    original = FlowWatcher._read

    def counting(self: FlowWatcher, p: Path) -> tuple[tuple[int, int], str] | None:
        reads.append(p)
        return original(self, p)

    monkeypatch.setattr(FlowWatcher, "_read", counting)
    assert watcher.sync_once() == [] and reads == []
    os.utime(path)  # touched: read and hashed, but nothing changed
    assert watcher.sync_once() == [] and reads == [path]


async def test_duplicate_flow_names(
    factory: sessionmaker[Session], flows_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = flows_dir / "a.yaml", flows_dir / "b.yaml"
    first.write_text(DEMO)
    second.write_text(DEMO_2)
    registry, watcher = await start_flows(flows_dir, factory)
    assert live_version(registry) == 1 and said(registry) == "Hi"
    assert f"{second}: flow 'demo' is already provided by {first}; this file is ignored" in caplog.text
    second.write_text(DEMO_3)  # still a duplicate
    assert watcher.sync_once() == [] and live_version(registry) == 1
    first.unlink()  # the name is free: b.yaml gets its turn
    assert watcher.sync_once() == ["demo@2"]
    assert said(registry) == "Third time"


async def test_subflows_across_files(factory: sessionmaker[Session], flows_dir: Path) -> None:
    # `main` is read before `sub`; the linter must still know `sub` exists.
    (flows_dir / "main.yaml").write_text("flow: main\nstart: a\nnodes:\n  a:\n    subflow: sub\n")
    (flows_dir / "sub.yaml").write_text("flow: sub\nstart: x\nnodes:\n  x:\n    say: sub\n")
    (flows_dir / "typo.yaml").write_text("flow: typo\nstart: a\nnodes:\n  a:\n    subflow: sbu\n")
    registry, _ = await start_flows(flows_dir, factory)
    assert live_version(registry, "main") == 1 and live_version(registry, "sub") == 1
    assert live_version(registry, "typo") is None


async def test_unreadable_and_missing(
    factory: sessionmaker[Session], flows_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = flows_dir / "latin1.yaml"
    bad.write_bytes(b"flow: d\xe9mo\n")
    (flows_dir / "notes.txt").write_text("not a flow")
    (flows_dir / ".demo.yaml.swp").write_text("editor swap file")
    registry, watcher = await start_flows(flows_dir, factory)
    assert registry.names() == []
    assert f"{bad}:1:1: cannot read file" in caplog.text
    bad.write_text(DEMO)
    assert watcher.sync_once() == ["demo@1"]

    missing = FlowWatcher(tmp_path / "nope", FlowRegistry(), factory)
    assert missing.sync_once() == [] and "cannot be read" in caplog.text


async def test_run_polls_without_blocking_the_loop(factory: sessionmaker[Session], flows_dir: Path) -> None:
    path = flows_dir / "demo.yaml"
    path.write_text(DEMO)
    registry, watcher = await start_flows(flows_dir, factory, interval=0.05)
    task = asyncio.create_task(watcher.run())
    ticks = 0
    try:
        path.write_text(DEMO_2)
        deadline = time.monotonic() + 10
        while live_version(registry) != 2:
            assert time.monotonic() < deadline, "the change was not picked up"
            await asyncio.sleep(0.01)
            ticks += 1
    finally:
        watcher.stop()
        await asyncio.wait_for(task, 5)
    assert ticks > 0  # the loop kept running while the watcher worked


async def test_a_database_failure_is_retried_on_the_next_pass(
    factory: sessionmaker[Session],
    flows_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = flows_dir / "demo.yaml"
    path.write_text(DEMO)
    registry, watcher = await start_flows(flows_dir, factory)
    real = store.store_checked
    failures = [OperationalError("INSERT", {}, Exception("database is down"))]

    def flaky(*args: Any, **kwargs: Any) -> store.SavedVersion:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "store_checked", flaky)
    path.write_text(DEMO_2)
    assert watcher.sync_once() == []
    assert live_version(registry) == 1 and "could not store flow demo; will retry" in caplog.text
    assert watcher.sync_once() == ["demo@2"]
    assert live_version(registry) == 2 and db_live(factory) == 2
