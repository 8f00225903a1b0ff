"""Use cases that change users and credentials; called by the CLI and the management API.

Each function validates through ``authserver.domain`` and writes through the
repository. They block (database, argon2): async callers use a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

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
    return record, secret.secret
