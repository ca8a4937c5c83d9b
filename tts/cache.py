"""Prompt cache: every distinct prompt is synthesized once.

IVR prompts repeat endlessly ("Thanks for calling", queue announcements), and a burst of calls all want the
greeting at the same moment. Rendering each once (and remembering across restarts on disk) keeps synthesis
off the latency path and lets a slow engine serve hundreds of calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .base import TELEPHONY_RATE, Synthesizer

log = logging.getLogger(__name__)

DEFAULT_MAX_SAMPLES = 30 * 60 * TELEPHONY_RATE
"""30 minutes of 8 kHz audio, ~29 MB of int16: far more than a typical flow's prompt set."""

_FORMAT = "v2"  # bump if the stored audio changes, so old files are simply never found again (v2: 10 ms lead)

CacheKey = tuple[str, str | None, str, str, str]


class PromptCache(Synthesizer):
    """A Synthesizer that wraps another and remembers its output.

    Key: (engine name, voice, language, text, engine settings tag). The inner engine's default voice and
    rate are part of the tag (its optional `cache_tag` attribute), so changing them in the configuration
    does not replay stale audio from the disk cache.

    Concurrent requests for one key share a single in-flight render; a failure is handed to all of them
    and not remembered, so the next request tries again. Returned arrays are read-only because the same
    array is given to every caller.
    """

    def __init__(
        self,
        inner: Synthesizer,
        *,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        cache_dir: Path | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_samples = max_samples
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._memory: OrderedDict[CacheKey, np.ndarray] = OrderedDict()
        self._memory_samples = 0
        self._inflight: dict[CacheKey, asyncio.Task[np.ndarray]] = {}
        self.hits = 0
        """Requests served without calling the engine (memory, disk, or joining an in-flight render)."""
        self.misses = 0
        """Requests that made the engine render."""
        self.disk_hits = 0

    @property
    def memory_samples(self) -> int:
        return self._memory_samples

    def key(self, text: str, voice: str | None, language: str) -> CacheKey:
        # Whitespace does not change speech, so "Hello  there\n" and "Hello there" share one entry.
        spoken = " ".join(text.split())
        return (self.name, voice, language, spoken, str(getattr(self.inner, "cache_tag", "")))

    def disk_path(self, key: CacheKey) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(json.dumps([_FORMAT, *key], ensure_ascii=False).encode()).hexdigest()
        return self.cache_dir / f"{digest}.npy"

    async def synthesize(self, text: str, *, voice: str | None = None, language: str = "en") -> np.ndarray:
        key = self.key(text, voice, language)
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            self.hits += 1
            return cached
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(key, text, voice, language))
            self._inflight[key] = task
            task.add_done_callback(lambda t, k=key: self._settled(k, t))
        else:
            self.hits += 1
        # Shielded: one caller hanging up must not cancel the render the others are waiting for.
        return await asyncio.shield(task)

    def _settled(self, key: CacheKey, task: asyncio.Task[np.ndarray]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an error nobody awaited is not logged as "never retrieved"

    async def _fetch(self, key: CacheKey, text: str, voice: str | None, language: str) -> np.ndarray:
        path = self.disk_path(key)
        if path is not None:
            stored = await asyncio.to_thread(_load, path)
            if stored is not None:
                self.hits += 1
                self.disk_hits += 1
                return self._remember(key, stored)
        self.misses += 1
        pcm = await self.inner.synthesize(text, voice=voice, language=language)
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        if path is not None:
            await asyncio.to_thread(_store, path, pcm)
        return self._remember(key, pcm)

    def _remember(self, key: CacheKey, pcm: np.ndarray) -> np.ndarray:
        pcm.flags.writeable = False
        if pcm.shape[0] > self.max_samples:
            return pcm  # bigger than the whole budget: hand it out, keep it only on disk
        self._memory[key] = pcm
        self._memory_samples += pcm.shape[0]
        while self._memory_samples > self.max_samples:
            _, evicted = self._memory.popitem(last=False)
            self._memory_samples -= evicted.shape[0]
        return pcm

    def clear_memory(self) -> None:
        """Forget the in-memory copies (the disk cache stays)."""
        self._memory.clear()
        self._memory_samples = 0

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        for task in list(self._inflight.values()):
            with contextlib.suppress(BaseException):
                await task
        await self.inner.close()


def _load(path: Path) -> np.ndarray | None:
    """Read one cached prompt; a damaged file is deleted and treated as a miss rather than an outage."""
    try:
        pcm = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("discarding unreadable prompt cache file %s: %s", path, exc)
        path.unlink(missing_ok=True)
        return None
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        log.warning("discarding prompt cache file %s with unexpected format %s%s", path, pcm.dtype, pcm.shape)
        path.unlink(missing_ok=True)
        return None
    return pcm


def _store(path: Path, pcm: np.ndarray) -> None:
    """Write atomically (temp file + rename) so a crash or a concurrent worker never sees half a prompt."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as fh:
            np.save(fh, pcm, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:  # a full or read-only disk costs a re-render after restart, nothing more
        log.warning("could not write prompt cache file %s: %s", path, exc)
        tmp.unlink(missing_ok=True)
