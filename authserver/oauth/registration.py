"""Dynamic client registration: RFC 7591 (register) and RFC 7592 (read, update, delete).

Implemented here rather than through Authlib's ``ClientRegistrationEndpoint`` /
``ClientConfigurationEndpoint``: those are synchronous (our storage calls run
in worker threads), Authlib 1.9's configuration endpoint calls
``revoke_access_token`` with its arguments swapped, and its default
``introspect_client`` would echo stored secrets. The rules themselves are the
domain's, the same ones the management API and the CLI use.

Metadata mapping: ``client_name`` ↔ displayName, ``scope`` ↔ scopedRoles,
``allow_source_cidr`` ↔ allowSourceCidr, ``expires_in`` (request) /
``client_secret_expires_at`` (response, 0 = never) ↔ expiresTime.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import anyio.to_thread
from authlib.oauth2.rfc6749 import OAuth2Error
from starlette.requests import Request
from starlette.responses import Response

from authserver import manage
from authserver.api.auth import caller_of
from authserver.api.bodies import json_object
from authserver.domain import credentials, network, roles
from authserver.domain.credentials import Caller
from authserver.errors import (
    AuthserverError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from authserver.oauth.adapter import NO_STORE, json_response
from authserver.oauth.errors import oauth_errors
from authserver.services import Services
from authserver.store.repository import ClientRecord

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = ["client_credentials"]
MAX_EXPIRES_IN = 3650 * 86400
T = TypeVar("T")


class InvalidClientMetadata(OAuth2Error):
    """RFC 7591 section 3.2.2: a metadata value is invalid or unsupported."""

    error = "invalid_client_metadata"
    status_code = 400

    def __init__(self, description: str) -> None:
        super().__init__(description=_ascii(description))


class InvalidToken(OAuth2Error):
    """RFC 6750 section 3.1: the bearer token is missing, spent, expired or not for this client."""

    error = "invalid_token"
    status_code = 401

    def get_headers(self) -> list[tuple[str, str]]:
        return [
            *super().get_headers(),
            ("WWW-Authenticate", 'Bearer realm="authserver", error="invalid_token"'),
        ]


def _field(name: str, check: Callable[[], T]) -> T:
    """Run one domain check; its error becomes ``invalid_client_metadata`` naming ``name``."""
    try:
        return check()
    except AuthserverError as exc:
        raise InvalidClientMetadata(f"{name}: {exc.message}") from None


def _as_scope(message: str) -> str:
    """Domain messages name ``scopedRoles``; registration clients know it as ``scope``."""
    message = message.replace("scopedRoles", "scope")
    return message if message.startswith(("scope", "expiresTime")) else f"scope: {message}"


def _ascii(text: str) -> str:
    """RFC 6749 restricts ``error_description`` to printable ASCII without quote or backslash."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("a Bearer token is required")
    return token.strip()


def _client_uri(services: Services, client_id: str) -> str:
    return services.settings.endpoint("/auth/v1/register/" + quote(client_id, safe=""))


def _metadata(
    services: Services, record: ClientRecord, registration_token: str | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "client_id": record.client_id,
        "client_id_issued_at": int(record.created_at.timestamp()),
        "client_secret_expires_at": int(record.expires_time.timestamp())
        if record.expires_time
        else 0,
        "client_name": record.display_name,
        "scope": " ".join(record.scoped_roles),
        "allow_source_cidr": list(record.allow_source_cidr),
        "grant_types": GRANT_TYPES,
        "token_endpoint_auth_method": record.auth_method or "client_secret_basic",
        "registration_client_uri": _client_uri(services, record.client_id),
    }
    if record.jwks is not None:
        document["jwks"] = {"keys": [dict(k) for k in record.jwks]}
    if registration_token is not None:
        # RFC 7592 section 3: the configuration response carries the token in use.
        document["registration_access_token"] = registration_token
    return document


# Request metadata ---------------------------------------------------------------


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidClientMetadata(f"{name}: expected a string")
    return value


def _common_fields(body: dict[str, Any]) -> dict[str, Any]:
    """client_name, scope and allow_source_cidr, validated by the domain's own checks."""
    name = _string(body, "client_name")
    _field("client_name", lambda: credentials.validate_display_name(name))
    scope = _string(body, "scope") or ""
    scoped = _field("scope", lambda: roles.normalize_roles(scope.split(), field="scope"))
    cidrs = body.get("allow_source_cidr") or []
    if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
        raise InvalidClientMetadata("allow_source_cidr: expected a list of strings")
    _field("allow_source_cidr", lambda: network.normalize_cidrs(cidrs))
    return {"display_name": name, "allow_source_cidr": cidrs, "scoped_roles": scoped}


def _expires_in(body: dict[str, Any]) -> timedelta | None:
    value = body.get("expires_in")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_EXPIRES_IN:
        raise InvalidClientMetadata("expires_in: expected a positive number of seconds")
    return timedelta(seconds=value)


def _auth_method(body: dict[str, Any]) -> str:
    method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method: supported are {', '.join(AUTH_METHODS)}"
        )
    return str(method)


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


async def _json(request: Request) -> dict[str, Any]:
    try:
        return await json_object(request)
    except AuthserverError as exc:
        raise InvalidClientMetadata(exc.message) from None


# RFC 7591 ----------------------------------------------------------------------------


async def _registrar(services: Services, token: str) -> tuple[Caller, str, str | None]:
    """(caller, owner id, initial-token hash) for an access token or an initial access token."""
    if token.count(".") == 2:
        active = await services.active_token(token)
        if active is None:
            raise InvalidToken("the access token is invalid, expired or revoked")
        return caller_of(active), active.state.user_id, None
    digest = credentials.token_hash(token)
    user_id = await anyio.to_thread.run_sync(
        lambda: services.repo.usable_registration_token(token_hash=digest, now=datetime.now(UTC))
    )
    if user_id is None:
        raise InvalidToken("the initial access token is unknown, spent or expired")
    # An initial access token speaks for its user with all of the user's roles.
    return Caller(user_id=user_id, effective_roles=frozenset(), reduced=False), user_id, digest


@oauth_errors
async def register(request: Request) -> Response:
    """``POST /auth/v1/register``."""
    services: Services = request.app.state.services
    caller, user_id, initial_hash = await _registrar(services, _bearer(request))
    body = await _json(request)
    _check_unsupported(body)
    method = _auth_method(body)
    jwks = _jwks(body, method)
    spec_input = {**_common_fields(body), "expires_in": _expires_in(body)}

    def work() -> manage.Registration:
        owner = services.repo.find_user(ref=user_id)
        if owner.disabled:
            raise Unauthenticated("the user is disabled")
        return manage.register_credential(
            services.repo,
            services.hasher,
            services.settings,
            caller=caller,
            owner=owner,
            spec_input=spec_input,
            auth_method=method,
            jwks=jwks,
            initial_token_hash=initial_hash,
            now=datetime.now(UTC),
        )

    try:
        registration = await anyio.to_thread.run_sync(work)
    except (Unauthenticated, NotFound):
        raise InvalidToken("the bearer token cannot register clients") from None
    except (InvalidArgument, PermissionDenied) as exc:
        # What is left to fail after the per-field checks is the scope (no escalation).
        raise InvalidClientMetadata(_as_scope(exc.message)) from None
    document = _metadata(services, registration.record)
    if registration.secret is not None:
        document["client_secret"] = registration.secret
    document["registration_access_token"] = registration.registration_access_token
    return json_response(201, document, NO_STORE)


# RFC 7592 ----------------------------------------------------------------------------


async def _managed_client(request: Request, services: Services) -> tuple[ClientRecord, str]:
    """The live client named in the path and the bearer, if that is its registration token.

    Refused alike: unknown or deleted client, wrong token, disabled owner, and a
    request from outside the client's ``allow_source_cidr`` (the registration token
    must not be a way around the lock it manages).
    """
    token = _bearer(request)
    client_id = request.path_params["client_id"]
    refused = InvalidToken("unknown client or wrong registration access token")
    if len(client_id) > 255 or credentials.has_control_characters(client_id):
        raise refused

    def load() -> tuple[tuple[ClientRecord, str | None] | None, bool]:
        found = services.repo.find_client(client_id=client_id)
        if found is None:
            return None, False
        return found, services.repo.find_user(ref=found[0].user_id).disabled

    found, owner_disabled = await anyio.to_thread.run_sync(load)
    if found is None or owner_disabled:
        raise refused
    record, stored_hash = found
    source = services.authenticator.source_address(request)
    locks = [ipaddress.ip_network(c) for c in record.allow_source_cidr]
    if not network.address_allowed(source, locks):
        raise refused
    presented = credentials.token_hash(token)
    if (
        record.deleted_at is not None
        or stored_hash is None
        or not hmac.compare_digest(stored_hash, presented)
    ):
        raise refused
    return record, token


@oauth_errors
async def read(request: Request) -> Response:
    """``GET /auth/v1/register/{client_id}``: the metadata, never a secret or its hash."""
    services: Services = request.app.state.services
    record, token = await _managed_client(request, services)
    return json_response(200, _metadata(services, record, token), NO_STORE)


@oauth_errors
async def replace(request: Request) -> Response:
    """``PUT /auth/v1/register/{client_id}``: full replacement of the writable metadata."""
    services: Services = request.app.state.services
    record, token = await _managed_client(request, services)
    body = await _json(request)
    if body.get("client_id") != record.client_id:
        raise InvalidClientMetadata("client_id: must be present and match the client")
    _check_unsupported(body)
    if _auth_method(body) != (record.auth_method or "client_secret_basic"):
        raise InvalidClientMetadata("token_endpoint_auth_method: cannot be changed")
    if "jwks" in body and _jwks(body, "private_key_jwt") != list(record.jwks or []):
        raise InvalidClientMetadata("jwks: cannot be changed")
    fields = _common_fields(body)
    expires_in = _expires_in(body)
    paths = ["displayName", "scopedRoles"]
    values: dict[str, Any] = {
        "displayName": fields["display_name"],
        "allowSourceCidr": fields["allow_source_cidr"],
        "scopedRoles": list(fields["scoped_roles"]),
    }
    if "allow_source_cidr" in body:
        # Omitted keeps the lock: a PUT that forgets the field must not open the client.
        paths.append("allowSourceCidr")
    if expires_in is not None:
        paths.append("expiresTime")
        values["expiresTime"] = datetime.now(UTC) + expires_in

    try:
        # caller=None: the registration access token acts with the client's own powers.
        updated = await anyio.to_thread.run_sync(
            lambda: manage.update_credential(
                services.repo,
                record=record,
                caller=None,
                paths=paths,
                values=values,
                now=datetime.now(UTC),
            )
        )
    except NotFound:
        raise InvalidToken("unknown client or wrong registration access token") from None
    except (InvalidArgument, PermissionDenied) as exc:
        raise InvalidClientMetadata(_as_scope(exc.message)) from None
    services.forget_credential(client_id=updated.client_id)
    return json_response(200, _metadata(services, updated, token), NO_STORE)


@oauth_errors
async def remove(request: Request) -> Response:
    """``DELETE /auth/v1/register/{client_id}``: the same soft delete as everywhere."""
    services: Services = request.app.state.services
    record, _ = await _managed_client(request, services)
    deleted = await anyio.to_thread.run_sync(
        lambda: services.repo.delete_client(id=record.id, now=datetime.now(UTC))
    )
    owner_caller = Caller(user_id=deleted.user_id, effective_roles=frozenset(), reduced=True)
    manage.audit_credential("credential_deleted", deleted, owner_caller)
    services.forget_credential(client_id=record.client_id)
    return Response(status_code=204, headers=NO_STORE)
