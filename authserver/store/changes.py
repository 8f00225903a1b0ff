"""The change feed: how every instance learns, cheaply, what changed since it last looked.

One counter row is incremented by every transaction that changes what
authentication or a token check reads (users, credentials, revocations), and
the changed row is stamped with the new value. The counter's row lock orders
those transactions, so an instance that has seen version N has seen every
change up to N (``authserver.store.state_cache`` follows it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from authserver.records import Changes
from authserver.store.database import Database
from authserver.store.models import ChangeCounter, PersonalClient, RevokedToken, User

# Revocations outlive their token's exp: token checks allow a few seconds of clock skew.
REVOCATION_MARGIN = timedelta(seconds=60)


def next_version(session: Session) -> int:
    """Increment the change counter; its row lock orders changing transactions (commit order).

    Call it before touching any other row: every changing transaction then takes
    the counter first, so two of them cannot deadlock over rows.
    """
    session.execute(
        update(ChangeCounter).where(ChangeCounter.id == 1).values(value=ChangeCounter.value + 1)
    )
    # Read back in the same transaction (UPDATE … RETURNING needs SQLite 3.35).
    return int(
        session.execute(select(ChangeCounter.value).where(ChangeCounter.id == 1)).scalar_one()
    )


class ChangeFeed:
    """Reads the change feed."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def since(self, *, version: int | None, now: datetime) -> Changes:
        """Changes with a version above ``version``; with None, every live revocation.

        The counter is read first: every change up to its value has committed, so a
        caller that asks again from that value misses nothing.
        """
        with self.database.session() as session:
            current = session.execute(
                select(ChangeCounter.value).where(ChangeCounter.id == 1)
            ).scalar_one()
            if version is None:
                revoked = session.execute(
                    select(RevokedToken.jti, RevokedToken.expires_at).where(
                        RevokedToken.expires_at >= now - REVOCATION_MARGIN
                    )
                )
                return Changes(
                    int(current), frozenset(), frozenset(), tuple((j, e) for j, e in revoked)
                )
            clients = session.scalars(
                select(PersonalClient.client_id).where(PersonalClient.version > version)
            )
            users = session.scalars(select(User.id).where(User.version > version))
            revoked = session.execute(
                select(RevokedToken.jti, RevokedToken.expires_at).where(
                    RevokedToken.version > version
                )
            )
            return Changes(
                int(current),
                frozenset(clients),
                frozenset(users),
                tuple((jti, until) for jti, until in revoked),
            )
