"""Customers and their omnichannel history: look-up by identity, the timeline, explicit merges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic_core import to_json
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.deps import SessionDep
from callcenter_api.history import contacts
from callcenter_api.history.conversations import TimelineItem, contact_row, timeline_rows
from callcenter_api.history.identity import InvalidIdentity, normalize
from callcenter_api.models import Contact
from callcenter_api.schemas import ErrorOut
from callcenter_api.schemas.history import (
    ContactOut,
    ConversationDetail,
    ConversationOut,
    IdentityOut,
    MergeIn,
    MergeOut,
    MessageOut,
    RecordingOut,
    TimelineOut,
)

router = APIRouter(prefix="/contacts", tags=["contacts"])
NOT_FOUND = {status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "No such contact."}}
MAX_PAGE = 200


def contact_out(session: Session, contact: Contact) -> ContactOut:
    identities = [IdentityOut.model_validate(i) for i in contacts.identities_of(session, contact.id)]
    return ContactOut(
        id=contact.id, name=contact.name, created_at=contact.created_at, identities=identities,
        merged_into=contact.merged_into,
    )  # fmt: skip


def detail_out(item: TimelineItem) -> ConversationDetail:
    return ConversationDetail(
        **ConversationOut.model_validate(item.conversation).model_dump(),
        messages=[MessageOut.model_validate(m) for m in item.messages],
        recordings=[
            RecordingOut(id=r.id, kind=r.kind, seconds=r.seconds, created_at=r.created_at,
                         url=f"/api/v1/recordings/{r.id}")
            for r in item.recordings
        ],
    )  # fmt: skip


def _contact_or_404(session: Session, contact_id: str) -> Contact:
    contact = contacts.current(session, contact_id)
    if contact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"contact {contact_id} not found")
    return contact


@router.get("", summary="Find contacts by phone number, email or chat user id")
def find_contacts(
    session: SessionDep,
    phone: Annotated[str | None, Query(description="any format; normalised to E.164")] = None,
    email: Annotated[str | None, Query()] = None,
    chat_user_id: Annotated[str | None, Query()] = None,
    region: Annotated[str | None, Query(min_length=2, max_length=2, description="for national numbers")] = None,
) -> list[ContactOut]:
    given = [("phone", phone), ("email", email), ("chat", chat_user_id)]
    if not any(value for _, value in given):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="give phone, email or chat_user_id")
    try:
        identities = [normalize(kind, value, region=region.upper() if region else None) for kind, value in given
                      if value]  # fmt: skip
    except InvalidIdentity as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    return [contact_out(session, c) for c in contacts.find(session, identities)]


@router.get("/{contact_id}", summary="One contact (a merged id resolves to the survivor)", responses=NOT_FOUND)
def get_contact(contact_id: str, session: SessionDep) -> ContactOut:
    return contact_out(session, _contact_or_404(session, contact_id))


@router.get(
    "/{contact_id}/timeline", summary="Calls and chats in time order, with transcripts", responses=NOT_FOUND,
    response_model=TimelineOut,
)  # fmt: skip
async def get_timeline(
    request: Request,
    contact_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    order: Annotated[Literal["asc", "desc"], Query(description="asc: oldest first")] = "asc",
    channel: Annotated[str | None, Query(description="only voice, or only webchat")] = None,
) -> Response:
    # Async on purpose, with all the work in one worker-thread trip that opens and closes its own session: the
    # synchronous route with SessionDep made four more thread hops, and held its connection across them, so
    # a burst of more concurrent requests than worker threads left the threads waiting for connections that
    # were held by requests waiting for a thread — stalled until the pool's 30 s timeout (bench/history_load).
    factory: sessionmaker[Session] = request.app.state.session_factory
    body = await run_in_threadpool(_timeline_json, factory, contact_id, limit, offset, order, channel)
    return Response(body, media_type="application/json")


def timeline_page(
    factory: sessionmaker[Session], contact_id: str, limit: int, offset: int, order: Literal["asc", "desc"],
    channel: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The timeline page as plain data in TimelineOut's shape and field order (404 for an unknown contact)."""
    with factory() as session:
        contact = contact_row(session, contact_id)
        if contact is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"contact {contact_id} not found")
        items, total = timeline_rows(session, contact["id"], limit=limit, offset=offset, order=order,
                                     channel=channel)  # fmt: skip
    for item in items:
        for recording in item["recordings"]:
            recording["url"] = f"/api/v1/recordings/{recording['id']}"
    return {"contact": contact, "total": total, "limit": limit, "offset": offset, "order": order,
            "next_offset": offset + limit if offset + limit < total else None, "items": items}  # fmt: skip


def _timeline_json(
    factory: sessionmaker[Session], contact_id: str, limit: int, offset: int, order: Literal["asc", "desc"],
    channel: str | None,
) -> bytes:  # fmt: skip
    # Encoded here, in the worker thread, by pydantic-core's own serializer, straight from the rows: the data
    # already has TimelineOut's types and field order (timeline_rows), so validating it into models only to
    # dump them again cost more than the queries (bench/history_load). `response_model` above keeps the
    # OpenAPI schema; tests/unit/test_api_history.py checks the bytes against TimelineOut's own dump_json.
    return to_json(timeline_page(factory, contact_id, limit, offset, order, channel))


@router.post(
    "/{contact_id}/merge",
    summary="Merge another contact into this one (this one survives; nothing is deleted; the merge is recorded)",
    responses={**NOT_FOUND, status.HTTP_409_CONFLICT: {"model": ErrorOut, "description": "Cannot merge these."}},
)
def merge_contacts(contact_id: str, body: MergeIn, session: SessionDep) -> MergeOut:
    try:
        with session.begin():
            record = contacts.merge(session, contact_id, body.merge, by="api", now=datetime.now(UTC))
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except contacts.MergeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    survivor = _contact_or_404(session, contact_id)
    return MergeOut(
        survivor=contact_out(session, survivor), merged_id=record.merged_id,
        moved_identities=record.moved["identities"], moved_conversations=record.moved["conversations"],
        at=record.at, by=record.by,
    )  # fmt: skip
