"""One-time tokens kept by their SHA-256: minted for a user, usable until spent or expired.

Initial access tokens for RFC 7591 registration and invitation links share this
shape (``RegistrationToken`` and ``Invite`` rows); spending one happens inside
the transaction that uses it (``CredentialStore.create``, ``InviteStore.redeem``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from authserver.store.database import Database, writes
from authserver.store.models import Invite, RegistrationToken

Row = TypeVar("Row", Invite, RegistrationToken)


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


class RegistrationTokenStore(OneTimeTokenStore[RegistrationToken]):
    """Initial access tokens for RFC 7591 registration (spent by ``CredentialStore.create``)."""

    model = RegistrationToken
