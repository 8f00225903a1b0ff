"""Provider links: which (issuer, subject) of an OpenID Connect provider signs in which user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from authserver.errors import AlreadyExists, NotFound
from authserver.store.database import Database, writes
from authserver.store.models import ProviderLink, User


class ProviderLinkStore:
    """Reads and writes provider links."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def user_of(self, *, issuer: str, subject: str) -> str | None:
        """The user id this provider account is linked to, if any."""
        with self.database.session() as session:
            row = session.get(ProviderLink, (issuer, subject))
            return row.user_id if row is not None else None

    def of_user(self, *, user_id: str) -> list[tuple[str, str]]:
        """The (issuer, subject) pairs linked to a user."""
        with self.database.session() as session:
            rows = session.scalars(select(ProviderLink).where(ProviderLink.user_id == user_id))
            return [(row.issuer, row.subject) for row in rows]

    @writes
    def link(self, *, issuer: str, subject: str, user_id: str, now: datetime) -> None:
        """Link a provider account to a user (AlreadyExists if it is linked already)."""
        try:
            with self.database.session() as session:
                if session.get(User, user_id) is None:
                    raise NotFound(f"no user {user_id!r}")
                session.add(
                    ProviderLink(issuer=issuer, subject=subject, user_id=user_id, created_at=now)
                )
        except IntegrityError:
            raise AlreadyExists("this provider account is linked to a user already") from None

    @writes
    def unlink(self, *, issuer: str, subject: str, user_id: str) -> bool:
        """Remove a link of this user; False when there was none."""
        with self.database.session() as session:
            gone = session.execute(
                delete(ProviderLink).where(
                    ProviderLink.issuer == issuer,
                    ProviderLink.subject == subject,
                    ProviderLink.user_id == user_id,
                )
            )
            return bool(getattr(gone, "rowcount", 0))
