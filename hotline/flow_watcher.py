"""Hot reload: the flows directory is the supervisor's working copy; a saved, valid file goes live.

Each *.yaml / *.yml file holds one flow (its `flow:` names it). When a file changes it is linted; a valid
flow is stored as a new immutable version, activated, and put in the running service's registry, so the next
call gets it while calls in progress finish on the version they started with. An invalid file is reported
(file:line:column, like `hotline flow lint`) and changes nothing: the previous version stays live.

Polling rather than inotify keeps it portable and dependency-free; a stat per file per second is cheap.
All file and database work happens in `sync_once`, which `run` calls in a worker thread so the event loop
that carries the media never waits for a disk or a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api import flow_store as store
from ivr_flows.loader import FlowSyntaxError, load_yaml
from ivr_flows.registry import FlowRegistry

log = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml")
# A file modified this close to when we last read it may change again within the file system's timestamp
# granularity without its mtime moving, so it is hashed again until its mtime is safely in the past.
RACY_SECONDS = 2.0


@dataclass
class _FileState:
    stat: tuple[int, int]  # (mtime_ns, size) when last read
    read_at: float  # time.time() when last read
    checksum: str | None  # None: could not be read
    name: str | None  # the flow name the file declares (valid or not), if it could be found
    status: str  # "live", "invalid", "duplicate" or "unreadable"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _declared_name(text: str, file: str) -> str | None:
    """The `flow:` name of a file even when the flow is invalid, so duplicates and subflows can be checked."""
    try:
        data = load_yaml(text, file).data
    except FlowSyntaxError:
        return None
    name = data.get("flow") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


class FlowWatcher:
    def __init__(
        self,
        directory: Path,
        registry: FlowRegistry,
        session_factory: sessionmaker[Session],
        *,
        interval: float = 1.0,
    ) -> None:
        self.directory = Path(directory)
        self.registry = registry
        self.session_factory = session_factory
        self.interval = interval
        self._files: dict[Path, _FileState] = {}
        self._lock = threading.Lock()  # one pass at a time (start-up and the polling loop may overlap)
        self._stop = asyncio.Event()
        self._missing_logged = False
        self._pending: set[str] = set()  # flow names declared by the files being applied in this pass

    async def run(self) -> None:
        """Poll until `stop()` (or cancellation). A failing pass is logged and retried, never fatal."""
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.sync_once)
            except Exception:
                log.exception("flow watcher: checking %s failed; trying again", self.directory)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()

    def sync_once(self) -> list[str]:
        """Check the directory once (blocking). Returns `name@version` of each flow made live by this pass."""
        with self._lock:
            return self._sync()

    # ---- one pass ----------------------------------------------------------------------------------
    def _scan(self) -> list[Path] | None:
        try:
            entries = sorted(self.directory.iterdir())
        except OSError as exc:
            if not self._missing_logged:
                log.warning("flows directory %s cannot be read: %s", self.directory, exc)
                self._missing_logged = True
            return None
        self._missing_logged = False
        return [p for p in entries if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()]

    def _sync(self) -> list[str]:
        files = self._scan()
        if files is None:
            return []
        for gone in sorted(set(self._files) - set(files)):
            state = self._files.pop(gone)
            live = self.registry.live(state.name) if state.name and state.status == "live" else None
            if live is not None:
                log.info("flow file %s was removed; %s stays live", gone, live.label)
        changed: dict[Path, tuple[tuple[int, int], str]] = {}
        for path in files:
            read = self._read_if_changed(path)
            if read is not None:
                changed[path] = read
        # Flows in this directory may call each other as subflows, whatever order their files are read in.
        declared = (_declared_name(text, str(path)) for path, (_, text) in changed.items())
        self._pending = {name for name in declared if name}
        applied = (self._apply(path, stat, text) for path, (stat, text) in changed.items())
        made_live = [label for label in applied if label]
        # A file refused as a duplicate gets its turn once the file that held the name no longer does.
        for path in files:
            state = self._files.get(path)
            if state is None or state.status != "duplicate" or self._owner(state.name, path) is not None:
                continue
            read = self._read(path)
            if read is not None and (label := self._apply(path, *read)):
                made_live.append(label)
        return made_live

    def _read(self, path: Path) -> tuple[tuple[int, int], str] | None:
        try:
            st = path.stat()
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None  # removed between the listing and now; the next pass notices
        except (OSError, UnicodeDecodeError) as exc:
            stat = (0, -1)
            state = self._files.get(path)
            if state is None or state.status != "unreadable":
                log.error("%s:1:1: cannot read file: %s", path, exc)
            self._files[path] = _FileState(stat, time.time(), None, None, "unreadable")
            return None
        return (st.st_mtime_ns, st.st_size), text

    def _read_if_changed(self, path: Path) -> tuple[tuple[int, int], str] | None:
        state = self._files.get(path)
        if state is not None and state.status != "unreadable":
            try:
                st = path.stat()
            except OSError:
                return None
            settled = st.st_mtime_ns / 1e9 < state.read_at - RACY_SECONDS
            if (st.st_mtime_ns, st.st_size) == state.stat and settled:
                return None
        read = self._read(path)
        if read is None:
            return None
        stat, text = read
        if state is not None and state.checksum == _sha256(text):
            state.stat, state.read_at = stat, time.time()  # touched, not changed
            return None
        return read

    def _owner(self, name: str | None, path: Path) -> Path | None:
        """Another file that already provides flow `name`, if any."""
        if name is None:
            return None
        for other, state in self._files.items():
            if other != path and state.name == name and state.status in ("live", "invalid"):
                return other
        return None

    def _apply(self, path: Path, stat: tuple[int, int], text: str) -> str | None:
        """Lint a changed file; if it is valid and new, store and activate it. Returns the live label."""
        file = str(path)
        previous = self._files.get(path)
        checksum = _sha256(text)
        declared = _declared_name(text, file)
        state = _FileState(stat, time.time(), checksum, declared, "invalid")
        owner = self._owner(declared, path)
        if owner is not None:
            state.status = "duplicate"
            self._files[path] = state
            log.error("%s: flow %r is already provided by %s; this file is ignored", file, declared, owner)
            return None
        claimed = {st.name for st in self._files.values() if st.name}
        known = set(self.registry.names()) | self._pending | claimed
        known |= {declared} if declared else set()
        try:
            checked = store.check_flow(text, file=file, known_flows=known)
        except store.FlowInvalid as exc:
            self._files[path] = state
            for problem in exc.problems:
                (log.error if problem.severity == "error" else log.warning)("%s", problem)
            live = self.registry.live(declared) if declared else None
            kept = f"{live.label} stays live" if live else "nothing was activated"
            log.error("%s has %d error(s); %s", file, len(exc.errors), kept)
            return None
        for warning in checked.warnings:
            log.warning("%s", warning)
        name = checked.name
        live = self.registry.live(name)
        if live is None or self.registry.source(name, live.version) != text:
            try:
                with self.session_factory() as session:
                    by = f"hot-reload:{file}"
                    saved = store.store_checked(session, checked, created_by=by, activate=True)
            except SQLAlchemyError:
                # Keep the file's previous claim, but make the next pass read and try it again.
                if previous is not None:
                    previous.stat = (0, -1)
                log.exception("%s: could not store flow %s; will retry", file, name)
                return None
            self.registry.add(name, saved.row.version, checked.flow, text)
            live = self.registry.set_live(name, saved.row.version)
        state.status = "live"
        self._files[path] = state
        log.info("flow %s is live (from %s)", live.label, file)
        return live.label


async def start_flows(
    settings_flows_dir: Path, session_factory: sessionmaker[Session], *, interval: float = 1.0
) -> tuple[FlowRegistry, FlowWatcher]:
    """Load every stored version, then make the directory's flows live; the caller runs `watcher.run()`.

    The database is loaded first so that a file identical to its live version changes nothing, and so
    flows uploaded through the API (not in the directory) are live again after a restart.
    """
    registry = FlowRegistry()

    def load() -> int:
        with session_factory() as session:
            return store.load_registry(session, registry)

    count = await asyncio.to_thread(load)
    watcher = FlowWatcher(Path(settings_flows_dir), registry, session_factory, interval=interval)
    made_live = await asyncio.to_thread(watcher.sync_once)
    log.info(
        "flows: %d stored version(s) loaded, %d live; from %s: %s",
        count,
        sum(1 for name in registry.names() if registry.live(name)),
        settings_flows_dir,
        ", ".join(made_live) or "nothing",
    )
    return registry, watcher
