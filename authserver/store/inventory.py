"""The admin inventory of credentials: every live one, filtered, sorted and paged in SQL.

The query reads one ``UNION ALL`` of sources with the same labelled columns
(``_SOURCES``). Personal clients and federation trusts (§12) share one table, so one
``select`` lists both, each row's ``kind`` telling which; a kind of credential
stored elsewhere joins by adding a ``select`` with the same labels: filters,
sorting, paging and counting work on the union and need no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Interval,
    Select,
    String,
    Subquery,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)

from authserver.records import UserRecord
from authserver.store.database import Database
from authserver.store.models import PersonalClient, User
from authserver.store.users import user_record

KIND_PERSONAL_CLIENT = "personal_client"
KIND_TRUST = "federation_trust"
#: Orders the page offers: each a column of the union, and its direction.
SORTS = {
    "created": ("created_at", "desc"),
    "created-oldest": ("created_at", "asc"),
    "name": ("name", "asc"),
    "owner": ("owner_email", "asc"),
    "expires": ("expires_time", "asc"),
    "last-used": ("last_used_at", "desc"),
    "least-used": ("last_used_at", "asc"),
}


@dataclass(frozen=True)
class InventoryFilter:
    """What the inventory narrows to; None or False: any."""

    owner: str | None = None  # part of the owner's e-mail or name
    expiring_before: datetime | None = None
    unused_since: datetime | None = None  # not used since then (never used counts)
    never_used: bool = False
    longer_than: timedelta | None = None  # outside the lifetime policy (or never expiring)
    network_locked: bool = False
    requires_dpop: bool = False


@dataclass(frozen=True)
class InventoryItem:
    """One credential of the inventory, whatever its kind."""

    kind: str
    id: str
    client_id: str
    name: str
    owner: UserRecord
    scoped_roles: tuple[str, ...]
    allow_source_cidr: tuple[str, ...]
    expires_time: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    lifetime_from: datetime  # created, or last rotated: where its current lifetime began
    require_dpop: bool


def _personal_clients() -> Select[*tuple[Any, ...]]:
    return select(
        case(
            (PersonalClient.federation_issuer.is_(None), literal(KIND_PERSONAL_CLIENT, String)),
            else_=literal(KIND_TRUST, String),
        ).label("kind"),
        PersonalClient.id.label("id"),
        PersonalClient.client_id.label("client_id"),
        PersonalClient.display_name.label("name"),
        PersonalClient.user_id.label("owner_id"),
        PersonalClient.scoped_roles.label("scoped_roles"),
        PersonalClient.allow_source_cidr.label("allow_source_cidr"),
        PersonalClient.expires_time.label("expires_time"),
        PersonalClient.last_used_at.label("last_used_at"),
        PersonalClient.created_at.label("created_at"),
        # Where its current lifetime began: a rotation may set a new expiry (§11).
        func.coalesce(PersonalClient.rotated_at, PersonalClient.created_at).label("lifetime_from"),
        PersonalClient.require_dpop.label("require_dpop"),
    ).where(PersonalClient.deleted_at.is_(None))


#: Every source of credentials the inventory lists (trusts are rows of personal_clients).
_SOURCES = (_personal_clients,)


def _source() -> Subquery:
    selects = [make() for make in _SOURCES]
    return (union_all(*selects) if len(selects) > 1 else selects[0]).subquery("credential")


class InventoryStore:
    """Reads the inventory; it writes nothing (deleting goes through the credential use case)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _statement(self, where: InventoryFilter, source: Subquery) -> Select[*tuple[Any, ...]]:
        c = source.c
        statement = select(source, User).join(User, User.id == c.owner_id)
        if where.owner:
            escaped = where.owner.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped.lower()}%"
            statement = statement.where(
                or_(
                    func.lower(User.email).like(pattern, escape="\\"),
                    func.lower(User.display_name).like(pattern, escape="\\"),
                )
            )
        if where.expiring_before is not None:
            statement = statement.where(c.expires_time < where.expiring_before)
        if where.never_used:
            statement = statement.where(c.last_used_at.is_(None))
        if where.unused_since is not None:
            statement = statement.where(
                or_(c.last_used_at.is_(None), c.last_used_at < where.unused_since)
            )
        if where.longer_than is not None:
            statement = statement.where(
                or_(c.expires_time.is_(None), self._longer(c, where.longer_than))
            )
        if where.network_locked:
            statement = statement.where(cast(c.allow_source_cidr, String) != "[]")
        if where.requires_dpop:
            statement = statement.where(c.require_dpop.is_(True))
        return statement

    def _longer(self, c: Any, limit: timedelta) -> Any:
        """``expires_time - lifetime_from > limit``, in each database's date arithmetic."""
        if self.database.is_sqlite:
            seconds = (func.julianday(c.expires_time) - func.julianday(c.lifetime_from)) * 86400
            return seconds > limit.total_seconds() + 1  # a second's slack for rounding
        return (c.expires_time - c.lifetime_from) > bindparam(
            "longer_than", limit, type_=Interval()
        )

    def page(
        self, *, where: InventoryFilter, sort: str, offset: int, limit: int
    ) -> tuple[list[InventoryItem], int]:
        """One page of matching credentials in the chosen order, and how many match in all."""
        source = _source()
        statement = self._statement(where, source)
        column_name, direction = SORTS.get(sort, SORTS["created"])
        column = User.email if column_name == "owner_email" else source.c[column_name]
        # Never used / never expiring: last in every order but "least used first".
        ordered = column.asc() if direction == "asc" else column.desc()
        ordered = ordered.nulls_first() if sort == "least-used" else ordered.nulls_last()
        statement = statement.order_by(ordered, source.c.id.desc()).offset(offset).limit(limit)
        counted = select(func.count()).select_from(
            self._statement(where, source).with_only_columns(source.c.id).subquery()
        )
        with self.database.session() as session:
            total = int(session.scalar(counted) or 0)
            rows = session.execute(statement).all()
        return [_item(row) for row in rows], total

    def named(self, *, ids: Sequence[str]) -> list[InventoryItem]:
        """The live credentials among ``ids`` (the confirmation page names them)."""
        source = _source()
        statement = (
            self._statement(InventoryFilter(), source)
            .where(source.c.id.in_(list(ids)))
            .order_by(source.c.name, source.c.id)
        )
        with self.database.session() as session:
            return [_item(row) for row in session.execute(statement).all()]


def _item(row: Any) -> InventoryItem:
    return InventoryItem(
        kind=row.kind,
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        owner=user_record(row.User),
        scoped_roles=tuple(row.scoped_roles or ()),
        allow_source_cidr=tuple(row.allow_source_cidr or ()),
        expires_time=row.expires_time,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        lifetime_from=row.lifetime_from,
        require_dpop=bool(row.require_dpop),
    )
