"""Engines, sessions and schema migrations for the call-center store.

SQLite is the embedded default and PostgreSQL the multi-node store (design.md); both go through here so the
connection settings that make concurrent use safe are applied in one place.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# How long a SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


def normalize_url(url: str | URL) -> URL:
    """Return the URL the engine will really use.

    A bare ``postgresql://`` would pick psycopg2, which we do not ship; psycopg 3 is the supported driver.
    A relative SQLite path is resolved against the current directory now, so a later ``chdir`` (or a
    different working directory for the writer thread's pool) cannot point at another file.
    """
    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite" and _is_sqlite_file(u):
        u = u.set(database=str(Path(u.database or "").expanduser().resolve()))
    return u


def _is_sqlite_file(u: URL) -> bool:
    db = u.database or ""
    return db not in ("", ":memory:") and not db.startswith("file:") and u.query.get("uri") is None


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite, turn on WAL, foreign keys and a busy timeout on every connection.

    WAL lets the API read while the call log writes; foreign keys are off by default in SQLite and we rely
    on them so a bad event row is rejected rather than orphaned. Parent directories of a SQLite file are
    created so a fresh install starts without manual steps.
    """
    u = normalize_url(url)
    backend = u.get_backend_name()
    if backend != "sqlite" or _is_sqlite_file(u):
        # As many connections as callcenter_api.limits admits requests, so none waits for one.
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 22)
    if backend == "sqlite":
        if _is_sqlite_file(u):
            Path(u.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(u, **kwargs)


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # NORMAL is durable across application crashes in WAL mode and much cheaper than FULL.
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so results can be used after the session ends."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config built in code, so running migrations never depends on an ini file on disk."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolation would eat a '%' in a password.
        rendered = normalize_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def migrate(url: str | URL) -> None:
    """Bring the database at `url` to the newest schema (``alembic upgrade head``)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    log.info("database schema is current: %s", make_url(url).render_as_string(hide_password=True))
