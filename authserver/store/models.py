"""SQLAlchemy table models. Columns change only together with a migration in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python, naive UTC in the database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    """Declarative base of every authserver table."""


class User(Base):
    """A person who owns personal clients."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(BigInteger, server_default="0", index=True)
    #: Device tokens (RFC 8628) issued before this instant are no longer active (sign-out).
    device_tokens_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PersonalClient(Base):
    """A machine credential owned by a user; the seed record of the management API."""

    __tablename__ = "personal_clients"
    __table_args__ = (Index("ix_personal_clients_user_created", "user_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    allow_source_cidr: Mapped[list[str]] = mapped_column(JSON, default=list)
    scoped_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    secret_hash: Mapped[str] = mapped_column(String(255))  # "" when no secret was issued
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)  # {} when no secret was issued
    # Its "x", indexed: a reported leaked secret finds its credential without argon2.
    public_key_x: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # The <domain> of the secret-token:<domain>:v1:… string issued (None: no secret issued).
    secret_domain: Mapped[str | None] = mapped_column(String(253), nullable=True)
    # Registered through RFC 7591: the chosen auth method, own keys, RFC 7592 token hash.
    auth_method: Mapped[str | None] = mapped_column(String(32), nullable=True)
    jwks: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    registration_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="0", index=True)
    # Rotation with overlap: the secret before the last rotation works until previous_until.
    previous_secret_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    previous_public_jwk: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    previous_secret_domain: Mapped[str | None] = mapped_column(String(253), nullable=True)
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Tokens only with a DPoP proof (RFC 9449 section 5.2, dpop_bound_access_tokens).
    require_dpop: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A federation trust (SPEC section 12) when federation_issuer is set: no secret, and
    # tokens of that issuer for that audience whose claims satisfy the CEL condition.
    federation_issuer: Mapped[str | None] = mapped_column(String(512), nullable=True)
    federation_audience: Mapped[str | None] = mapped_column(String(512), nullable=True)
    federation_condition: Mapped[str | None] = mapped_column(Text, nullable=True)


class SigningKey(Base):
    """A token signing key; published in the JWKS until its last token has expired."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    publish_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RevokedToken(Base):
    """A revoked access token, kept by ``jti`` until the token would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="0", index=True)


class RegistrationToken(Base):
    """A one-time initial access token for RFC 7591 registration, stored as a SHA-256 hash."""

    __tablename__ = "registration_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UsedAssertion(Base):
    """A client assertion's ``jti`` (or nonce), kept until it expires to refuse replays."""

    __tablename__ = "used_assertions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ChangeCounter(Base):
    """One row (id 1): the version of the last change to users, credentials or revocations.

    Every transaction that changes what authentication or a token check reads
    increments it and stamps the changed row with the new value. The row lock
    orders those transactions, so instances follow changes by asking for rows
    with a version above the last one they saw (``state_cache``).
    """

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class DeviceCode(Base):
    """An RFC 8628 device authorization: pending until the person approves or denies it.

    Both codes are stored as SHA-256 hashes: the device code is a 256-bit secret, the
    user code is short-lived and throttled against guessing.
    """

    __tablename__ = "device_codes"

    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    scope: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None: all roles
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    poll_interval: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # pending, approved, denied
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    roles: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # granted at approval
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserPassword(Base):
    """A person's local password, as an argon2id hash (one row per user who has one)."""

    __tablename__ = "user_passwords"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BrowserSession(Base):
    """A signed-in browser: only the SHA-256 of its session id is kept.

    Read on every page request (no cache), so sign-out, a disabled or deleted user
    and a role change apply on every instance at once.
    """

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(32))  # how the person signed in: "password", …
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # absolute lifetime


class Invite(Base):
    """A one-time link on which a person chooses a password, stored as a SHA-256 hash."""

    __tablename__ = "invites"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ProviderLink(Base):
    """The account at an OpenID Connect provider (issuer, subject) a user signs in with.

    Made at the first sign-in through a provider (or by an operator); another subject
    of any provider signs that user in only once an operator links it.
    """

    __tablename__ = "provider_links"

    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PendingSignIn(Base):
    """A sign-in sent to an OpenID Connect provider, until its callback comes back (once).

    Kept in the database, not in the browser or one process: the callback may reach
    another instance than the one that sent the person away. Only the SHA-256 of
    the browser's cookie is kept; the row holds what the callback must check
    (``state``, ``nonce``) and send (the PKCE verifier), for ten minutes at most.
    """

    __tablename__ = "pending_sign_ins"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ThrottleEvent(Base):
    """One failed (or counted) attempt under a throttle key, shared by every instance.

    Keys are ``c:<digest of a client_id>``, ``s:<address or /64>``, ``a:<e-mail>`` and
    the like; rows older than any window are purged.
    """

    __tablename__ = "throttle_events"
    __table_args__ = (Index("ix_throttle_events_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One security event of the audit trail, kept for ``audit_retention``.

    The columns a page filters on are columns (and indexed); everything else the
    event carried is in ``details``. Never a secret, a token or a hash: the events
    carry none (``security/audit.py``).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor_at", "actor", "at"),
        Index("ix_audit_events_user_at", "user_id", "at"),
        Index("ix_audit_events_credential_at", "credential_id", "at"),
        Index("ix_audit_events_event_at", "event", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who did it
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # whom it is about
    credential_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CredentialAddress(Base):
    """A source address that minted a token for a credential, and when it last did.

    Written by the batched ``lastUsedAt`` writer, never per request; each flush keeps
    only the most recent few addresses of each credential it touched.
    """

    __tablename__ = "credential_addresses"

    credential_id: Mapped[str] = mapped_column(
        ForeignKey("personal_clients.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TokenCount(Base):
    """Tokens a credential minted in one UTC hour: the token path's statistic, written by
    the batched ``lastUsedAt`` writer instead of one row per issuance."""

    __tablename__ = "token_counts"

    credential_id: Mapped[str] = mapped_column(
        ForeignKey("personal_clients.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    count: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """A webhook delivery or an e-mail, written in the transaction of the change it tells of.

    Background senders on every instance claim due rows (a lease, so that two never
    send the same row at once), send, and mark them delivered, or due again later
    (exponential backoff); a webhook still undelivered after 24 h is marked failed.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "channel", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_…: the webhook-id
    channel: Mapped[str] = mapped_column(String(16))  # "webhook" or "mail"
    target: Mapped[str] = mapped_column(String(2048))  # the receiver's URL, or an address
    type: Mapped[str] = mapped_column(String(64))  # the event type, or the kind of e-mail
    subject: Mapped[str | None] = mapped_column(String(300), nullable=True)  # e-mail only
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[str] = mapped_column(String(16))  # "pending", "delivered", "failed"
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)  # a claim's token
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ExpiryNotice(Base):
    """An expiry notice claimed for a credential: at most one per (credential, threshold).

    ``threshold`` is days before the expiry, 0 for "has expired". ``expires_time``
    is the expiry it told of: a rotation that sets a later expiry makes the
    notices due again.
    """

    __tablename__ = "expiry_notices"

    credential_id: Mapped[str] = mapped_column(
        ForeignKey("personal_clients.id", ondelete="CASCADE"), primary_key=True
    )
    threshold: Mapped[int] = mapped_column(Integer, primary_key=True)
    expires_time: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
