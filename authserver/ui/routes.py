"""The pages' routes, all under ``/ui``, and their static files."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from authserver.ui import (
    admin_audit,
    admin_credentials,
    admin_users,
    credential_page,
    device,
    federation,
    login,
    oidc,
)
from authserver.ui import personal_clients as clients
from authserver.ui.access import as_pages
from authserver.ui.render import STATIC, PageHeaders, error_page
from authserver.web.context import services_of


async def to_sign_in(request: Request) -> Response:
    """``/ui`` → ``<issuer>/ui/``: built from the configured issuer, never from the request's
    ``Host`` header (Starlette's own slash redirect would send people to any host named)."""
    return RedirectResponse(services_of(request).settings.endpoint("/ui/"), status_code=308)


ROUTES = [
    Route("/ui", to_sign_in, methods=["GET", "HEAD", "POST"]),
    Mount(
        "/ui",
        routes=[
            Route("/", as_pages(login.sign_in_page), methods=["GET"]),
            Route("/login/password", as_pages(login.password_sign_in), methods=["POST"]),
            Route("/login/oidc/{name}", as_pages(oidc.start), methods=["GET"]),
            Route("/login/oidc/{name}/callback", as_pages(oidc.callback), methods=["GET"]),
            Route("/logout", as_pages(login.sign_out), methods=["POST"]),
            Route("/logout/everywhere", as_pages(login.sign_out_everywhere), methods=["POST"]),
            Route("/invite", as_pages(login.invite_page), methods=["GET"]),
            Route("/invite", as_pages(login.accept_invite), methods=["POST"]),
            Route("/personal-clients", clients.list_own, methods=["GET"]),
            Route("/personal-clients/all", clients.list_everyone, methods=["GET"]),
            Route("/personal-clients/new", clients.new_form, methods=["GET"]),
            Route("/personal-clients/new", clients.create, methods=["POST"]),
            Route("/personal-clients/{id}", credential_page.show, methods=["GET"]),
            Route("/personal-clients/{id}/edit", credential_page.edit, methods=["POST"]),
            Route("/personal-clients/{id}/rotate", credential_page.rotate, methods=["POST"]),
            Route("/personal-clients/{id}/secret", clients.show_secret, methods=["GET"]),
            Route("/personal-clients/{id}/delete", clients.confirm_delete, methods=["GET"]),
            Route("/personal-clients/{id}/delete", clients.delete, methods=["POST"]),
            Route("/federation", federation.federation_page, methods=["GET"]),
            Route("/federation/new", federation.create, methods=["POST"]),
            Route("/federation/test", federation.test_condition, methods=["POST"]),
            Route("/federation/{id}/delete", federation.confirm_delete, methods=["GET"]),
            Route("/federation/{id}/delete", federation.delete, methods=["POST"]),
            Route("/admin/users", admin_users.list_users, methods=["GET"]),
            Route("/admin/users/new", admin_users.invite_form, methods=["GET"]),
            Route("/admin/users/new", admin_users.invite, methods=["POST"]),
            Route("/admin/users/{id}", admin_users.show_user, methods=["GET"]),
            Route("/admin/users/{id}", admin_users.change_user, methods=["POST"]),
            Route("/admin/users/{id}/invitation", admin_users.show_invitation, methods=["GET"]),
            Route("/admin/credentials", admin_credentials.inventory, methods=["GET"]),
            Route("/admin/credentials/delete", admin_credentials.confirm_delete, methods=["GET"]),
            Route("/admin/credentials/delete", admin_credentials.delete, methods=["POST"]),
            Route("/admin/audit", admin_audit.audit_page, methods=["GET"]),
            Route("/device", device.device_page, methods=["GET"]),
            Route("/device", device.decide, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(PageHeaders)],
    ),
]


def claims(path: str) -> bool:
    """True for the paths whose errors are pages."""
    return path == "/ui" or path.startswith("/ui/")


async def http_error(request: Request, status_code: int) -> Response:
    """Starlette's own 404 and 405 under ``/ui``, as pages."""
    if status_code in (404, 405):
        return await error_page(request, 404, "There is no such page.")
    return await error_page(request, status_code, "The request could not be handled.")
