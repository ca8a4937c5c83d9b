"""The knowledge base over HTTP (supervisors): entries CRUD, file import/export, and asking the bot.

Every write bumps the knowledge revision; the running bot rebuilds its index right after the request (and
other workers within a second), so an edited answer is what the next caller hears.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from bot.interface import BotRequest
from bot.knowledge import KnowledgeEntry, KnowledgeFileError, dump, parse
from bot.text import detect_language
from callcenter_api import kb_store
from callcenter_api.deps import SessionDep
from callcenter_api.routes.bodies import read_yaml_body
from callcenter_api.schemas import ErrorOut
from callcenter_api.schemas.kb import (
    AskIn,
    AskOut,
    EntryCreate,
    EntryIn,
    EntryOut,
    ImportOut,
    KbInvalidOut,
    KbProblemOut,
    SuggestionOut,
)

MAX_KB_BYTES = 20_000_000

router = APIRouter(prefix="/kb", tags=["knowledge"])
NOT_FOUND = {status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "No such entry."}}


def _now() -> datetime:
    return datetime.now(UTC)


def _out(entry: KnowledgeEntry) -> EntryOut:
    return EntryOut(
        id=entry.id, language=entry.language, questions=list(entry.questions), answer=entry.answer,
        tags=list(entry.tags), enabled=entry.enabled,
    )  # fmt: skip


def _entry(entry_id: str, body: EntryIn) -> KnowledgeEntry:
    questions = tuple(dict.fromkeys(q.strip() for q in body.questions if q.strip()))
    if not questions:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="questions must not be empty")
    return KnowledgeEntry(
        entry_id, body.language, questions, body.answer.strip(), tuple(dict.fromkeys(body.tags)), body.enabled
    )


async def _refresh(request: Request) -> None:
    sync = getattr(request.app.state, "kb_sync", None)
    if sync is not None:
        await sync.refresh()


@router.get("/entries", summary="List entries")
def list_entries(
    session: SessionDep, language: Annotated[str | None, Query(pattern="^(en|zh)$")] = None
) -> list[EntryOut]:
    return [_out(e) for e in kb_store.entries(session, language=language)]


@router.post("/entries", status_code=status.HTTP_201_CREATED, summary="Add an entry",
             responses={status.HTTP_409_CONFLICT: {"model": ErrorOut, "description": "The id is taken."}})  # fmt: skip
async def create_entry(body: EntryCreate, request: Request) -> EntryOut:
    entry = _entry(body.id, body)

    def write(factory: sessionmaker[Session]) -> None:
        with factory() as session, session.begin():
            kb_store.create(session, entry, now=_now())

    try:
        await run_in_threadpool(write, request.app.state.session_factory)
    except kb_store.EntryExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    await _refresh(request)
    return _out(entry)


@router.get("/entries/{entry_id}", summary="One entry", responses=NOT_FOUND)
def get_entry(entry_id: str, session: SessionDep) -> EntryOut:
    try:
        return _out(kb_store.get(session, entry_id))
    except kb_store.EntryNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None


@router.put("/entries/{entry_id}", summary="Replace an entry", responses=NOT_FOUND)
async def update_entry(entry_id: str, body: EntryIn, request: Request) -> EntryOut:
    entry = _entry(entry_id, body)

    def write(factory: sessionmaker[Session]) -> None:
        with factory() as session, session.begin():
            kb_store.update(session, entry, now=_now())

    try:
        await run_in_threadpool(write, request.app.state.session_factory)
    except kb_store.EntryNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    await _refresh(request)
    return _out(entry)


@router.delete("/entries/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an entry",
               responses=NOT_FOUND)  # fmt: skip
async def delete_entry(entry_id: str, request: Request) -> Response:
    def write(factory: sessionmaker[Session]) -> None:
        with factory() as session, session.begin():
            kb_store.remove(session, entry_id, now=_now())

    try:
        await run_in_threadpool(write, request.app.state.session_factory)
    except kb_store.EntryNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    await _refresh(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/import",
    summary="Import a knowledge file (the `entries:` YAML format); all or nothing",
    responses={status.HTTP_422_UNPROCESSABLE_CONTENT: {"model": KbInvalidOut, "description": "Located problems."}},
    openapi_extra={"requestBody": {"content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
async def import_file(
    request: Request, replace: Annotated[bool, Query(description="delete entries not in the file")] = False
) -> ImportOut:
    source = await read_yaml_body(request, what="knowledge file", max_bytes=MAX_KB_BYTES)
    try:
        entries = parse(source, "upload")
    except KnowledgeFileError as exc:
        problems = [KbProblemOut(line=p.line, column=p.column, message=p.message) for p in exc.problems]
        return JSONResponse(  # type: ignore[return-value]
            KbInvalidOut(detail=f"{len(problems)} problem(s); nothing imported", problems=problems).model_dump(),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    def write(factory: sessionmaker[Session]) -> kb_store.ImportReport:
        with factory() as session, session.begin():
            return kb_store.import_entries(session, entries, replace=replace, now=_now())

    report = await run_in_threadpool(write, request.app.state.session_factory)
    await _refresh(request)
    return ImportOut(entries=len(entries), created=report.created, updated=report.updated,
                     unchanged=report.unchanged, deleted=report.deleted, revision=report.revision)  # fmt: skip


@router.get("/export", summary="The knowledge base in the import format (YAML)",
            responses={200: {"content": {"application/yaml": {}}}})  # fmt: skip
def export_file(session: SessionDep, language: Annotated[str | None, Query(pattern="^(en|zh)$")] = None) -> Response:
    return Response(dump(kb_store.entries(session, language=language)), media_type="application/yaml")


@router.post("/ask", summary="What the bot answers (the same engine as calls and chat)")
async def ask(body: AskIn, request: Request) -> AskOut:
    bot = request.app.state.bot
    if bot is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="no bot is configured")
    language = body.language or detect_language(body.text)
    answer = await bot.ask(BotRequest(body.text, language, body.conversation_id, "api"))
    return AskOut(
        entry_id=answer.entry_id, answer=answer.answer, confidence=round(answer.confidence, 3),
        handoff=answer.handoff,
        suggestions=[SuggestionOut(entry_id=s.entry_id, question=s.question) for s in answer.suggestions],
    )  # fmt: skip
