"""Revoked access tokens and the client-assertion replay cache: ids kept until expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from authserver.store.changes import REVOCATION_MARGIN, next_version
from authserver.store.database import Database, writes
from authserver.store.models import RevokedToken, UsedAssertion

ASSERTION_SKEW = timedelta(seconds=30)


class RevocationStore:
    """Revocations (followed by every instance through the change feed) and used assertions."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def revoke(self, *, jti: str, expires_at: datetime) -> None:
        try:
            with self.database.session() as session:
                version = next_version(session)
                if session.get(RevokedToken, jti) is None:
                    session.add(RevokedToken(jti=jti, expires_at=expires_at, version=version))
        except IntegrityError:
            pass  # revoked concurrently by another request or instance

    def is_revoked(self, *, jti: str) -> bool:
        with self.database.session() as session:
            return session.get(RevokedToken, jti) is not None

    @writes
    def purge(self, *, now: datetime) -> int:
        with self.database.session() as session:
            cutoff = now - REVOCATION_MARGIN
            result = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)

    @writes
    def record_assertion(self, *, key: str, expires_at: datetime) -> bool:
        """Remember a client assertion id; False when it was seen before (a replay)."""
        try:
            with self.database.session() as session:
                session.add(UsedAssertion(key=key, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    @writes
    def purge_assertions(self, *, now: datetime) -> int:
        with self.database.session() as session:
            # Kept a while past expiry: instances' clocks differ by a few seconds.
            cutoff = now - ASSERTION_SKEW
            result = session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)
