"""The records the rest of the code sees: frozen values read from storage.

Storage (``authserver.store``) builds them; handlers, wire shapes and use cases
only name them. None of them carries a secret or its hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class UserRecord:
    """A person who owns personal clients."""

    id: str
    email: str
    display_name: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditEventRecord:
    """One security event as the audit trail in the database keeps it."""

    id: int
    at: datetime
    event: str
    actor: str | None  # who did it: a user id, ``operator``, or None (a credential, nobody)
    user_id: str | None  # the person it is about
    credential_id: str | None
    client_id: str | None
    source: str | None
    request_id: str | None
    details: Mapping[str, object]


@dataclass(frozen=True)
class ClientRecord:
    """A personal client (credential) without its secret hash."""

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
    require_dpop: bool = False  # tokens only with a DPoP proof (RFC 9449)
    rotated_at: datetime | None = None  # the last time its secret was rotated


@dataclass(frozen=True)
class AddressUse:
    """A source address that minted a token for a credential, and when it last did."""

    address: str
    last_used_at: datetime


@dataclass(frozen=True)
class CredentialUsage:
    """Where and when a credential was last used: ``lastUsedAt`` and its recent addresses,
    most recent first (both written in batches: they lag real use by up to a second)."""

    last_used_at: datetime | None
    addresses: tuple[AddressUse, ...]


@dataclass(frozen=True)
class TrustRecord:
    """A federation trust: a credential of its owner without any secret, which tokens of
    one CI issuer whose claims satisfy ``condition`` exchange for access tokens."""

    id: str
    client_id: str
    user_id: str
    display_name: str
    issuer: str
    audience: str
    condition: str
    allow_source_cidr: tuple[str, ...]
    scoped_roles: tuple[str, ...]
    expires_time: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    require_dpop: bool = False  # exchanged tokens only with a DPoP proof (RFC 9449)


@dataclass(frozen=True)
class KeyRecord:
    """A token signing key."""

    kid: str
    alg: str
    private_pem: str
    public_jwk: Mapping[str, str]
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None


@dataclass(frozen=True)
class Changes:
    """What changed after a version: credentials, users and new revocations (the change feed)."""

    version: int
    client_ids: frozenset[str]
    user_ids: frozenset[str]
    revoked: tuple[tuple[str, datetime], ...]


@dataclass(frozen=True)
class OneTimeTokenRecord:
    """An open invitation or registration token; ``id`` is the start of its SHA-256 (the
    token itself is never stored), enough to name it to revoke it."""

    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class DeviceAuthorization:
    """An RFC 8628 device authorization as the approval page and the polling client see it."""

    client_id: str
    scope: tuple[str, ...] | None  # None: all of the person's roles
    created_at: datetime
    expires_at: datetime
    interval: int
    status: str  # "pending", "approved" or "denied"
    user_id: str | None = None
    roles: tuple[str, ...] | None = None  # granted at approval
    used_at: datetime | None = None


@dataclass(frozen=True)
class SessionRecord:
    """A browser session (never its id, which only the browser holds)."""

    user_id: str
    method: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class PendingSignInRecord:
    """A sign-in begun at an OpenID Connect provider, awaiting its callback (single use)."""

    provider: str
    data: Mapping[str, str] = field(repr=False)  # state, nonce, PKCE verifier, where to go
    created_at: datetime
    expires_at: datetime
