"""The credential service: create, register, read, update and delete personal clients."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from authserver.config import Settings
from authserver.domain import lifecycle, network, roles
from authserver.domain.credentials import (
    UNSET,
    Caller,
    CredentialPatch,
    NewCredential,
    Unset,
    check_may_manage,
    check_narrowing,
    check_new_credential,
    check_update,
    describe_duration,
    has_control_characters,
    is_admin,
    new_client_id,
)
from authserver.domain.secrets import new_opaque_token, new_secret, token_hash
from authserver.errors import InvalidArgument, NotFound, Unauthenticated
from authserver.records import ClientRecord, CredentialUsage, OneTimeTokenRecord, UserRecord
from authserver.security.argon2 import SecretHasher
from authserver.security.audit import audit
from authserver.store import Store
from authserver.store.ids import is_record_id
from authserver.store.one_time_tokens import ID_LENGTH
from authserver.usecases.lifecycle import Lifecycle

# Hourly token counts are kept this long (the detail page shows the last 30 days).
TOKEN_COUNT_DAYS = 90


@dataclass(frozen=True)
class Created:
    """A new credential and its secret, which is shown this once."""

    record: ClientRecord
    secret: str


@dataclass(frozen=True)
class Registration:
    """What RFC 7591 registration returns once: the record, its secret, the RFC 7592 token."""

    record: ClientRecord
    secret: str | None
    registration_access_token: str


@dataclass(frozen=True)
class RegistrationAccess:
    """A registration access token that checked out: its credential, and who acts (RFC 7592)."""

    record: ClientRecord
    caller: Caller


class CredentialService:
    """Every change to a personal client goes through here.

    ``on_change`` is told the ``client_id`` of each changed credential, so that
    this process's caches drop it at once (other processes follow the change feed).
    Each change writes its ``credential.*`` webhook event in its own transaction.
    """

    def __init__(
        self,
        store: Store,
        hasher: SecretHasher,
        settings: Settings,
        *,
        on_change: Callable[[str], None] | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.settings = settings
        self.lifecycle = lifecycle or Lifecycle(store, settings)
        self._on_change = on_change or (lambda client_id: None)

    # Creating -------------------------------------------------------------------

    def create(
        self, *, caller: Caller, owner_id: str, new: NewCredential, now: datetime
    ) -> Created:
        """Validate, mint the secret, store its hash; the secret is returned this once."""
        owner = self.store.users.find(ref=owner_id)
        record, secret = self._insert(caller, owner, new, now, with_secret=True)
        assert secret is not None
        _audit("credential_created", record, caller)
        return Created(record, secret)

    def register(
        self,
        *,
        caller: Caller,
        owner_id: str,
        new: NewCredential,
        auth_method: str,
        jwks: list[dict[str, str]] | None,
        initial_token_hash: str | None,
        now: datetime,
    ) -> Registration:
        """RFC 7591: the rules of ``create``, plus the auth method and the client's own keys.

        A client that brings its own ``jwks`` gets no secret. ``initial_token_hash``
        is spent in the same transaction that stores the credential. A disabled
        owner registers nothing (``Unauthenticated``).
        """
        owner = self.store.users.find(ref=owner_id)
        if owner.disabled:
            raise Unauthenticated("the user is disabled")
        registration_token = new_opaque_token()
        record, secret = self._insert(
            caller,
            owner,
            new,
            now,
            with_secret=not jwks,
            auth_method=auth_method,
            jwks=jwks,
            registration_token_hash=token_hash(registration_token),
            initial_token_hash=initial_token_hash,
        )
        _audit("client_registered", record, caller)
        return Registration(record, secret, registration_token)

    def _insert(
        self,
        caller: Caller,
        owner: UserRecord,
        new: NewCredential,
        now: datetime,
        *,
        with_secret: bool,
        auth_method: str | None = None,
        jwks: list[dict[str, str]] | None = None,
        registration_token_hash: str | None = None,
        initial_token_hash: str | None = None,
    ) -> tuple[ClientRecord, str | None]:
        """The rules, a fresh secret (hashed), the write, and this process told: the one flow
        of ``create`` and ``register``."""
        spec = check_new_credential(
            caller=caller,
            owner_roles=owner.roles,
            new=new,
            now=now,
            caller_limits=not self.is_admin(caller),
            max_lifetime=self.settings.max_lifetime,
            admin_role=self.settings.admin_role,
        )
        secret = new_secret(self.settings.secret_domain) if with_secret else None
        record = self.store.credentials.create(
            user_id=owner.id,
            spec=spec,
            new_client_id=self._new_client_id,
            secret_hash=self.hasher.hash(secret.secret) if secret else "",
            public_jwk=secret.public_jwk if secret else {},
            secret_domain=self.settings.secret_domain if secret else None,
            now=now,
            auth_method=auth_method,
            jwks=jwks,
            registration_token_hash=registration_token_hash,
            consume_initial_token=initial_token_hash,
            notify=self.lifecycle.notify(lifecycle.CREATED, now=now),
        )
        self._on_change(record.client_id)  # this process may remember the id as unknown
        return record, secret.secret if secret else None

    def _new_client_id(self) -> str:
        return new_client_id(self.settings.issuer_host)

    # Reading ---------------------------------------------------------------------

    def visible(self, *, caller: Caller, ref: str) -> ClientRecord:
        """The live credential ``ref`` (record id, or client_id for the operator) if the
        caller owns it, holds the admin role, or is the operator; NotFound otherwise."""
        missing = NotFound(f"no personal client {ref!r}")
        record: ClientRecord | None = None
        if is_record_id(ref):
            try:
                record = self.store.credentials.get(id=ref)
            except NotFound:
                raise missing from None
        elif caller.is_operator and not has_control_characters(ref) and len(ref) <= 255:
            found = self.store.credentials.find(client_id=ref)
            record = found[0] if found else None
        if record is None or record.deleted_at is not None or not self._may_see(caller, record):
            raise missing
        return record

    def usage(self, *, caller: Caller, ref: str) -> CredentialUsage:
        """Where and when the credential minted tokens: ``lastUsedAt`` and its recent source
        addresses, most recent first (visible as the credential itself is)."""
        record = self.visible(caller=caller, ref=ref)
        addresses = self.store.usage.addresses(credential_id=record.id)
        return CredentialUsage(last_used_at=record.last_used_at, addresses=tuple(addresses))

    def issued_per_day(
        self, *, caller: Caller, ref: str, days: int, now: datetime
    ) -> list[tuple[date, int]]:
        """Tokens the credential minted on each of the last ``days`` UTC days (today last,
        days without a token as 0); counted per hour by the batched writer."""
        if not 1 <= days <= TOKEN_COUNT_DAYS:
            raise InvalidArgument(f"1 to {TOKEN_COUNT_DAYS} days", field="days")
        record = self.visible(caller=caller, ref=ref)
        today = now.astimezone(UTC).date()
        first = today - timedelta(days=days - 1)
        per_day = dict.fromkeys((first + timedelta(days=n) for n in range(days)), 0)
        since = datetime.combine(first, time(), tzinfo=UTC)
        for hour, count in self.store.usage.issued(credential_id=record.id, since=since):
            day = hour.astimezone(UTC).date()
            if day in per_day:
                per_day[day] += count
        return list(per_day.items())

    def _may_see(self, caller: Caller, record: ClientRecord) -> bool:
        return caller.is_operator or record.user_id == caller.user_id or self.is_admin(caller)

    def is_admin(self, caller: Caller) -> bool:
        """True for a caller whose effective roles hold the admin role (and who may use it)."""
        return is_admin(caller, self.settings.admin_role)

    # Changing --------------------------------------------------------------------

    def update(
        self,
        *,
        caller: Caller,
        ref: str,
        patch: CredentialPatch,
        now: datetime,
        narrow_only: bool = False,
    ) -> ClientRecord:
        """Apply a patch under the rules: no escalation, expiry only earlier, and a
        reduced caller touches nothing stronger than itself; with ``narrow_only`` (the
        self-service page), roles and networks only within what the credential has now."""
        record = self.visible(caller=caller, ref=ref)
        owner = self.store.users.find(ref=record.user_id)
        check_may_manage(caller, record)
        checked = check_update(
            caller=caller,
            owner_roles=owner.roles,
            current=record,
            patch=patch,
            caller_limits=not self.is_admin(caller),
        )
        if narrow_only:
            check_narrowing(current=record, owner_roles=owner.roles, patch=checked)
        updated = self.store.credentials.update(
            id=record.id,
            patch=checked,
            now=now,
            notify=self.lifecycle.notify(lifecycle.UPDATED, now=now),
        )
        _audit("credential_updated", updated, caller)
        self._on_change(updated.client_id)
        return updated

    def rotate(
        self,
        *,
        caller: Caller,
        ref: str,
        grace: timedelta,
        expires_in: timedelta | None,
        now: datetime,
    ) -> Created:
        """A new secret for the same credential, shown once; the old one (and its key, for
        ``private_key_jwt``) keeps working for ``grace``, at most ``max_rotation_grace``.

        ``expires_in`` sets a new expiry within the policy and the caller's own limits
        (none: the expiry stays). Tokens already issued stay valid until their ``exp``.
        """
        record = self.visible(caller=caller, ref=ref)
        check_may_manage(caller, record)
        limit = self.settings.rotation_grace_limit
        if grace < timedelta(0) or grace > limit:
            raise InvalidArgument(
                f"0 to {describe_duration(limit)} (max_rotation_grace)", field="grace"
            )
        if not record.public_jwk:
            raise InvalidArgument("this client registered its own keys and has no secret to rotate")
        expires: datetime | None | Unset = UNSET
        if expires_in is not None:
            owner = self.store.users.find(ref=record.user_id)
            spec = check_new_credential(
                caller=caller,
                owner_roles=owner.roles,
                new=NewCredential(scoped_roles=record.scoped_roles, expires_in=expires_in),
                now=now,
                caller_limits=not self.is_admin(caller),
                max_lifetime=self.settings.max_lifetime,
            )
            expires = spec.expires_time
        secret = new_secret(self.settings.secret_domain)
        rotated = self.store.credentials.rotate(
            id=record.id,
            secret_hash=self.hasher.hash(secret.secret),
            public_jwk=secret.public_jwk,
            secret_domain=self.settings.secret_domain,
            grace_until=now + grace,
            expires_time=expires,
            now=now,
            notify=self.lifecycle.notify(lifecycle.ROTATED, now=now),
        )
        _audit("credential_rotated", rotated, caller)
        self._on_change(rotated.client_id)
        return Created(rotated, secret.secret)

    def delete(self, *, caller: Caller, ref: str, now: datetime) -> ClientRecord:
        """Soft delete; the credential stops authenticating at once."""
        record = self.visible(caller=caller, ref=ref)
        check_may_manage(caller, record)
        deleted = self.store.credentials.delete(
            id=record.id, now=now, notify=self.lifecycle.notify(lifecycle.DELETED, now=now)
        )
        _audit("credential_deleted", deleted, caller)
        self._on_change(deleted.client_id)
        return deleted

    # RFC 7591 / 7592 tokens ---------------------------------------------------------

    def mint_registration_token(
        self, *, user_ref: str, ttl: timedelta, now: datetime
    ) -> tuple[str, datetime]:
        """A one-time initial access token for RFC 7591 registration by ``user_ref``."""
        user = self.store.users.find(ref=user_ref)
        token = new_opaque_token()
        expires_at = now + ttl
        self.store.registration_tokens.create(
            token_hash=token_hash(token), user_id=user.id, now=now, expires_at=expires_at
        )
        return token, expires_at

    def pending_registration_tokens(
        self, *, user_ref: str | None, now: datetime
    ) -> list[tuple[OneTimeTokenRecord, UserRecord]]:
        """Open initial access tokens (of one user, or of everyone) with their users."""
        user_id = self.store.users.find(ref=user_ref).id if user_ref is not None else None
        users = {u.id: u for u in self.store.users.all()}
        return [
            (token, users[token.user_id])
            for token in self.store.registration_tokens.open(user_id=user_id, now=now)
            if token.user_id in users
        ]

    def revoke_registration_token(self, *, ref: str, now: datetime) -> OneTimeTokenRecord:
        """Spend an open initial access token, named by its id (as listed) or the token."""
        ref = ref.strip()
        id = ref.lower() if len(ref) == ID_LENGTH else token_hash(ref)
        revoked = self.store.registration_tokens.revoke(id=id, now=now)
        if revoked is None:
            raise NotFound("no open registration token has this id")
        audit(
            "registration_token_revoked",
            user_id=revoked.user_id,
            token_id=revoked.id,
            actor="operator",
            via="cli",
        )
        return revoked

    def initial_access(self, *, token: str, now: datetime) -> tuple[Caller, str, str] | None:
        """(caller, owner id, token hash) for a usable initial access token, else None.

        An initial access token speaks for its user with all of the user's roles.
        """
        digest = token_hash(token)
        user_id = self.store.registration_tokens.usable(token_hash=digest, now=now)
        if user_id is None:
            return None
        caller = Caller(
            user_id=user_id,
            effective_roles=frozenset(),
            reduced=False,
            via="initial_access_token",
        )
        return caller, user_id, digest

    def registration_access(
        self, *, client_id: str, token: str, source: network.Address | None, now: datetime
    ) -> RegistrationAccess | None:
        """The credential an RFC 7592 registration access token manages, else None.

        Refused alike: unknown, deleted or expired client, wrong token, disabled
        owner, and a request from outside the client's ``allow_source_cidr`` (the
        token must not be a way around the lock it manages). The token acts with
        the credential's own powers and limits.
        """
        if len(client_id) > 255 or has_control_characters(client_id):
            return None
        found = self.store.credentials.find(client_id=client_id)
        if found is None:
            return None
        record, stored_hash = found
        owner = self.store.users.find(ref=record.user_id)
        locks = [ipaddress.ip_network(c) for c in record.allow_source_cidr]
        if (
            owner.disabled
            or record.deleted_at is not None
            or (record.expires_time is not None and now >= record.expires_time)
            or not network.address_allowed(source, locks)
            or stored_hash is None
            or not hmac.compare_digest(stored_hash, token_hash(token))
        ):
            return None
        return RegistrationAccess(record, _acting_as(record, owner, locks))


def _acting_as(record: ClientRecord, owner: UserRecord, locks: list[network.Network]) -> Caller:
    """The powers of a credential itself: its effective roles (reduced when it is scoped),
    its network lock and its expiry."""
    return Caller(
        user_id=owner.id,
        effective_roles=roles.effective_roles(owner.roles, record.scoped_roles),
        reduced=bool(record.scoped_roles),
        credential_id=record.id,
        via="registration_access_token",
        allow_source_cidr=tuple(locks),
        expires_time=record.expires_time,
        require_dpop=record.require_dpop,
    )


def _audit(event: str, record: ClientRecord, caller: Caller) -> None:
    """The audit line for a credential change, naming who made it and how."""
    audit(
        event,
        credential_id=record.id,
        client_id=record.client_id,
        user_id=record.user_id,
        actor=caller.actor,
        via=caller.via,
    )
