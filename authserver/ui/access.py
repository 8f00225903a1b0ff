"""Wrappers for page handlers: only for the signed-in, and errors as pages, never tracebacks."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response

from authserver.errors import AuthserverError, NotFound
from authserver.ui import render, sessions
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of

log = logging.getLogger("authserver.ui")
Handler = Callable[[Request], Awaitable[Response]]
PersonHandler = Callable[[Request, SignedIn, str], Awaitable[Response]]


def as_pages(handler: Handler) -> Handler:
    """The use cases' errors as error pages; anything unexpected as a 500 page (logged)."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except AuthserverError as exc:
            return await render.domain_error(request, exc)
        except ClientDisconnect:  # nobody to answer: the access line says 499
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return await render.error_page(
                request, 500, "The server could not do that. Please try again."
            )

    return wrapper


def signed_in_only(handler: PersonHandler) -> Handler:
    """Pages for a signed-in person: the handler gets the person and the session id.

    Without a live session, a GET goes to the sign-in page and comes back after;
    a POST (whose form cannot be replayed) gets a page saying to sign in again.
    """

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        person = await sessions.signed_in(request)
        sid = sessions.session_id(request)
        if person is None or sid is None:
            settings = services_of(request).settings
            ended = "&expired=1" if sid else ""
            if request.method == "GET":
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response: Response = RedirectResponse(
                    f"/ui/?next={quote(here, safe='/')}{ended}", status_code=303
                )
            else:
                response = await render.error_page(
                    request,
                    401,
                    "Your session has ended, so this form was not sent. "
                    "Sign in again, then send it again.",
                )
            if sid:
                sessions.clear_session_cookie(response, settings)
            return response
        return await handler(request, person, sid)

    return as_pages(wrapper)


def admin_only(handler: PersonHandler) -> Handler:
    """Pages for holders of the admin role; anyone else finds no such page (404), as the
    management API answers a caller who may not see a record."""

    async def check(request: Request, person: SignedIn, sid: str) -> Response:
        if not services_of(request).credentials.is_admin(person.caller()):
            raise NotFound("no such page")
        return await handler(request, person, sid)

    functools.update_wrapper(check, handler)
    return signed_in_only(check)
