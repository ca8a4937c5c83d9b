"""Alembic environment for the call-center store; run through `callcenter_api.db.migrate`."""
