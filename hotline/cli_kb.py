"""`hotline kb ...`: the knowledge base the bot answers from, on voice and chat.

    hotline kb import FILE [--replace]       validate the whole file (file:line:column), then upsert
    hotline kb export [--language zh]        the same format on stdout
    hotline kb ask "TEXT" [--json]           what the bot would answer; no TEXT: one question per stdin line

All take `--db` like `hotline serve` (default sqlite:///./hotline.db, or HOTLINE_DB) and work while the
service runs: it notices the new revision within a second.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from bot.engine import KnowledgeBot
from bot.interface import BotAnswer, BotRequest
from bot.knowledge import LANGUAGES, KnowledgeFileError, dump, parse
from bot.text import detect_language
from callcenter_api import kb_store
from callcenter_api.kb_sync import KnowledgeSync
from hotline.cli_db import db_option, open_sessions


@click.group(help="Knowledge base: import, export, and ask the bot.")
def kb() -> None:
    pass


@kb.command("import", help="Import a knowledge file (YAML, `entries:`); nothing is written if any entry is bad.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Delete entries that are not in the file.")
@db_option
def import_(file: Path, replace: bool, db: str) -> None:
    try:
        entries = parse(file.read_text(encoding="utf-8"), str(file))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file}: not UTF-8 text ({exc.reason})") from None
    except KnowledgeFileError as exc:
        click.echo(str(exc), err=True)
        click.echo(f"{len(exc.problems)} problem(s); nothing imported", err=True)
        sys.exit(1)
    factory = open_sessions(db)
    with factory() as session, session.begin():
        report = kb_store.import_entries(session, entries, replace=replace, now=datetime.now(UTC))
    click.echo(f"{file}: {len(entries)} entries: {report.summary()}")


@kb.command(help="Print the knowledge base in the import format.")
@click.option("--language", type=click.Choice(LANGUAGES), help="Only entries in this language.")
@db_option
def export(language: str | None, db: str) -> None:
    factory = open_sessions(db)
    with factory() as session:
        entries = kb_store.entries(session, language=language)
    click.echo(dump(entries), nl=False)


def _json(answer: BotAnswer) -> str:
    return json.dumps(
        {"entry_id": answer.entry_id, "answer": answer.answer, "confidence": round(answer.confidence, 3),
         "handoff": answer.handoff},
        ensure_ascii=False,
    )  # fmt: skip


@kb.command(help="Ask the bot as a caller would. Without TEXT: one question per line of stdin, one JSON per line.")
@click.argument("text", required=False)
@click.option("--language", type=click.Choice(LANGUAGES), help="[detected: zh for Chinese text, else en]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (always on for stdin questions).")
@db_option
def ask(text: str | None, language: str | None, as_json: bool, db: str) -> None:
    bot = KnowledgeBot()
    revision = KnowledgeSync(bot, open_sessions(db)).load_now()
    if not bot.index.entries:
        click.echo(f"warning: the knowledge base in {db} is empty (revision {revision}); import one first", err=True)
    if text is None:
        for line in sys.stdin:
            question = line.strip()
            if question:
                lang = language or detect_language(question)
                click.echo(_json(bot.answer(BotRequest(question, lang, None, "chat"))))
        return
    answer = bot.answer(BotRequest(text, language or detect_language(text), None, "chat"))
    if as_json:
        click.echo(_json(answer))
    elif answer.handoff:
        click.echo("handoff: the caller asked for a person")
    elif answer.entry_id:
        click.echo(f"{answer.entry_id} ({answer.confidence:.2f}): {answer.answer}")
    else:
        alternatives = "; ".join(f"{s.entry_id}: {s.question}" for s in answer.suggestions)
        close = f"; close: {alternatives}" if alternatives else ""
        click.echo(f"no confident answer ({answer.confidence:.2f}){close}")
