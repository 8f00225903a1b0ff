"""Personal client credentials: identifiers, secrets and the rules that govern them.

Every entry point (token endpoint, management API, registration, CLI) calls
these functions; none re-implements a rule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authserver.domain import network, roles
from authserver.domain.words import ADJECTIVES, NOUNS
from authserver.errors import InvalidArgument, PermissionDenied

SECRET_PREFIX = "secret-token:"
SECRET_VERSION = "v1"
MAX_DISPLAY_NAME = 200


def new_client_id(issuer_host: str) -> str:
    """A fresh ``<adjective>-<noun>-<5 digits>@<issuer host>/pcc``.

    Uniqueness is the store's job (unique index, retried on collision).
    """
    adjective = secrets.choice(ADJECTIVES)
    noun = secrets.choice(NOUNS)
    digits = secrets.randbelow(90000) + 10000
    return f"{adjective}-{noun}-{digits}@{issuer_host}/pcc"


@dataclass(frozen=True)
class NewSecret:
    """A freshly generated secret: the string shown once and the public JWK we keep."""

    secret: str
    public_jwk: dict[str, str]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_secret(issuer_host: str) -> NewSecret:
    """``secret-token:<host>:v1:<b64url of the Ed25519 private JWK>``."""
    key = Ed25519PrivateKey.generate()
    x = _b64url(key.public_key().public_bytes_raw())
    d = _b64url(key.private_bytes_raw())
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "d": d}
    encoded = _b64url(json.dumps(jwk, separators=(",", ":")).encode())
    return NewSecret(
        secret=f"{SECRET_PREFIX}{issuer_host}:{SECRET_VERSION}:{encoded}",
        public_jwk={"kty": "OKP", "crv": "Ed25519", "x": x},
    )


def parse_secret(secret: str) -> dict[str, str] | None:
    """The private JWK inside a secret string, or None when it is not one of ours."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    _, sep, encoded = secret.rpartition(f":{SECRET_VERSION}:")
    if not sep or not encoded:
        return None
    try:
        jwk = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    if not isinstance(jwk.get("x"), str) or not isinstance(jwk.get("d"), str):
        return None
    return jwk


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    """True for C0 controls or DEL; such text is never a valid identifier (and NUL breaks SQL)."""
    return _CONTROL.search(text) is not None


def new_opaque_token() -> str:
    """A bearer token for registration (initial access or RFC 7592 management): 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex of a high-entropy token; enough at rest, unlike for user-chosen secrets."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches_public_key(secret: str, public_keys: Iterable[Mapping[str, str]]) -> bool:
    """True when the secret's Ed25519 private key belongs to one of ``public_keys``.

    A cheap proof of possession (no argon2): the public key cannot be turned back
    into the secret, so a match means the caller holds the credential's key. The
    argon2 hash stays the authority on the exact secret string.
    """
    jwk = parse_secret(secret)
    if jwk is None:
        return False
    try:
        d = base64.urlsafe_b64decode(jwk["d"] + "=" * (-len(jwk["d"]) % 4))
        x = _b64url(Ed25519PrivateKey.from_private_bytes(d).public_key().public_bytes_raw())
    except (ValueError, TypeError):
        return False
    return any(
        isinstance(key.get("x"), str) and hmac.compare_digest(key["x"], x) for key in public_keys
    )


def validate_display_name(name: str | None) -> str:
    """Free text, at most 200 characters, no control characters."""
    if name is None:
        return ""
    if not isinstance(name, str):
        raise InvalidArgument("displayName: expected a string")
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidArgument(f"displayName: at most {MAX_DISPLAY_NAME} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise InvalidArgument("displayName: control characters are not allowed")
    return name.strip()


@dataclass(frozen=True)
class Caller:
    """Who asks for a credential change: a token's holder (API) or the operator (CLI)."""

    user_id: str | None
    effective_roles: frozenset[str]
    reduced: bool
    is_operator: bool = False

    @classmethod
    def operator(cls) -> Caller:
        return cls(user_id=None, effective_roles=frozenset(), reduced=False, is_operator=True)


@dataclass(frozen=True)
class CredentialSpec:
    """Validated fields of a credential about to be created."""

    display_name: str
    allow_source_cidr: tuple[str, ...]
    scoped_roles: tuple[str, ...]
    expires_time: datetime | None


def check_new_credential(
    *,
    caller: Caller,
    owner_roles: Iterable[str],
    display_name: str | None,
    allow_source_cidr: Iterable[str],
    scoped_roles: Iterable[str],
    expires_in: timedelta | None,
    now: datetime,
) -> CredentialSpec:
    """Validate a new credential's fields and apply the no-escalation rule."""
    scoped = roles.normalize_roles(scoped_roles, field="scopedRoles")
    owner = frozenset(owner_roles)
    missing = sorted(set(scoped) - owner)
    if missing:
        raise InvalidArgument(f"scopedRoles: the owner does not hold {', '.join(missing)}")
    _check_no_escalation(caller, scoped)
    return CredentialSpec(
        display_name=validate_display_name(display_name),
        allow_source_cidr=network.normalize_cidrs(allow_source_cidr),
        scoped_roles=scoped,
        expires_time=now + expires_in if expires_in is not None else None,
    )


def check_may_manage(caller: Caller, target_roles: Iterable[str]) -> None:
    """A reduced caller may change or delete only credentials holding no more than it does.

    Otherwise a credential reduced to ``billing:read`` could lift the CIDR lock of,
    or delete, its owner's ``system:owner`` credential.
    """
    if caller.is_operator or not caller.reduced:
        return
    extra = sorted(set(target_roles) - caller.effective_roles)
    if extra:
        raise PermissionDenied(
            f"a reduced credential cannot manage a credential holding {', '.join(extra)}"
        )


def _check_no_escalation(caller: Caller, scoped: Sequence[str]) -> None:
    if caller.is_operator or not caller.reduced:
        return
    if not scoped:
        raise PermissionDenied(
            "a reduced credential cannot create an unreduced credential; set scopedRoles"
        )
    extra = sorted(set(scoped) - caller.effective_roles)
    if extra:
        raise PermissionDenied(f"scopedRoles exceed the caller's roles: {', '.join(extra)}")


@dataclass(frozen=True)
class AuthState:
    """What authentication needs to know about a credential and its owner, read together."""

    id: str
    client_id: str
    user_id: str
    secret_hash: str = field(repr=False)  # never in a log line, even at debug level
    allow_source_cidr: tuple[network.Network, ...] = ()
    scoped_roles: frozenset[str] = frozenset()
    expires_time: datetime | None = None
    deleted: bool = False
    owner_roles: frozenset[str] = frozenset()
    owner_disabled: bool = False
    public_keys: tuple[dict[str, str], ...] = ()
    auth_method: str | None = None

    @property
    def effective_roles(self) -> frozenset[str]:
        return roles.effective_roles(self.owner_roles, self.scoped_roles)


def method_allowed(state: AuthState, method: str) -> bool:
    """A client registered for ``private_key_jwt`` authenticates only that way.

    Credentials made by the CLI or the management API (no registered method)
    may use their secret directly or sign assertions with the key inside it.
    """
    return state.auth_method != "private_key_jwt" or method == "private_key_jwt"


def refusal_reason(
    state: AuthState | None,
    *,
    now: datetime,
    source: network.Address | None,
    check_source: bool = True,
) -> str | None:
    """Why this credential may not authenticate now from ``source``; None when it may.

    The secret is checked separately (it costs an argon2 verification). Token
    validity uses the same rules without the source check (``check_source``).
    """
    if state is None:
        return "unknown client_id"
    if state.deleted:
        return "credential deleted"
    if state.expires_time is not None and now >= state.expires_time:
        return "credential expired"
    if state.owner_disabled:
        return "owner disabled"
    if check_source and not network.address_allowed(source, state.allow_source_cidr):
        return f"source address {source} outside allowSourceCidr"
    return None


def token_expiry(state: AuthState, *, now: datetime, ttl: int) -> datetime:
    """``now + ttl``, never after the credential's ``expiresTime``."""
    expiry = now + timedelta(seconds=ttl)
    if state.expires_time is not None and state.expires_time < expiry:
        return state.expires_time
    return expiry


# Updates (management API and registration) ------------------------------------

#: Writable fields: wire name → storage attribute.
WRITABLE = {
    "displayName": "display_name",
    "allowSourceCidr": "allow_source_cidr",
    "scopedRoles": "scoped_roles",
    "expiresTime": "expires_time",
}


def parse_update_mask(mask: str | list[str]) -> list[str]:
    """Field paths of an ``updateMask``: comma-separated (or a list), camelCase or snake_case."""
    raw = mask.split(",") if isinstance(mask, str) else mask
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise InvalidArgument("updateMask: expected a comma-separated string of field paths")
    paths: list[str] = []
    for path in (p.strip() for p in raw):
        if not path:
            continue
        camel = _camel(path)
        if camel not in WRITABLE:
            raise InvalidArgument(
                f"updateMask: unknown or read-only field {path!r}; writable: {', '.join(WRITABLE)}"
            )
        if camel not in paths:
            paths.append(camel)
    if not paths:
        raise InvalidArgument("updateMask: name at least one field to update")
    return paths


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def check_update(
    *,
    caller: Caller,
    owner_roles: Iterable[str],
    current_expires: datetime | None,
    paths: Sequence[str],
    values: dict[str, Any],
) -> dict[str, Any]:
    """Validate the masked fields of an update; returns storage attribute → new value.

    ``values`` holds already type-checked wire values (``expiresTime`` as a
    datetime or None). Rules: no escalation for ``scopedRoles``, and
    ``expiresTime`` only moves earlier (never cleared once set).
    """
    changes: dict[str, Any] = {}
    for path in paths:
        value = values.get(path)
        if path == "displayName":
            changes["display_name"] = validate_display_name(value)
        elif path == "allowSourceCidr":
            changes["allow_source_cidr"] = network.normalize_cidrs(value or ())
        elif path == "scopedRoles":
            scoped = roles.normalize_roles(value or (), field="scopedRoles")
            missing = sorted(set(scoped) - set(owner_roles))
            if missing:
                raise InvalidArgument(f"scopedRoles: the owner does not hold {', '.join(missing)}")
            _check_no_escalation(caller, scoped)
            changes["scoped_roles"] = scoped
        elif path == "expiresTime":
            if current_expires is not None and (value is None or value > current_expires):
                raise PermissionDenied("expiresTime may only move earlier")
            changes["expires_time"] = value
    return changes
