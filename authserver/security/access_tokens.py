"""Access-token validation: is this JWT one of ours, and is it active *now*?

Used by introspection, revocation and the management API's bearer check, so
all three agree. A token is active only when its signature (by a published
key, with that key's algorithm), issuer, audience and ``exp`` are valid, its
``jti`` is not revoked, its credential is neither deleted nor expired, and its
owner is not disabled. Its roles are re-evaluated against current state.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from authserver.config import Settings
from authserver.domain.credentials import AuthState, Caller, issued_too_early, refusal_reason
from authserver.security.jose import TOKEN_ALGORITHMS
from authserver.security.keys import KeyRing
from authserver.store.credentials import CredentialStore
from authserver.store.state_cache import StateCache
from authserver.store.users import UserStore

MAX_TOKEN_LENGTH = 8192
# Instances' clocks differ slightly: a token minted on one must check out on another at once.
CLOCK_SKEW = 5


@dataclass(frozen=True)
class ActiveToken:
    """A verified, currently active access token and the credential behind it."""

    claims: dict[str, Any]
    state: AuthState
    roles: tuple[str, ...]

    @property
    def reduced(self) -> bool:
        """True when the token carries less than its owner's current roles."""
        return bool(self.state.scoped_roles) or set(self.roles) != set(self.state.owner_roles)

    @property
    def jkt(self) -> str | None:
        """The thumbprint of the key a DPoP proof bound this token to (RFC 9449), if any."""
        cnf = self.claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        return jkt if isinstance(jkt, str) else None

    @property
    def from_device_flow(self) -> bool:
        """A person's token, got by a device client (RFC 8628): no credential behind it."""
        return not self.state.id

    def caller(self) -> Caller:
        """The token's holder as the credential rules see it."""
        return Caller(
            user_id=self.state.user_id,
            effective_roles=frozenset(self.roles),
            reduced=self.reduced,
            credential_id=self.state.id or None,
            via="device_token" if self.from_device_flow else "access_token",
            allow_source_cidr=self.state.allow_source_cidr,
            expires_time=self.state.expires_time,
            require_dpop=self.state.require_dpop,
            may_administer=not self.from_device_flow,
        )


def verify_signature(token: str, *, keyring: KeyRing, settings: Settings) -> dict[str, Any] | None:
    """The claims of a well-formed token signed by one of our published keys, else None.

    A token verified before (resource servers introspect the same token on every
    call) is recognised by its SHA-256 while its key is still published; only its
    time claims are checked again.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    claims = keyring.verified(digest)
    if claims is not None:
        now = time.time()
        if claims["exp"] + CLOCK_SKEW <= now or claims["iat"] - CLOCK_SKEW > now:
            return None
        return claims
    verified = _verify(token, keyring=keyring, settings=settings)
    if verified is None:
        return None
    kid, claims = verified
    keyring.remember_verified(digest, kid, claims)
    return claims


def _verify(
    token: str, *, keyring: KeyRing, settings: Settings
) -> tuple[str, dict[str, Any]] | None:
    try:
        signed = jws.extract_compact(token.encode("ascii"), registry=TOKEN_ALGORITHMS)
        header = signed.headers()
        kid = header.get("kid")
        if not isinstance(kid, str):
            return None
        published = keyring.public_key(kid)
        if published is None or header.get("alg") != published[0]:
            return None
        if header.get("typ") not in ("at+jwt", "application/at+jwt"):
            return None
        if not jws.validate_compact(signed, published[1], registry=TOKEN_ALGORITHMS):
            return None
        claims = json.loads(signed.payload or b"")
        if not isinstance(claims, dict):
            return None
        _claims_rules(settings).validate(claims)
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError):
        return None
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("client_id"), str):
        return None
    if not isinstance(claims["exp"], int | float) or not isinstance(claims["iat"], int | float):
        return None
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return None
    return kid, claims


def _claims_rules(settings: Settings) -> JWTClaimsRegistry:
    """RFC 9068 section 4: our issuer and audience, every claim present, times valid."""
    required: ClaimsOption = {"essential": True}
    return JWTClaimsRegistry(
        leeway=CLOCK_SKEW,
        iss={"essential": True, "value": settings.issuer},
        aud={"essential": True, "value": settings.token_audience},
        sub=required,
        exp=required,
        iat=required,
        jti=required,
        client_id=required,
    )


async def active_token(
    token: str,
    *,
    keyring: KeyRing,
    settings: Settings,
    credentials: CredentialStore,
    users: UserStore,
    cache: StateCache,
) -> ActiveToken | None:
    """The token if it is active now, with its roles narrowed to the credential's current roles.

    A device client's token (RFC 8628) has no credential behind it: the person
    must exist and not be disabled, must not have signed out everywhere since it
    was issued, and its roles narrow to the person's own.
    """
    claims = verify_signature(token, keyring=keyring, settings=settings)
    if claims is None:
        return None
    client_id, jti = claims["client_id"], claims["jti"]
    if any(client.id == client_id for client in settings.device_clients):
        state, revoked = await cache.person_token(users, client_id, claims["sub"], jti)
    else:
        state, revoked = await cache.token(credentials, client_id, jti)
    if state is None or revoked or state.user_id != claims["sub"]:
        return None
    if issued_too_early(state, claims["iat"]):
        return None  # the person signed out everywhere since (device tokens only)
    if refusal_reason(state, now=datetime.now(UTC), source=None, check_source=False) is not None:
        return None
    roles = tuple(sorted(set(claims["roles"]) & state.effective_roles))
    return ActiveToken(claims=claims, state=state, roles=roles)
