"""Call-record storage: migrations, engine settings and the CallLog writer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.call_log import CallLog
from callcenter_api.call_ops import caller_number, new_call_id
from callcenter_api.db import alembic_config, make_engine, make_session_factory, migrate
from callcenter_api.models import Base, Call, CallEvent

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def call_log(session_factory: sessionmaker[Session]) -> Iterator[CallLog]:
    log = CallLog(session_factory)
    log.start()
    yield log
    log.close()


class Gate:
    """Holds the writer thread inside its next commit until opened, to control what forms a batch."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()
        self._armed = True
        # Safety valve: a broken test must not hang the run.
        self._valve = threading.Timer(20, self._open.set)
        self._valve.start()
        event.listen(factory, "before_commit", self._hold)

    def _hold(self, _session: Session) -> None:
        if self._armed:
            self._armed = False
            self.entered.set()
            self._open.wait()

    def open(self) -> None:
        self._open.set()
        self._valve.cancel()


def start_call(log: CallLog, *, at: datetime = T0, from_uri: str = "sip:+15550001@198.51.100.7") -> str:
    call_id = new_call_id()
    log.call_started(
        call_id,
        sip_call_id=f"{call_id[:8]}@198.51.100.7",
        from_uri=from_uri,
        to_uri="sip:hotline@203.0.113.1",
        at=at,
        remote_media="198.51.100.7:40000",
    )
    return call_id


def events_of(factory: sessionmaker[Session], call_id: str) -> list[tuple[int, str, str]]:
    with factory() as s:
        rows = s.execute(
            select(CallEvent.seq, CallEvent.type, CallEvent.value)
            .where(CallEvent.call_id == call_id)
            .order_by(CallEvent.seq)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def count(factory: sessionmaker[Session], model: type[Base]) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


# -- schema and engine -----------------------------------------------------------------------------------


def test_migration_creates_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head


def test_migrate_twice_is_harmless(db_url: str | URL, engine: Engine) -> None:
    migrate(db_url)
    assert {"calls", "call_events", "alembic_version"} <= set(inspect(engine).get_table_names())


def test_sqlite_relative_path_pragmas_and_parent_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine("sqlite:///var/db/hotline.db")
    try:
        assert engine.url.database == str(tmp_path / "var" / "db" / "hotline.db")
        monkeypatch.chdir(REPO)  # a later chdir must not move the database
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        engine.dispose()
    assert (tmp_path / "var" / "db" / "hotline.db").is_file()


def test_alembic_cli_with_shipped_ini(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    ini = REPO / "callcenter_api" / "alembic.ini"
    cmd = [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url=sqlite:///{db}", "upgrade", "head"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert {"calls", "call_events"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_utc_and_naive_ones_are_refused(
    session_factory: sessionmaker[Session],
) -> None:
    local = datetime(2025, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    with session_factory.begin() as s:
        s.add(Call(id="a" * 32, sip_call_id="x", from_uri="sip:a@b", to_uri="sip:c@d", started_at=local))
    with session_factory() as s:
        started = s.get_one(Call, "a" * 32).started_at
    assert started == local and started.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive"), session_factory.begin() as s:
        s.add(Call(id="b" * 32, sip_call_id="y", from_uri="u", to_uri="v", started_at=datetime(2025, 1, 1)))


# -- the writer ------------------------------------------------------------------------------------------


async def test_call_is_written_as_it_happens(
    call_log: CallLog, session_factory: sessionmaker[Session]
) -> None:
    call_id = start_call(call_log, from_uri='"Ann" <sip:+15551234@198.51.100.7>;tag=9f')
    call_log.call_answered(call_id, at=t(0.2), codec="PCMU")
    call_log.call_updated(call_id, flow="main@1")
    call_log.event(call_id, "prompt", "greeting", at=t(0.3))
    call_log.event(call_id, "dtmf", "1", at=t(4))
    await call_log.flush()

    with session_factory() as s:
        call = s.get_one(Call, call_id)
        assert (call.answered_at, call.codec, call.flow) == (t(0.2), "PCMU", "main@1")
        assert call.caller_number == "+15551234"
        assert call.ended_at is None and call.end_reason is None
    assert events_of(session_factory, call_id) == [(0, "prompt", "greeting"), (1, "dtmf", "1")]

    call_log.event(call_id, "state", "transfer", at=t(5))
    call_log.call_ended(call_id, at=t(9), reason="caller hung up")
    await call_log.flush()
    with session_factory() as s:
        call = s.get_one(Call, call_id)
        assert (call.ended_at, call.end_reason) == (t(9), "caller hung up")
    assert [e[0] for e in events_of(session_factory, call_id)] == [0, 1, 2]


async def test_thousand_events_from_fifty_calls_all_land_in_order(
    call_log: CallLog, session_factory: sessionmaker[Session]
) -> None:
    calls = [start_call(call_log, at=t(i)) for i in range(50)]
    for n in range(20):
        for i, call_id in enumerate(calls):
            call_log.event(call_id, "dtmf", f"{i}:{n}", at=t(60 + n))
    for call_id in calls:
        call_log.call_ended(call_id, at=t(120), reason="bye")
    await asyncio.wait_for(call_log.flush(), 30)

    assert count(session_factory, CallEvent) == 1000
    for i, call_id in enumerate(calls):
        assert events_of(session_factory, call_id) == [(n, "dtmf", f"{i}:{n}") for n in range(20)]
    assert call_log.failed_ops == 0
    assert call_log.written_ops == 50 + 1000 + 50


async def test_enqueue_never_waits_for_the_database_and_batches_what_piled_up(
    engine: Engine,
) -> None:
    factory = make_session_factory(engine)
    gate = Gate(factory)
    log = CallLog(factory)
    log.start()
    try:
        first = start_call(log)
        assert gate.entered.wait(10), "writer never reached its first commit"

        began = time.perf_counter()
        calls = [start_call(log) for _ in range(50)]
        for n in range(20):
            for call_id in calls:
                log.event(call_id, "dtmf", str(n % 10), at=t(n))
        elapsed = time.perf_counter() - began
        # The writer is stuck in a commit, so had any call waited for it we would not be here yet.
        assert elapsed < 5
        assert log.pending >= 1050
        assert count(factory, CallEvent) == 0

        flushed = asyncio.ensure_future(log.flush())
        for _ in range(5):  # the event loop keeps running while flush() waits for the held writer
            await asyncio.sleep(0.001)
        assert not flushed.done()
        gate.open()
        await asyncio.wait_for(flushed, 30)
    finally:
        log.close()

    assert count(factory, CallEvent) == 1000
    assert count(factory, Call) == 51
    with factory() as s:
        assert s.get(Call, first) is not None
    # first batch: the lone call_started; second: everything that queued up behind it
    assert log.batches == 2


async def test_close_drains_the_queue(
    session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    log = CallLog(session_factory)
    log.start()
    call_id = start_call(log)
    for n in range(300):
        log.event(call_id, "prompt", f"p{n}", at=t(n))
    log.call_ended(call_id, at=t(400), reason="bye")
    log.close(timeout=30)

    assert count(session_factory, CallEvent) == 300
    with session_factory() as s:
        assert s.get_one(Call, call_id).end_reason == "bye"

    with caplog.at_level(logging.WARNING, logger="callcenter_api.call_log"):
        log.event(call_id, "prompt", "too late", at=t(500))  # must not raise on the call path
    assert "dropped" in caplog.text and "too late" in caplog.text
    with pytest.raises(RuntimeError):
        log.flush_sync(1)
    log.close()  # idempotent
    assert count(session_factory, CallEvent) == 300


async def test_aclose_drains_without_blocking_the_loop(session_factory: sessionmaker[Session]) -> None:
    log = CallLog(session_factory)
    log.start()
    call_id = start_call(log)
    for n in range(200):
        log.event(call_id, "dtmf", str(n % 10), at=t(n))
    await asyncio.wait_for(log.aclose(timeout=30), 30)
    assert count(session_factory, CallEvent) == 200


def test_close_without_start_still_writes(session_factory: sessionmaker[Session]) -> None:
    log = CallLog(session_factory)
    call_id = start_call(log)
    log.event(call_id, "dtmf", "5", at=t(1))
    log.close(timeout=30)
    assert events_of(session_factory, call_id) == [(0, "dtmf", "5")]


async def test_bad_operations_are_logged_and_the_rest_of_the_batch_lands(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    factory = make_session_factory(engine)
    gate = Gate(factory)
    log = CallLog(factory)
    log.start()
    caplog.set_level(logging.WARNING, logger="callcenter_api.call_log")
    try:
        good = start_call(log)
        assert gate.entered.wait(10)
        ghost = new_call_id()
        log.event(good, "dtmf", "1", at=t(1))
        log.event(ghost, "dtmf", "9", at=t(1))  # foreign key violation
        log.call_answered(ghost, at=t(1), codec="PCMA")  # updates nothing
        log.call_started(
            good, sip_call_id="dup", from_uri="sip:a@b", to_uri="sip:c@d", at=t(1)
        )  # duplicate key
        log.event(good, "dtmf", "2", at=t(2))
        gate.open()
        await asyncio.wait_for(log.flush(), 30)

        assert events_of(factory, good) == [(0, "dtmf", "1"), (1, "dtmf", "2")]
        assert log.failed_ops == 3
        assert "retrying one by one" in caplog.text
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 3
        assert sum(ghost in m for m in errors) == 2 and any("'dup'" in m for m in errors)

        log.event(good, "dtmf", "3", at=t(3))  # the writer is still alive
        await asyncio.wait_for(log.flush(), 30)
        assert events_of(factory, good)[-1] == (2, "dtmf", "3")
    finally:
        log.close()
    assert count(factory, CallEvent) == 3


async def test_connection_error_retries_the_whole_batch(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    factory = make_session_factory(engine)
    failures = [2]

    def flaky(_session: Session) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    event.listen(factory, "before_commit", flaky)
    log = CallLog(factory, retry_delays=(0.01, 0.01, 0.01))
    log.start()
    caplog.set_level(logging.WARNING, logger="callcenter_api.call_log")
    try:
        call_id = start_call(log)
        log.event(call_id, "dtmf", "7", at=t(1))
        await asyncio.wait_for(log.flush(), 30)
    finally:
        log.close()
    assert failures == [0]
    assert events_of(factory, call_id) == [(0, "dtmf", "7")]
    assert log.failed_ops == 0
    assert "database unavailable" in caplog.text and "one by one" not in caplog.text


async def test_late_events_continue_the_sequence(
    call_log: CallLog, session_factory: sessionmaker[Session]
) -> None:
    call_id = start_call(call_log)
    call_log.event(call_id, "dtmf", "1", at=t(1))
    call_log.call_ended(call_id, at=t(2), reason="bye")
    call_log.event(call_id, "state", "after-end-1", at=t(3))
    call_log.event(call_id, "state", "after-end-2", at=t(3))
    await call_log.flush()

    restarted = CallLog(session_factory)  # a new process writing to a call it did not start
    restarted.start()
    restarted.event(call_id, "state", "after-restart", at=t(4))
    restarted.close()
    assert [(seq, value) for seq, _, value in events_of(session_factory, call_id)] == [
        (0, "1"),
        (1, "after-end-1"),
        (2, "after-end-2"),
        (3, "after-restart"),
    ]


def test_argument_mistakes_raise_at_the_call_site(session_factory: sessionmaker[Session]) -> None:
    log = CallLog(session_factory)
    call_id = new_call_id()
    with pytest.raises(ValueError, match="timezone-aware"):
        log.event(call_id, "dtmf", "1", at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="32 lowercase hex"):
        log.call_started("not-a-uuid", sip_call_id="x", from_uri="a", to_uri="b", at=T0)
    with pytest.raises(TypeError, match="cannot update"):
        log.call_updated(call_id, started_at=T0)
    with pytest.raises(ValueError, match="event type"):
        log.event(call_id, "x" * 33, "v", at=T0)
    with pytest.raises(TypeError):
        log.event(call_id, "dtmf", 1, at=T0)  # type: ignore[arg-type]
    assert log.pending == 0


@pytest.mark.parametrize(
    ("from_uri", "number"),
    [
        ("sip:+15551234@pbx.example", "+15551234"),
        ('"Ann Lee" <sips:1001@pbx.example:5061;transport=tls>;tag=abc', "1001"),
        ("<sip:0612345678;phone-context=+33@gw>", "0612345678"),
        ("tel:+4930123456;phone-context=+49", "+4930123456"),
        ("sip:pbx.example", None),
        ("mailto:someone@example.org", None),
        ("sip:@host", None),
    ],
)
def test_caller_number_is_the_user_part(from_uri: str, number: str | None) -> None:
    assert caller_number(from_uri) == number
