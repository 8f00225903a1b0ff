"""Invitations: one-time links on which a person chooses a password (SHA-256 hashes only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from authserver.errors import Unauthenticated
from authserver.store.database import writes
from authserver.store.models import Invite
from authserver.store.one_time_tokens import OneTimeTokenStore, spend_all
from authserver.store.passwords import write_password


class InviteStore(OneTimeTokenStore[Invite]):
    """Reads and writes invitations."""

    model = Invite

    @writes
    def redeem(self, *, token_hash: str, password_hash: str, now: datetime) -> str:
        """Spend the invitation and set its user's password in one transaction; the user id.

        Two browsers redeeming the same link: one wins, the other is ``Unauthenticated``.
        The user's other open invitations are spent with it: an older link must not set
        the password again later.
        """
        with self.database.session() as session:
            row = session.get(Invite, token_hash)
            spent = session.execute(
                update(Invite)
                .where(
                    Invite.token_hash == token_hash,
                    Invite.used_at.is_(None),
                    Invite.expires_at > now,
                )
                .values(used_at=now)
            )
            if row is None or getattr(spent, "rowcount", 0) != 1:
                raise Unauthenticated("the invitation is spent or expired")
            spend_all(session, Invite, user_id=row.user_id, now=now)
            write_password(session, user_id=row.user_id, password_hash=password_hash, now=now)
            return row.user_id
