"""Repository: every read and write of authserver's records, one short transaction each.

Callers get frozen records, never ORM objects or sessions. All functions take
keyword-only arguments. They do blocking I/O: async code calls them through
``anyio.to_thread``.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authserver.domain.credentials import AuthState, CredentialSpec
from authserver.errors import AlreadyExists, NotFound, PermissionDenied, Unauthenticated
from authserver.store.database import Database
from authserver.store.models import (
    ChangeCounter,
    PersonalClient,
    RegistrationToken,
    RevokedToken,
    SigningKey,
    UsedAssertion,
    User,
    UTCDateTime,
)

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
ASSERTION_SKEW = timedelta(seconds=30)
# Revocations outlive their token's exp: token checks allow a few seconds of clock skew.
REVOCATION_MARGIN = timedelta(seconds=60)


def new_record_id() -> str:
    """26 characters, time-ordered (48-bit milliseconds + 80 random bits), like a ULID."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))


@dataclass(frozen=True)
class UserRecord:
    """A user as the rest of the code sees it."""

    id: str
    email: str
    display_name: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ClientRecord:
    """A personal client without its secret hash."""

    id: str
    client_id: str
    user_id: str
    display_name: str
    allow_source_cidr: tuple[str, ...]
    scoped_roles: tuple[str, ...]
    expires_time: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    public_jwk: Mapping[str, str]
    auth_method: str | None = None
    jwks: tuple[Mapping[str, str], ...] | None = None


@dataclass(frozen=True)
class KeyRecord:
    """A signing key row."""

    kid: str
    alg: str
    private_pem: str
    public_jwk: Mapping[str, str]
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None


def _user(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        roles=tuple(row.roles),
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _client(row: PersonalClient) -> ClientRecord:
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
    )


def _key(row: SigningKey) -> KeyRecord:
    return KeyRecord(
        kid=row.kid,
        alg=row.alg,
        private_pem=row.private_pem,
        public_jwk=dict(row.public_jwk),
        created_at=row.created_at,
        retired_at=row.retired_at,
        publish_until=row.publish_until,
    )


@dataclass(frozen=True)
class Changes:
    """What changed after a version: credentials, users and new revocations (``changes_since``)."""

    version: int
    client_ids: frozenset[str]
    user_ids: frozenset[str]
    revoked: tuple[tuple[str, datetime], ...]


def _next_version(session: Session) -> int:
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


class Repository:
    """Reads and writes users, personal clients, signing keys and revocations."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # Users ---------------------------------------------------------------

    def create_user(
        self, *, email: str, display_name: str, roles: Iterable[str], now: datetime
    ) -> UserRecord:
        row = User(
            id=new_record_id(),
            email=email,
            display_name=display_name,
            roles=list(roles),
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        try:
            with self.database.session() as session:
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(f"a user with e-mail {email} already exists") from None
        return _user(row)

    def find_user(self, *, ref: str) -> UserRecord:
        """A user by id or e-mail."""
        with self.database.session() as session:
            row = session.get(User, ref) or session.scalar(
                select(User).where(User.email == ref.strip().lower())
            )
            if row is None:
                raise NotFound(f"no user {ref!r}")
            return _user(row)

    def update_user(
        self,
        *,
        user_id: str,
        roles: Iterable[str] | None = None,
        disabled: bool | None = None,
        now: datetime,
    ) -> UserRecord:
        with self.database.session() as session:
            version = _next_version(session)
            row = session.get(User, user_id)
            if row is None:
                raise NotFound(f"no user {user_id!r}")
            if roles is not None:
                row.roles = list(roles)
            if disabled is not None:
                row.disabled = disabled
            row.updated_at = now
            row.version = version
            return _user(row)

    def list_users(self) -> list[UserRecord]:
        with self.database.session() as session:
            rows = session.scalars(select(User).order_by(User.created_at, User.id))
            return [_user(row) for row in rows]

    def known_roles(self) -> set[str]:
        with self.database.session() as session:
            return {role for roles in session.scalars(select(User.roles)) for role in roles}

    # Personal clients ------------------------------------------------------

    def create_client(
        self,
        *,
        user_id: str,
        spec: CredentialSpec,
        new_client_id: Callable[[], str],
        secret_hash: str,
        public_jwk: Mapping[str, str],
        now: datetime,
        auth_method: str | None = None,
        jwks: Sequence[Mapping[str, str]] | None = None,
        registration_token_hash: str | None = None,
        consume_initial_token: str | None = None,
    ) -> ClientRecord:
        """Insert a credential; a client_id collision is retried with a fresh id.

        With ``consume_initial_token`` (a registration token hash) the token is
        spent in the same transaction: no credential without a spent token, no
        spent token without a credential.
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
                auth_method=auth_method,
                jwks=[dict(k) for k in jwks] if jwks is not None else None,
                registration_token_hash=registration_token_hash,
            )
            try:
                with self.database.session() as session:
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
            except IntegrityError:
                continue
            return _client(row)
        raise AlreadyExists("could not allocate a unique client_id")

    def find_client(self, *, client_id: str) -> tuple[ClientRecord, str | None] | None:
        """A credential by OAuth ``client_id`` with its registration token hash, or None."""
        with self.database.session() as session:
            row = session.scalar(
                select(PersonalClient).where(PersonalClient.client_id == client_id)
            )
            return (_client(row), row.registration_token_hash) if row is not None else None

    def get_client(self, *, id: str) -> ClientRecord:
        with self.database.session() as session:
            row = session.get(PersonalClient, id)
            if row is None:
                raise NotFound(f"no personal client {id!r}")
            return _client(row)

    def list_clients(
        self, *, user_id: str | None = None, include_deleted: bool = False
    ) -> list[ClientRecord]:
        query = select(PersonalClient).order_by(PersonalClient.created_at, PersonalClient.id)
        if user_id is not None:
            query = query.where(PersonalClient.user_id == user_id)
        if not include_deleted:
            query = query.where(PersonalClient.deleted_at.is_(None))
        with self.database.session() as session:
            return [_client(row) for row in session.scalars(query)]

    def delete_client(self, *, id: str, now: datetime) -> ClientRecord:
        """Soft delete: sets ``deletedAt``; deleting twice is NotFound."""
        with self.database.session() as session:
            version = _next_version(session)
            row = session.get(PersonalClient, id)
            if row is None or row.deleted_at is not None:
                raise NotFound(f"no personal client {id!r}")
            row.deleted_at = now
            row.updated_at = now
            row.version = version
            return _client(row)

    def auth_state(self, *, client_id: str) -> AuthState | None:
        """The credential and its owner as authentication needs them, in one query."""
        with self.database.session() as session:
            return self._auth_state(session, client_id)

    def token_state(self, *, client_id: str, jti: str) -> tuple[AuthState | None, bool]:
        """The credential behind a token, and whether the token's ``jti`` is revoked."""
        with self.database.session() as session:
            revoked = session.get(RevokedToken, jti) is not None
            return self._auth_state(session, client_id), revoked

    @staticmethod
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
            public_keys=tuple(
                [client.public_jwk] if client.public_jwk else list(client.jwks or [])
            ),
            auth_method=client.auth_method,
        )

    def update_client(self, *, id: str, changes: Mapping[str, Any], now: datetime) -> ClientRecord:
        """Apply already validated field changes (model attribute names) to a live credential.

        A new ``expires_time`` is written only if it is not later than the stored one
        *at write time*, so two concurrent updates cannot together extend a credential.
        """
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}
        statement = (
            update(PersonalClient)
            .where(PersonalClient.id == id, PersonalClient.deleted_at.is_(None))
            .values(**values, updated_at=now)
        )
        if "expires_time" in values:
            new_expiry = values["expires_time"]
            earlier = PersonalClient.expires_time.is_(None)
            if new_expiry is not None:
                earlier = earlier | (PersonalClient.expires_time >= new_expiry)
            statement = statement.where(earlier)
        with self.database.session() as session:
            result = session.execute(statement.values(version=_next_version(session)))
            row = session.get(PersonalClient, id, populate_existing=True)
            if getattr(result, "rowcount", 0) != 1:
                if row is None or row.deleted_at is not None:
                    raise NotFound(f"no personal client {id!r}")
                raise PermissionDenied("expiresTime may only move earlier")
            assert row is not None
            return _client(row)

    def page_clients(
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
        query = select(PersonalClient).where(PersonalClient.deleted_at.is_(None))
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
            rows = [_client(row) for row in session.scalars(query)]
        return rows[:limit], len(rows) > limit

    def record_last_used(self, *, used: Mapping[str, datetime]) -> None:
        """Set ``lastUsedAt`` per credential id, never moving it backwards."""
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
            session.execute(statement, rows)

    # Signing keys ----------------------------------------------------------

    def list_keys(self) -> list[KeyRecord]:
        with self.database.session() as session:
            rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at))
            return [_key(row) for row in rows]

    def add_active_key(
        self,
        *,
        kid: str,
        alg: str,
        private_pem: str,
        public_jwk: Mapping[str, str],
        now: datetime,
        publish_until: datetime,
        only_if_none_active: bool = False,
    ) -> KeyRecord | None:
        """Retire the active key (published until ``publish_until``) and add a new one.

        With ``only_if_none_active`` nothing happens when an active key of ``alg``
        exists already (first start of several instances at once).
        """
        with self.database.session() as session:
            active = list(
                session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None)))
            )
            if only_if_none_active and any(k.alg == alg for k in active):
                return None
            for old in active:
                old.retired_at = now
                old.publish_until = publish_until
            row = SigningKey(
                kid=kid,
                alg=alg,
                private_pem=private_pem,
                public_jwk=dict(public_jwk),
                created_at=now,
                retired_at=None,
                publish_until=None,
            )
            session.add(row)
            return _key(row)

    def purge_keys(self, *, now: datetime) -> int:
        """Drop retired keys no token can need any more."""
        with self.database.session() as session:
            result = session.execute(
                delete(SigningKey).where(
                    SigningKey.retired_at.is_not(None), SigningKey.publish_until < now
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    # Registration tokens and client assertions ---------------------------------

    def create_registration_token(
        self, *, token_hash: str, user_id: str, now: datetime, expires_at: datetime
    ) -> None:
        with self.database.session() as session:
            session.add(
                RegistrationToken(
                    token_hash=token_hash,
                    user_id=user_id,
                    created_at=now,
                    expires_at=expires_at,
                    used_at=None,
                )
            )

    def usable_registration_token(self, *, token_hash: str, now: datetime) -> str | None:
        """The user id an unspent, unexpired initial access token belongs to."""
        with self.database.session() as session:
            row = session.get(RegistrationToken, token_hash)
            if row is None or row.used_at is not None or row.expires_at <= now:
                return None
            return row.user_id

    def record_assertion(self, *, key: str, expires_at: datetime) -> bool:
        """Remember a client assertion id; False when it was seen before (a replay)."""
        try:
            with self.database.session() as session:
                session.add(UsedAssertion(key=key, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def purge_assertions(self, *, now: datetime) -> int:
        with self.database.session() as session:
            # Kept a while past expiry: instances' clocks differ by a few seconds.
            cutoff = now - ASSERTION_SKEW
            result = session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)

    # Revocations -------------------------------------------------------------

    def revoke_token(self, *, jti: str, expires_at: datetime) -> None:
        try:
            with self.database.session() as session:
                version = _next_version(session)
                if session.get(RevokedToken, jti) is None:
                    session.add(RevokedToken(jti=jti, expires_at=expires_at, version=version))
        except IntegrityError:
            pass  # revoked concurrently by another request or instance

    def changes_since(self, *, since: int | None, now: datetime) -> Changes:
        """Changes with a version above ``since``; with ``since=None``, every live revocation.

        The counter is read first: every change up to its value has committed, so a
        caller that asks again from that value misses nothing.
        """
        with self.database.session() as session:
            version = session.execute(
                select(ChangeCounter.value).where(ChangeCounter.id == 1)
            ).scalar_one()
            if since is None:
                revoked = session.execute(
                    select(RevokedToken.jti, RevokedToken.expires_at).where(
                        RevokedToken.expires_at >= now - REVOCATION_MARGIN
                    )
                )
                return Changes(
                    int(version),
                    frozenset(),
                    frozenset(),
                    tuple((jti, until) for jti, until in revoked),
                )
            clients = session.scalars(
                select(PersonalClient.client_id).where(PersonalClient.version > since)
            )
            users = session.scalars(select(User.id).where(User.version > since))
            revoked = session.execute(
                select(RevokedToken.jti, RevokedToken.expires_at).where(
                    RevokedToken.version > since
                )
            )
            return Changes(
                int(version),
                frozenset(clients),
                frozenset(users),
                tuple((jti, until) for jti, until in revoked),
            )

    def is_revoked(self, *, jti: str) -> bool:
        with self.database.session() as session:
            return session.get(RevokedToken, jti) is not None

    def purge_revocations(self, *, now: datetime) -> int:
        with self.database.session() as session:
            cutoff = now - REVOCATION_MARGIN
            result = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)
