"""Bearer authentication of management API calls: the same "active" rules as introspection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from authserver.errors import Unauthenticated
from authserver.security.access_tokens import ActiveToken
from authserver.web.bearer import bearer_token

if TYPE_CHECKING:
    from authserver.runtime.services import Services


async def bearer(request: Request, services: Services) -> ActiveToken:
    """The caller's active access token, or ``Unauthenticated`` (code 16)."""
    token = bearer_token(request.headers)
    if token is None:
        raise Unauthenticated("a Bearer access token is required")
    active = await services.active_token(token)
    if active is None:
        raise Unauthenticated("the access token is invalid, expired or revoked")
    return active
