"""Recordings written while the call runs: 8 kHz 16-bit WAV, one channel per party.

The media clock hands us 20 ms frames on the event loop; we only append them to a buffer there. Once a
second the buffer goes to one background writer thread, which appends it to the file and rewrites the WAV
header sizes, so a crash loses at most about a second and leaves a playable file.
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
RATE = 8000
FLUSH_FRAMES = 50  # one second of 20 ms frames
_SILENCE = np.zeros(160, dtype=np.int16)


@dataclass(frozen=True)
class RecordingInfo:
    recording_id: str
    path: str
    seconds: float


def _header(channels: int, data_bytes: int) -> bytes:
    block = 2 * channels
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, RATE, RATE * block, block, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )  # fmt: skip


class _DiskThread:
    """One thread for all recordings: appends chunks and patches headers, in order per file."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Path, int, bytes, bool] | threading.Event] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="recordings", daemon=True)
        self._thread.start()

    def submit(self, path: Path, channels: int, chunk: bytes, final: bool = False) -> None:
        self._queue.put((path, channels, chunk, final))

    def drain(self, timeout: float = 5.0) -> None:
        done = threading.Event()
        self._queue.put(done)  # everything queued before the marker is written once it is set
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            path, channels, chunk, _final = item
            try:
                with path.open("r+b") as handle:
                    handle.seek(0, 2)
                    handle.write(chunk)
                    size = handle.tell() - 44
                    handle.seek(0)
                    handle.write(_header(channels, size))
            except OSError as exc:
                log.error("cannot write recording %s: %s", path, exc)



class Recording:
    def __init__(self, disk: _DiskThread, path: Path, recording_id: str, channels: int) -> None:
        self._disk = disk
        self.path = path
        self.recording_id = recording_id
        self.channels = channels
        self._buffer = bytearray()
        self._frames = 0
        self._total_frames = 0
        self.closed = False

    def write(self, *frames: np.ndarray | None) -> None:
        """One 20 ms frame per channel (None = silence), called once per media tick."""
        if self.closed:
            return
        parts = [_SILENCE if frame is None else frame for frame in frames]
        if self.channels == 1:
            self._buffer += parts[0].astype("<i2", copy=False).tobytes()
        else:
            self._buffer += np.column_stack(parts).astype("<i2", copy=False).tobytes()
        self._frames += 1
        self._total_frames += 1
        if self._frames >= FLUSH_FRAMES:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._disk.submit(self.path, self.channels, bytes(self._buffer))
            self._buffer.clear()
        self._frames = 0

    def close(self) -> RecordingInfo:
        if not self.closed:
            self.flush()
            self.closed = True
        return RecordingInfo(self.recording_id, str(self.path), self._total_frames * 0.02)


class RecordingWriter:
    """Opens recordings under `root/YYYY/MM/DD/<call id>-<kind>-<id>.wav`."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()  # rows keep absolute paths: valid whatever the reader's working directory
        self._disk = _DiskThread()

    def open(self, call_id: str, *, kind: str = "call", channels: int = 1) -> Recording:
        recording_id = uuid.uuid4().hex
        day = datetime.now(UTC)
        folder = self.root / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{call_id}-{kind}-{recording_id[:8]}.wav"
        path.write_bytes(_header(channels, 0))
        return Recording(self._disk, path, recording_id, channels)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything submitted so far is on disk (shutdown, tests)."""
        self._disk.drain(timeout)
