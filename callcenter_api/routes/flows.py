"""IVR flow versions over HTTP: upload (lint first), list, read, activate, simulate.

Database routes are plain `def` so FastAPI runs them in its threadpool and synchronous SQLAlchemy never
blocks the event loop that carries the calls' media. Every write also updates the running service's
FlowRegistry (app.state.flow_registry), so an activation reaches the next call without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api import flow_store as store
from callcenter_api.deps import SessionDep
from callcenter_api.models import FlowVersion
from callcenter_api.routes.bodies import read_yaml_body
from callcenter_api.schemas import (
    ErrorOut,
    FlowInvalidOut,
    FlowSummaryOut,
    FlowVersionCreated,
    FlowVersionDetail,
    FlowVersionOut,
    ProblemOut,
    SimulateIn,
    SimulationOut,
    TranscriptLine,
)
from ivr_flows.loader import Problem
from ivr_flows.registry import FlowRegistry, LiveFlow
from ivr_flows.simulator import Script, simulate

log = logging.getLogger(__name__)
FLOWS_TOPIC = "flows"  # {"type": "flow_live", "name", "version"} when a version becomes live through the API

MAX_SOURCE_BYTES = 1_000_000
SIMULATION_TIMEOUT = 60.0  # seconds; webhooks in a flow really run during a simulation

router = APIRouter(prefix="/flows", tags=["flows"])

NOT_FOUND = {status.HTTP_404_NOT_FOUND: {"model": ErrorOut, "description": "No such flow or version."}}
INVALID = {
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "model": FlowInvalidOut,
        "description": "The flow did not pass the linter; each problem has its line and column.",
    }
}
_YAML_BODY = {
    "schema": {"type": "string"},
    "example": "flow: demo\nstart: hello\nnodes:\n  hello:\n    say: Hi\n",
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": 'The flow\'s YAML, or JSON {"source": "<yaml>"}.',
        "content": {
            "application/yaml": _YAML_BODY,
            "text/plain": _YAML_BODY,
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"source": {"type": "string"}},
                    "required": ["source"],
                }
            },
        },
    }
}


def _problem_out(problem: Problem) -> ProblemOut:
    p = problem
    return ProblemOut(line=p.line, column=p.column, message=p.message, severity=p.severity)


def flow_invalid_response(_request: Request, exc: Exception) -> Response:
    """Exception handler (registered by create_app): lint failures become 422 with located problems."""
    assert isinstance(exc, store.FlowInvalid)
    body = FlowInvalidOut(detail="flow is invalid", problems=[_problem_out(p) for p in exc.problems])
    return JSONResponse(body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _registry(request: Request) -> FlowRegistry:
    registry: FlowRegistry = request.app.state.flow_registry
    return registry


def _version_out(row: FlowVersion, *, live: bool) -> FlowVersionOut:
    return FlowVersionOut(
        name=row.name,
        version=row.version,
        checksum=row.checksum,
        created_at=row.created_at,
        created_by=row.created_by,
        live=live,
    )


async def read_source(request: Request) -> str:
    return await read_yaml_body(request, what="flow", max_bytes=MAX_SOURCE_BYTES)


SourceDep = Annotated[str, Depends(read_source)]


@router.get("", summary="Every flow with its live and latest version")
def list_flows(session: SessionDep) -> list[FlowSummaryOut]:
    return [
        FlowSummaryOut(
            name=s.name,
            live_version=s.live_version,
            latest_version=s.latest_version,
            activated_at=s.activated_at,
        )
        for s in store.list_flows(session)
    ]


@router.post(
    "/{name}/versions",
    summary="Upload a new version (linted first)",
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {
            "model": FlowVersionCreated,
            "description": "Same source as the latest version.",
        },
        **INVALID,
        status.HTTP_413_CONTENT_TOO_LARGE: {"model": ErrorOut},
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {"model": ErrorOut},
    },
    openapi_extra=UPLOAD_BODY,
)
def create_version(
    name: str,
    source: SourceDep,
    session: SessionDep,
    request: Request,
    response: Response,
    activate: Annotated[bool, Query(description="Make it the live version at once.")] = False,
) -> FlowVersionCreated:
    registry = _registry(request)
    known = store.flow_names(session) | set(registry.names()) | {name}
    saved = store.save_version(session, name, source, created_by="api", known_flows=known, activate=activate)
    row = saved.row
    registry.add(row.name, row.version, saved.flow, row.source)
    if activate:
        registry.set_live(row.name, row.version)
        _announce_live(request, row.name, row.version)
        log.info("flow %s@%s is live (from the API)", row.name, row.version)
    elif saved.created:
        log.info("flow %s@%s stored (from the API)", row.name, row.version)
    if not saved.created:
        response.status_code = status.HTTP_200_OK
    return FlowVersionCreated(
        **_version_out(row, live=saved.live).model_dump(),
        created=saved.created,
        warnings=[_problem_out(p) for p in saved.warnings],
    )


def _live_number(session: Session, name: str) -> int | None:
    live = store.live_version(session, name)
    return None if live is None else live.version


@router.get("/{name}/versions", summary="Versions of one flow, oldest first", responses=NOT_FOUND)
def list_versions(name: str, session: SessionDep) -> list[FlowVersionOut]:
    rows = store.list_versions(session, name)
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"flow {name} not found")
    live = _live_number(session, name)
    return [_version_out(row, live=row.version == live) for row in rows]


@router.get("/{name}/versions/{version}", summary="One version with its YAML source", responses=NOT_FOUND)
def get_version(name: str, version: int, session: SessionDep) -> FlowVersionDetail:
    row = store.get_version(session, name, version)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"flow {name} has no version {version}")
    live = _live_number(session, name) == version
    return FlowVersionDetail(**_version_out(row, live=live).model_dump(), source=row.source)


@router.post(
    "/{name}/versions/{version}/activate",
    summary="Make a version live (calls in progress keep theirs)",
    responses=NOT_FOUND,
)
def activate_version(name: str, version: int, session: SessionDep, request: Request) -> FlowVersionOut:
    try:
        store.activate(session, name, version)
    except store.FlowNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    row = store.get_version(session, name, version)
    assert row is not None
    registry = _registry(request)
    store.register(registry, row)
    registry.set_live(name, version)
    _announce_live(request, name, version)
    log.info("flow %s@%s is live (activated through the API)", name, version)
    return _version_out(row, live=True)


def _announce_live(request: Request, name: str, version: int) -> None:
    """Other workers on the same database make the version live too (callcenter_api.event_relay)."""
    request.app.state.hub.publish(FLOWS_TOPIC, {"type": "flow_live", "name": name, "version": version})


def _resolve(factory: sessionmaker[Session], flows: FlowRegistry, name: str, version: int | None) -> LiveFlow:
    with factory() as session:
        if version is None:
            row = store.live_version(session, name)
            missing = f"flow {name} has no live version"
        else:
            row = store.get_version(session, name, version)
            missing = f"flow {name} has no version {version}"
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=missing)
        return store.register(flows, row)


def _script(body: SimulateIn) -> Script:
    """The simulator's Script from the request, with its errors reported at the request's field names."""
    data: dict[str, Any] = {
        "steps": body.inputs,
        "end": body.expect,
        "variables": body.variables,
        "now": body.now,
    }
    if body.caller is not None:
        data["caller"] = body.caller
    rename = {"steps": "inputs", "end": "expect"}
    try:
        script = Script.model_validate(data)
    except ValidationError as exc:
        detail = [
            {
                "loc": ["body", rename.get(str(e["loc"][0]), e["loc"][0]), *e["loc"][1:]],
                "msg": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors(include_url=False, include_context=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None
    for index, step in enumerate(script.steps):
        try:
            step.kind()
        except ValueError as exc:
            detail = [{"loc": ["body", "inputs", index], "msg": str(exc), "type": "value_error"}]
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None
    return script


@router.post(
    "/{name}/simulate",
    summary="Run a version on a text channel with scripted caller inputs",
    responses={**NOT_FOUND, status.HTTP_504_GATEWAY_TIMEOUT: {"model": ErrorOut}},
)
async def simulate_flow(name: str, body: SimulateIn, request: Request) -> SimulationOut:
    script = _script(body)
    registry = _registry(request)
    factory = request.app.state.session_factory
    target = await run_in_threadpool(_resolve, factory, registry, name, body.version)
    try:
        result = await asyncio.wait_for(
            simulate(
                target.flow,
                script,
                version=target.version,
                flows=registry.snapshot(),
                bot=request.app.state.bot,
            ),
            SIMULATION_TIMEOUT,
        )
    except TimeoutError:
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT,
            detail=f"the simulation took longer than {SIMULATION_TIMEOUT:.0f} s",
        ) from None
    out = result.as_dict()
    return SimulationOut(
        name=target.name,
        version=target.version,
        passed=out["passed"],
        failures=out["failures"],
        path=out["path"],
        end_node=out["end_node"],
        outcome=out["outcome"],
        transcript=[TranscriptLine(**line) for line in out["transcript"]],
        variables=out["variables"],
    )
