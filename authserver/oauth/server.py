"""Authlib's ``AuthorizationServer`` wired to our clients, tokens and responses.

Authlib runs the protocol: grant dispatch, client-authentication method
checks, scope validation hooks, the token response. By the time it runs, the
client is already authenticated (``client_auth``), so nothing here does I/O.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from starlette.responses import Response

from authserver.config import Settings
from authserver.domain.credentials import token_expiry
from authserver.domain.roles import parse_scope
from authserver.oauth.adapter import FormRequest
from authserver.oauth.client_auth import AuthenticatedClient
from authserver.oauth.device_flow import Approval, DeviceClientAuth, DeviceCodeGrant
from authserver.oauth.responses import json_response
from authserver.security.audit import audit
from authserver.security.keys import KeyRing
from authserver.security.logsafe import quiet_authlib

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
quiet_authlib()  # Authlib's grants log each token they issue at debug level


def _preauthenticated(
    method: str,
) -> Callable[[Any, FormRequest], AuthenticatedClient | DeviceClientAuth | None]:
    """An Authlib client-auth method that accepts what ``ClientAuthenticator`` established."""

    def authenticate(
        _query_client: Any, request: FormRequest
    ) -> AuthenticatedClient | DeviceClientAuth | None:
        client = request.authenticated
        if isinstance(client, AuthenticatedClient | DeviceClientAuth) and client.method == method:
            return client
        return None

    return authenticate


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 section 4.4, with ``scope`` checked against the credential's effective roles."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        client: AuthenticatedClient = self.request.client
        requested = self.request.payload.scope
        effective = client.state.effective_roles
        if requested is None or requested == "":
            self.request.scope = " ".join(sorted(effective))
            return
        scopes = parse_scope(requested)
        if scopes is None:
            raise InvalidScopeError("scope must be space-separated role names")
        if not scopes <= effective:
            raise InvalidScopeError("the requested scope exceeds the credential's roles")
        self.request.scope = " ".join(sorted(scopes))

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        # Authlib's version passes the raw ``scope`` parameter; we grant the validated one.
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class Server(AuthorizationServer):
    """The authorization server; one per app."""

    def __init__(
        self,
        settings: Settings,
        keyring: KeyRing,
        on_issued: Callable[[AuthenticatedClient, datetime], None],
        extra_grants: tuple[type[grants.BaseGrant], ...] = (),
    ) -> None:
        super().__init__()
        self.settings = settings
        self.keyring = keyring
        self.on_issued = on_issued
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(DeviceCodeGrant)
        for grant in extra_grants:
            self.register_grant(grant)
        self.register_token_generator("default", self._generate_token)
        for method in [*AUTH_METHODS, "none"]:  # "none": public device clients (RFC 8628)
            self.register_client_auth_method(method, _preauthenticated(method))

    def query_client(self, client_id: str) -> None:
        # Clients are resolved before Authlib runs; nothing is looked up here.
        return None

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return json_response(status, body, headers)

    def handle_error_response(self, request: FormRequest, error: Any) -> Response:
        request.error = error.error
        response: Response = super().handle_error_response(request, error)
        return response

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def save_token(self, token: dict[str, Any], request: FormRequest) -> None:
        # Tokens are self-contained JWTs; only a credential's last use is recorded.
        if isinstance(request.client, AuthenticatedClient):
            self.on_issued(request.client, datetime.now(UTC))

    def _generate_token(
        self,
        grant_type: str,
        client: AuthenticatedClient | DeviceClientAuth,
        user: Approval | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        """An RFC 9068 access token: for a credential's own user (``client_credentials``), or
        for the person who approved a device client (``user``, RFC 8628)."""
        now = datetime.now(UTC)
        iat = int(now.timestamp())
        if isinstance(client, AuthenticatedClient):
            subject, credential_id, source = client.state.user_id, client.state.id, client.source
            expiry = token_expiry(client.state, now=now, ttl=self.settings.access_token_ttl)
        else:
            assert user is not None
            subject, credential_id, source = user.user_id, None, None
            expiry = now + timedelta(seconds=self.settings.access_token_ttl)
        exp = int(expiry.timestamp())
        granted = scope.split() if scope else []
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": self.settings.token_audience,
            "client_id": client.client_id,
            "iat": iat,
            "exp": exp,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(granted),
            "roles": granted,
        }
        if client.dpop_jkt is not None:  # RFC 9449 section 6: bound to the proof's key
            claims["cnf"] = {"jkt": client.dpop_jkt}
        if isinstance(client, AuthenticatedClient) and client.act is not None:
            claims["act"] = client.act  # RFC 8693 section 4.1: the job that exchanged its token
        audit(
            "token_issued",
            client_id=client.client_id,
            credential_id=credential_id,
            user_id=subject,
            jti=claims["jti"],
            scope=claims["scope"],
            exp=exp,
            auth_method=client.method,
            grant_type=None if grant_type == "client_credentials" else grant_type,
            source=source,
            dpop="bound" if client.dpop_jkt is not None else None,
            act=client.act if isinstance(client, AuthenticatedClient) else None,
        )
        token = {
            "access_token": self.keyring.sign(claims),
            "token_type": "DPoP" if client.dpop_jkt is not None else "Bearer",
            "expires_in": max(exp - iat, 0),
        }
        if granted:
            token["scope"] = claims["scope"]
        return token
