"""Use cases that change users and credentials; called by the CLI and the management API.

Each function validates through ``authserver.domain`` and writes through the
repository. They block (database, argon2): async callers use a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authserver.audit import audit
from authserver.config import Settings
from authserver.domain import credentials, roles, users
from authserver.domain.credentials import Caller
from authserver.hashing import SecretHasher
from authserver.store.repository import ClientRecord, Repository, UserRecord


def create_user(
    repo: Repository,
    *,
    email: str,
    display_name: str | None,
    role_names: Iterable[str],
    now: datetime,
) -> UserRecord:
    return repo.create_user(
        email=users.normalize_email(email),
        display_name=credentials.validate_display_name(display_name),
        roles=roles.normalize_roles(role_names),
        now=now,
    )


def update_user(
    repo: Repository,
    *,
    ref: str,
    role_names: Iterable[str] | None,
    disabled: bool | None,
    now: datetime,
) -> UserRecord:
    user = repo.find_user(ref=ref)
    new_roles = roles.normalize_roles(role_names) if role_names is not None else None
    return repo.update_user(user_id=user.id, roles=new_roles, disabled=disabled, now=now)


def create_credential(
    repo: Repository,
    hasher: SecretHasher,
    settings: Settings,
    *,
    caller: Caller,
    owner: UserRecord,
    display_name: str | None,
    allow_source_cidr: Iterable[str],
    scoped_roles: Iterable[str],
    expires_in: timedelta | None,
    now: datetime,
) -> tuple[ClientRecord, str]:
    """Validate, mint the secret, store its hash; returns the record and the secret (shown once)."""
    spec = credentials.check_new_credential(
        caller=caller,
        owner_roles=owner.roles,
        display_name=display_name,
        allow_source_cidr=allow_source_cidr,
        scoped_roles=scoped_roles,
        expires_in=expires_in,
        now=now,
    )
    secret = credentials.new_secret(settings.issuer_host)
    record = repo.create_client(
        user_id=owner.id,
        spec=spec,
        new_client_id=lambda: credentials.new_client_id(settings.issuer_host),
        secret_hash=hasher.hash(secret.secret),
        public_jwk=secret.public_jwk,
        now=now,
    )
    audit_credential("credential_created", record, caller)
    return record, secret.secret


def update_credential(
    repo: Repository,
    *,
    record: ClientRecord,
    caller: Caller | None,
    paths: list[str],
    values: dict[str, Any],
    now: datetime,
) -> ClientRecord:
    """Apply a validated update; ``caller`` None means the credential itself (RFC 7592 token).

    A reduced caller may only touch credentials within its roles; the field rules
    (no escalation, expiry only earlier) are ``credentials.check_update``'s.
    """
    owner = repo.find_user(ref=record.user_id)
    current = roles.effective_roles(owner.roles, record.scoped_roles)
    if caller is None:
        caller = Caller(
            user_id=owner.id, effective_roles=current, reduced=bool(record.scoped_roles)
        )
    credentials.check_may_manage(caller, current)
    changes = credentials.check_update(
        caller=caller,
        owner_roles=owner.roles,
        current_expires=record.expires_time,
        paths=paths,
        values=values,
    )
    updated = repo.update_client(id=record.id, changes=changes, now=now)
    audit_credential("credential_updated", updated, caller)
    return updated


def audit_credential(event: str, record: ClientRecord, caller: Caller) -> None:
    """The audit line for a credential change, naming who made it."""
    audit(
        event,
        credential_id=record.id,
        client_id=record.client_id,
        user_id=record.user_id,
        actor="operator" if caller.is_operator else caller.user_id,
    )


@dataclass(frozen=True)
class Registration:
    """What registration returns once: the record, its secret (if any), the RFC 7592 token."""

    record: ClientRecord
    secret: str | None
    registration_access_token: str


def register_credential(
    repo: Repository,
    hasher: SecretHasher,
    settings: Settings,
    *,
    caller: Caller,
    owner: UserRecord,
    spec_input: dict[str, Any],
    auth_method: str,
    jwks: list[dict[str, str]] | None,
    initial_token_hash: str | None,
    now: datetime,
) -> Registration:
    """RFC 7591: the same rules as ``create_credential``, plus the auth method and own keys.

    A client that brings its own ``jwks`` gets no secret. ``initial_token_hash``
    is spent in the same transaction that stores the credential.
    """
    spec = credentials.check_new_credential(
        caller=caller, owner_roles=owner.roles, now=now, **spec_input
    )
    secret = None if jwks else credentials.new_secret(settings.issuer_host)
    registration_token = credentials.new_opaque_token()
    record = repo.create_client(
        user_id=owner.id,
        spec=spec,
        new_client_id=lambda: credentials.new_client_id(settings.issuer_host),
        secret_hash=hasher.hash(secret.secret) if secret else "",
        public_jwk=secret.public_jwk if secret else {},
        now=now,
        auth_method=auth_method,
        jwks=jwks,
        registration_token_hash=credentials.token_hash(registration_token),
        consume_initial_token=initial_token_hash,
    )
    audit_credential("client_registered", record, caller)
    return Registration(record, secret.secret if secret else None, registration_token)


def create_registration_token(
    repo: Repository, *, user_ref: str, ttl: timedelta, now: datetime
) -> tuple[str, datetime]:
    """A one-time initial access token for RFC 7591 registration by ``user_ref``."""
    user = repo.find_user(ref=user_ref)
    token = credentials.new_opaque_token()
    expires_at = now + ttl
    repo.create_registration_token(
        token_hash=credentials.token_hash(token), user_id=user.id, now=now, expires_at=expires_at
    )
    return token, expires_at
