"""Retention: recordings are not kept longer than the policy says (`recordings_retention_days`).

This module knows only files: which WAVs under the recordings directory are older than a cutoff, and how to
delete one safely (never a file outside the directory, never anything but a `.wav`). The database side
(which recordings rows are expired) is joined to it in `hotline.cli_recordings`, the composition layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


def inside(root: Path, path: Path) -> bool:
    """Whether `path` is a file location under `root` (after resolving `..` and symlinks)."""
    return path.resolve().is_relative_to(root.resolve())


def old_files(root: Path, cutoff: datetime) -> Iterator[tuple[Path, datetime]]:
    """WAV files under `root` last written before `cutoff`, oldest first, with their modification time."""
    if not root.is_dir():
        return
    found = []
    for path in root.rglob("*.wav"):
        with contextlib.suppress(OSError):  # removed meanwhile
            written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            if written < cutoff:
                found.append((written, path))
    for written, path in sorted(found):
        yield path, written


def delete(root: Path, path: Path) -> int:
    """Delete one recording file under `root`; returns the bytes freed (0 if it was already gone).

    Empty day/month/year folders left behind are removed too. Raises ValueError for a path outside `root`
    or not a WAV, so a wrong row can never delete anything else.
    """
    if path.suffix.lower() != ".wav" or not inside(root, path):
        raise ValueError(f"{path} is not a recording under {root}")
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    folder, top = path.resolve().parent, root.resolve()
    while folder != top and folder.is_relative_to(top):
        try:
            folder.rmdir()  # only if empty
        except OSError:
            break
        folder = folder.parent
    return size
