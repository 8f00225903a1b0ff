"""Discovery: RFC 8414 metadata and the JWKS."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver.domain.algorithms import ASSERTION_ALGS, DPOP_ALGS
from authserver.domain.federation import TOKEN_EXCHANGE_GRANT_TYPE
from authserver.oauth import device_flow
from authserver.oauth.server import AUTH_METHODS
from authserver.web.context import services_of


async def authorization_server_metadata(request: Request) -> Response:
    """RFC 8414 section 2."""
    services = services_of(request)
    settings = services.settings
    signing = list(ASSERTION_ALGS)  # private_key_jwt assertions: the secret's Ed25519 key
    metadata = {
        "issuer": settings.issuer,
        "token_endpoint": settings.endpoint("/auth/v1/token"),
        "jwks_uri": settings.endpoint("/.well-known/jwks.json"),
        "registration_endpoint": settings.endpoint("/auth/v1/register"),
        "introspection_endpoint": settings.endpoint("/auth/v1/introspect"),
        "revocation_endpoint": settings.endpoint("/auth/v1/revoke"),
        "device_authorization_endpoint": settings.endpoint(device_flow.PATH),
        "grant_types_supported": [
            "client_credentials",
            device_flow.DEVICE_CODE_GRANT_TYPE,
            TOKEN_EXCHANGE_GRANT_TYPE,  # RFC 8693: federation trusts (SPEC section 12)
        ],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": signing,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": signing,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": signing,
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
    }
    if settings.scopes_supported:
        # Only what the operator chose to publish: every role of every user would tell
        # anyone how the organisation is structured.
        metadata["scopes_supported"] = list(settings.scopes_supported)
    return JSONResponse(metadata, headers={"Cache-Control": "max-age=60"})


async def jwks(request: Request) -> Response:
    services = services_of(request)
    await services.catch_up_keys()  # a rotation through another worker or the CLI shows at once
    return Response(
        services.keyring.jwks_body,
        media_type="application/json",
        # Short: a rotated key signs at once, and verifiers fetch unknown kids anyway.
        headers={"Cache-Control": "max-age=10"},
    )
