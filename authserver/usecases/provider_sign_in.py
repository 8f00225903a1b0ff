"""Sign-in through an OpenID Connect provider: the rules after the protocol.

The pages run the protocol (``ui/oidc.py``: redirect, callback, ID token checks);
this module keeps what must hold whichever instance answers: the pending
sign-in between the redirect and the callback (in the database, single use,
ten minutes), and what the provider's verified claims let in — the user with
that e-mail address, created first when the provider allows it, never a
disabled one. It ends, like every sign-in method, in ``PeopleService.start_session``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from authserver.domain import network
from authserver.domain.credentials import Caller, validate_display_name
from authserver.domain.identity import Binding, check_binding, verified_email
from authserver.domain.secrets import token_hash
from authserver.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    SignInRefused,
    SignInThrottled,
)
from authserver.records import UserRecord
from authserver.security.audit import audit
from authserver.security.logsafe import escaped, presented
from authserver.security.throttle import source_key
from authserver.sso.providers import OidcProvider
from authserver.store import Store
from authserver.usecases.people import NewSession, PeopleService
from authserver.usecases.throttles import SharedThrottle
from authserver.usecases.users import UserService, acting

PENDING_PREFIX = "psi_"
PENDING_LIFETIME = timedelta(minutes=10)
MAX_TOKEN_LENGTH = 100
# Every sign-in sent to a provider stores a row until its callback or expiry: a source may
# send this many a minute (a person needs one or two).
STARTS_PER_MINUTE = 30


@dataclass(frozen=True)
class PendingSignIn:
    """What the callback needs from the redirect that sent the person to the provider."""

    provider: str
    redirect_uri: str
    next_path: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)


class ProviderSignInService:
    """Pending sign-ins, and who a provider's verified claims sign in."""

    def __init__(self, store: Store, people: PeopleService, users: UserService) -> None:
        self.store = store
        self.people = people
        self.users = users
        self.starts = SharedThrottle(store, "provider-starts", limit=STARTS_PER_MINUTE, window=60)

    def begin(
        self, *, pending: PendingSignIn, source: network.Address | None, now: datetime
    ) -> str:
        """Keep ``pending`` until the callback; the cookie value that finds it (once).

        ``SignInThrottled`` past ``STARTS_PER_MINUTE`` from one source.
        """
        keys = (source_key(source),)
        wait = self.starts.reserve(keys)  # every start counts: each writes a row
        if wait:
            audit("sign_in_failed", reason="throttled", method=f"oidc:{pending.provider}")
            raise SignInThrottled(wait)
        token = PENDING_PREFIX + secrets.token_urlsafe(32)
        data = {key: value for key, value in asdict(pending).items() if key != "provider"}
        self.store.pending_sign_ins.create(
            id_hash=token_hash(token),
            provider=pending.provider,
            data=data,
            now=now,
            expires_at=now + PENDING_LIFETIME,
        )
        return token

    def resume(self, *, token: str, now: datetime) -> PendingSignIn | None:
        """The pending sign-in of this cookie, spent now; None if unknown, expired or spent."""
        if not (
            isinstance(token, str)
            and token.startswith(PENDING_PREFIX)
            and len(token) <= MAX_TOKEN_LENGTH
        ):
            return None
        record = self.store.pending_sign_ins.take(id_hash=token_hash(token), now=now)
        if record is None:
            return None
        try:
            return PendingSignIn(provider=record.provider, **record.data)
        except TypeError:  # written by another version of the server
            return None

    def complete(
        self,
        *,
        provider: OidcProvider,
        claims: Mapping[str, object],
        source: network.Address | None,
        now: datetime,
    ) -> NewSession:
        """A session for the user the provider's verified e-mail names, or ``SignInRefused``."""
        subject = claims.get("sub")
        user: UserRecord | None = None
        try:
            if not isinstance(subject, str) or not subject or len(subject) > 255:
                raise SignInRefused("no subject", "the provider did not say who you are")
            email = verified_email(
                claims, allowed_domains=provider.allowed_domains, issuer=provider.issuer
            )
            user = self._user_by_email(email)
            created = user is None
            if user is None:
                if not provider.auto_create_users:
                    raise SignInRefused(
                        "unknown e-mail",
                        f"there is no account for {email} on this server; "
                        "ask your administrator to create one",
                    )
                user = self._create(provider, email, claims, now)
            if user.disabled:
                raise SignInRefused(
                    "user disabled",
                    "your account on this server is disabled; ask your administrator",
                )
            self._bind(provider, user, subject, now, created=created)
        except SignInRefused as refused:
            self.failed(
                provider=provider,
                reason=refused.reason,
                source=source,
                user_id=user.id if user else None,
                subject=subject if isinstance(subject, str) else None,
            )
            raise
        return self.people.start_session(
            user_id=user.id, method=provider.method, now=now, source=source
        )

    def failed(
        self,
        *,
        provider: OidcProvider,
        reason: str,
        source: network.Address | None,
        user_id: str | None = None,
        subject: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Audit a refused or failed sign-in through ``provider`` (never a code or a token).

        ``detail``: the provider's error code or what failed, for the operator.
        """
        audit(
            "sign_in_failed",
            reason=reason,
            method=provider.method,
            user_id=user_id,
            subject=presented(subject),
            detail=escaped(detail) if detail is not None else None,
            source=source,
        )

    def _bind(
        self,
        provider: OidcProvider,
        user: UserRecord,
        subject: str,
        now: datetime,
        *,
        created: bool,
    ) -> None:
        """Check, and make at the first sign-in, the user's link to this provider account."""
        links = self.store.provider_links
        binding = Binding(
            user_id=user.id,
            issuer=provider.issuer,
            subject=subject,
            linked_user=links.user_of(issuer=provider.issuer, subject=subject),
            links=tuple(links.of_user(user_id=user.id)),
            has_password=self.store.passwords.hash_of(user_id=user.id) is not None,
            is_admin=self.people.settings.admin_role in user.roles,
            domain=user.email.rsplit("@", 1)[1],
        )
        if created or check_binding(binding, allowed_domains=provider.allowed_domains):
            try:
                links.link(issuer=provider.issuer, subject=subject, user_id=user.id, now=now)
            except AlreadyExists:  # the same first sign-in, twice at once
                if links.user_of(issuer=provider.issuer, subject=subject) != user.id:
                    raise SignInRefused(
                        "linked to another user",
                        "this account at the provider signs in another user on this server",
                    ) from None
                return
            audit(
                "provider_linked",
                user_id=user.id,
                method=provider.method,
                subject=presented(subject),
                actor=user.id,
                via="first sign-in",
            )

    # Operators' links ------------------------------------------------------------------

    def link(
        self,
        *,
        user_ref: str,
        provider: OidcProvider,
        subject: str,
        now: datetime,
        caller: Caller | None = None,
    ) -> UserRecord:
        """An operator links a provider account (``sub`` at ``provider``) to a user."""
        if not subject or len(subject) > 255 or not subject.isprintable():
            raise InvalidArgument("1 to 255 printable characters", field="sub")
        user = self.store.users.find(ref=user_ref)
        self.store.provider_links.link(
            issuer=provider.issuer, subject=subject, user_id=user.id, now=now
        )
        actor, via = acting(caller)
        audit(
            "provider_linked",
            user_id=user.id,
            method=provider.method,
            subject=presented(subject),
            actor=actor,
            via=via,
        )
        return user

    def unlink(
        self,
        *,
        user_ref: str,
        provider: OidcProvider,
        subject: str,
        caller: Caller | None = None,
    ) -> UserRecord:
        """An operator removes a user's link to a provider account (NotFound if none)."""
        user = self.store.users.find(ref=user_ref)
        if not self.store.provider_links.unlink(
            issuer=provider.issuer, subject=subject, user_id=user.id
        ):
            raise NotFound(f"{user.email} is not linked to that account of {provider.name}")
        actor, via = acting(caller)
        audit(
            "provider_unlinked",
            user_id=user.id,
            method=provider.method,
            subject=presented(subject),
            actor=actor,
            via=via,
        )
        return user

    def purge(self, *, now: datetime) -> int:
        """Drop the pending sign-ins whose callback never came."""
        return self.store.pending_sign_ins.purge(now=now)

    def _user_by_email(self, email: str) -> UserRecord | None:
        try:
            return self.store.users.find(ref=email)
        except NotFound:
            return None

    def _create(
        self, provider: OidcProvider, email: str, claims: Mapping[str, object], now: datetime
    ) -> UserRecord:
        name = claims.get("name")
        try:
            display_name = validate_display_name(name if isinstance(name, str) else None)
        except InvalidArgument:
            display_name = ""
        try:
            user = self.users.create(
                email=email,
                display_name=display_name,
                role_names=provider.default_roles,
                now=now,
                method=provider.method,  # audited as created by this provider's sign-in
            )
        except AlreadyExists:  # the same person's first sign-in, twice at once
            found = self._user_by_email(email)
            if found is None:
                raise
            return found
        return user
