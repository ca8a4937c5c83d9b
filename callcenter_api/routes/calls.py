"""Read access to call records.

Routes are plain `def`: FastAPI runs them in its threadpool, so synchronous SQLAlchemy never blocks the
event loop that also carries the calls' media.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from callcenter_api.deps import SessionDep
from callcenter_api.models import Call
from callcenter_api.schemas import CallOut, ErrorOut

MAX_PAGE = 500

router = APIRouter(prefix="/calls", tags=["calls"])


@router.get("", summary="List calls, newest first")
def list_calls(
    session: SessionDep,
    sip_call_id: Annotated[str | None, Query(description="Only calls with this SIP Call-ID.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Calls to skip.")] = 0,
) -> list[CallOut]:
    stmt = select(Call).order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(offset)
    if sip_call_id is not None:
        stmt = stmt.where(Call.sip_call_id == sip_call_id)
    # selectinload: one extra query fetches the events of the whole page.
    calls = session.scalars(stmt.options(selectinload(Call.events))).all()
    return [CallOut.model_validate(call) for call in calls]


@router.get(
    "/{call_id}",
    summary="One call with its events",
    responses={status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "No such call."}},
)
def get_call(call_id: str, session: SessionDep) -> CallOut:
    call = session.get(Call, call_id, options=[selectinload(Call.events)])
    if call is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"call {call_id} not found")
    return CallOut.model_validate(call)
