"""`hotline recordings prune`: delete recordings older than the retention policy allows.

    hotline recordings prune [--older-than DAYS] [--db URL] [--recordings-dir DIR] [--dry-run]

DAYS defaults to the `recordings_retention_days` setting (env HOTLINE_RECORDINGS_RETENTION_DAYS). A recording
is expired when its row was written (the recording ended) more than DAYS ago: its WAV is deleted and so is its
row, so the API no longer lists or serves it. WAV files under the recordings directory that no row knows (a
crash before the row was written) are deleted by their modification time. Files are only ever deleted under
the recordings directory; a row pointing elsewhere is reported and kept. `hotline serve` with
`--recordings-retention-days` runs the same pruning at start-up and every six hours.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter_api.models import Recording
from hotline.cli_db import db_option, open_sessions
from recordings import retention

log = logging.getLogger(__name__)
PRUNE_EVERY = 6 * 3600.0  # seconds between the service's prune runs


@dataclass
class PruneReport:
    cutoff: datetime
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (recording id or "", path)
    kept: list[tuple[str, str, str]] = field(default_factory=list)  # (recording id, path, why)
    freed_bytes: int = 0

    def summary(self, dry_run: bool = False) -> str:
        rows = sum(1 for recording_id, _ in self.deleted if recording_id)
        orphans = len(self.deleted) - rows
        verb = "would delete" if dry_run else "deleted"
        text = f"{verb} {rows} recording(s) and {orphans} unlisted file(s) from before {self.cutoff:%Y-%m-%d %H:%M} UTC"
        if not dry_run:
            text += f", {self.freed_bytes / 1e6:.1f} MB freed"
        if self.kept:
            text += f"; kept {len(self.kept)} (see above)"
        return text


def prune_recordings(
    session_factory: sessionmaker[Session], root: Path, *, older_than_days: float, dry_run: bool = False,
    now: datetime | None = None,
) -> PruneReport:  # fmt: skip
    """Delete (or with `dry_run` only list) the recordings expired under the policy, files and rows."""
    now = now or datetime.now(UTC)
    report = PruneReport(now - timedelta(days=older_than_days))
    known: set[Path] = set()
    with session_factory() as session:
        rows = list(session.execute(select(Recording.id, Recording.path, Recording.created_at)))
    expired: list[str] = []
    for recording_id, path_text, created_at in rows:
        path = Path(path_text)
        known.add(path.resolve())
        if created_at >= report.cutoff:
            continue
        if not retention.inside(root, path):
            report.kept.append((recording_id, path_text, f"not under {root}"))
            continue
        if not dry_run:
            report.freed_bytes += retention.delete(root, path)
        report.deleted.append((recording_id, path_text))
        expired.append(recording_id)
    if expired and not dry_run:
        with session_factory() as session, session.begin():
            for start in range(0, len(expired), 500):
                session.execute(delete(Recording).where(Recording.id.in_(expired[start : start + 500])))
    for path, _written in retention.old_files(root, report.cutoff):
        if path.resolve() in known:
            continue  # a row's file: the row decides (e.g. a recording that ended recently but began long ago)
        if not dry_run:
            report.freed_bytes += retention.delete(root, path)
        report.deleted.append(("", str(path)))
    return report


async def prune_periodically(session_factory: sessionmaker[Session], root: Path, days: float,
                             every: float = PRUNE_EVERY) -> None:  # fmt: skip
    """The service's retention job: prune at start-up, then every `every` seconds (off the event loop)."""
    while True:
        try:
            report = await asyncio.to_thread(prune_recordings, session_factory, root, older_than_days=days)
            if report.deleted or report.kept:
                log.info("recordings retention (%g days): %s", days, report.summary())
        except Exception:  # a database blip: try again next time
            log.exception("recordings retention failed")
        await asyncio.sleep(every)


@click.group(help="Recordings: retention (prune).")
def recordings() -> None:
    pass


@recordings.command(help="Delete recordings (WAV files and their rows) older than the retention period.")
@click.option("--older-than", "days", type=click.FloatRange(min=0, min_open=True),
              envvar="HOTLINE_RECORDINGS_RETENTION_DAYS", show_envvar=True,
              help="Age in days [the recordings_retention_days setting].")  # fmt: skip
@db_option
@click.option("--recordings-dir", "root", type=click.Path(path_type=Path, file_okay=False),
              envvar="HOTLINE_RECORDINGS_DIR", default=Path("./recordings"), show_default=True,
              help="Where the service writes recordings (env HOTLINE_RECORDINGS_DIR).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
def prune(days: float | None, db: str, root: Path, dry_run: bool) -> None:
    if days is None:
        raise click.UsageError("give --older-than DAYS or set HOTLINE_RECORDINGS_RETENTION_DAYS")
    report = prune_recordings(open_sessions(db), root, older_than_days=days, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for recording_id, path in report.deleted:
        click.echo(f"{verb} {path} ({f'recording {recording_id}' if recording_id else 'no row'})")
    for recording_id, path, why in report.kept:
        click.echo(f"kept {path} (recording {recording_id}): {why}", err=True)
    click.echo(report.summary(dry_run))
