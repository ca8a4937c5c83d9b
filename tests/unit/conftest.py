"""Shared fixtures for the storage tests: every test that takes `engine` runs on SQLite and on PostgreSQL.

PostgreSQL runs on this machine (127.0.0.1:5432; `HOTLINE_TEST_PG_URL` to use another); each test gets a
throwaway schema. Only an unreachable server skips the PostgreSQL variant — a refused login fails it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.db import make_engine, make_session_factory, migrate
from callcenter_api.testing import pg_test_url, pg_unreachable_reason, scratch_pg_schema


@functools.cache
def _pg_skip_reason() -> str | None:
    return pg_unreachable_reason(pg_test_url())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | URL]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.db'}"
        return
    reason = _pg_skip_reason()
    if reason:
        pytest.skip(reason)
    with scratch_pg_schema(pg_test_url()) as url:
        yield url


@pytest.fixture
def engine(db_url: str | URL) -> Iterator[Engine]:
    migrate(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
