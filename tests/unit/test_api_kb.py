"""The knowledge base through the store, the CLI and the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.engine import KnowledgeBot
from bot.knowledge import parse
from callcenter_api import kb_store
from callcenter_api.app import create_app
from callcenter_api.kb_sync import KnowledgeSync

TOKEN = "kb-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KB = Path(__file__).resolve().parents[2] / "bot" / "examples" / "northwind_kb.yaml"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SMALL = """\
entries:
  - id: opening-hours
    language: en
    questions: ["What are your opening hours?", "When is the hotline open?"]
    answer: Monday to Friday, 8 am to 8 pm.
    tags: [hotline]
  - id: pay-bill
    language: en
    questions: ["How do I pay my bill?"]
    answer: In the app, by card.
    tags: [billing]
"""


def test_import_is_idempotent_and_replace_deletes(session_factory: sessionmaker[Session]) -> None:
    entries = parse(SMALL)
    with session_factory() as s, s.begin():
        first = kb_store.import_entries(s, entries, now=NOW)
    with session_factory() as s, s.begin():
        again = kb_store.import_entries(s, entries, now=NOW)
    assert (first.created, first.revision) == (["opening-hours", "pay-bill"], 1)
    assert (again.created, again.updated, again.unchanged, again.revision) == ([], [], ["opening-hours", "pay-bill"], 1)
    with session_factory() as s, s.begin():
        replaced = kb_store.import_entries(s, entries[:1], replace=True, now=NOW)
    assert (replaced.deleted, replaced.revision) == (["pay-bill"], 2)
    with session_factory() as s:
        assert [e.id for e in kb_store.entries(s)] == ["opening-hours"]


def test_the_shipped_file_round_trips_through_the_database(session_factory: sessionmaker[Session]) -> None:
    entries = parse(KB.read_text(encoding="utf-8"))
    with session_factory() as s, s.begin():
        kb_store.import_entries(s, entries, now=NOW)
    with session_factory() as s:
        stored = kb_store.entries(s)
    assert {e.id: e for e in stored} == {e.id: e for e in entries}


def test_sync_rebuilds_when_another_writer_changes_the_revision(session_factory: sessionmaker[Session]) -> None:
    bot = KnowledgeBot()
    sync = KnowledgeSync(bot, session_factory)
    assert sync.load_now() == 0 and not bot.index.entries
    with session_factory() as s, s.begin():
        kb_store.import_entries(s, parse(SMALL), now=NOW)
    assert sync._changed()
    sync.load_now()
    assert set(bot.index.entries) == {"opening-hours", "pay-bill"} and bot.revision == 1


# ---- the CLI (a real subprocess, a real SQLite file) ------------------------------------------------------


def hotline(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline", "kb", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_cli_import_export_and_ask(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kb.db'}"
    imported = hotline("import", str(KB), "--db", db)
    assert imported.returncode == 0, imported.stderr
    assert "101 created" in imported.stdout
    assert "0 created, 0 updated, 101 unchanged" in hotline("import", str(KB), "--db", db).stdout
    exported = hotline("export", "--db", db)
    assert {e.id for e in parse(exported.stdout)} == {e.id for e in parse(KB.read_text(encoding="utf-8"))}
    one = json.loads(hotline("ask", "What are your opening hours?", "--json", "--db", db).stdout)
    assert one["entry_id"] == "opening-hours" and one["answer"] and one["handoff"] is False
    batch = hotline("ask", "--db", db, stdin="What are your opening hours?\n转人工\nwho won the cricket\n")
    answers = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [a["entry_id"] for a in answers] == ["opening-hours", None, None]
    assert [a["handoff"] for a in answers] == [False, True, False]
    assert set(answers[0]) == {"entry_id", "answer", "confidence", "handoff"}


def test_cli_bad_file_reports_located_problems_and_imports_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kb.db'}"
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL + "  - id: broken\n    language: en\n    questions: [x]\n")
    result = hotline("import", str(bad), "--db", db)
    assert result.returncode == 1
    assert f"{bad}:12:5: entry is missing 'answer'" in result.stderr
    assert "nothing imported" in result.stderr
    assert hotline("export", "--db", db).stdout.strip() == "entries: []"


# ---- HTTP -----------------------------------------------------------------------------------------------


@pytest.fixture
async def client(session_factory: sessionmaker[Session]) -> AsyncIterator[httpx.AsyncClient]:
    bot = KnowledgeBot()
    sync = KnowledgeSync(bot, session_factory)
    app = create_app(session_factory=session_factory, admin_token=TOKEN, bot=bot, kb_sync=sync)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hotline") as c:
        yield c


async def test_api_import_then_ask_then_edit(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/kb/import", content=SMALL, headers={**AUTH, "content-type": "application/yaml"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == ["opening-hours", "pay-bill"]
    asked = await client.post("/api/v1/kb/ask", json={"text": "When is the hotline open?"}, headers=AUTH)
    assert asked.json()["entry_id"] == "opening-hours"
    changed = {"language": "en", "questions": ["When is the hotline open?"], "answer": "Always.", "tags": []}
    assert (await client.put("/api/v1/kb/entries/opening-hours", json=changed, headers=AUTH)).status_code == 200
    asked = await client.post("/api/v1/kb/ask", json={"text": "When is the hotline open?"}, headers=AUTH)
    assert asked.json()["answer"] == "Always."  # the bot was refreshed by the write
    assert (await client.delete("/api/v1/kb/entries/opening-hours", headers=AUTH)).status_code == 204
    assert (await client.get("/api/v1/kb/entries/opening-hours", headers=AUTH)).status_code == 404
    asked = await client.post("/api/v1/kb/ask", json={"text": "When is the hotline open?"}, headers=AUTH)
    assert asked.json()["entry_id"] is None


async def test_api_bad_requests_get_clear_4xx(client: httpx.AsyncClient) -> None:
    bad = await client.post(
        "/api/v1/kb/import", content="entries:\n  - id: a\n", headers={**AUTH, "content-type": "text/yaml"}
    )
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["line"] == 2 and "missing" in bad.json()["problems"][0]["message"]
    assert (
        await client.post("/api/v1/kb/import", content="x", headers={**AUTH, "content-type": "image/png"})
    ).status_code == 415
    entry = {"id": "x", "language": "en", "questions": ["q"], "answer": "a"}
    assert (await client.post("/api/v1/kb/entries", json=entry, headers=AUTH)).status_code == 201
    assert (await client.post("/api/v1/kb/entries", json=entry, headers=AUTH)).status_code == 409
    assert (
        await client.post("/api/v1/kb/entries", json={**entry, "id": "y", "langage": "en"}, headers=AUTH)
    ).status_code == 422
    assert (
        await client.post("/api/v1/kb/entries", json={**entry, "id": "z", "language": "fr"}, headers=AUTH)
    ).status_code == 422
    assert (await client.get("/api/v1/kb/entries")).status_code == 401
    exported = await client.get("/api/v1/kb/export", headers=AUTH)
    assert exported.headers["content-type"].startswith("application/yaml")
    assert [e.id for e in parse(exported.text)] == ["x"]
