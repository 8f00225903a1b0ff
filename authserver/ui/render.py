"""Templates, the pages' security headers, and error pages in the pages' own look."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.errors import (
    AuthserverError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from authserver.security.logsafe import Repeated
from authserver.ui import sessions
from authserver.web.context import services_of

log = logging.getLogger("authserver.ui")
_outage = Repeated(log, "error pages without the signed-in person")
HERE = Path(__file__).parent
STATIC = HERE / "static"
# No inline script or style anywhere: everything comes from /ui/static/.
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """ "3 minutes ago", "in 29 days", "just now"; "never" for None."""
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 45:
        return "just now" if not future else "in a few seconds"
    # Up to the next unit's threshold each unit counts: "90 days", not "3 months".
    for size, unit, below in ((60, "minute", 3600), (3600, "hour", 86400),
                              (86400, "day", 86400 * 100), (86400 * 30, "month", 86400 * 730),
                              (86400 * 365, "year", float("inf"))):  # fmt: skip
        if seconds < below:
            count = max(1, round(seconds / size))
            text = f"{count} {unit}{'s' * (count != 1)}"
            return f"in {text}" if future else f"{text} ago"
    raise AssertionError("unreachable")


def exact(moment: datetime | None) -> str:
    """The exact UTC time shown on hover."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else ""


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(ago=ago, exact=exact, iso=iso)


async def page(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """Render a page; the header's signed-in person and the form token come along."""
    person = await sessions.signed_in(request)
    _outage.ended()  # the database answered
    sid = sessions.session_id(request) if person is not None else None
    services = services_of(request)
    context.setdefault("csrf", sessions.csrf_token(sid) if sid else "")
    html = templates.get_template(template).render(
        person=person.user if person else None,
        is_admin=person is not None and services.credentials.is_admin(person.caller()),
        path=request.url.path,
        issuer=services.settings.issuer,
        **context,
    )
    return _with_headers(HTMLResponse(html, status_code=status_code, headers=headers))


def _with_headers(response: Response) -> Response:
    """Pages answered outside the ``/ui`` mount (Starlette's 404) get the headers too."""
    for name, value in PAGE_HEADERS:
        response.headers[name.decode()] = value.decode()
    response.headers["cache-control"] = "no-store"
    return response


_TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not found",
    410: "Shown once",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Try again shortly",
}


async def error_page(
    request: Request,
    status_code: int,
    message: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error in the pages' look: a heading, what happened, where to go."""
    message = message[:1].upper() + message[1:]
    if not message.endswith((".", "?", "!")):
        message += "."
    title = title or _TITLES.get(status_code, "That did not work")
    try:
        return await page(
            request,
            "error.html",
            status_code=status_code,
            headers=headers,
            title=title,
            message=message,
        )
    except Exception as exc:  # the database may be what failed: still an answer in our look
        if isinstance(exc, Unavailable):  # expected: one line per outage, not one per page
            _outage.happened(exc)
        else:
            log.exception("error page without the signed-in person")
        html = templates.get_template("error.html").render(
            person=None,
            is_admin=False,
            path=request.url.path,
            issuer="",
            csrf="",
            title=title,
            message=message,
        )
        return _with_headers(HTMLResponse(html, status_code=status_code, headers=headers))


async def domain_error(request: Request, exc: AuthserverError) -> Response:
    if isinstance(exc, NotFound):
        return await error_page(request, 404, "There is no such page, or it is not yours to see.")
    if isinstance(exc, PermissionDenied | Unauthenticated):
        return await error_page(request, exc.http_status, exc.describe(FIELD_NAMES))
    return await error_page(request, exc.http_status, exc.describe(FIELD_NAMES))


#: How the pages name the domain's fields: by the labels of their inputs.
FIELD_NAMES = {
    "display_name": "Name",
    "allow_source_cidr": "Networks",
    "scoped_roles": "Roles",
    "expires_time": "Expiry",
    "require_dpop": "Require DPoP",
    "password": "Password",
    "grace": "The old secret works",
}


class PageHeaders:
    """Security headers on every response under ``/ui`` (pages, errors, static files).

    ``Cache-Control: no-store`` on pages (they carry secrets, codes and CSRF
    tokens); static files may be cached briefly. Referrer-Policy and
    X-Content-Type-Options come from ``ops.RequestLogMiddleware`` on every response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/ui" and not path.startswith("/ui/"):
            await self.app(scope, receive, send)
            return
        static = path.startswith("/ui/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                ours = {name for name, _ in PAGE_HEADERS} | {b"cache-control"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                headers += PAGE_HEADERS
                headers.append(
                    (b"cache-control", b"public, max-age=300" if static else b"no-store")
                )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
