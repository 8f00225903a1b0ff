"""Where and how much credentials are used: recent source addresses, tokens per hour.

Both tables are written only by the batched ``lastUsedAt`` writer
(``store/last_used.py``), in the same transaction as ``lastUsedAt`` itself and
after it: that update locks each credential's row first, in id order, so two
instances flushing the same credentials take their turns instead of deadlocking
over its address rows. A flush merges: an address keeps its latest time, counts
add up, and only the ``KEEP_ADDRESSES`` most recent addresses of a credential stay.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from authserver.records import AddressUse
from authserver.store.database import Database, writes
from authserver.store.models import CredentialAddress, PersonalClient, TokenCount

KEEP_ADDRESSES = 5  # distinct source addresses kept per credential, the most recent
# The tables themselves: Core statements, not the ORM's bulk path (this runs every flush).
ADDRESSES = cast(Table, CredentialAddress.__table__)
COUNTS = cast(Table, TokenCount.__table__)


@functools.cache
def _upserts(dialect: str) -> tuple[Any, Any]:
    """The two ``INSERT … ON CONFLICT`` statements of a flush for ``dialect``, built once
    (building them costs more than running them)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    address = insert(ADDRESSES)
    later = address.excluded.last_used_at > ADDRESSES.c.last_used_at
    latest = case((later, address.excluded.last_used_at), else_=ADDRESSES.c.last_used_at)
    count = insert(COUNTS)
    return (
        address.on_conflict_do_update(
            index_elements=[ADDRESSES.c.credential_id, ADDRESSES.c.address],
            set_={"last_used_at": latest},
        ),
        count.on_conflict_do_update(
            index_elements=[COUNTS.c.credential_id, COUNTS.c.hour],
            set_={"count": COUNTS.c["count"] + count.excluded["count"]},
        ),
    )


def merge(
    session: Session,
    *,
    addresses: Mapping[tuple[str, str], datetime],
    counts: Mapping[tuple[str, datetime], int],
    prune: Collection[str] | None = None,
) -> None:
    """Add a batch to the stored addresses and counts (inside the flush's transaction).

    ``prune``: the credentials whose addresses may have grown past ``KEEP_ADDRESSES``
    (None: every one in the batch). A writer that knows an address is stored already
    (it wrote it) leaves its credential out: that update adds no row.
    """
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
    upsert_addresses, upsert_counts = _upserts(session.get_bind().dialect.name)
    if address_rows:
        session.execute(upsert_addresses, address_rows)
        grown = known & ({c for c, _ in addresses} if prune is None else set(prune))
        if grown:
            _keep_most_recent(session, grown)
    count_rows = [
        {"credential_id": c, "hour": hour, "count": n}
        for (c, hour), n in sorted(counts.items())
        if c in known and n > 0
    ]
    if count_rows:
        session.execute(upsert_counts, count_rows)


def _keep_most_recent(session: Session, credential_ids: set[str]) -> None:
    table = ADDRESSES
    rank = func.row_number().over(
        partition_by=table.c.credential_id,
        order_by=(table.c.last_used_at.desc(), table.c.address),
    )
    ranked = (
        select(table.c.credential_id, table.c.address, rank.label("rank"))
        .where(table.c.credential_id.in_(sorted(credential_ids)))
        .subquery()
    )
    stale = select(ranked.c.credential_id, ranked.c.address).where(ranked.c.rank > KEEP_ADDRESSES)
    session.execute(delete(table).where(tuple_(table.c.credential_id, table.c.address).in_(stale)))


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
