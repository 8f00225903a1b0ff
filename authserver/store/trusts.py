"""Federation trusts: rows of ``personal_clients`` with ``federation_issuer`` set.

A trust shares its table with personal clients, so that everything that follows a
credential — the authentication view and its cache, the change feed, ``lastUsedAt``,
a user's deletion — follows trusts unchanged. This store reads and writes only trusts;
``CredentialStore`` only personal clients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError

from authserver.domain.credentials import UNSET, CheckedPatch, CredentialSpec
from authserver.domain.federation import CheckedTrustFields
from authserver.errors import AlreadyExists, NotFound, PermissionDenied
from authserver.records import TrustRecord, UserRecord
from authserver.store.changes import next_version
from authserver.store.credentials import patch_values
from authserver.store.database import Database, writes
from authserver.store.ids import new_record_id
from authserver.store.models import PersonalClient, User
from authserver.store.outbox import Notify, enqueue
from authserver.store.users import user_record

TRUST = PersonalClient.federation_issuer.is_not(None)


def trust_record(row: PersonalClient) -> TrustRecord:
    assert row.federation_issuer is not None
    return TrustRecord(
        id=row.id,
        client_id=row.client_id,
        user_id=row.user_id,
        display_name=row.display_name,
        issuer=row.federation_issuer,
        audience=row.federation_audience or "",
        condition=row.federation_condition or "",
        allow_source_cidr=tuple(row.allow_source_cidr),
        scoped_roles=tuple(row.scoped_roles),
        expires_time=row.expires_time,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        require_dpop=row.require_dpop,
    )


def _missing(id: str) -> NotFound:
    return NotFound(f"no federation trust {id!r}")


class TrustStore:
    """Reads and writes federation trusts."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def create(
        self,
        *,
        user_id: str,
        spec: CredentialSpec,
        issuer: str,
        audience: str,
        condition: str,
        new_client_id: Callable[[], str],
        now: datetime,
        notify: Notify | None = None,
    ) -> TrustRecord:
        """Insert a trust (no secret); a client_id collision is retried with a fresh id."""
        for _attempt in range(8):
            row = PersonalClient(
                id=new_record_id(),
                client_id=new_client_id(),
                user_id=user_id,
                display_name=spec.display_name,
                allow_source_cidr=list(spec.allow_source_cidr),
                scoped_roles=list(spec.scoped_roles),
                expires_time=spec.expires_time,
                last_used_at=None,
                created_at=now,
                updated_at=now,
                deleted_at=None,
                secret_hash="",
                public_jwk={},
                public_key_x=None,
                require_dpop=spec.require_dpop,
                federation_issuer=issuer,
                federation_audience=audience,
                federation_condition=condition,
            )
            try:
                with self.database.session() as session:
                    row.version = next_version(session)
                    if session.get(User, user_id) is None:
                        raise NotFound(f"no user {user_id!r}")
                    session.add(row)
                    session.flush()
                    record = trust_record(row)
                    if notify is not None:
                        enqueue(session, notify(record), now=now)
            except IntegrityError:
                continue
            return record
        raise AlreadyExists("could not allocate a unique client_id")

    def get(self, *, id: str) -> TrustRecord:
        with self.database.session() as session:
            row = session.get(PersonalClient, id)
            if row is None or row.federation_issuer is None:
                raise _missing(id)
            return trust_record(row)

    def find(self, *, client_id: str) -> TrustRecord | None:
        with self.database.session() as session:
            row = session.scalar(
                select(PersonalClient).where(PersonalClient.client_id == client_id, TRUST)
            )
            return trust_record(row) if row is not None else None

    def page(
        self, *, user_ids: Sequence[str] | None, after_id: str | None, limit: int
    ) -> tuple[list[TrustRecord], bool]:
        """Live trusts in id order, ``limit`` after ``after_id``; and whether more follow."""
        query = select(PersonalClient).where(PersonalClient.deleted_at.is_(None), TRUST)
        if user_ids is not None:
            query = query.where(PersonalClient.user_id.in_(list(user_ids)))
        if after_id is not None:
            query = query.where(PersonalClient.id > after_id)
        query = query.order_by(PersonalClient.id).limit(limit + 1)
        with self.database.session() as session:
            rows = [trust_record(row) for row in session.scalars(query)]
        return rows[:limit], len(rows) > limit

    def with_owners(
        self, *, user_id: str | None, limit: int
    ) -> list[tuple[TrustRecord, UserRecord]]:
        """Live trusts with their owners, newest first (one user's, or everyone's)."""
        statement = (
            select(PersonalClient, User)
            .join(User, User.id == PersonalClient.user_id)
            .where(PersonalClient.deleted_at.is_(None), TRUST)
        )
        if user_id is not None:
            statement = statement.where(PersonalClient.user_id == user_id)
        statement = statement.order_by(PersonalClient.id.desc()).limit(limit)
        with self.database.session() as session:
            return [(trust_record(t), user_record(u)) for t, u in session.execute(statement)]

    @writes
    def update(
        self,
        *,
        id: str,
        patch: CheckedPatch,
        own: CheckedTrustFields,
        now: datetime,
        notify: Notify | None = None,
    ) -> TrustRecord:
        """Apply an already validated patch to a live trust; an expiry only moves earlier,
        judged at write time (as for personal clients)."""
        values: dict[Any, Any] = {**patch_values(patch), PersonalClient.updated_at: now}
        if own.issuer is not UNSET:
            values[PersonalClient.federation_issuer] = own.issuer
        if own.audience is not UNSET:
            values[PersonalClient.federation_audience] = own.audience
        if own.condition is not UNSET:
            values[PersonalClient.federation_condition] = own.condition
        statement = (
            update(PersonalClient)
            .where(PersonalClient.id == id, PersonalClient.deleted_at.is_(None), TRUST)
            .values(values)
        )
        if patch.expires_time is not UNSET:
            earlier: ColumnElement[bool] = PersonalClient.expires_time.is_(None)
            if patch.expires_time is not None:
                earlier = earlier | (PersonalClient.expires_time >= patch.expires_time)
            statement = statement.where(earlier)
        with self.database.session() as session:
            result = session.execute(statement.values(version=next_version(session)))
            row = session.get(PersonalClient, id, populate_existing=True)
            if getattr(result, "rowcount", 0) != 1:
                if row is None or row.deleted_at is not None or row.federation_issuer is None:
                    raise _missing(id)
                raise PermissionDenied("may only move earlier", field="expires_time")
            assert row is not None
            record = trust_record(row)
            if notify is not None:
                enqueue(session, notify(record), now=now)
            return record

    @writes
    def delete(self, *, id: str, now: datetime, notify: Notify | None = None) -> TrustRecord:
        """Soft delete: sets ``deletedAt``; deleting twice is NotFound."""
        with self.database.session() as session:
            version = next_version(session)
            row = session.get(PersonalClient, id)
            if row is None or row.deleted_at is not None or row.federation_issuer is None:
                raise _missing(id)
            row.deleted_at = now
            row.updated_at = now
            row.version = version
            record = trust_record(row)
            if notify is not None:
                enqueue(session, notify(record), now=now)
            return record
