"""The supervisor live view: call-center figures (supervisors and admins), their live WebSocket, and the
Prometheus metrics endpoint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, status
from fastapi.responses import Response

from callcenter_api.auth import websocket_principal
from callcenter_api.deps import SessionDep
from callcenter_api.metrics import CONTENT_TYPE, Metrics
from callcenter_api.routes.conversations import deny, stream
from callcenter_api.routing.stats import CallCenterStats, call_center_stats

router = APIRouter(tags=["stats"])  # mounted with require("admin", "supervisor")
ws_router = APIRouter()
metrics_router = APIRouter()
LIVE_TOPICS = ("agents", "queues", "calls", "conversations")
MAX_WINDOW = timedelta(days=366)


@router.get("/stats", summary="Queues and flows: waiting, service level, abandon rate, handle time, containment")
def stats(
    session: SessionDep,
    since: Annotated[datetime | None, Query(description="start of the period (ISO 8601); default: 24 h ago")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="unanswered questions listed per flow")] = 10,
) -> CallCenterStats:
    now = datetime.now(UTC)
    if since is not None:
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        if since > now or now - since > MAX_WINDOW:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="since must be within the last year")
    return call_center_stats(session, now=now, since=since, limit=limit)


@ws_router.websocket("/api/v1/supervisor/ws")
async def supervisor_ws(websocket: WebSocket, token: str | None = None) -> None:
    """Every agent state change, queue entry change, offer, call start/end and conversation status change,
    for the live view (it re-reads /api/v1/stats when something happens)."""
    principal = await asyncio.to_thread(websocket_principal, websocket, token)
    if principal is None or not principal.sees_everything:
        await deny(websocket, "sign in as a supervisor")
        return
    await websocket.accept()
    await stream(websocket, LIVE_TOPICS, [])


@metrics_router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format. No personal data (queue names, states and counts only), so no token: scrapers
    reach it on the HTTP address, which is loopback unless the operator opens it."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
