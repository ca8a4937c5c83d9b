"""Helpers for running the store against a throwaway PostgreSQL schema (tests, benchmarks, e2e).

Each run gets its own schema, selected through the connection's search_path, so parallel runs and
leftovers from a crashed run never collide, and dropping the schema removes everything.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import URL

from callcenter_api.db import make_engine, normalize_url

# Override to point the PostgreSQL tests at another server.
PG_URL_ENV = "HOTLINE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_test_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def pg_unreachable_reason(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be tried, or None if its port answers.

    Only an unreachable server (or a missing driver) counts: a reachable server that refuses the
    login is a broken setup, and the tests should fail on it rather than skip.
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    u = normalize_url(url)
    if u.host is None:  # Unix socket: the driver is the only way to know
        return None
    try:
        socket.create_connection((u.host, u.port or 5432), timeout=3).close()
    except OSError as exc:
        return f"PostgreSQL unreachable at {u.host}:{u.port or 5432}: {exc}"
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
