"""``POST /auth/v1/revoke``: RFC 7009 token revocation."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authserver.oauth.errors import oauth_errors
from authserver.oauth.responses import NO_STORE
from authserver.security.access_tokens import verify_signature
from authserver.web.context import services_of


@oauth_errors
async def revocation_endpoint(request: Request) -> Response:
    """Revoke one of the caller's own tokens; anything else is a silent no-op (section 2.2)."""
    services = services_of(request)
    caller, token = await services.authenticator.token_request(
        request, max_bytes=services.settings.max_body_bytes
    )
    claims = verify_signature(token, keyring=services.keyring, settings=services.settings)
    if claims is not None and claims["client_id"] == caller.state.client_id:
        await anyio.to_thread.run_sync(
            lambda: services.revocation.revoke(
                client=caller.state, claims=claims, source=caller.source
            )
        )
    return Response(status_code=200, headers=NO_STORE)
