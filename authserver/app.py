"""``create_app(settings)``: the ASGI application, its routes and its background tasks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.api.bodies import FIELD_NAMES as API_FIELD_NAMES
from authserver.api.routes import ROUTES as API_ROUTES
from authserver.config import Settings, load_settings
from authserver.errors import AuthserverError, Unauthenticated
from authserver.oauth import client_configuration, device_flow, registration
from authserver.oauth.introspection import introspection_endpoint
from authserver.oauth.metadata import authorization_server_metadata, jwks
from authserver.oauth.revocation import revocation_endpoint
from authserver.oauth.token import token_endpoint
from authserver.runtime import ops
from authserver.runtime.services import Services
from authserver.security import keys
from authserver.security.logsafe import loggable_path
from authserver.store.database import Database
from authserver.ui import routes as ui
from authserver.ui.oidc import Providers

log = logging.getLogger("authserver")
Endpoint = Callable[[Request], Awaitable[Response]]
KEY_REFRESH_SECONDS = 0.5  # a rotation reaches every instance well within 1 s
PURGE_SECONDS = 60.0


async def refresh_keys(services: Services, limiter: anyio.CapacityLimiter | None = None) -> None:
    """Load signing keys from the database (another instance or the CLI may have rotated)."""
    records = await anyio.to_thread.run_sync(services.store.keys.all, limiter=limiter)
    services.keyring.load(records, alg=services.settings.signing_alg, now=datetime.now(UTC))


async def _key_refresher(services: Services) -> None:
    # Its own worker-thread slot: requests filling the default ones must not delay rotation.
    limiter = anyio.CapacityLimiter(1)
    while True:
        await anyio.sleep(KEY_REFRESH_SECONDS)
        try:
            await refresh_keys(services, limiter)
        except Exception as exc:  # the database may be briefly away; keep the keys we have
            log.warning("signing key refresh failed: %s", exc)


def _purge_once(services: Services) -> None:
    now = datetime.now(UTC)
    services.store.revocations.purge(now=now)
    services.store.keys.purge(now=now)
    services.store.revocations.purge_assertions(now=now)
    services.store.device_codes.purge(now=now)
    services.people.purge(now=now)
    services.provider_sign_in.purge(now=now)


async def _purger(services: Services) -> None:
    """Drop revocations, retired keys and sessions that nothing can need any more."""
    while True:
        await anyio.sleep(PURGE_SECONDS)
        try:
            await anyio.to_thread.run_sync(_purge_once, services)
        except Exception as exc:
            log.warning("purge failed: %s", exc)


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    services: Services = app.state.services
    await anyio.to_thread.run_sync(
        lambda: keys.ensure_active_key(
            services.store.keys, services.settings, now=datetime.now(UTC)
        )
    )
    await refresh_keys(services)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(services.last_used.run)
        tasks.start_soon(services.state_cache.follow, services.store.changes)
        tasks.start_soon(_key_refresher, services)
        tasks.start_soon(_purger, services)
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()
    with anyio.CancelScope(shield=True):
        await services.last_used.flush()


_API_CODES = {404: 5, 405: 12}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if ui.is_page(request.url.path):
        return await ui.http_error(request, exc.status_code)
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"code": _API_CODES.get(exc.status_code, 3), "message": exc.detail},
            status_code=exc.status_code,
            headers=exc.headers,
        )
    return JSONResponse(
        {
            "error": "not_found" if exc.status_code == 404 else "invalid_request",
            "error_description": exc.detail,
        },
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthserverError)
    headers = None
    if isinstance(exc, Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="authserver"'}
    return JSONResponse(
        {"code": exc.code, "message": exc.describe(API_FIELD_NAMES)},
        status_code=exc.http_status,
        headers=headers,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, loggable_path(request.url.path))
    if request.url.path.startswith("/api/"):
        return JSONResponse({"code": 13, "message": "internal error"}, status_code=500)
    return JSONResponse(
        {"error": "server_error", "error_description": "internal error"}, status_code=500
    )


class OAuthEndpoints:
    """Middleware that answers the token, introspection and revocation endpoints itself.

    Every client calls these, and Starlette's router and exception middleware
    cost a noticeable share of each request there. The endpoints answer every
    method and every error themselves (RFC 6749 JSON), so they need neither.
    Placed last in the app's middleware list, it keeps every middleware declared
    before it (or added later with ``add_middleware``) on these paths too; an
    unexpected error still reaches the app's 500 handler.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)


def create_app(settings: Settings, *, database: Database | None = None) -> Starlette:
    """Build the application; the database schema must already be migrated."""
    services = Services.build(settings, database)
    oauth_endpoints: dict[str, Endpoint] = {
        "/auth/v1/token": token_endpoint,
        "/auth/v1/introspect": introspection_endpoint,
        "/auth/v1/revoke": revocation_endpoint,
        device_flow.PATH: device_flow.device_authorization_endpoint,
    }
    routes = [
        Route("/auth/v1/register", registration.register, methods=["POST"]),
        Route("/auth/v1/register/{client_id:path}", client_configuration.read, methods=["GET"]),
        Route("/auth/v1/register/{client_id:path}", client_configuration.replace, methods=["PUT"]),
        Route(
            "/auth/v1/register/{client_id:path}", client_configuration.remove, methods=["DELETE"]
        ),
        Route("/.well-known/oauth-authorization-server", authorization_server_metadata),
        Route("/.well-known/jwks.json", jwks),
        Route("/healthz", ops.healthz),
        Route("/readyz", ops.readyz),
        Route("/metrics", ops.metrics),
        *API_ROUTES,
        *ui.ROUTES,
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(ops.RequestLogMiddleware),
            Middleware(OAuthEndpoints, endpoints=oauth_endpoints),
        ],
        lifespan=_lifespan,
        exception_handlers={
            HTTPException: _http_error,
            AuthserverError: _domain_error,
            Exception: _unexpected,
        },
    )
    app.state.services = services
    app.state.oidc = Providers(settings.login_oidc)  # Authlib clients, metadata read at first use
    return app


def app_factory() -> Starlette:
    """Entry point for ``uvicorn --factory`` (used by ``authserver serve``)."""
    settings = load_settings()
    ops.configure_logging(settings.log_level)  # worker processes start with no logging set up
    return create_app(settings)
