"""Keep garbage collection off the media clock's back.

Everything loaded at start-up (models, flows, modules) is moved out of the collector's view with
`gc.freeze()`, so full collections stay short; collections that still take long are logged, because a
long pause shows up as a gap in every call's outbound RTP.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)
_started: dict[int, float] = {}
SLOW_MS = 20.0
stats = {"collections": 0, "max_pause_ms": 0.0}


def _callback(phase: str, info: dict[str, int]) -> None:
    generation = info.get("generation", 0)
    if phase == "start":
        _started[generation] = time.perf_counter()
        return
    began = _started.pop(generation, None)
    if began is None:
        return
    pause = (time.perf_counter() - began) * 1000
    stats["collections"] += 1
    stats["max_pause_ms"] = max(stats["max_pause_ms"], pause)
    if pause > SLOW_MS:
        log.warning("garbage collection of generation %d paused the event loop for %.0f ms", generation, pause)


def settle_after_startup() -> None:
    gc.collect()
    gc.freeze()
    if _callback not in gc.callbacks:
        gc.callbacks.append(_callback)
