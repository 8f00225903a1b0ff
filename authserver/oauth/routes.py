"""The OAuth endpoints' paths: the hot ones answered by ``OAuthEndpoints``, the rest as routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.oauth import client_configuration, device_flow, leaks, registration
from authserver.oauth.introspection import introspection_endpoint
from authserver.oauth.metadata import authorization_server_metadata, jwks
from authserver.oauth.revocation import revocation_endpoint
from authserver.oauth.token import token_endpoint

Endpoint = Callable[[Request], Awaitable[Response]]

#: Every client calls these: answered before Starlette's router (``OAuthEndpoints``).
ENDPOINTS: dict[str, Endpoint] = {
    "/auth/v1/token": token_endpoint,
    "/auth/v1/introspect": introspection_endpoint,
    "/auth/v1/revoke": revocation_endpoint,
    device_flow.PATH: device_flow.device_authorization_endpoint,
}

ROUTES = [
    Route("/auth/v1/register", registration.register, methods=["POST"]),
    Route("/auth/v1/register/{client_id:path}", client_configuration.read, methods=["GET"]),
    Route("/auth/v1/register/{client_id:path}", client_configuration.replace, methods=["PUT"]),
    Route("/auth/v1/register/{client_id:path}", client_configuration.remove, methods=["DELETE"]),
    Route(leaks.PATH, leaks.report, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", authorization_server_metadata),
    Route("/.well-known/jwks.json", jwks),
]


class OAuthEndpoints:
    """Middleware that answers the token, introspection and revocation endpoints itself.

    Every client calls these, and Starlette's router and exception middleware
    cost a noticeable share of each request there. The endpoints answer every
    method and every error themselves (RFC 6749 JSON), so they need neither.
    Placed last in the app's middleware list, it keeps every middleware declared
    before it (or added later with ``add_middleware``) on these paths too; an
    unexpected error still reaches the app's 500 handler.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, Endpoint] = ENDPOINTS) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)
