"""The audit trail's rows: written in batches, read newest first with filters, purged by age."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select

from authserver.records import AuditEventRecord
from authserver.store.database import Database, writes
from authserver.store.models import AuditEvent

#: The columns of a row; anything else an event carries goes into ``details``.
COLUMNS = ("actor", "user_id", "credential_id", "client_id", "source", "request_id")


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page and the export narrow the trail to; None: any."""

    person: str | None = None  # a user id: the actor, or the person the event is about
    credential: Sequence[str] | None = None  # record ids and/or client_ids, any of them
    events: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive


def _record(row: AuditEvent) -> AuditEventRecord:
    return AuditEventRecord(
        id=row.id,
        at=row.at,
        event=row.event,
        actor=row.actor,
        user_id=row.user_id,
        credential_id=row.credential_id,
        client_id=row.client_id,
        source=row.source,
        request_id=row.request_id,
        details=dict(row.details or {}),
    )


def _conditions(where: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.person is not None:
        conditions.append(or_(AuditEvent.actor == where.person, AuditEvent.user_id == where.person))
    if where.credential is not None:
        refs = list(where.credential)
        conditions.append(or_(AuditEvent.credential_id.in_(refs), AuditEvent.client_id.in_(refs)))
    if where.events:
        conditions.append(AuditEvent.event.in_(list(where.events)))
    if where.since is not None:
        conditions.append(AuditEvent.at >= where.since)
    if where.until is not None:
        conditions.append(AuditEvent.at < where.until)
    return conditions


class AuditStore:
    """Reads and writes the ``audit_events`` table."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def insert_many(self, *, rows: Sequence[dict[str, Any]]) -> None:
        """One transaction for a batch of rows (``at``, ``event``, the ``COLUMNS``, ``details``)."""
        if not rows:
            return
        with self.database.session() as session:
            session.execute(insert(AuditEvent), list(rows))

    def newest_first(
        self, *, where: AuditFilter, before_id: int | None, limit: int
    ) -> tuple[list[AuditEventRecord], bool]:
        """Events newest first, ``limit`` before ``before_id``; and whether more follow."""
        statement = select(AuditEvent).where(*_conditions(where))
        if before_id is not None:
            statement = statement.where(AuditEvent.id < before_id)
        statement = statement.order_by(AuditEvent.id.desc()).limit(limit + 1)
        with self.database.session() as session:
            rows = [_record(row) for row in session.scalars(statement)]
        return rows[:limit], len(rows) > limit

    def oldest_first(self, *, where: AuditFilter, chunk: int = 1000) -> Iterator[AuditEventRecord]:
        """Every matching event, oldest first, read ``chunk`` rows per transaction."""
        after = 0
        while True:
            statement = (
                select(AuditEvent)
                .where(*_conditions(where), AuditEvent.id > after)
                .order_by(AuditEvent.id)
                .limit(chunk)
            )
            with self.database.session() as session:
                rows = [_record(row) for row in session.scalars(statement)]
            yield from rows
            if len(rows) < chunk:
                return
            after = rows[-1].id

    @writes
    def purge(self, *, before: datetime) -> int:
        """Drop events older than ``before``; how many went."""
        with self.database.session() as session:
            gone = session.execute(delete(AuditEvent).where(AuditEvent.at < before))
            return int(getattr(gone, "rowcount", 0) or 0)
