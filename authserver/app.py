"""``create_app(settings)``: the ASGI application, its routes and its background tasks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from authserver import keys, ops
from authserver.api.routes import ROUTES as API_ROUTES
from authserver.config import Settings, load_settings
from authserver.errors import AuthserverError, Unauthenticated
from authserver.oauth import registration
from authserver.oauth.introspection import introspection_endpoint
from authserver.oauth.metadata import authorization_server_metadata, jwks
from authserver.oauth.revocation import revocation_endpoint
from authserver.oauth.token import token_endpoint
from authserver.services import Services
from authserver.store.database import Database

log = logging.getLogger("authserver")
Endpoint = Callable[[Request], Awaitable[Response]]
KEY_REFRESH_SECONDS = 0.5  # a rotation reaches every instance well within 1 s
PURGE_SECONDS = 60.0
# OAuth endpoints answer every method themselves (405 in RFC 6749 JSON).
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


async def refresh_keys(services: Services, limiter: anyio.CapacityLimiter | None = None) -> None:
    """Load signing keys from the database (another instance or the CLI may have rotated)."""
    records = await anyio.to_thread.run_sync(services.repo.list_keys, limiter=limiter)
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
    services.repo.purge_revocations(now=now)
    services.repo.purge_keys(now=now)
    services.repo.purge_assertions(now=now)


async def _purger(services: Services) -> None:
    """Drop revocations and retired keys that no token can need any more."""
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
        lambda: keys.ensure_active_key(services.repo, services.settings, now=datetime.now(UTC))
    )
    await refresh_keys(services)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(services.last_used.run)
        tasks.start_soon(services.state_cache.follow, services.repo)
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
        {"code": exc.code, "message": exc.message}, status_code=exc.http_status, headers=headers
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"code": 13, "message": "internal error"}, status_code=500)
    return JSONResponse(
        {"error": "server_error", "error_description": "internal error"}, status_code=500
    )


class App(Starlette):
    """Starlette, with the OAuth endpoints dispatched straight from the request-log layer.

    Every client calls the token, introspection and revocation endpoints, and
    Starlette's router and exception middleware cost a noticeable share of each
    request there. Those endpoints answer every method and every error
    themselves (RFC 6749 JSON), so they need neither; the access log, the
    security headers and the 500 answer stay the same as on every other route.
    """

    def __init__(self, *, hot: dict[str, Endpoint], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hot = hot
        self._hot_stack = ops.RequestLogMiddleware(self._serve_hot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self._hot:
            scope["app"] = self
            await self._hot_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _serve_hot(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self._hot[scope["path"]](request)
        except Exception as exc:
            response = await _unexpected(request, exc)
        await response(scope, receive, send)


def create_app(settings: Settings, *, database: Database | None = None) -> Starlette:
    """Build the application; the database schema must already be migrated."""
    services = Services.build(settings, database)
    hot: dict[str, Endpoint] = {
        "/auth/v1/token": token_endpoint,
        "/auth/v1/introspect": introspection_endpoint,
        "/auth/v1/revoke": revocation_endpoint,
    }
    routes = [
        *(Route(path, endpoint, methods=ANY_METHOD) for path, endpoint in hot.items()),
        Route("/auth/v1/register", registration.register, methods=["POST"]),
        Route("/auth/v1/register/{client_id:path}", registration.read, methods=["GET"]),
        Route("/auth/v1/register/{client_id:path}", registration.replace, methods=["PUT"]),
        Route("/auth/v1/register/{client_id:path}", registration.remove, methods=["DELETE"]),
        Route("/.well-known/oauth-authorization-server", authorization_server_metadata),
        Route("/.well-known/jwks.json", jwks),
        Route("/healthz", ops.healthz),
        Route("/readyz", ops.readyz),
        Route("/metrics", ops.metrics),
        *API_ROUTES,
    ]
    app = App(
        hot=hot,
        routes=routes,
        lifespan=_lifespan,
        exception_handlers={
            HTTPException: _http_error,
            AuthserverError: _domain_error,
            Exception: _unexpected,
        },
    )
    app.state.services = services
    app.add_middleware(ops.RequestLogMiddleware)
    return app


def app_factory() -> Starlette:
    """Entry point for ``uvicorn --factory`` (used by ``authserver serve``)."""
    settings = load_settings()
    ops.configure_logging(settings.log_level)  # worker processes start with no logging set up
    return create_app(settings)
