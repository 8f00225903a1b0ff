"""``POST /auth/v1/introspect``: RFC 7662 token introspection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from authserver.oauth.client_auth import AuthenticatedClient
from authserver.oauth.errors import oauth_errors
from authserver.oauth.responses import NO_STORE, json_response
from authserver.web.context import services_of

if TYPE_CHECKING:
    from authserver.runtime.services import Services

INACTIVE = {"active": False}


def may_introspect(caller: AuthenticatedClient, subject: str, services: Services) -> bool:
    """Own user's tokens always; anyone's with the admin or introspection role."""
    if caller.state.user_id == subject:
        return True
    roles = caller.state.effective_roles
    settings = services.settings
    return settings.admin_role in roles or settings.introspection_role in roles


@oauth_errors
async def introspection_endpoint(request: Request) -> Response:
    services = services_of(request)
    caller, token = await services.authenticator.token_request(
        request, max_bytes=services.settings.max_body_bytes
    )
    active = await services.active_token(token)
    if active is None or not may_introspect(caller, active.state.user_id, services):
        return json_response(200, INACTIVE, NO_STORE)
    claims = active.claims
    body = {
        "active": True,
        "scope": " ".join(active.roles),
        "client_id": claims["client_id"],
        "sub": claims["sub"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": claims["iss"],
        "aud": claims["aud"],
        "jti": claims["jti"],
        "token_type": "DPoP" if active.jkt is not None else "Bearer",
        "roles": list(active.roles),
    }
    if active.jkt is not None:  # RFC 9449 section 6.2
        body["cnf"] = {"jkt": active.jkt}
    return json_response(200, body, NO_STORE)
