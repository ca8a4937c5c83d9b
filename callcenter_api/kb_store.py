"""The knowledge base in the database: import/export, CRUD, and the revision every change bumps.

Every bot (each worker process, the CLI) reads the entries from here; `revision` lets a running bot notice a
change made by another process with one cheap query and rebuild its index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.knowledge import KnowledgeEntry
from callcenter_api.models import KnowledgeEntry as EntryRow
from callcenter_api.models import KnowledgeRevision

_REVISION_ROW = 1


class EntryExists(ValueError):
    pass


class EntryNotFound(LookupError):
    pass


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    revision: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.deleted)} deleted (revision {self.revision})"
        )


def to_entry(row: EntryRow) -> KnowledgeEntry:
    return KnowledgeEntry(row.id, row.language, tuple(row.questions), row.answer, tuple(row.tags), row.enabled)


def revision(session: Session) -> int:
    value = session.scalar(select(KnowledgeRevision.revision).where(KnowledgeRevision.id == _REVISION_ROW))
    return value or 0


def _bump(session: Session, now: datetime) -> int:
    # The row lock (PostgreSQL) orders concurrent writers; SQLite has one writer at a time anyway.
    row = session.get(KnowledgeRevision, _REVISION_ROW, with_for_update=True)
    if row is None:
        row = KnowledgeRevision(id=_REVISION_ROW, revision=0, changed_at=now)
        session.add(row)
    row.revision += 1
    row.changed_at = now
    session.flush()
    return row.revision


def entries(session: Session, *, language: str | None = None, include_disabled: bool = True) -> list[KnowledgeEntry]:
    stmt = select(EntryRow).order_by(EntryRow.language, EntryRow.created_at, EntryRow.id)
    if language:
        stmt = stmt.where(EntryRow.language == language)
    if not include_disabled:
        stmt = stmt.where(EntryRow.enabled.is_(True))
    return [to_entry(row) for row in session.scalars(stmt)]


def snapshot(session: Session) -> tuple[int, list[KnowledgeEntry]]:
    """The revision and the entries, read in one transaction so they belong together."""
    return revision(session), entries(session)


def _same(row: EntryRow, entry: KnowledgeEntry) -> bool:
    return (row.language, tuple(row.questions), row.answer, tuple(row.tags), row.enabled) == (
        entry.language, entry.questions, entry.answer, entry.tags, entry.enabled,
    )  # fmt: skip


def _write(row: EntryRow, entry: KnowledgeEntry, now: datetime) -> None:
    row.language = entry.language
    row.questions = list(entry.questions)
    row.answer = entry.answer
    row.tags = list(entry.tags)
    row.enabled = entry.enabled
    row.updated_at = now


def import_entries(
    session: Session, new: Sequence[KnowledgeEntry], *, replace: bool = False, now: datetime
) -> ImportReport:
    """Create or update every entry; with `replace`, delete the entries the file does not have.

    Idempotent: importing the same file twice changes nothing the second time (and does not bump the
    revision). The caller commits, so a failure leaves the knowledge base as it was.
    """
    report = ImportReport()
    existing = {row.id: row for row in session.scalars(select(EntryRow))}
    for entry in new:
        row = existing.get(entry.id)
        if row is None:
            row = EntryRow(id=entry.id, created_at=now)
            _write(row, entry, now)
            session.add(row)
            report.created.append(entry.id)
        elif _same(row, entry):
            report.unchanged.append(entry.id)
        else:
            _write(row, entry, now)
            report.updated.append(entry.id)
    if replace:
        keep = {e.id for e in new}
        report.deleted = sorted(set(existing) - keep)
        if report.deleted:
            session.execute(delete(EntryRow).where(EntryRow.id.in_(report.deleted)))
    report.revision = _bump(session, now) if report.changed else revision(session)
    return report


def get(session: Session, entry_id: str) -> KnowledgeEntry:
    row = session.get(EntryRow, entry_id)
    if row is None:
        raise EntryNotFound(f"knowledge entry {entry_id!r} not found")
    return to_entry(row)


def create(session: Session, entry: KnowledgeEntry, *, now: datetime) -> int:
    if session.get(EntryRow, entry.id) is not None:
        raise EntryExists(f"knowledge entry {entry.id!r} already exists (PUT it to change it)")
    row = EntryRow(id=entry.id, created_at=now)
    _write(row, entry, now)
    session.add(row)
    return _bump(session, now)


def update(session: Session, entry: KnowledgeEntry, *, now: datetime) -> int:
    row = session.get(EntryRow, entry.id)
    if row is None:
        raise EntryNotFound(f"knowledge entry {entry.id!r} not found")
    if _same(row, entry):
        return revision(session)
    _write(row, entry, now)
    return _bump(session, now)


def remove(session: Session, entry_id: str, *, now: datetime) -> int:
    row = session.get(EntryRow, entry_id)
    if row is None:
        raise EntryNotFound(f"knowledge entry {entry_id!r} not found")
    session.delete(row)
    return _bump(session, now)
