"""``create_app(settings)``: the ASGI application — its routes, middleware and error handlers.

Composition only: each front door renders its own errors (``oauth/errors.py``,
``api/errors.py``, ``ui/routes.py``), the lifespan and background tasks are
``runtime/tasks.py``, and everything the app is made of is ``runtime/services.py``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.api import errors as api_errors
from authserver.api.routes import ROUTES as API_ROUTES
from authserver.config import Settings, load_settings
from authserver.errors import AuthserverError
from authserver.oauth import errors as oauth_errors
from authserver.oauth.routes import ENDPOINTS as OAUTH_ENDPOINTS
from authserver.oauth.routes import ROUTES as OAUTH_ROUTES
from authserver.oauth.routes import OAuthEndpoints
from authserver.runtime import ops
from authserver.runtime.services import Services
from authserver.runtime.tasks import lifespan
from authserver.store.database import Database
from authserver.ui import routes as ui


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405: in the words of the front door the path belongs to."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if ui.claims(path):
        return await ui.http_error(request, exc.status_code)
    if api_errors.claims(path):
        return api_errors.http_error(request, exc)
    return oauth_errors.http_error(request, exc)


async def _domain_error(request: Request, exc: Exception) -> Response:
    """A domain error no front door caught itself (the management API's handlers)."""
    assert isinstance(exc, AuthserverError)
    return api_errors.domain_error(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    if api_errors.claims(request.url.path):
        return api_errors.unexpected(request, exc)
    return oauth_errors.unexpected(request, exc)


def create_app(settings: Settings, *, database: Database | None = None) -> Starlette:
    """Build the application; the database schema must already be migrated."""
    app = Starlette(
        routes=[
            *OAUTH_ROUTES,
            Route("/", ops.root, methods=["GET"]),
            Route("/healthz", ops.healthz),
            Route("/readyz", ops.readyz),
            Route("/metrics", ops.metrics),
            *API_ROUTES,
            *ui.ROUTES,
        ],
        middleware=[
            Middleware(ops.RequestLogMiddleware, settings=settings),
            Middleware(OAuthEndpoints, endpoints=OAUTH_ENDPOINTS),
        ],
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            AuthserverError: _domain_error,
            Exception: _unexpected,
        },
    )
    app.state.services = Services.build(settings, database)
    return app


def app_factory() -> Starlette:
    """Entry point for ``uvicorn --factory`` (used by ``authserver serve``)."""
    settings = load_settings()
    ops.configure_logging(settings.log_level)  # worker processes start with no logging set up
    ops.write_lines_in_batches()
    return create_app(settings)
