"""Initial access tokens for RFC 7591 registration (spent by ``CredentialStore.create``)."""

from __future__ import annotations

from datetime import datetime

from authserver.store.database import Database
from authserver.store.models import RegistrationToken


class RegistrationTokenStore:
    """Reads and writes one-time initial access tokens (stored as SHA-256 hashes)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, *, token_hash: str, user_id: str, now: datetime, expires_at: datetime) -> None:
        with self.database.session() as session:
            session.add(
                RegistrationToken(
                    token_hash=token_hash,
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                    used_at=None,
                )
            )

    def usable(self, *, token_hash: str, now: datetime) -> str | None:
        """The user id an unspent, unexpired initial access token belongs to."""
        with self.database.session() as session:
            row = session.get(RegistrationToken, token_hash)
            if row is None or row.used_at is not None or row.expires_at <= now:
                return None
            return row.user_id
