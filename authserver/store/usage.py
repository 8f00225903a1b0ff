"""Where and how much credentials are used: recent source addresses, tokens per hour.

Both tables are written only by the batched ``lastUsedAt`` writer
(``store/last_used.py``), in the same transaction as ``lastUsedAt`` itself and
after it: that update locks each credential's row first, in id order, so two
instances flushing the same credentials take their turns instead of deadlocking
over its address rows. A flush merges: an address keeps its latest time, counts
add up, and only the ``KEEP_ADDRESSES`` most recent addresses of a credential stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from authserver.records import AddressUse
from authserver.store.database import Database, writes
from authserver.store.models import CredentialAddress, PersonalClient, TokenCount

KEEP_ADDRESSES = 5  # distinct source addresses kept per credential, the most recent


def _insert(session: Session, model: type[Any]) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT`` (SQLite and PostgreSQL alike)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def merge(
    session: Session,
    *,
    addresses: Mapping[tuple[str, str], datetime],
    counts: Mapping[tuple[str, datetime], int],
) -> None:
    """Add a batch to the stored addresses and counts (inside the flush's transaction)."""
    ids = {credential_id for credential_id, _ in addresses} | {c for c, _ in counts}
    if not ids:
        return
    # A journal may name a credential this database does not hold (restored from a backup).
    known = set(session.scalars(select(PersonalClient.id).where(PersonalClient.id.in_(ids))))
    address_rows = [
        {"credential_id": c, "address": a, "last_used_at": when}
        for (c, a), when in sorted(addresses.items())
        if c in known
    ]
    if address_rows:
        table = CredentialAddress
        upsert = _insert(session, table)
        later = upsert.excluded.last_used_at > table.last_used_at
        session.execute(
            upsert.on_conflict_do_update(
                index_elements=[table.credential_id, table.address],
                set_={
                    "last_used_at": case(
                        (later, upsert.excluded.last_used_at), else_=table.last_used_at
                    )
                },
            ),
            address_rows,
        )
        _keep_most_recent(session, {c for c, _ in addresses if c in known})
    count_rows = [
        {"credential_id": c, "hour": hour, "count": n}
        for (c, hour), n in sorted(counts.items())
        if c in known and n > 0
    ]
    if count_rows:
        upsert = _insert(session, TokenCount)
        session.execute(
            upsert.on_conflict_do_update(
                index_elements=[TokenCount.credential_id, TokenCount.hour],
                set_={"count": TokenCount.count + upsert.excluded["count"]},
            ),
            count_rows,
        )


def _keep_most_recent(session: Session, credential_ids: set[str]) -> None:
    table = CredentialAddress
    ranked = (
        select(
            table.credential_id,
            table.address,
            func.row_number()
            .over(
                partition_by=table.credential_id,
                order_by=(table.last_used_at.desc(), table.address),
            )
            .label("rank"),
        )
        .where(table.credential_id.in_(sorted(credential_ids)))
        .subquery()
    )
    stale = select(ranked.c.credential_id, ranked.c.address).where(ranked.c.rank > KEEP_ADDRESSES)
    session.execute(
        delete(table).where(tuple_(table.credential_id, table.address).in_(stale)),
        execution_options={"synchronize_session": False},
    )


class UsageStore:
    """Reads the usage tables; the batched writer fills them (``merge``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def addresses(self, *, credential_id: str) -> list[AddressUse]:
        """The credential's recent source addresses, most recent first."""
        query = (
            select(CredentialAddress.address, CredentialAddress.last_used_at)
            .where(CredentialAddress.credential_id == credential_id)
            .order_by(CredentialAddress.last_used_at.desc(), CredentialAddress.address)
            .limit(KEEP_ADDRESSES)
        )
        with self.database.session() as session:
            return [AddressUse(address, when) for address, when in session.execute(query)]

    def issued(self, *, credential_id: str, since: datetime) -> list[tuple[datetime, int]]:
        """(UTC hour, tokens minted in it) of the credential from ``since`` on, oldest first."""
        query = (
            select(TokenCount.hour, TokenCount.count)
            .where(TokenCount.credential_id == credential_id, TokenCount.hour >= since)
            .order_by(TokenCount.hour)
        )
        with self.database.session() as session:
            return [(hour, int(count)) for hour, count in session.execute(query)]

    @writes
    def purge(self, *, before: datetime) -> None:
        """Forget hourly counts older than ``before``."""
        with self.database.session() as session:
            session.execute(delete(TokenCount).where(TokenCount.hour < before))
