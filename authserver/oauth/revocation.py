"""``POST /auth/v1/revoke``: RFC 7009 token revocation."""

from __future__ import annotations

import anyio.to_thread
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.requests import Request
from starlette.responses import Response

from authserver.oauth.adapter import read_form
from authserver.oauth.errors import oauth_errors
from authserver.oauth.responses import NO_STORE
from authserver.security.access_tokens import verify_signature
from authserver.web.context import services_of
from authserver.web.source import source_address

# What a confidential client sends to authenticate in the body (RFC 6749 / RFC 7523).
_CLIENT_AUTHENTICATION = ("client_secret", "client_assertion", "client_assertion_type")


@oauth_errors
async def revocation_endpoint(request: Request) -> Response:
    """Revoke one of the caller's own tokens; anything else is a silent no-op (section 2.2).

    A public device client (config ``device_clients``) presents only its ``client_id``
    (RFC 7009 section 2.1): it may revoke the tokens issued to it, nothing else.
    """
    services = services_of(request)
    form = await read_form(request, max_bytes=services.settings.max_body_bytes)
    device = services.devices.client(form.get("client_id"))
    if (
        device is not None
        and "authorization" not in request.headers
        and not any(name in form for name in _CLIENT_AUTHENTICATION)
    ):
        token = form.get("token")
        if not token:
            raise InvalidRequestError("missing token")
        claims = verify_signature(token, keyring=services.keyring, settings=services.settings)
        source = source_address(request, services.settings)
        if claims is not None and claims["client_id"] == device.id:
            await anyio.to_thread.run_sync(
                lambda: services.revocation.revoke_device_token(
                    client_id=device.id,
                    claims=claims,
                    source=str(source) if source is not None else None,
                )
            )
        return Response(status_code=200, headers=NO_STORE)
    caller = await services.authenticator.authenticate(request, form)
    token = form.get("token")
    if not token:
        raise InvalidRequestError("missing token")
    claims = verify_signature(token, keyring=services.keyring, settings=services.settings)
    if claims is not None and claims["client_id"] == caller.state.client_id:
        await anyio.to_thread.run_sync(
            lambda: services.revocation.revoke(
                client=caller.state, claims=claims, source=caller.source
            )
        )
    return Response(status_code=200, headers=NO_STORE)
