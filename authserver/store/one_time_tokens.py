"""One-time tokens kept by their SHA-256: minted for a user, usable until spent or expired.

Initial access tokens for RFC 7591 registration and invitation links share this
shape (``RegistrationToken`` and ``Invite`` rows); spending one happens inside
the transaction that uses it (``CredentialStore.create``, ``InviteStore.redeem``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from authserver.records import OneTimeTokenRecord
from authserver.store.database import Database, writes
from authserver.store.models import Invite, RegistrationToken

Row = TypeVar("Row", Invite, RegistrationToken)
ID_LENGTH = 12  # hex digits of the SHA-256 that name an open token


def _record(row: Invite | RegistrationToken) -> OneTimeTokenRecord:
    return OneTimeTokenRecord(
        id=row.token_hash[:ID_LENGTH],
        user_id=row.user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def spend_all(session: Session, model: type[Row], *, user_id: str, now: datetime) -> int:
    """Spend every open token of ``user_id`` inside the caller's transaction; how many."""
    spent = session.execute(
        update(model)
        .where(model.user_id == user_id, model.used_at.is_(None), model.expires_at > now)
        .values(used_at=now)
    )
    return int(getattr(spent, "rowcount", 0) or 0)


class OneTimeTokenStore(Generic[Row]):
    """Reads and writes one kind of one-time token (stored as SHA-256 hashes)."""

    model: type[Row]

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def create(self, *, token_hash: str, user_id: str, now: datetime, expires_at: datetime) -> None:
        with self.database.session() as session:
            session.add(
                self.model(
                    token_hash=token_hash,
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                    used_at=None,
                )
            )

    def usable(self, *, token_hash: str, now: datetime) -> str | None:
        """The user id of an unspent, unexpired token, else None."""
        with self.database.session() as session:
            row = session.get(self.model, token_hash)
            if row is None or row.used_at is not None or row.expires_at <= now:
                return None
            return row.user_id

    def open(self, *, user_id: str | None, now: datetime) -> list[OneTimeTokenRecord]:
        """Unspent, unexpired tokens (of ``user_id``, or of everyone), oldest first."""
        query = select(self.model).where(self.model.used_at.is_(None), self.model.expires_at > now)
        if user_id is not None:
            query = query.where(self.model.user_id == user_id)
        with self.database.session() as session:
            rows = session.scalars(query.order_by(self.model.created_at))
            return [_record(row) for row in rows]

    @writes
    def spend_for_user(self, *, user_id: str, now: datetime) -> int:
        """Spend every open token of a user; how many were open."""
        with self.database.session() as session:
            return spend_all(session, self.model, user_id=user_id, now=now)

    @writes
    def revoke(self, *, id: str, now: datetime) -> OneTimeTokenRecord | None:
        """Spend the one open token whose ``id`` (or whole hash) is given; None if none is."""
        if not id or len(id) < ID_LENGTH:
            return None
        with self.database.session() as session:
            rows = session.scalars(
                select(self.model).where(
                    self.model.token_hash.startswith(id.lower(), autoescape=True),
                    self.model.used_at.is_(None),
                    self.model.expires_at > now,
                )
            ).all()
            if len(rows) != 1:
                return None
            rows[0].used_at = now
            return _record(rows[0])


class RegistrationTokenStore(OneTimeTokenStore[RegistrationToken]):
    """Initial access tokens for RFC 7591 registration (spent by ``CredentialStore.create``)."""

    model = RegistrationToken
