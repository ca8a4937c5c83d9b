"""The FastAPI application of the call-center service.

Built by a factory with its collaborators passed in, so the composition root (`hotline`) and the tests wire
it the same way and nothing here reads settings or globals.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, status
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from bot.interface import Bot
from callcenter_api.auth import require_token
from callcenter_api.chat import ChatService
from callcenter_api.events import EventHub
from callcenter_api.flow_store import FlowInvalid
from callcenter_api.routes import calls, chat, contacts, conversations, flows, kb, recordings
from callcenter_api.schemas import ErrorOut, Health
from ivr_flows.registry import FlowRegistry

API_PREFIX = "/api/v1"

TAGS = [
    {
        "name": "calls",
        "description": "Call records (CDRs) and the events of each call, written as they happen.",
    },
    {
        "name": "flows",
        "description": "IVR flows: immutable versions (linted on upload), the live alias, and the simulator.",
    },
    {"name": "knowledge", "description": "The knowledge base the bot answers from on every channel."},
    {"name": "contacts", "description": "Customers, their identities, merges and omnichannel timeline."},
    {"name": "conversations", "description": "Calls and chats as conversations with transcripts; agent replies."},
    {"name": "chat", "description": "The customer side of web chat (per-conversation token, no admin token)."},
    {"name": "recordings", "description": "Recorded audio (voicemail), with authorization."},
    {"name": "health", "description": "Liveness and readiness for load balancers and orchestration."},
]
WEB_DIR = Path(__file__).resolve().parent / "web"


def _version() -> str:
    try:
        return metadata.version("hotline")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def create_app(
    *,
    session_factory: sessionmaker[Session],
    admin_token: str,
    is_ready: Callable[[], bool] = lambda: True,
    flow_registry: FlowRegistry | None = None,
    bot: Bot | None = None,
    kb_sync: Any = None,
    hub: EventHub | None = None,
    phone_region: str | None = None,
    recordings_dir: Path | None = None,
) -> FastAPI:
    """`is_ready` lets the service report 503 on /healthz until SIP and the database are up.

    `flow_registry` is the running service's, so uploads and activations reach the next call; without one
    the app keeps a private registry (tests, API-only deployments). `bot` answers `ask` nodes in simulations,
    `/kb/ask` and the chat channel (which needs its synchronous `answer`); `kb_sync` refreshes it after
    knowledge-base writes. `hub` carries live conversation events to WebSockets.
    """
    app = FastAPI(
        title="hotline",
        version=_version(),
        description="Call-center API of hotline, a self-hosted voice IVR.",
        openapi_tags=TAGS,
    )
    app.state.session_factory = session_factory
    app.state.flow_registry = flow_registry if flow_registry is not None else FlowRegistry()
    app.state.bot = bot
    app.state.kb_sync = kb_sync
    app.state.admin_token = admin_token
    app.state.hub = hub = hub if hub is not None else EventHub()
    app.state.recordings_dir = recordings_dir
    app.state.chat = (
        ChatService(session_factory, bot, hub, phone_region=phone_region) if hasattr(bot, "answer") else None
    )
    app.add_exception_handler(FlowInvalid, flows.flow_invalid_response)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Readiness probe (no authentication)",
        responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Health, "description": "Still starting."}},
    )
    def healthz() -> JSONResponse:
        if is_ready():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    auth = [Depends(require_token(admin_token))]
    unauthorized = {status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "Missing/wrong token."}}
    app.include_router(calls.router, prefix=API_PREFIX, dependencies=auth, responses=unauthorized)
    app.include_router(flows.router, prefix=API_PREFIX, dependencies=auth, responses=unauthorized)
    for router in (kb.router, contacts.router, conversations.router, recordings.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=auth, responses=unauthorized)
    app.include_router(conversations.ws_router)
    app.include_router(chat.router)

    @app.get("/chat", include_in_schema=False)
    def chat_page() -> HTMLResponse:
        return HTMLResponse((WEB_DIR / "chat.html").read_text(encoding="utf-8"))

    return app
