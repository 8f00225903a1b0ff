"""Local passwords of people: one argon2id hash per user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from authserver.errors import NotFound
from authserver.store.database import Database, writes
from authserver.store.models import User, UserPassword


def write_password(session: Session, *, user_id: str, password_hash: str, now: datetime) -> None:
    """Insert or replace a user's hash inside the caller's transaction (invites share it)."""
    if session.get(User, user_id) is None:
        raise NotFound(f"no user {user_id!r}")
    row = session.get(UserPassword, user_id)
    if row is None:
        session.add(UserPassword(user_id=user_id, password_hash=password_hash, updated_at=now))
    else:
        row.password_hash = password_hash
        row.updated_at = now


class PasswordStore:
    """Reads and writes password hashes (only the people use case sees them)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def set(self, *, user_id: str, password_hash: str, now: datetime) -> None:
        with self.database.session() as session:
            write_password(session, user_id=user_id, password_hash=password_hash, now=now)

    def hash_of(self, *, user_id: str) -> str | None:
        with self.database.session() as session:
            row = session.get(UserPassword, user_id)
            return row.password_hash if row is not None else None
