"""Sign-in through OpenID Connect providers: the button's redirect and the provider's callback.

The protocol is the relying party's (``sso/relying_party.py``); the rules after it
are ``ProviderSignInService``'s (who the verified claims let in, the session).
This page parses, keeps the pending sign-in in the database between the
redirect and the callback (found by a random cookie, usable once), and renders
every ``SignInFailure`` as a page that says what happened — audited, never a
traceback, never a code or a token in a log.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.config import Settings
from authserver.domain import network
from authserver.errors import SignInRefused, SignInThrottled
from authserver.sso.providers import OidcProvider
from authserver.sso.relying_party import Authorization, SignInFailure
from authserver.ui import render, sessions
from authserver.usecases.provider_sign_in import PENDING_LIFETIME, PendingSignIn
from authserver.web.context import services_of
from authserver.web.source import source_address

PATH = "/ui/login/oidc/{name}"
CALLBACK_PATH = "/ui/login/oidc/{name}/callback"


def pending_cookie(settings: Settings) -> str:
    return "__Host-authserver_oidc" if settings.is_https else "authserver_oidc"


def start_path(provider: OidcProvider) -> str:
    return PATH.format(name=provider.name)


async def start(request: Request) -> Response:
    """``GET /ui/login/oidc/{name}?next=…``: off to the provider, with state, nonce and PKCE."""
    services = services_of(request)
    provider = services.relying_party.get(request.path_params["name"])
    if provider is None:
        return await render.error_page(request, 404, "There is no such page.")
    source = source_address(request, services.settings)
    redirect_uri = services.settings.endpoint(CALLBACK_PATH.format(name=provider.name))
    try:
        authorization = await services.relying_party.begin(provider, redirect_uri)
    except SignInFailure as failure:
        return await _failed(request, provider, source, failure)
    pending = PendingSignIn(
        provider=provider.name,
        redirect_uri=redirect_uri,
        next_path=sessions.safe_next(request.query_params.get("next")),
        state=authorization.state,
        nonce=authorization.nonce,
        code_verifier=authorization.code_verifier,
    )
    try:
        token = await anyio.to_thread.run_sync(
            lambda: services.provider_sign_in.begin(
                pending=pending, source=source, now=datetime.now(UTC)
            )
        )
    except SignInThrottled as exc:
        return await render.error_page(
            request, 429, exc.message, headers={"Retry-After": str(exc.retry_after)}
        )
    response = RedirectResponse(authorization.url, status_code=303)
    settings = services.settings
    response.set_cookie(
        pending_cookie(settings),
        token,
        max_age=int(PENDING_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        # Lax: the provider sends the person back with a top-level GET from its own site.
        samesite="lax",
        secure=settings.is_https,
    )
    return response


async def callback(request: Request) -> Response:
    """``GET /ui/login/oidc/{name}/callback``: the provider's answer → a session, or a page
    saying why not. The pending sign-in is spent whatever happens."""
    services = services_of(request)
    provider = services.relying_party.get(request.path_params["name"])
    if provider is None:
        return await render.error_page(request, 404, "There is no such page.")
    settings = services.settings
    token = request.cookies.get(pending_cookie(settings), "")
    pending = await anyio.to_thread.run_sync(
        lambda: services.provider_sign_in.resume(token=token, now=datetime.now(UTC))
    )
    response = await _finish(request, provider, pending)
    response.delete_cookie(
        pending_cookie(settings), path="/", secure=settings.is_https, httponly=True, samesite="lax"
    )
    return response


async def _finish(
    request: Request, provider: OidcProvider, pending: PendingSignIn | None
) -> Response:
    services = services_of(request)
    source = source_address(request, services.settings)
    mine = pending is not None and pending.provider == provider.name
    expected = (
        Authorization(
            url="", state=pending.state, nonce=pending.nonce, code_verifier=pending.code_verifier
        )
        if pending is not None and mine
        else None
    )
    try:
        claims = await services.relying_party.finish(
            provider,
            request.query_params,
            expected=expected,
            redirect_uri=pending.redirect_uri if pending is not None else "",
        )
    except SignInFailure as failure:
        return await _failed(request, provider, source, failure)
    assert pending is not None
    previous = sessions.session_id(request)
    try:
        started = await anyio.to_thread.run_sync(
            lambda: services.provider_sign_in.complete(
                provider=provider, claims=claims, source=source, now=datetime.now(UTC)
            )
        )
    except SignInRefused as refused:  # audited by the use case
        return await render.error_page(request, 403, refused.message, title="You are not signed in")
    if previous:  # whatever session this browser had before ends now
        await anyio.to_thread.run_sync(lambda: services.people.sign_out(session_id=previous))
    response = RedirectResponse(pending.next_path, status_code=303)
    sessions.set_session_cookie(response, services.settings, started)
    return response


async def _failed(
    request: Request,
    provider: OidcProvider,
    source: network.Address | None,
    failure: SignInFailure,
) -> Response:
    services_of(request).provider_sign_in.failed(
        provider=provider, reason=failure.reason, source=source, detail=failure.detail
    )
    return await render.error_page(
        request, failure.status_code, failure.message, title="You are not signed in"
    )


async def end_session_url(request: Request, name: str) -> str | None:
    """Where to sign out at the provider too, back to the sign-in page; None if it cannot."""
    services = services_of(request)
    return await services.relying_party.end_session_url(
        name, post_logout_redirect_uri=services.settings.endpoint("/ui/")
    )
