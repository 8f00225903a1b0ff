"""Personal clients: insert, read, page, change, soft delete, and the authentication view."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authserver.domain.credentials import (
    UNSET,
    AuthState,
    CheckedPatch,
    CredentialSpec,
    Federation,
    PreviousSecret,
    Unset,
)
from authserver.errors import AlreadyExists, NotFound, PermissionDenied, Unauthenticated
from authserver.records import ClientRecord, UserRecord
from authserver.store import usage
from authserver.store.changes import next_version
from authserver.store.database import Database, writes
from authserver.store.ids import new_record_id
from authserver.store.models import (
    PersonalClient,
    RegistrationToken,
    RevokedToken,
    User,
    UTCDateTime,
)
from authserver.store.outbox import Notify, enqueue
from authserver.store.users import user_record

#: A row that is a personal client, not a federation trust (``store/trusts.py``).
PERSONAL = PersonalClient.federation_issuer.is_(None)


def client_record(row: PersonalClient) -> ClientRecord:
    return ClientRecord(
        id=row.id,
        client_id=row.client_id,
        user_id=row.user_id,
        display_name=row.display_name,
        allow_source_cidr=tuple(row.allow_source_cidr),
        scoped_roles=tuple(row.scoped_roles),
        expires_time=row.expires_time,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        public_jwk=dict(row.public_jwk),
        auth_method=row.auth_method,
        jwks=tuple(row.jwks) if row.jwks is not None else None,
        require_dpop=row.require_dpop,
        rotated_at=row.rotated_at,
    )


def _auth_state(session: Session, client_id: str) -> AuthState | None:
    query = (
        select(PersonalClient, User)
        .join(User, User.id == PersonalClient.user_id)
        .where(PersonalClient.client_id == client_id)
    )
    found = session.execute(query).first()
    if found is None:
        return None
    client, owner = found
    return AuthState(
        id=client.id,
        client_id=client.client_id,
        user_id=client.user_id,
        secret_hash=client.secret_hash,
        allow_source_cidr=tuple(
            ipaddress.ip_network(c, strict=False) for c in client.allow_source_cidr
        ),
        scoped_roles=frozenset(client.scoped_roles),
        expires_time=client.expires_time,
        deleted=client.deleted_at is not None,
        owner_roles=frozenset(owner.roles),
        owner_disabled=owner.disabled,
        public_keys=tuple([client.public_jwk] if client.public_jwk else list(client.jwks or [])),
        auth_method=client.auth_method,
        secret_domain=client.secret_domain,
        require_dpop=client.require_dpop,
        federation=(
            Federation(
                issuer=client.federation_issuer,
                audience=client.federation_audience or "",
                condition=client.federation_condition or "",
            )
            if client.federation_issuer is not None
            else None
        ),
        last_used_at=client.last_used_at,
        created_at=client.created_at,
        previous=(
            PreviousSecret(
                secret_hash=client.previous_secret_hash,
                public_jwk=dict(client.previous_public_jwk or {}),
                secret_domain=client.previous_secret_domain,
                until=client.previous_until,
            )
            if client.previous_secret_hash and client.previous_until is not None
            else None
        ),
    )


def patch_values(patch: CheckedPatch) -> dict[Any, Any]:
    """Column → value for the fields a patch sets."""
    values: dict[Any, Any] = {}
    if patch.display_name is not UNSET:
        values[PersonalClient.display_name] = patch.display_name
    if patch.allow_source_cidr is not UNSET:
        values[PersonalClient.allow_source_cidr] = list(patch.allow_source_cidr)
    if patch.scoped_roles is not UNSET:
        values[PersonalClient.scoped_roles] = list(patch.scoped_roles)
    if patch.expires_time is not UNSET:
        values[PersonalClient.expires_time] = patch.expires_time
    if patch.require_dpop is not UNSET:
        values[PersonalClient.require_dpop] = patch.require_dpop
    return values


def _notify(
    session: Session, notify: Notify | None, record: ClientRecord, now: datetime
) -> ClientRecord:
    """Write what ``notify`` sends of ``record`` to the outbox, in the change's transaction."""
    if notify is not None:
        enqueue(session, notify(record), now=now)
    return record


class CredentialStore:
    """Reads and writes personal clients."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @writes
    def create(
        self,
        *,
        user_id: str,
        spec: CredentialSpec,
        new_client_id: Callable[[], str],
        secret_hash: str,
        public_jwk: Mapping[str, str],
        now: datetime,
        secret_domain: str | None = None,
        auth_method: str | None = None,
        jwks: Sequence[Mapping[str, str]] | None = None,
        registration_token_hash: str | None = None,
        consume_initial_token: str | None = None,
        notify: Notify | None = None,
    ) -> ClientRecord:
        """Insert a credential; a client_id collision is retried with a fresh id.

        With ``consume_initial_token`` (a registration token hash) the token is
        spent in the same transaction: no credential without a spent token, no
        spent token without a credential. ``notify``'s messages (webhooks) are
        written to the outbox in that transaction too, as are those of every change.
        """
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
                secret_hash=secret_hash,
                public_jwk=dict(public_jwk),
                public_key_x=public_jwk.get("x"),
                secret_domain=secret_domain,
                auth_method=auth_method,
                jwks=[dict(k) for k in jwks] if jwks is not None else None,
                registration_token_hash=registration_token_hash,
                require_dpop=spec.require_dpop,
            )
            try:
                with self.database.session() as session:
                    # A change like any other: instances that remember this id as unknown
                    # learn of it through the change feed.
                    row.version = next_version(session)
                    if session.get(User, user_id) is None:
                        raise NotFound(f"no user {user_id!r}")
                    if consume_initial_token is not None:
                        spent = session.execute(
                            update(RegistrationToken)
                            .where(
                                RegistrationToken.token_hash == consume_initial_token,
                                RegistrationToken.user_id == user_id,
                                RegistrationToken.used_at.is_(None),
                                RegistrationToken.expires_at > now,
                            )
                            .values(used_at=now)
                        )
                        if getattr(spent, "rowcount", 0) != 1:
                            raise Unauthenticated("the initial access token is spent or expired")
                    session.add(row)
                    session.flush()  # a client_id collision fails here, before the outbox
                    _notify(session, notify, client_record(row), now)
            except IntegrityError:
                continue
            return client_record(row)
        raise AlreadyExists("could not allocate a unique client_id")

    def find(self, *, client_id: str) -> tuple[ClientRecord, str | None] | None:
        """A credential by OAuth ``client_id`` with its registration token hash, or None."""
        with self.database.session() as session:
            row = session.scalar(
                select(PersonalClient).where(PersonalClient.client_id == client_id, PERSONAL)
            )
            return (client_record(row), row.registration_token_hash) if row is not None else None

    def by_public_key(self, *, x: str) -> list[tuple[ClientRecord, str | None]]:
        """Live credentials whose secret's public key is ``x``, with their secret domain."""
        with self.database.session() as session:
            rows = session.scalars(
                select(PersonalClient).where(
                    PersonalClient.public_key_x == x, PersonalClient.deleted_at.is_(None)
                )
            )
            return [(client_record(row), row.secret_domain) for row in rows]

    def get(self, *, id: str) -> ClientRecord:
        with self.database.session() as session:
            row = session.get(PersonalClient, id)
            if row is None or row.federation_issuer is not None:
                raise NotFound(f"no personal client {id!r}")
            return client_record(row)

    def all(
        self, *, user_id: str | None = None, include_deleted: bool = False
    ) -> list[ClientRecord]:
        query = (
            select(PersonalClient)
            .where(PERSONAL)
            .order_by(PersonalClient.created_at, PersonalClient.id)
        )
        if user_id is not None:
            query = query.where(PersonalClient.user_id == user_id)
        if not include_deleted:
            query = query.where(PersonalClient.deleted_at.is_(None))
        with self.database.session() as session:
            return [client_record(row) for row in session.scalars(query)]

    def page(
        self,
        *,
        user_ids: Sequence[str] | None,
        name_query: str | None = None,
        after_id: str | None,
        limit: int,
    ) -> tuple[list[ClientRecord], bool]:
        """Live credentials in id order (ids are time-ordered), ``limit`` after ``after_id``.

        Returns the page and whether more follow.
        """
        query = select(PersonalClient).where(PersonalClient.deleted_at.is_(None), PERSONAL)
        if user_ids is not None:
            query = query.where(PersonalClient.user_id.in_(list(user_ids)))
        if name_query:
            escaped = name_query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(
                func.lower(PersonalClient.display_name).like(f"%{escaped.lower()}%", escape="\\")
            )
        if after_id is not None:
            query = query.where(PersonalClient.id > after_id)
        query = query.order_by(PersonalClient.id).limit(limit + 1)
        with self.database.session() as session:
            rows = [client_record(row) for row in session.scalars(query)]
        return rows[:limit], len(rows) > limit

    def newest_first(
        self,
        *,
        user_id: str | None,
        query: str | None = None,
        before_id: str | None = None,
        limit: int,
    ) -> tuple[list[tuple[ClientRecord, UserRecord]], bool]:
        """Live credentials with their owners, newest first, ``limit`` before ``before_id``.

        ``user_id`` None means everyone's; ``query`` matches (case-insensitively,
        anywhere) the owner's e-mail or display name, or the credential's display name.
        Returns the page and whether more follow (the pages' list).
        """
        statement = (
            select(PersonalClient, User)
            .join(User, User.id == PersonalClient.user_id)
            .where(PersonalClient.deleted_at.is_(None), PERSONAL)
        )
        if user_id is not None:
            statement = statement.where(PersonalClient.user_id == user_id)
        if query:
            escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped.lower()}%"
            statement = statement.where(
                func.lower(User.email).like(pattern, escape="\\")
                | func.lower(User.display_name).like(pattern, escape="\\")
                | func.lower(PersonalClient.display_name).like(pattern, escape="\\")
            )
        if before_id is not None:
            statement = statement.where(PersonalClient.id < before_id)
        statement = statement.order_by(PersonalClient.id.desc()).limit(limit + 1)
        with self.database.session() as session:
            rows = [(client_record(c), user_record(u)) for c, u in session.execute(statement)]
        return rows[:limit], len(rows) > limit

    @writes
    def delete(self, *, id: str, now: datetime, notify: Notify | None = None) -> ClientRecord:
        """Soft delete: sets ``deletedAt``; deleting twice is NotFound."""
        with self.database.session() as session:
            version = next_version(session)
            row = session.get(PersonalClient, id)
            if row is None or row.deleted_at is not None or row.federation_issuer is not None:
                raise NotFound(f"no personal client {id!r}")
            row.deleted_at = now
            row.updated_at = now
            row.version = version
            return _notify(session, notify, client_record(row), now)

    @writes
    def rotate(
        self,
        *,
        id: str,
        secret_hash: str,
        public_jwk: Mapping[str, str],
        secret_domain: str,
        grace_until: datetime,
        expires_time: datetime | None | Unset,
        now: datetime,
        notify: Notify | None = None,
    ) -> ClientRecord:
        """A new secret for a live credential; the current one stays good until
        ``grace_until`` (nothing kept when that is not after ``now``)."""
        with self.database.session() as session:
            version = next_version(session)
            row = session.get(PersonalClient, id)
            if row is None or row.deleted_at is not None or row.federation_issuer is not None:
                raise NotFound(f"no personal client {id!r}")
            keep = grace_until > now and bool(row.secret_hash)
            row.previous_secret_hash = row.secret_hash if keep else None
            row.previous_public_jwk = dict(row.public_jwk) if keep else None
            row.previous_secret_domain = row.secret_domain if keep else None
            row.previous_until = grace_until if keep else None
            row.secret_hash = secret_hash
            row.public_jwk = dict(public_jwk)
            row.public_key_x = public_jwk.get("x")
            row.secret_domain = secret_domain
            if expires_time is not UNSET:
                row.expires_time = expires_time
            row.rotated_at = now
            row.updated_at = now
            row.version = version
            return _notify(session, notify, client_record(row), now)

    @writes
    def update(
        self, *, id: str, patch: CheckedPatch, now: datetime, notify: Notify | None = None
    ) -> ClientRecord:
        """Apply an already validated patch to a live credential.

        A new ``expires_time`` is written only if it is not later than the stored one
        *at write time*, so two concurrent updates cannot together extend a credential.
        """
        statement = (
            update(PersonalClient)
            .where(PersonalClient.id == id, PersonalClient.deleted_at.is_(None), PERSONAL)
            .values({**patch_values(patch), PersonalClient.updated_at: now})
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
                if row is None or row.deleted_at is not None or row.federation_issuer is not None:
                    raise NotFound(f"no personal client {id!r}")
                raise PermissionDenied("may only move earlier", field="expires_time")
            assert row is not None
            return _notify(session, notify, client_record(row), now)

    def auth_state(self, *, client_id: str) -> AuthState | None:
        """The credential and its owner as authentication needs them, in one query."""
        with self.database.session() as session:
            return _auth_state(session, client_id)

    def token_state(self, *, client_id: str, jti: str) -> tuple[AuthState | None, bool]:
        """The credential behind a token, and whether the token's ``jti`` is revoked."""
        with self.database.session() as session:
            revoked = session.get(RevokedToken, jti) is not None
            return _auth_state(session, client_id), revoked

    @writes
    def record_last_used(
        self,
        *,
        used: Mapping[str, datetime],
        addresses: Mapping[tuple[str, str], datetime] | None = None,
        counts: Mapping[tuple[str, datetime], int] | None = None,
        prune: Collection[str] | None = None,
    ) -> None:
        """Set ``lastUsedAt`` per credential id, never moving it backwards; in the same
        transaction, merge the batch's source addresses ((id, address) → last time) and
        hourly token counts ((id, UTC hour) → tokens) into ``store/usage.py``'s tables
        (``prune``: see ``usage.merge``)."""
        if not used:
            return
        table = cast(Table, PersonalClient.__table__)
        when = bindparam("used", type_=UTCDateTime())
        statement = (
            update(table)
            .where(table.c.id == bindparam("pk"))
            .values(
                last_used_at=case(
                    (table.c.last_used_at.is_(None), when),
                    (table.c.last_used_at < when, when),
                    else_=table.c.last_used_at,
                )
            )
        )
        # One executemany; a fixed order keeps two instances flushing the same rows
        # from deadlocking.
        rows = [{"pk": pk, "used": used_at} for pk, used_at in sorted(used.items())]
        with self.database.session() as session:
            session.execute(statement, rows)  # locks the credentials' rows first, in id order
            usage.merge(session, addresses=addresses or {}, counts=counts or {}, prune=prune)
