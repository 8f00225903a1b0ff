"""Bearer authentication of management API calls: the same "active" rules as introspection."""

from __future__ import annotations

from starlette.requests import Request

from authserver.domain.credentials import Caller
from authserver.errors import Unauthenticated
from authserver.services import Services
from authserver.tokens import ActiveToken


async def bearer(request: Request, services: Services) -> ActiveToken:
    """The caller's active access token, or ``Unauthenticated`` (code 16)."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a Bearer access token is required")
    active = await services.active_token(token.strip())
    if active is None:
        raise Unauthenticated("the access token is invalid, expired or revoked")
    return active


def caller_of(token: ActiveToken) -> Caller:
    return Caller(
        user_id=token.state.user_id, effective_roles=frozenset(token.roles), reduced=token.reduced
    )


def is_admin(token: ActiveToken, services: Services) -> bool:
    return services.settings.admin_role in token.roles
