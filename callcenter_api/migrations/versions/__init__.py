"""Alembic revisions, applied in order by `callcenter_api.db.migrate`."""
