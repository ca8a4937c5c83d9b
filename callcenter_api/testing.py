"""Helpers for running the store against a throwaway PostgreSQL schema (tests, benchmarks, e2e).

Each run gets its own schema, selected through the connection's search_path, so parallel runs and
leftovers from a crashed run never collide, and dropping the schema removes everything.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from callcenter_api.db import make_engine, normalize_url

# Override to point the PostgreSQL tests at another server.
PG_URL_ENV = "HOTLINE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_test_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def pg_unreachable_reason(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None if it answers. Only connection problems count."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    engine = make_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"PostgreSQL unreachable at {normalize_url(url).render_as_string()}: {exc.__class__.__name__}"
    finally:
        engine.dispose()
    return None


@contextmanager
def scratch_pg_schema(url: str) -> Iterator[URL]:
    """Create an empty schema, yield a URL whose connections use it, then drop it with everything in it."""
    schema = f"hotline_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        base = normalize_url(url)
        yield base.update_query_dict({"options": f"-csearch_path={schema}"})
    finally:
        try:
            with admin.begin() as conn:
                # A connection left open in the schema would make DROP wait forever; fail loudly instead.
                conn.execute(text("SET LOCAL lock_timeout = '15s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()
