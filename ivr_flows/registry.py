"""Which flow versions this process knows, and which one of each name is live.

Hot reload and the API change the live alias while calls run. A call therefore never keeps a reference to
the registry's mutable state: it takes a `LiveFlow` (or a whole `FlowSnapshot`, for subflows) once when it
starts, and those are immutable, so a later activation only affects calls that start after it.

No I/O here: the database (callcenter_api.flow_store) and the directory watcher (hotline.flow_watcher) fill
it. Every method is safe to call from the event loop and from worker threads at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ivr_flows.schema import Flow


@dataclass(frozen=True, slots=True)
class LiveFlow:
    name: str
    version: int
    flow: Flow

    @property
    def label(self) -> str:
        """`name@version`, the form call records store."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class _Stored:
    flow: Flow
    source: str


@dataclass(frozen=True, slots=True)
class FlowSnapshot:
    """The live version of every flow at one instant.

    Calling it is the runner's `FlowLookup` (name -> (flow, version)), so a call that pins a snapshot at its
    start resolves its subflows to the versions that were live then, not to whatever is live later.
    """

    flows: Mapping[str, LiveFlow]

    def get(self, name: str) -> LiveFlow | None:
        return self.flows.get(name)

    def __call__(self, name: str) -> tuple[Flow, int | None] | None:
        live = self.flows.get(name)
        return None if live is None else (live.flow, live.version)


class FlowRegistry:
    """In-memory flow versions (immutable once added) and one live pointer per name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, dict[int, _Stored]] = {}
        self._live: dict[str, LiveFlow] = {}

    def add(self, name: str, version: int, flow: Flow, source: str) -> None:
        """Register a version. Adding the same version again is a no-op; different source is refused,
        because a version number must always mean the same flow (call records point at it)."""
        if version < 1:
            raise ValueError(f"flow versions start at 1, got {version}")
        if flow.flow != name:
            raise ValueError(f"flow is named {flow.flow!r}, not {name!r}")
        with self._lock:
            versions = self._versions.setdefault(name, {})
            known = versions.get(version)
            if known is not None:
                if known.source != source:
                    raise ValueError(f"{name}@{version} is already registered with a different source")
                return
            versions[version] = _Stored(flow, source)

    def set_live(self, name: str, version: int) -> LiveFlow:
        """Point the live alias at a registered version; calls already running keep their own LiveFlow."""
        with self._lock:
            stored = self._versions.get(name, {}).get(version)
            if stored is None:
                raise KeyError(f"{name}@{version} is not registered")
            live = self._live.get(name)
            if live is None or live.version != version:
                live = LiveFlow(name, version, stored.flow)
                self._live[name] = live
            return live

    def live(self, name: str) -> LiveFlow | None:
        with self._lock:
            return self._live.get(name)

    def lookup(self, name: str) -> tuple[Flow, int | None] | None:
        """The runner's `FlowLookup` over the *current* live versions (prefer `snapshot()` per call)."""
        live = self.live(name)
        return None if live is None else (live.flow, live.version)

    def snapshot(self) -> FlowSnapshot:
        with self._lock:
            return FlowSnapshot(MappingProxyType(dict(self._live)))

    def get(self, name: str, version: int) -> LiveFlow | None:
        """A specific version (live or not), e.g. to simulate it before activating it."""
        with self._lock:
            stored = self._versions.get(name, {}).get(version)
        return None if stored is None else LiveFlow(name, version, stored.flow)

    def source(self, name: str, version: int) -> str | None:
        with self._lock:
            stored = self._versions.get(name, {}).get(version)
        return None if stored is None else stored.source

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)

    def versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(self._versions.get(name, {}))
