"""Immutable flow versions and the live alias in the database.

Every way into the store (API upload, hot reload) goes through `check_flow`, so an invalid flow can never be
stored, let alone go live. Writes run in their own transaction and commit. A version number is taken
as max+1 under a lock (one thread lock for this process's writers, plus a per-name advisory lock on
PostgreSQL for other workers); should another writer still take the same number first, the unique
(name, version) constraint rejects ours and we try again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter_api.models import FlowLive, FlowVersion
from ivr_flows.lint import lint_text
from ivr_flows.loader import FlowError, FlowSyntaxError, Problem, load_yaml, parse_flow
from ivr_flows.registry import FlowRegistry, LiveFlow
from ivr_flows.schema import Flow

log = logging.getLogger(__name__)

NAME_MAX = 128  # flow_versions.name is String(128)
WRITE_ATTEMPTS = 5
T = TypeVar("T")

# Serialises this process's writers; other processes are handled by the unique constraint + retry.
_write_lock = threading.Lock()


class FlowInvalid(ValueError):
    """The flow cannot be stored; `problems` are located in the source (errors and any warnings)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("flow is invalid:\n" + "\n".join(str(p) for p in problems))
        self.problems = problems

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


class FlowNotFound(LookupError):
    pass


@dataclass(frozen=True)
class CheckedFlow:
    """A source that passed the linter; only `check_flow` makes these, so storing one is always safe."""

    name: str
    source: str
    flow: Flow
    checksum: str
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class SavedVersion:
    row: FlowVersion
    flow: Flow
    created: bool  # False: the source equalled the latest version, which was returned instead
    live: bool
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class FlowSummary:
    name: str
    latest_version: int
    live_version: int | None
    activated_at: datetime | None


def source_checksum(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def check_flow(
    source: str,
    *,
    name: str | None = None,
    file: str | None = None,
    known_flows: Collection[str] | None = None,
) -> CheckedFlow:
    """Lint `source`; raise FlowInvalid on any error. With `name`, the flow's own `flow:` must equal it."""
    label = file or f"{name or 'flow'}.yaml"
    result = lint_text(source, label, known_flows=None if known_flows is None else set(known_flows))
    if result.errors or result.flow is None:
        raise FlowInvalid(list(result.problems) or [Problem(label, 1, 1, "the flow could not be read")])
    flow = result.flow
    if name is not None and flow.flow != name:
        message = f"the flow is named {flow.flow!r} but is being stored as {name!r}; they must match"
        raise FlowInvalid([_problem_at_name(source, label, message)])
    if len(flow.flow) > NAME_MAX:
        raise FlowInvalid([_problem_at_name(source, label, f"a flow name has at most {NAME_MAX} characters")])
    warnings = tuple(p for p in result.problems if p.severity != "error")
    return CheckedFlow(flow.flow, source, flow, source_checksum(source), warnings)


def _problem_at_name(source: str, file: str, message: str) -> Problem:
    try:
        return load_yaml(source, file).problem(("flow",), message)
    except FlowSyntaxError:  # cannot happen after a clean lint; keep the message anyway
        return Problem(file, 1, 1, message)


def _write(session: Session, work: Callable[[], T]) -> T:
    """Run `work` in a transaction and commit, retrying when a concurrent writer won a unique key."""
    with _write_lock:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                result = work()
                session.commit()
                return result
            except IntegrityError:
                session.rollback()
                if attempt == WRITE_ATTEMPTS:
                    raise
                log.debug("flow store: concurrent write, retrying (attempt %d)", attempt)
            except BaseException:
                session.rollback()
                raise
    raise AssertionError("unreachable")


def _lock_name(session: Session, name: str) -> None:
    """On PostgreSQL, serialise writers of one flow name across workers until the transaction ends.

    Without it, N workers racing for the next version number would each need up to N retries.
    """
    if session.get_bind().dialect.name == "postgresql":
        lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
        session.execute(lock, {"key": f"flow:{name}"})


def _latest(session: Session, name: str) -> FlowVersion | None:
    stmt = select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version.desc()).limit(1)
    return session.scalars(stmt).first()


def _live_row(session: Session, name: str) -> FlowLive | None:
    # expire_on_commit=False keeps objects across commits: re-read, another writer may have moved it.
    return session.get(FlowLive, name, populate_existing=True)


def _point_live(session: Session, name: str, version: int) -> FlowLive:
    live = _live_row(session, name)
    if live is None:
        live = FlowLive(name=name, version=version, activated_at=datetime.now(UTC))
        session.add(live)
    elif live.version != version:  # re-activating the live version keeps its activation time
        live.version = version
        live.activated_at = datetime.now(UTC)
    session.flush()
    return live


def store_checked(
    session: Session,
    checked: CheckedFlow,
    *,
    created_by: str,
    activate: bool = False,
) -> SavedVersion:
    """Store a checked flow as the next version (or reuse the latest if identical); commits."""

    def work() -> SavedVersion:
        _lock_name(session, checked.name)
        latest = _latest(session, checked.name)
        if latest is not None and latest.checksum == checked.checksum and latest.source == checked.source:
            row, created = latest, False
        else:
            row = FlowVersion(
                name=checked.name,
                version=1 if latest is None else latest.version + 1,
                source=checked.source,
                checksum=checked.checksum,
                created_at=datetime.now(UTC),
                created_by=created_by,
            )
            session.add(row)
            session.flush()
            created = True
        if activate:
            _point_live(session, row.name, row.version)
            live = True
        else:
            current = _live_row(session, row.name)
            live = current is not None and current.version == row.version
        return SavedVersion(row, checked.flow, created, live, checked.warnings)

    return _write(session, work)


def save_version(
    session: Session,
    name: str | None,
    source: str,
    *,
    created_by: str,
    file: str | None = None,
    known_flows: Collection[str] | None = None,
    activate: bool = False,
) -> SavedVersion:
    """Lint and store; `name=None` takes the flow's own name (hot reload, where the file names the flow)."""
    checked = check_flow(source, name=name, file=file, known_flows=known_flows)
    return store_checked(session, checked, created_by=created_by, activate=activate)


def create_version(session: Session, name: str, source: str, *, created_by: str) -> FlowVersion:
    """Lint `source` and store it as the next version of `name`; an unchanged source returns the latest."""
    known = flow_names(session) | {name}
    return save_version(session, name, source, created_by=created_by, known_flows=known).row


def list_versions(session: Session, name: str) -> list[FlowVersion]:
    stmt = select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version)
    return list(session.scalars(stmt))


def get_version(session: Session, name: str, version: int) -> FlowVersion | None:
    stmt = select(FlowVersion).where(FlowVersion.name == name, FlowVersion.version == version)
    return session.scalars(stmt).first()


def activate(session: Session, name: str, version: int) -> FlowLive:
    """Move the live alias of `name` to `version`; commits. Raises FlowNotFound for an unknown version."""

    def work() -> FlowLive:
        _lock_name(session, name)
        if get_version(session, name, version) is None:
            raise FlowNotFound(f"flow {name} has no version {version}")
        return _point_live(session, name, version)

    return _write(session, work)


def live_version(session: Session, name: str) -> FlowVersion | None:
    stmt = (
        select(FlowVersion)
        .join(FlowLive, (FlowLive.name == FlowVersion.name) & (FlowLive.version == FlowVersion.version))
        .where(FlowLive.name == name)
    )
    return session.scalars(stmt).first()


def flow_names(session: Session) -> set[str]:
    return set(session.scalars(select(FlowVersion.name).distinct()))


def list_flows(session: Session) -> list[FlowSummary]:
    """Every stored flow name with its latest and live version, by name."""
    newest = func.max(FlowVersion.version).label("latest")
    latest = select(FlowVersion.name, newest).group_by(FlowVersion.name).subquery()
    stmt = (
        select(latest.c.name, latest.c.latest, FlowLive.version, FlowLive.activated_at)
        .outerjoin(FlowLive, FlowLive.name == latest.c.name)
        .order_by(latest.c.name)
    )
    return [FlowSummary(name, top, live, at) for name, top, live, at in session.execute(stmt)]


def register(registry: FlowRegistry, row: FlowVersion) -> LiveFlow:
    """Make sure `registry` holds this stored version (parsing it if needed) and return it.

    Stored sources passed the linter when they were stored, so only parsing is needed here; re-linting
    would make old versions depend on today's linter and on which other flows exist.
    """
    known = registry.get(row.name, row.version)
    if known is not None:
        return known
    flow, _ = parse_flow(row.source, f"{row.name}@{row.version}")
    registry.add(row.name, row.version, flow, row.source)
    found = registry.get(row.name, row.version)
    assert found is not None
    return found


def load_registry(session: Session, registry: FlowRegistry) -> int:
    """Fill `registry` with every stored version and the live pointers (start-up); returns versions loaded.

    A version that no longer parses (the schema changed under it) is logged and skipped rather than
    stopping the service; if it was live, that flow has no live version until a valid one is activated.
    """
    loaded = 0
    for row in session.scalars(select(FlowVersion).order_by(FlowVersion.name, FlowVersion.version)):
        try:
            register(registry, row)
            loaded += 1
        except (FlowError, FlowSyntaxError) as exc:
            log.error("stored flow %s@%s cannot be loaded: %s", row.name, row.version, exc)
    for live in session.scalars(select(FlowLive)):
        try:
            registry.set_live(live.name, live.version)
        except KeyError:
            label = f"{live.name}@{live.version}"
            log.error("flow %s has no usable live version (%s did not load)", live.name, label)
    return loaded
