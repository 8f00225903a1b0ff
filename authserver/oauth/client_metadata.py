"""RFC 7591 client metadata: parsed into a typed value, and rendered from a credential.

Metadata mapping: ``client_name`` ↔ displayName, ``scope`` ↔ scopedRoles,
``allow_source_cidr`` ↔ allowSourceCidr, ``expires_in`` (request) /
``client_secret_expires_at`` (response, 0 = never) ↔ expiresTime. Values are
type-checked here; the credential rules (lengths, role names, networks, no
escalation) are the domain's, and their errors name the field in the words
of this document (``FIELD_NAMES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from authserver.config import Settings
from authserver.domain.credentials import UNSET, CredentialPatch, NewCredential
from authserver.errors import AuthserverError
from authserver.oauth.errors import InvalidClientMetadata
from authserver.records import ClientRecord

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = ["client_credentials"]
MAX_EXPIRES_IN = 3650 * 86400
#: How registration names the domain's fields.
FIELD_NAMES = {
    "display_name": "client_name",
    "allow_source_cidr": "allow_source_cidr",
    "scoped_roles": "scope",
    "expires_time": "expires_in",
    "require_dpop": "dpop_bound_access_tokens",
}


def refused(error: AuthserverError) -> InvalidClientMetadata:
    """A domain error as ``invalid_client_metadata``, its field named as registration names it."""
    return InvalidClientMetadata(error.describe(FIELD_NAMES))


@dataclass(frozen=True)
class ClientMetadata:
    """The metadata of an RFC 7591 request, type-checked."""

    client_name: str | None
    scope: tuple[str, ...]
    allow_source_cidr: tuple[str, ...] | None  # None: not in the request
    expires_in: timedelta | None
    token_endpoint_auth_method: str
    jwks: list[dict[str, str]] | None
    client_id: str | None = None
    dpop_bound_access_tokens: bool = False

    def new_credential(self) -> NewCredential:
        return NewCredential(
            display_name=self.client_name,
            allow_source_cidr=self.allow_source_cidr or (),
            scoped_roles=self.scope,
            expires_in=self.expires_in,
            require_dpop=self.dpop_bound_access_tokens,
        )

    def replacement(self, *, now: datetime) -> CredentialPatch:
        """RFC 7592 section 2.2 (full replacement), with two safe exceptions.

        ``client_name`` and ``scope`` are replaced (omitted means empty). An omitted
        ``allow_source_cidr`` keeps the lock (a PUT that forgets the field must not
        open the client), and an omitted ``expires_in`` keeps the expiry.
        """
        return CredentialPatch(
            display_name=self.client_name,
            scoped_roles=self.scope,
            allow_source_cidr=UNSET if self.allow_source_cidr is None else self.allow_source_cidr,
            expires_time=UNSET if self.expires_in is None else now + self.expires_in,
            require_dpop=self.dpop_bound_access_tokens,
        )


def parse_metadata(body: dict[str, Any]) -> ClientMetadata:
    """Type-check a registration request's metadata (``InvalidClientMetadata`` otherwise)."""
    _check_unsupported(body)
    method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method: supported are {', '.join(AUTH_METHODS)}"
        )
    cidrs = body.get("allow_source_cidr")
    if cidrs is not None and (
        not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs)
    ):
        raise InvalidClientMetadata("allow_source_cidr: expected a list of strings")
    client_id = body.get("client_id")
    return ClientMetadata(
        client_name=_string(body, "client_name"),
        scope=tuple((_string(body, "scope") or "").split()),
        allow_source_cidr=tuple(cidrs) if cidrs is not None else None,
        expires_in=_expires_in(body),
        token_endpoint_auth_method=str(method),
        jwks=_jwks(body, str(method)),
        client_id=client_id if isinstance(client_id, str) else None,
        dpop_bound_access_tokens=_flag(body, "dpop_bound_access_tokens"),
    )


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidClientMetadata(f"{name}: expected true or false")
    return value


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidClientMetadata(f"{name}: expected a string")
    return value


def _expires_in(body: dict[str, Any]) -> timedelta | None:
    value = body.get("expires_in")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_EXPIRES_IN:
        raise InvalidClientMetadata("expires_in: expected a positive number of seconds")
    return timedelta(seconds=value)


def _check_unsupported(body: dict[str, Any]) -> None:
    grant_types = body.get("grant_types", GRANT_TYPES)
    if grant_types != GRANT_TYPES:
        raise InvalidClientMetadata("grant_types: only client_credentials is supported")
    if body.get("response_types") not in (None, []):
        raise InvalidClientMetadata("response_types: no response types are supported")
    if body.get("redirect_uris") not in (None, []):
        raise InvalidClientMetadata("redirect_uris: redirect-based flows are not supported")
    if "jwks_uri" in body:
        raise InvalidClientMetadata("jwks_uri: register the keys inline with jwks")


def _jwks(body: dict[str, Any], method: str) -> list[dict[str, str]] | None:
    """Public Ed25519 keys a ``private_key_jwt`` client brings itself."""
    if "jwks" not in body:
        return None
    if method != "private_key_jwt":
        raise InvalidClientMetadata("jwks: only for token_endpoint_auth_method private_key_jwt")
    jwks = body["jwks"]
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= 10:
        raise InvalidClientMetadata("jwks: expected an object whose keys list has 1 to 10 keys")
    result = []
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") != "OKP" or key.get("crv") != "Ed25519":
            raise InvalidClientMetadata("jwks: only Ed25519 (OKP) keys are supported")
        if "d" in key:
            raise InvalidClientMetadata("jwks: a private key was sent; send only the public key")
        x, kid = key.get("x"), key.get("kid")
        if not isinstance(x, str) or len(x) != 43 or (kid is not None and not isinstance(kid, str)):
            raise InvalidClientMetadata("jwks: malformed Ed25519 key")
        result.append({"kty": "OKP", "crv": "Ed25519", "x": x, **({"kid": kid} if kid else {})})
    return result


def client_uri(settings: Settings, client_id: str) -> str:
    """The RFC 7592 ``registration_client_uri`` of a client."""
    return settings.endpoint("/auth/v1/register/" + quote(client_id, safe=""))


def metadata_document(
    settings: Settings, record: ClientRecord, registration_token: str | None = None
) -> dict[str, Any]:
    """A credential as RFC 7591 metadata; never a secret or its hash."""
    document: dict[str, Any] = {
        "client_id": record.client_id,
        "client_id_issued_at": int(record.created_at.timestamp()),
        "client_secret_expires_at": (
            int(record.expires_time.timestamp()) if record.expires_time else 0
        ),
        "client_name": record.display_name,
        "scope": " ".join(record.scoped_roles),
        "allow_source_cidr": list(record.allow_source_cidr),
        "grant_types": GRANT_TYPES,
        "token_endpoint_auth_method": record.auth_method or "client_secret_basic",
        "registration_client_uri": client_uri(settings, record.client_id),
    }
    if record.require_dpop:  # RFC 9449 section 5.2 (false, its default, is left out)
        document["dpop_bound_access_tokens"] = True
    if record.jwks is not None:
        document["jwks"] = {"keys": [dict(k) for k in record.jwks]}
    if registration_token is not None:
        # RFC 7592 section 3: the configuration response carries the token in use.
        document["registration_access_token"] = registration_token
    return document
