"""The `--db` option and database opening shared by the offline commands (`kb`, `users`, `recordings`).

They take the same URL as `hotline serve` and may run while it does; each opens (and migrates) the database
itself so a command works on a fresh file too.
"""

from __future__ import annotations

import click
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.db import make_engine, make_session_factory, migrate
from hotline.settings import Settings

DEFAULT_DB = Settings.model_fields["db"].default

db_option = click.option(
    "--db", envvar="HOTLINE_DB", default=DEFAULT_DB, show_default=True, help="SQLAlchemy URL (env HOTLINE_DB)."
)


def open_sessions(db: str) -> sessionmaker[Session]:
    """Sessions on `db`, migrated to the current schema; a clear error (not a traceback) if it cannot open."""
    try:
        migrate(db)
    except Exception as exc:
        raise click.ClickException(f"cannot open database {db}: {exc}") from None
    return make_session_factory(make_engine(db))
