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
from callcenter_api.auth import current_principal, require
from callcenter_api.chat import ChatService
from callcenter_api.events import EventHub
from callcenter_api.flow_store import FlowInvalid
from callcenter_api.limits import ConcurrencyLimit
from callcenter_api.metrics import Metrics
from callcenter_api.routes import agents, calls, chat, contacts, conversations, flows, kb, people, recordings, stats
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
    {"name": "agents", "description": "Agents and queues (supervisors), and each agent's own console API."},
    {"name": "auth", "description": "Sign in with a username and password; the token goes in Authorization."},
    {"name": "users", "description": "Users and roles (admins only)."},
    {"name": "stats", "description": "The supervisor live view: queues, agents, service level, containment."},
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
    router: Any = None,
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
    app.state.router = router  # the ACD (callcenter_api.routing.router.Router) when agents are in use
    app.state.chat = (
        ChatService(session_factory, bot, hub, phone_region=phone_region) if hasattr(bot, "answer") else None
    )
    app.state.metrics = Metrics(session_factory)
    hub.add_listener(app.state.metrics.on_event)  # counters of what this process publishes (callcenter_api.metrics)
    app.add_exception_handler(FlowInvalid, flows.flow_invalid_response)
    app.add_middleware(ConcurrencyLimit)  # outermost: waits before any thread or connection is taken

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

    if not admin_token:
        raise ValueError("admin_token must not be empty")
    supervisors = [Depends(require("admin", "supervisor"))]
    signed_in = [Depends(current_principal)]  # routes check ownership themselves (agents see their own)
    denied = {
        status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "Missing/wrong token."},
        status.HTTP_403_FORBIDDEN: {"model": ErrorOut, "description": "The role may not do this."},
    }
    for router in (calls.router, flows.router, kb.router, contacts.router, stats.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=supervisors, responses=denied)
    for router in (conversations.router, recordings.router, agents.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=signed_in, responses=denied)
    app.include_router(people.auth_router, prefix=API_PREFIX)
    app.include_router(people.users_router, prefix=API_PREFIX, responses=denied)
    app.include_router(conversations.ws_router)
    app.include_router(agents.ws_router)
    app.include_router(chat.router)
    app.include_router(stats.ws_router)
    app.include_router(stats.metrics_router)

    @app.get("/chat", include_in_schema=False)
    def chat_page() -> HTMLResponse:
        return HTMLResponse((WEB_DIR / "chat.html").read_text(encoding="utf-8"))

    @app.get("/agent", include_in_schema=False)
    def agent_page() -> HTMLResponse:
        return HTMLResponse((WEB_DIR / "agent.html").read_text(encoding="utf-8"))

    @app.get("/supervisor", include_in_schema=False)
    def supervisor_page() -> HTMLResponse:
        return HTMLResponse((WEB_DIR / "supervisor.html").read_text(encoding="utf-8"))

    return app
