"""How people sign in: the sign-in page, password sign-in, invitations, sign-out.

Each method proves who the person is and then hands the session that
``PeopleService`` started to ``sessions.set_session_cookie``; nothing else here
knows about sessions. OpenID Connect providers (``oidc.py``) have a button each
on the sign-in page and their own callback, ending the same way. With
``[login] password = false`` the password form and the invitation pages are gone
(404).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.errors import (
    AuthserverError,
    InvalidArgument,
    SignInBusy,
    SignInFailed,
    SignInThrottled,
)
from authserver.ui import oidc, render, sessions
from authserver.ui.forms import read_form
from authserver.web.context import services_of
from authserver.web.source import source_address


async def _sign_in_page(
    request: Request,
    *,
    status_code: int = 200,
    error: str = "",
    email: str = "",
    next_path: str = "",
    notice: str = "",
    headers: dict[str, str] | None = None,
    provider_sign_out: tuple[str, str] | None = None,
) -> Response:
    token, new = sessions.login_csrf(request)
    settings = services_of(request).settings
    next_path = sessions.safe_next(next_path) if next_path else ""
    query = f"?{urlencode({'next': next_path})}" if next_path else ""
    providers = [
        (provider.name, oidc.start_path(provider) + query)
        for provider in services_of(request).relying_party.configured.values()
    ]
    response = await render.page(
        request,
        "login.html",
        status_code=status_code,
        headers=headers,
        csrf=token,
        error=error,
        email=email,
        next=next_path,
        notice=notice,
        password_enabled=settings.login_password,
        providers=providers,
        provider_sign_out=provider_sign_out,
    )
    if new:
        sessions.remember_login_csrf(response, request, token)
    return response


async def sign_in_page(request: Request) -> Response:
    """``GET /ui/``: the sign-in form, or straight on for someone already signed in."""
    next_path = request.query_params.get("next", "")
    if await sessions.signed_in(request) is not None:
        return RedirectResponse(sessions.safe_next(next_path), status_code=303)
    notice = ""
    provider_sign_out = None
    if request.query_params.get("expired"):
        notice = "Your session has ended. Please sign in again."
    elif request.query_params.get("signed_out") == "everywhere":
        notice = "You are signed out everywhere: on every browser and device, tools included."
    elif request.query_params.get("signed_out"):
        notice = "You are signed out."
        provider = request.query_params.get("provider")
        # The session came from a provider: offer to sign out there too, when it can.
        url = await oidc.end_session_url(request, provider) if provider else None
        if provider and url:
            notice = f"You are signed out here. You may still be signed in at {provider}."
            provider_sign_out = (provider, url)
    response = await _sign_in_page(
        request, next_path=next_path, notice=notice, provider_sign_out=provider_sign_out
    )
    if sessions.session_id(request):  # a cookie for a session that is over
        sessions.clear_session_cookie(response, services_of(request).settings)
    return response


async def _no_passwords(request: Request) -> Response:
    return await render.error_page(request, 404, "There is no such page.")


async def password_sign_in(request: Request) -> Response:
    """``POST /ui/login/password``: e-mail and password → a new session."""
    services = services_of(request)
    if not services.settings.login_password:
        return await _no_passwords(request)
    form = await read_form(request)
    sessions.check_login_csrf(request, form)
    email, next_path = form.get("email")[:320], form.get("next")
    source = source_address(request, services_of(request).settings)
    previous = sessions.session_id(request)
    try:
        started = await services.people.sign_in_with_password_async(
            email=email, password=form.get("password"), source=source, now=datetime.now(UTC)
        )
    except (SignInThrottled, SignInBusy) as exc:
        return await _sign_in_page(
            request,
            status_code=429,
            error=exc.message[:1].upper() + exc.message[1:] + ".",
            email=email,
            next_path=next_path,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except SignInFailed:
        return await _sign_in_page(
            request,
            status_code=401,
            error="That e-mail address and password do not match an account.",
            email=email,
            next_path=next_path,
        )
    if previous:  # whatever session this browser had before ends now
        await anyio.to_thread.run_sync(lambda: services.people.sign_out(session_id=previous))
    response = RedirectResponse(sessions.safe_next(next_path), status_code=303)
    sessions.set_session_cookie(response, services.settings, started)
    return response


async def sign_out(request: Request) -> Response:
    """``POST /ui/logout``: end this session on every instance."""
    services = services_of(request)
    form = await read_form(request)
    sid = sessions.session_id(request)
    person = await sessions.signed_in(request) if sid else None
    where = "/ui/?signed_out=1"
    if sid and person is not None:
        sessions.check_session_csrf(request, form, sid)
        await anyio.to_thread.run_sync(lambda: services.people.sign_out(session_id=sid))
        method = person.session.method
        if method.startswith("oidc:"):  # offer to sign out of the provider too
            where += "&" + urlencode({"provider": method.removeprefix("oidc:")})
    response = RedirectResponse(where, status_code=303)
    sessions.clear_session_cookie(response, services.settings)
    return response


async def sign_out_everywhere(request: Request) -> Response:
    """``POST /ui/logout/everywhere``: end every session of this person, on every browser and
    instance (and the tools' device tokens), then sign in again."""
    services = services_of(request)
    form = await read_form(request)
    sid = sessions.session_id(request)
    person = await sessions.signed_in(request) if sid else None
    if sid and person is not None:
        sessions.check_session_csrf(request, form, sid)
        caller = person.caller()
        await anyio.to_thread.run_sync(
            lambda: services.people.sign_out_everywhere(
                user_ref=person.user.id, now=datetime.now(UTC), caller=caller
            )
        )
    response = RedirectResponse("/ui/?signed_out=everywhere", status_code=303)
    sessions.clear_session_cookie(response, services.settings)
    return response


INVITE_GONE = (
    "This invitation link has been used or has expired. "
    "Ask your administrator for a new one, or sign in if you have chosen a password."
)


async def _invite_page(
    request: Request, *, token: str, email: str, error: str = "", status_code: int = 200
) -> Response:
    csrf, new = sessions.login_csrf(request)
    response = await render.page(
        request,
        "invite.html",
        status_code=status_code,
        csrf=csrf,
        token=token,
        email=email,
        error=error,
        min_length=services_of(request).settings.password_min_length,
    )
    if new:
        sessions.remember_login_csrf(response, request, csrf)
    return response


async def invite_page(request: Request) -> Response:
    """``GET /ui/invite?token=…``: choose a password (the link works once)."""
    services = services_of(request)
    if not services.settings.login_password:
        return await _no_passwords(request)
    token = request.query_params.get("token", "")
    user = await anyio.to_thread.run_sync(
        lambda: services.people.invited(token=token, now=datetime.now(UTC))
    )
    if user is None:
        return await render.error_page(request, 404, INVITE_GONE)
    return await _invite_page(request, token=token, email=user.email)


async def accept_invite(request: Request) -> Response:
    """``POST /ui/invite``: set the chosen password and sign in."""
    services = services_of(request)
    if not services.settings.login_password:
        return await _no_passwords(request)
    form = await read_form(request)
    sessions.check_login_csrf(request, form)
    token, password = form.get("token"), form.get("password")
    user = await anyio.to_thread.run_sync(
        lambda: services.people.invited(token=token, now=datetime.now(UTC))
    )
    if user is None:
        return await render.error_page(request, 404, INVITE_GONE)
    if password != form.get("password_again"):
        return await _invite_page(
            request,
            token=token,
            email=user.email,
            error="The two passwords differ; type the same one twice.",
            status_code=400,
        )
    source = source_address(request, services_of(request).settings)
    try:
        started = await anyio.to_thread.run_sync(
            lambda: services.people.accept_invite(
                token=token, password=password, now=datetime.now(UTC), source=source
            )
        )
    except InvalidArgument as exc:
        message = exc.describe(render.FIELD_NAMES)
        return await _invite_page(
            request, token=token, email=user.email, error=message + ".", status_code=400
        )
    except AuthserverError:
        return await render.error_page(request, 404, INVITE_GONE)
    response = RedirectResponse(sessions.HOME, status_code=303)
    sessions.set_session_cookie(response, services.settings, started)
    return response
