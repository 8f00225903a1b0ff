"""``POST /auth/v1/revoke``: RFC 7009 token revocation."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authserver.oauth.adapter import NO_STORE
from authserver.oauth.errors import oauth_errors
from authserver.runtime.services import Services
from authserver.security.access_tokens import verify_signature
from authserver.security.audit import audit


@oauth_errors
async def revocation_endpoint(request: Request) -> Response:
    """Revoke one of the caller's own tokens; anything else is a silent no-op (section 2.2)."""
    services: Services = request.app.state.services
    caller, token = await services.authenticator.token_request(
        request, max_bytes=services.settings.max_body_bytes
    )
    claims = verify_signature(token, keyring=services.keyring, settings=services.settings)
    if claims is not None and claims["client_id"] == caller.state.client_id:
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        await anyio.to_thread.run_sync(
            lambda: services.store.revocations.revoke(jti=claims["jti"], expires_at=expires_at)
        )
        services.state_cache.add_revoked(claims["jti"], expires_at)
        audit(
            "token_revoked",
            client_id=caller.state.client_id,
            credential_id=caller.state.id,
            user_id=caller.state.user_id,
            jti=claims["jti"],
            source=caller.source,
        )
    return Response(status_code=200, headers=NO_STORE)
