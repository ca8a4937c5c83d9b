"""hotline: callcenter_api — call records, their storage and the HTTP API.

Entry points: `db.make_engine` / `db.migrate` / `db.make_session_factory` for the store, `call_log.CallLog`
for the live call path's writes, `app.create_app` for the FastAPI application.
"""
