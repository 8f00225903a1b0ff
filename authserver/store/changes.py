"""The change feed: how every instance learns, cheaply, what changed since it last looked.

One counter row is incremented by every transaction that changes what
authentication or a token check reads (users, credentials, revocations), and
the changed row is stamped with the new value. The counter's row lock orders
those transactions, so an instance that has seen version N has seen every
change up to N (``authserver.store.state_cache`` follows it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import anyio
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from authserver.records import Changes
from authserver.store.database import CHANGED, Database
from authserver.store.models import ChangeCounter, PersonalClient, RevokedToken, User

# PostgreSQL NOTIFY channel: a changing transaction notifies it, delivered at commit.
CHANNEL = "authserver_changes"
LISTEN_RETRY_SECONDS = 1.0
log = logging.getLogger("authserver.store")
# Revocations outlive their token's exp: token checks allow a few seconds of clock skew.
REVOCATION_MARGIN = timedelta(seconds=60)


def announce(session: Session) -> None:
    """Tell every process of this change once it commits: the machine's signal (bumped by
    ``Database.session`` after the commit) and, on PostgreSQL, NOTIFY (delivered at commit)."""
    session.info[CHANGED] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def next_version(session: Session) -> int:
    """Increment the change counter; its row lock orders changing transactions (commit order).

    Call it before touching any other row: every changing transaction then takes
    the counter first, so two of them cannot deadlock over rows.
    """
    announce(session)
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


async def listen(database: Database, on_change: Callable[[], Awaitable[None]]) -> None:
    """Call ``on_change`` after every change committed anywhere (PostgreSQL ``NOTIFY``),
    until cancelled; reconnects after failures. A notification lost meanwhile is made up
    by the change feed's poll. Does nothing on SQLite (one machine: the signal suffices).
    """
    if database.is_sqlite:
        return
    import psycopg

    conninfo = database.engine.url.set(drivername="postgresql").render_as_string(
        hide_password=False
    )
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=5
            )
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                await on_change()  # changes made while not listening
                async for _ in conn.notifies():
                    await on_change()
            finally:
                # Shielded: cancellation (shutdown) would otherwise cancel the close too.
                with anyio.CancelScope(shield=True):
                    await conn.close()
        except Exception as exc:
            log.warning(
                "change notifications interrupted (%s); listening again", type(exc).__name__
            )
        await anyio.sleep(LISTEN_RETRY_SECONDS)
