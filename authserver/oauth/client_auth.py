"""Client authentication for the OAuth endpoints (RFC 6749 section 2.3, RFC 7523 section 2.2).

Runs before Authlib sees the request, because it needs I/O (the credential
record, an argon2 verification) that must not block the event loop. Every
failure raises the same ``InvalidClient``; the precise reason goes to the audit trail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

import anyio.to_thread
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.requests import Request

from authserver.config import Settings
from authserver.domain import network
from authserver.domain.credentials import (
    AuthState,
    has_control_characters,
    method_allowed,
    refusal_reason,
)
from authserver.domain.secrets import looks_like_secret, secret_refusal
from authserver.oauth import assertions
from authserver.oauth.adapter import read_form
from authserver.oauth.errors import InvalidClient, TooManyAttempts
from authserver.security.argon2 import SecretHasher
from authserver.security.audit import audit
from authserver.security.jose import ASSERTION_TYPE
from authserver.security.logsafe import presented
from authserver.security.throttle import source_key
from authserver.store import Store
from authserver.store.state_cache import StateCache
from authserver.usecases.replay import ReplayGuard
from authserver.usecases.throttles import SharedThrottle
from authserver.web.source import source_address

MAX_CREDENTIAL_LENGTH = 1024


@dataclass(frozen=True)
class AuthenticatedClient:
    """A credential that passed every check, as Authlib's ``ClientMixin`` wants it."""

    state: AuthState
    method: str
    source: str | None = None
    dpop_jkt: str | None = None  # the key a DPoP proof bound the token to (RFC 9449)
    grant_type: str = "client_credentials"  # or RFC 8693's, for a federation trust
    act: dict[str, str] | None = None  # RFC 8693 section 4.1: the job that exchanged its token

    @property
    def client_id(self) -> str:
        return self.state.client_id

    def get_client_id(self) -> str:
        return self.state.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.method

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == self.grant_type

    def check_client_secret(self, client_secret: str) -> bool:  # pragma: no cover - unused
        return False


@dataclass(frozen=True)
class Presented:
    """The credentials a request carries: a secret, or a signed assertion (``private_key_jwt``)."""

    method: str
    client_id: str
    secret: str = ""
    assertion: str = ""


def presented_credentials(headers: Mapping[str, str], form: Mapping[str, str]) -> Presented:
    """Find exactly one client-authentication mechanism in the request."""
    authorization = headers.get("authorization")
    in_body = "client_secret" in form
    has_assertion = "client_assertion" in form or "client_assertion_type" in form
    if sum((authorization is not None, in_body, has_assertion)) > 1:
        raise InvalidRequestError("use one client authentication method, not two")
    if has_assertion:
        return _presented_assertion(form)
    if authorization is not None:
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise fail_authentication(None, "authorization scheme is not Basic")
        client_id, secret = _decode_basic(encoded.strip())
        if "client_id" in form and form["client_id"] != client_id:
            raise fail_authentication(
                client_id, "client_id in the body differs from the Basic header"
            )
        return Presented("client_secret_basic", client_id, secret)
    if in_body and form.get("client_id"):
        return Presented("client_secret_post", form["client_id"], form["client_secret"])
    raise fail_authentication(form.get("client_id"), "no client credentials presented")


def _presented_assertion(form: Mapping[str, str]) -> Presented:
    """RFC 7521 section 4.2: ``client_assertion_type`` + ``client_assertion``."""
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise fail_authentication(form.get("client_id"), "unsupported client_assertion_type")
    assertion = form.get("client_assertion", "")
    try:
        client_id = assertions.unverified_client_id(assertion)
    except assertions.AssertionError_ as exc:
        raise fail_authentication(form.get("client_id"), str(exc)) from None
    if "client_id" in form and form["client_id"] != client_id:
        raise fail_authentication(client_id, "client_id differs from the assertion's iss")
    return Presented("private_key_jwt", client_id, assertion=assertion)


def _decode_basic(encoded: str) -> tuple[str, str]:
    """RFC 6749 section 2.3.1: base64 of form-urlencoded ``client_id:client_secret``."""
    if not encoded or len(encoded) > 4 * MAX_CREDENTIAL_LENGTH:
        raise fail_authentication(None, "malformed Basic header")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise fail_authentication(None, "malformed Basic header") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        raise fail_authentication(None, "malformed Basic header")
    if "%" not in decoded and "+" not in decoded:
        return client_id, secret  # nothing to unquote (our ids and secrets never need it)
    try:
        return (
            unquote_plus(client_id, errors="strict"),
            unquote_plus(secret, errors="strict"),
        )
    except UnicodeDecodeError:
        raise fail_authentication(None, "malformed percent-encoding in Basic header") from None


def fail_authentication(client_id: str | None, reason: str, source: object = None) -> InvalidClient:
    """The one answer to a failed client authentication; the reason goes to the audit trail."""
    _log_failure(client_id, reason, source)
    return InvalidClient()


def _log_failure(client_id: str | None, reason: str, source: object) -> None:
    audit("auth_failed", client_id=presented(client_id), reason=reason, source=source)


class ClientAuthenticator:
    """Checks presented credentials against the store and the credential rules."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        hasher: SecretHasher,
        cache: StateCache,
        replay: ReplayGuard,
        throttle: SharedThrottle,
    ) -> None:
        self.settings = settings
        self.store = store
        self.hasher = hasher
        self.cache = cache
        self.replay = replay
        self.throttle = throttle  # failures per source and per presented client_id

    async def token_request(
        self, request: Request, *, max_bytes: int
    ) -> tuple[AuthenticatedClient, str]:
        """Introspection and revocation: an authenticated caller and its ``token`` parameter."""
        form = await read_form(request, max_bytes=max_bytes)
        caller = await self.authenticate(request, form)
        token = form.get("token")
        if not token:
            raise InvalidRequestError("missing token")
        return caller, token

    async def authenticate(self, request: Request, form: Mapping[str, str]) -> AuthenticatedClient:
        """The authenticated client, or ``InvalidClient``; ``TooManyAttempts`` when throttled.

        argon2 runs only once the request has shown it holds the credential's key: the
        secret's embedded Ed25519 key matches the stored public key, or the assertion
        verifies. Every other failure — unknown id, refused credential, wrong secret —
        is answered at once, so timing tells nothing and guessing costs no argon2. Those
        failures count against the source and the credential; past the limit they get
        429, while a request that proves possession is never throttled.
        """
        source = source_address(request, self.settings)
        keys = [source_key(source)]
        try:
            presented = presented_credentials(request.headers, form)
            return await self._authenticate(request, presented, source, keys)
        except InvalidClient:
            await anyio.to_thread.run_sync(lambda: self.throttle.record_failure(tuple(keys)))
            raise

    async def _authenticate(
        self,
        request: Request,
        presented: Presented,
        source: network.Address | None,
        keys: list[str],
    ) -> AuthenticatedClient:
        client_id = presented.client_id
        if len(client_id) > 255 or len(presented.secret) > MAX_CREDENTIAL_LENGTH:
            raise fail_authentication(client_id, "credential too long", source)
        if has_control_characters(client_id):
            raise fail_authentication(client_id, "control characters in client_id", source)
        # Counted per presented client_id, known or not: a known id must not be told apart
        # from an unknown one by its throttling.
        keys.append(client_key(client_id))
        if presented.method != "private_key_jwt" and not looks_like_secret(presented.secret):
            # Never a secret of ours, whatever the id: answered without a lookup, so that
            # known and unknown ids take the same path and the same time.
            await self.throttled(keys, client_id, "not a secret-token", source)
            raise fail_authentication(client_id, "wrong secret (not a secret-token)", source)
        state = await self.cache.credential(self.store.credentials, client_id)
        now = datetime.now(UTC)
        max_idle = self.settings.max_idle
        reason = refusal_reason(state, now=now, source=source, max_idle=max_idle)
        if reason == "idle":
            # The cached state's lastUsedAt is as old as the entry: ask the database.
            state = await anyio.to_thread.run_sync(
                lambda: self.store.credentials.auth_state(client_id=client_id)
            )
            reason = refusal_reason(state, now=now, source=source, max_idle=max_idle)
        if reason is None and state is not None and state.federation is not None:
            reason = "a federation trust has no secret: it exchanges a job's token"
        if reason is None and state is not None and not method_allowed(state, presented.method):
            reason = f"registered for {state.auth_method} only"
        replay: tuple[str, datetime] | None = None
        verified = False  # the secret is the one argon2 last accepted for this hash
        # The current secret, and during a rotation's grace period the previous one: (the
        # verified-secret cache's key, the hash) of the one the presented secret may be.
        cache_id, secret_hash = (state.id, state.secret_hash) if state is not None else ("", "")
        if reason is None and state is not None:
            if presented.method == "private_key_jwt":
                replay, reason = self._check_assertion(request, presented, state, now)
            else:
                for cache_id, secret_hash, domain, public_keys in _secrets_in_force(state, now):
                    verified = self.hasher.matches_cached(
                        credential_id=cache_id, secret_hash=secret_hash, secret=presented.secret
                    )
                    refused = (
                        None
                        if verified
                        else secret_refusal(
                            presented.secret, domain=domain, public_keys=public_keys
                        )
                    )
                    if refused is None:
                        reason = None
                        break
                    reason = reason or refused
        if reason is not None or state is None:
            await self.throttled(keys, client_id, reason, source)
            raise fail_authentication(client_id, reason or "unknown client_id", source)
        if replay is None:
            # Verified before, or the secret carries the credential's key: worth one argon2.
            ok = verified or await self.hasher.verify(
                credential_id=cache_id, secret_hash=secret_hash, secret=presented.secret
            )
            if not ok:
                raise fail_authentication(client_id, "wrong secret", source)
        else:
            key, until = replay
            fresh = await anyio.to_thread.run_sync(
                lambda: self.replay.first_use(key=key, expires_at=until)
            )
            if not fresh:
                raise fail_authentication(client_id, "assertion replayed", source)
        return AuthenticatedClient(
            state=state, method=presented.method, source=str(source) if source else None
        )

    async def throttled(
        self, keys: list[str], client_id: str, reason: str | None, source: object
    ) -> None:
        """``TooManyAttempts`` when the source or the presented id is past its limit."""
        wait = self.throttle.known_wait(tuple(keys)) or await anyio.to_thread.run_sync(
            lambda: self.throttle.retry_after(tuple(keys))
        )
        if wait:
            _log_failure(client_id, f"throttled ({reason})", source)
            raise TooManyAttempts(wait)

    def _check_assertion(
        self, request: Request, presented: Presented, state: AuthState, now: datetime
    ) -> tuple[tuple[str, datetime] | None, str | None]:
        """(replay-cache entry, None) for a valid assertion, else (None, why not)."""
        settings = self.settings
        audiences = assertions.audiences_for(
            settings.issuer, settings.issuer_host, settings.endpoint(request.url.path)
        )
        try:
            return (
                assertions.verify(
                    presented.assertion,
                    client_id=state.client_id,
                    keys=[*state.public_keys, *_previous_keys(state, now)],
                    audiences=audiences,
                    now=now,
                ),
                None,
            )
        except assertions.AssertionError_ as exc:
            return None, str(exc)


def client_key(client_id: str) -> str:
    """Throttle key of a presented client_id (a digest: ids can be long, and are input)."""
    return (
        "c:"
        + hashlib.blake2b(client_id.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    )


def _secrets_in_force(
    state: AuthState, now: datetime
) -> list[tuple[str, str, str | None, tuple[dict[str, str], ...]]]:
    """(cache key, hash, secret domain, public keys) of the current secret, and of the
    previous one while a rotation's grace period lasts."""
    found = [(state.id, state.secret_hash, state.secret_domain, state.public_keys)]
    previous = state.previous_in_force(now)
    if previous is not None:
        found.append(
            (state.id + "~", previous.secret_hash, previous.secret_domain, (previous.public_jwk,))
        )
    return found


def _previous_keys(state: AuthState, now: datetime) -> list[dict[str, str]]:
    previous = state.previous_in_force(now)
    return [previous.public_jwk] if previous is not None else []
