"""Expiry notices: which credentials expire soon, and each (credential, threshold) claimed once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from authserver.records import ClientRecord, TrustRecord, UserRecord
from authserver.store.credentials import client_record
from authserver.store.database import Database, writes
from authserver.store.models import ExpiryNotice, PersonalClient, User
from authserver.store.outbox import Message, enqueue
from authserver.store.trusts import trust_record
from authserver.store.users import user_record


@dataclass(frozen=True)
class Due:
    """A notice the check found due: the credential, and the threshold (days; 0 expired)."""

    record: ClientRecord | TrustRecord
    threshold: int


class NoticeStore:
    """Finds the credentials near their expiry; claims their notices with the messages."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def expiring(
        self, *, until: datetime, since: datetime
    ) -> list[tuple[UserRecord, list[ClientRecord | TrustRecord]]]:
        """Live credentials of enabled owners expiring in ``(since, until]``, by owner."""
        query = (
            select(PersonalClient, User)
            .join(User, User.id == PersonalClient.user_id)
            .where(
                PersonalClient.deleted_at.is_(None),
                PersonalClient.expires_time.is_not(None),
                PersonalClient.expires_time <= until,
                PersonalClient.expires_time > since,
                User.disabled.is_(False),
            )
            .order_by(User.id, PersonalClient.expires_time, PersonalClient.id)
        )
        owners: dict[str, tuple[UserRecord, list[ClientRecord | TrustRecord]]] = {}
        with self.database.session() as session:
            for client, owner in session.execute(query):
                entry = owners.setdefault(owner.id, (user_record(owner), []))
                # A federation trust is told of as itself (its JSON, its page).
                shown = trust_record(client) if client.federation_issuer else client_record(client)
                entry[1].append(shown)
        return list(owners.values())

    def claimed(self, *, credential_ids: Sequence[str]) -> set[tuple[str, int, datetime]]:
        """(credential id, threshold, expiry told of) of the notices already claimed."""
        found: set[tuple[str, int, datetime]] = set()
        ids = list(credential_ids)
        with self.database.session() as session:
            for start in range(0, len(ids), 500):  # bounded lists of bound parameters
                query = select(
                    ExpiryNotice.credential_id, ExpiryNotice.threshold, ExpiryNotice.expires_time
                ).where(ExpiryNotice.credential_id.in_(ids[start : start + 500]))
                found.update((c, t, e) for c, t, e in session.execute(query))
        return found

    @writes
    def claim(
        self,
        *,
        due: Sequence[Due],
        messages: Callable[[Sequence[Due]], Sequence[Message]],
        now: datetime,
    ) -> list[Due]:
        """Claim each notice not yet sent for the credential's current expiry, and write the
        ``messages`` for those claimed, in one transaction; the claimed ones.

        Another instance claiming the same notice at once waits on the row and then
        finds it taken: each notice is sent once.
        """
        with self.database.session() as session:
            claimed = [d for d in due if self._claim(session, d, now)]
            if claimed:
                enqueue(session, messages(claimed), now=now)
            return claimed

    def _claim(self, session: Session, due: Due, now: datetime) -> bool:
        insert = postgresql.insert if not self.database.is_sqlite else sqlite.insert
        expires = due.record.expires_time
        assert expires is not None
        statement = insert(ExpiryNotice).values(
            credential_id=due.record.id,
            threshold=due.threshold,
            expires_time=expires,
            claimed_at=now,
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[ExpiryNotice.credential_id, ExpiryNotice.threshold],
            set_={"expires_time": expires, "claimed_at": now},
            # Claimed before for another expiry (a rotation moved it): due again.
            where=ExpiryNotice.expires_time != expires,
        ).returning(ExpiryNotice.credential_id)
        return session.execute(upsert).first() is not None
