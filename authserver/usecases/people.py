"""People: passwords, invitations, sign-in and browser sessions.

"Who is signed in" (a session → its user, read fresh on every request) is kept
apart from "how they signed in": every sign-in method (a password now, an
OpenID Connect provider later) ends in ``start_session`` for a user id, and
the pages only ever ask ``current`` who a session belongs to. Sessions live in
the database, so sign-out, a disabled or deleted user and a role change hold
on every instance at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio.to_thread

from authserver.config import Settings
from authserver.domain import network
from authserver.domain.credentials import Caller
from authserver.domain.passwords import check_password, normalize_password
from authserver.domain.secrets import token_hash
from authserver.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SignInBusy,
    SignInFailed,
    SignInThrottled,
    Unauthenticated,
)
from authserver.records import OneTimeTokenRecord, SessionRecord, UserRecord
from authserver.security.argon2 import PasswordHasher
from authserver.security.audit import audit
from authserver.security.throttle import source_key
from authserver.store import Store
from authserver.usecases.throttles import SharedThrottle
from authserver.usecases.users import acting

# Prefixes make these recognisable wherever they must never appear (logs, URLs in logs).
SESSION_PREFIX = "ses_"
INVITE_PREFIX = "inv_"
MAX_TOKEN_LENGTH = 100
MAX_EMAIL_LENGTH = 320


@dataclass(frozen=True)
class NewSession:
    """A session just started: its id goes into the cookie and nowhere else."""

    session_id: str = field(repr=False)
    record: SessionRecord


@dataclass(frozen=True)
class PasswordAttempt:
    """A password sign-in between its counting and its argon2 check."""

    keys: tuple[str, str]
    source: network.Address | None
    user: UserRecord | None
    stored_hash: str | None = field(repr=False)
    usable_hash: str | None = field(repr=False)  # None: check against the dummy hash
    candidate: str = field(repr=False)


@dataclass(frozen=True)
class SignedIn:
    """A live session and its user as they are now."""

    user: UserRecord
    session: SessionRecord

    def caller(self) -> Caller:
        """The person acts with all of their current roles (a session is never reduced)."""
        return Caller(
            user_id=self.user.id,
            effective_roles=frozenset(self.user.roles),
            reduced=False,
            via="session",
        )


class PeopleService:
    """Every change to a person's password or sessions goes through here."""

    def __init__(self, store: Store, passwords: PasswordHasher, settings: Settings) -> None:
        self.store = store
        self.passwords = passwords
        self.settings = settings
        self.idle = timedelta(seconds=settings.session_idle_timeout)
        self.max_age = timedelta(seconds=settings.session_max_age)
        # last_seen_at is written at most this often: not a write per page view.
        self.touch_every = min(timedelta(seconds=60), self.idle / 10)
        self.throttle = SharedThrottle(
            store,
            "sign-in",
            limit=settings.sign_in_failure_limit,
            window=settings.sign_in_failure_window,
        )

    # Passwords and invitations -------------------------------------------------------

    def set_password(self, *, user_ref: str, password: str, now: datetime) -> UserRecord:
        """The operator sets a password; the user's sessions end (it may replace a leaked one)."""
        user = self.store.users.find(ref=user_ref)
        checked = check_password(
            password, min_length=self.settings.password_min_length, email=user.email
        )
        self.store.passwords.set(
            user_id=user.id, password_hash=self.passwords.hash(checked), now=now
        )
        ended = self.store.sessions.delete_for_user(user_id=user.id)
        spent = self.store.invites.spend_for_user(user_id=user.id, now=now)
        audit(
            "password_set",
            user_id=user.id,
            actor="operator",
            via="cli",
            sessions_ended=ended,
            invites_revoked=spent,
        )
        return user

    def invite(
        self, *, user_ref: str, ttl: timedelta, now: datetime, caller: Caller | None = None
    ) -> tuple[str, datetime]:
        """A one-time link on which the user chooses a password; and when it expires.
        ``caller``: who invites from the pages; None: the operator at the command line."""
        if not self.settings.login_password:
            raise PermissionDenied(
                "sign-in with a password is turned off ([login] password = false), "
                "so an invitation link would not work"
            )
        if ttl <= timedelta(0) or ttl > timedelta(days=30):
            raise InvalidArgument("more than nothing and at most 30 days", field="ttl")
        user = self.store.users.find(ref=user_ref)
        token = INVITE_PREFIX + secrets.token_urlsafe(32)
        expires_at = now + ttl
        self.store.invites.create(
            token_hash=token_hash(token), user_id=user.id, now=now, expires_at=expires_at
        )
        actor, via = acting(caller)
        audit("invite_created", user_id=user.id, expires_at=expires_at, actor=actor, via=via)
        return f"{self.settings.issuer}/ui/invite?token={token}", expires_at

    def pending_invites(
        self, *, user_ref: str | None, now: datetime
    ) -> list[tuple[OneTimeTokenRecord, UserRecord]]:
        """Open invitations (of one user, or of everyone) with the user each is for."""
        user_id = self.store.users.find(ref=user_ref).id if user_ref is not None else None
        users = {u.id: u for u in self.store.users.all()}
        return [
            (invite, users[invite.user_id])
            for invite in self.store.invites.open(user_id=user_id, now=now)
            if invite.user_id in users
        ]

    def revoke_invites(
        self, *, user_ref: str, now: datetime, caller: Caller | None = None
    ) -> tuple[UserRecord, int]:
        """Spend every open invitation of a user; the user and how many were open."""
        user = self.store.users.find(ref=user_ref)
        spent = self.store.invites.spend_for_user(user_id=user.id, now=now)
        actor, via = acting(caller)
        audit("invites_revoked", user_id=user.id, count=spent, actor=actor, via=via)
        return user, spent

    def invited(self, *, token: str, now: datetime) -> UserRecord | None:
        """The user an unspent, unexpired invitation is for, else None."""
        if not _plausible(token, INVITE_PREFIX):
            return None
        user_id = self.store.invites.usable(token_hash=token_hash(token), now=now)
        if user_id is None:
            return None
        user = self.store.users.find(ref=user_id)
        return None if user.disabled else user

    def accept_invite(
        self, *, token: str, password: str, now: datetime, source: network.Address | None = None
    ) -> NewSession:
        """Set the chosen password, spend the invitation, and sign the person in."""
        if not self.settings.login_password:
            raise PermissionDenied("sign-in with a password is turned off")
        user = self.invited(token=token, now=now)
        if user is None:
            raise Unauthenticated("this invitation link has been used or has expired")
        checked = check_password(
            password, min_length=self.settings.password_min_length, email=user.email
        )
        self.store.invites.redeem(
            token_hash=token_hash(token), password_hash=self.passwords.hash(checked), now=now
        )
        # A new password ends the sessions of the old one, as when the operator sets it.
        ended = self.store.sessions.delete_for_user(user_id=user.id)
        audit("password_set", user_id=user.id, actor=user.id, via="invite", sessions_ended=ended)
        return self.start_session(user_id=user.id, method="invite", now=now, source=source)

    # Signing in ---------------------------------------------------------------------

    def sign_in_with_password(
        self, *, email: str, password: str, source: network.Address | None, now: datetime
    ) -> NewSession:
        """A session for the right e-mail and password (blocking: for worker threads, the CLI).

        Every refusal (unknown e-mail, no password set, disabled user, wrong
        password) costs the same argon2 work and is the same ``SignInFailed``.
        Failures count per e-mail address and per source; past the limit the
        answer is ``SignInThrottled`` for known and unknown addresses alike. Beyond
        the process's ``max_queued_password_checks`` it is ``SignInBusy``, before
        anything is counted and without argon2.
        """
        attempt = self.begin_password_sign_in(email=email, password=password, source=source)
        with self._admitted(attempt):
            ok = self.passwords.verify(attempt.usable_hash, attempt.candidate)
        return self.finish_password_sign_in(attempt, ok=ok, now=now)

    async def sign_in_with_password_async(
        self, *, email: str, password: str, source: network.Address | None, now: datetime
    ) -> NewSession:
        """``sign_in_with_password`` from the event loop: storage in worker threads, and the
        password check awaited on its own pool, so that waiting for argon2 holds no worker
        thread (a sign-in flood would otherwise park them all and stall every request)."""
        attempt = await anyio.to_thread.run_sync(
            lambda: self.begin_password_sign_in(email=email, password=password, source=source)
        )
        try:
            with self.passwords.admitted():
                ok = await self.passwords.verify_async(attempt.usable_hash, attempt.candidate)
        except SignInBusy:  # not tried: taken back, off the event loop
            await anyio.to_thread.run_sync(lambda: self.throttle.forgive(attempt.keys))
            raise
        return await anyio.to_thread.run_sync(
            lambda: self.finish_password_sign_in(attempt, ok=ok, now=now)
        )

    @contextmanager
    def _admitted(self, attempt: PasswordAttempt) -> Iterator[None]:
        """A place among the process's queued password checks; when there is none, the
        attempt is taken back (it was not tried) and the answer is ``SignInBusy``."""
        try:
            with self.passwords.admitted():
                yield
        except SignInBusy:
            self.throttle.forgive(attempt.keys)
            raise

    def begin_password_sign_in(
        self, *, email: str, password: str, source: network.Address | None
    ) -> PasswordAttempt:
        """Count the attempt (``SignInThrottled`` past the limit) and read what to check."""
        if not self.settings.login_password:
            raise PermissionDenied("sign-in with a password is turned off")
        typed = email.strip().lower()[:MAX_EMAIL_LENGTH] if isinstance(email, str) else ""
        keys = (f"a:{typed}", source_key(source))
        # Counted before argon2 and forgiven on success: attempts sent all at once must
        # not all get past the limit while the first ones are still being checked.
        wait = self.throttle.reserve(keys)
        if wait:
            audit("sign_in_failed", reason="throttled", source=source)
            raise SignInThrottled(wait)
        user = self._user_by_email(typed)
        stored = self.store.passwords.hash_of(user_id=user.id) if user is not None else None
        return PasswordAttempt(
            keys=keys,
            source=source,
            user=user,
            stored_hash=stored,
            usable_hash=stored if user is not None and not user.disabled else None,
            candidate=normalize_password(password if isinstance(password, str) else ""),
        )

    def finish_password_sign_in(
        self, attempt: PasswordAttempt, *, ok: bool, now: datetime
    ) -> NewSession:
        """After the check: ``SignInFailed`` (audited), or a new session."""
        user, stored = attempt.user, attempt.stored_hash
        if user is None or not ok:
            # Never the typed e-mail: people type their password into that field too.
            reason = (
                "unknown e-mail"
                if user is None
                else "user disabled"
                if user.disabled
                else "no password set"
                if stored is None
                else "wrong password"
            )
            audit(
                "sign_in_failed",
                reason=reason,
                user_id=user.id if user else None,
                method="password",
                source=attempt.source,
            )
            raise SignInFailed()
        assert stored is not None
        self.throttle.forgive(attempt.keys)
        if self.passwords.needs_rehash(stored):
            self.store.passwords.set(
                user_id=user.id, password_hash=self.passwords.hash(attempt.candidate), now=now
            )
        return self.start_session(
            user_id=user.id, method="password", now=now, source=attempt.source
        )

    def _user_by_email(self, email: str) -> UserRecord | None:
        if "@" not in email:  # find() also takes ids; sign-in is by e-mail only
            return None
        try:
            return self.store.users.find(ref=email)
        except NotFound:
            return None

    def start_session(
        self,
        *,
        user_id: str,
        method: str,
        now: datetime,
        source: network.Address | None = None,
    ) -> NewSession:
        """A new session for a user who has just proved who they are, by any method.

        Always a new id (never one the browser brought: no session fixation).
        """
        session_id = SESSION_PREFIX + secrets.token_urlsafe(32)
        record = self.store.sessions.create(
            id_hash=token_hash(session_id),
            user_id=user_id,
            method=method,
            now=now,
            expires_at=now + self.max_age,
        )
        audit("signed_in", user_id=user_id, method=method, source=source, via="session")
        return NewSession(session_id, record)

    # Sessions -----------------------------------------------------------------------

    def current(self, *, session_id: str, now: datetime) -> SignedIn | None:
        """Who the session belongs to now, or None: unknown, signed out, idle too long,
        past its absolute lifetime, or its user disabled or deleted."""
        if not _plausible(session_id, SESSION_PREFIX):
            return None
        id_hash = token_hash(session_id)
        found = self.store.sessions.find(id_hash=id_hash)
        if found is None:
            return None
        session, user = found
        if user.disabled:
            return None
        if now >= session.expires_at or now - session.last_seen_at >= self.idle:
            self.store.sessions.delete(id_hash=id_hash)
            audit("session_expired", user_id=user.id, via="session")
            return None
        if now - session.last_seen_at >= self.touch_every:
            self.store.sessions.touch(id_hash=id_hash, now=now)
        return SignedIn(user, session)

    def sign_out(self, *, session_id: str) -> None:
        """End this session (nothing happens for an unknown one)."""
        if not _plausible(session_id, SESSION_PREFIX):
            return
        id_hash = token_hash(session_id)
        found = self.store.sessions.find(id_hash=id_hash)
        if found is not None and self.store.sessions.delete(id_hash=id_hash):
            audit("signed_out", user_id=found[0].user_id, actor=found[0].user_id, via="session")

    def sign_out_everywhere(
        self, *, user_ref: str, now: datetime, caller: Caller | None = None
    ) -> tuple[UserRecord, int]:
        """End every session of a user, their device tokens (RFC 8628) and their open
        invitations (a link could start a new session); the user and how many sessions
        ended. ``caller``: the person themselves, from the pages; None: the operator."""
        user = self.store.users.find(ref=user_ref)
        ended = self.store.sessions.delete_for_user(user_id=user.id)
        spent = self.store.invites.spend_for_user(user_id=user.id, now=now)
        self.store.users.end_device_tokens(user_id=user.id, now=now)
        audit(
            "signed_out_everywhere",
            user_id=user.id,
            sessions_ended=ended,
            invites_revoked=spent,
            actor=acting(caller)[0],
            via=acting(caller)[1],
        )
        return user, ended

    def purge(self, *, now: datetime) -> int:
        """Drop sessions nobody can use any more."""
        return self.store.sessions.purge(now=now, idle_before=now - self.idle)


def _plausible(token: str, prefix: str) -> bool:
    return isinstance(token, str) and token.startswith(prefix) and len(token) <= MAX_TOKEN_LENGTH
