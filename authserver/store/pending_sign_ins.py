"""Sign-ins sent to an OpenID Connect provider, taken back once by its callback."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete

from authserver.records import PendingSignInRecord
from authserver.store.database import Database, writes
from authserver.store.models import PendingSignIn


class PendingSignInStore:
    """Reads and writes pending sign-ins (by the SHA-256 of the browser's cookie)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def create(
        self,
        *,
        id_hash: str,
        provider: str,
        data: Mapping[str, str],
        now: datetime,
        expires_at: datetime,
    ) -> None:
        with self.database.session() as session:
            session.add(
                PendingSignIn(
                    id_hash=id_hash,
                    provider=provider,
                    data=dict(data),
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    @writes
    def take(self, *, id_hash: str, now: datetime) -> PendingSignInRecord | None:
        """The pending sign-in, deleted in the same transaction; None if it is unknown,
        expired, or taken already (of two callbacks racing, one gets it)."""
        with self.database.session() as session:
            row = session.get(PendingSignIn, id_hash)
            if row is None:
                return None
            record = PendingSignInRecord(
                provider=row.provider,
                data=dict(row.data),
                created_at=row.created_at,
                expires_at=row.expires_at,
            )
            taken = session.execute(delete(PendingSignIn).where(PendingSignIn.id_hash == id_hash))
            if getattr(taken, "rowcount", 0) != 1 or record.expires_at <= now:
                return None
            return record

    @writes
    def purge(self, *, now: datetime) -> int:
        """Drop the sign-ins whose callback never came."""
        with self.database.session() as session:
            result = session.execute(delete(PendingSignIn).where(PendingSignIn.expires_at <= now))
            return int(getattr(result, "rowcount", 0) or 0)
