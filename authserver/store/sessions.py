"""Browser sessions, kept by the SHA-256 of their id, read with their user on every page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from authserver.records import SessionRecord, UserRecord
from authserver.store.database import Database, writes
from authserver.store.models import BrowserSession, User
from authserver.store.users import user_record


def _record(row: BrowserSession) -> SessionRecord:
    return SessionRecord(
        user_id=row.user_id,
        method=row.method,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


class SessionStore:
    """Reads and writes browser sessions."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def create(
        self, *, id_hash: str, user_id: str, method: str, now: datetime, expires_at: datetime
    ) -> SessionRecord:
        row = BrowserSession(
            id_hash=id_hash,
            user_id=user_id,
            method=method,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
        with self.database.session() as session:
            session.add(row)
        return _record(row)

    def find(self, *, id_hash: str) -> tuple[SessionRecord, UserRecord] | None:
        """The session and its user as they are now, in one query; None if either is gone."""
        query = (
            select(BrowserSession, User)
            .join(User, User.id == BrowserSession.user_id)
            .where(BrowserSession.id_hash == id_hash)
        )
        with self.database.session() as session:
            found = session.execute(query).first()
            if found is None:
                return None
            return _record(found[0]), user_record(found[1])

    @writes
    def touch(self, *, id_hash: str, now: datetime) -> None:
        """Move ``last_seen_at`` forward (the idle lifetime counts from it)."""
        with self.database.session() as session:
            session.execute(
                update(BrowserSession)
                .where(BrowserSession.id_hash == id_hash, BrowserSession.last_seen_at < now)
                .values(last_seen_at=now)
            )

    @writes
    def delete(self, *, id_hash: str) -> bool:
        with self.database.session() as session:
            result = session.execute(
                delete(BrowserSession).where(BrowserSession.id_hash == id_hash)
            )
            return bool(getattr(result, "rowcount", 0))

    @writes
    def delete_for_user(self, *, user_id: str) -> int:
        """End every session of a user; how many there were."""
        with self.database.session() as session:
            result = session.execute(
                delete(BrowserSession).where(BrowserSession.user_id == user_id)
            )
            return int(getattr(result, "rowcount", 0))

    @writes
    def purge(self, *, now: datetime, idle_before: datetime) -> int:
        """Drop sessions past their absolute lifetime or idle since ``idle_before``."""
        with self.database.session() as session:
            result = session.execute(
                delete(BrowserSession).where(
                    (BrowserSession.expires_at <= now) | (BrowserSession.last_seen_at < idle_before)
                )
            )
            return int(getattr(result, "rowcount", 0))
