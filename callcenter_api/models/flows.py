"""IVR flow versions and the live alias, written through `callcenter_api.flow_store`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter_api.models.base import Base, UtcDateTime


class FlowVersion(Base):
    """One immutable version of an IVR flow: the YAML exactly as uploaded, numbered 1, 2, 3... per name.

    Rows are never updated: call records say `name@version`, so that pair must always mean the same text.
    """

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64), doc="sha256 of the UTF-8 source, hex")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(Text, doc='"api", "hot-reload:<path>", ...')

    def __repr__(self) -> str:
        return f"FlowVersion({self.name}@{self.version}, checksum={self.checksum[:12]!r})"


class FlowLive(Base):
    """The live alias: which version of each flow new calls get. Moving it never touches running calls."""

    __tablename__ = "flow_live"
    # The composite key makes it impossible to point the alias at a version that does not exist.
    __table_args__ = (
        ForeignKeyConstraint(
            ["name", "version"],
            ["flow_versions.name", "flow_versions.version"],
        ),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    activated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"FlowLive({self.name}@{self.version})"
