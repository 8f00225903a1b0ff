"""Sign-in through OpenID Connect providers: the button's redirect and the provider's callback.

Authlib's Starlette client (``authlib.integrations.starlette_client``) speaks the
protocol: discovery, the authorization URL with PKCE (S256), ``state`` and
``nonce``, the code exchange, and the ID token's signature (through the
provider's JWKS), ``iss``, ``aud``, ``exp`` and ``nonce``. What it would keep in a
cookie session between the redirect and the callback is kept in the database
instead (``ProviderSignInService``), found by a random cookie: the callback may
reach another instance than the redirect, and it can be used once.

After the protocol, ``ProviderSignInService.complete`` decides who that is
(verified e-mail, allowed domain, known or created user, not disabled) and
starts the session. Every way this can fail ends on a page that says what
happened, and in an audit line; never a traceback, never a code or a token in
a log.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import httpx2
from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc.errors import ClaimError, JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.config import OidcProvider, Settings
from authserver.domain import network
from authserver.domain.identity import SignInRefused
from authserver.ui import render, sessions
from authserver.usecases.people import SignInThrottled
from authserver.usecases.provider_sign_in import PENDING_LIFETIME, PendingSignIn

log = logging.getLogger("authserver.ui")
# Authlib logs the PKCE code verifier at debug level; it is as secret as the code.
logging.getLogger("authlib.integrations.base_client.sync_app").setLevel(logging.INFO)

TIMEOUT = 5.0  # seconds for each call to a provider: discovery, keys, token, userinfo
PATH = "/ui/login/oidc/{name}"
CALLBACK_PATH = "/ui/login/oidc/{name}/callback"
# Errors a provider sends back when the person cancelled or was not let in there.
REFUSED_AT_PROVIDER = {
    "access_denied",
    "consent_required",
    "interaction_required",
    "login_required",
    "account_selection_required",
}


class ProviderUnavailable(Exception):
    """The provider could not be reached, or its answer was not what OpenID Connect says."""


class Providers:
    """The configured providers, each an Authlib Starlette client (one set per app)."""

    def __init__(self, providers: tuple[OidcProvider, ...]) -> None:
        self.configured = {provider.name: provider for provider in providers}
        self.oauth = OAuth()
        for provider in providers:
            self.oauth.register(
                name=provider.name,
                client_id=provider.client_id,
                client_secret=provider.client_secret,
                server_metadata_url=provider.discovery_url,
                client_kwargs={
                    "scope": " ".join(provider.scopes),
                    "code_challenge_method": "S256",
                    "timeout": TIMEOUT,
                },
            )

    def get(self, name: str) -> OidcProvider | None:
        return self.configured.get(name)

    def client(self, provider: OidcProvider) -> Any:
        """Authlib's ``StarletteOAuth2App`` for ``provider``."""
        return self.oauth.create_client(provider.name)

    async def metadata(self, provider: OidcProvider) -> Mapping[str, Any]:
        """The provider's discovery document (read once, then kept), checked.

        OpenID Connect Discovery 1.0 section 4.3: the ``issuer`` it names must be
        the issuer configured, or its ID tokens could come from someone else.
        """
        client = self.client(provider)
        try:
            metadata: Mapping[str, Any] = await client.load_server_metadata()
        except (httpx2.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"discovery failed ({_describe(exc)})") from None
        problem = ""
        if metadata.get("issuer") != provider.issuer:
            problem = f"it names its issuer {str(metadata.get('issuer'))[:200]!r}"
        elif missing := [
            key
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(metadata.get(key), str)
        ]:
            problem = f"it has no {missing[0]}"
        if problem:
            client.server_metadata.clear()  # read again next time: it may be fixed by then
            raise ProviderUnavailable(f"discovery document refused: {problem}")
        return metadata


def _describe(exc: BaseException) -> str:
    """An exception in a few words for the log (its class; never a URL's query)."""
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _error_code(said: str) -> str:
    """An OAuth error code as the provider sent it, if it looks like one (it is shown and
    logged)."""
    return said if re.fullmatch(r"[a-z_]{1,64}", said) else "invalid_error"


def providers_of(request: Request) -> Providers:
    return request.app.state.oidc  # type: ignore[no-any-return]


def pending_cookie(settings: Settings) -> str:
    return "__Host-authserver_oidc" if settings.is_https else "authserver_oidc"


def start_path(provider: OidcProvider) -> str:
    return PATH.format(name=provider.name)


async def start(request: Request) -> Response:
    """``GET /ui/login/oidc/{name}?next=…``: off to the provider, with state, nonce and PKCE."""
    services = sessions.services_of(request)
    providers = providers_of(request)
    provider = providers.get(request.path_params["name"])
    if provider is None:
        return await render.error_page(request, 404, "There is no such page.")
    source = sessions.source_address(request)
    redirect_uri = services.settings.endpoint(CALLBACK_PATH.format(name=provider.name))
    try:
        await providers.metadata(provider)
        authorization = await providers.client(provider).create_authorization_url(redirect_uri)
    except ProviderUnavailable as exc:
        return await _unreachable(request, provider, source, str(exc))
    pending = PendingSignIn(
        provider=provider.name,
        redirect_uri=redirect_uri,
        next_path=sessions.safe_next(request.query_params.get("next")),
        state=authorization["state"],
        nonce=authorization["nonce"],
        code_verifier=authorization["code_verifier"],
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
    response = RedirectResponse(authorization["url"], status_code=303)
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
    services = sessions.services_of(request)
    provider = providers_of(request).get(request.path_params["name"])
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
    services = sessions.services_of(request)
    providers = providers_of(request)
    source = sessions.source_address(request)
    params = request.query_params
    name = provider.name
    if (
        pending is None
        or pending.provider != name
        or not hmac.compare_digest(params.get("state", "").encode(), pending.state.encode())
    ):
        # No pending sign-in in this browser (never started here, expired, used already), or
        # another one's state: a forged or replayed callback, or a second tab.
        detail = "no pending sign-in in this browser" if pending is None else "state differs"
        return await _failed(
            request,
            provider,
            source,
            "state mismatch",
            400,
            "This sign-in was not started in this browser, took longer than ten minutes, "
            "or has been used already. Start again from the sign-in page.",
            detail=detail,
        )
    said_issuer = params.get("iss")
    if said_issuer is not None and said_issuer != provider.issuer:
        # RFC 9207: the answer names the provider that sent it; another one's is a mix-up.
        return await _failed(
            request,
            provider,
            source,
            "issuer mismatch",
            400,
            f"This answer did not come from {name}. Start again from the sign-in page.",
        )
    error = params.get("error")
    if error is not None:
        said = _error_code(error)
        if said in REFUSED_AT_PROVIDER:
            message = f"The sign-in at {name} was cancelled or refused, so you are not signed in."
        else:
            message = (
                f"The provider {name} could not sign you in (it answered “{said}”). "
                "Please try again."
            )
        return await _failed(request, provider, source, "provider error", 401, message, said)
    code = params.get("code")
    if not code:
        return await _failed(
            request,
            provider,
            source,
            "provider error",
            502,
            f"The provider {name} sent back no sign-in. Please try again.",
            "no code",
        )
    client = providers.client(provider)
    try:
        metadata = await providers.metadata(provider)
        tokens = await client.fetch_access_token(
            code=code, redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier
        )
        claims = await _id_token_claims(client, provider, tokens, pending.nonce)
        if ("email" not in claims or "email_verified" not in claims) and metadata.get(
            "userinfo_endpoint"
        ):
            claims = await _with_userinfo(client, tokens, claims)
    except ProviderUnavailable as exc:
        return await _unreachable(request, provider, source, str(exc))
    except OAuthError as exc:  # the token endpoint said no: a used or stolen code, a bad secret
        error_code = _error_code(str(exc.error))
        return await _failed(
            request,
            provider,
            source,
            "provider error",
            401,
            f"The provider {name} refused to complete the sign-in (“{error_code}”). Start again.",
            f"token endpoint: {error_code}",
        )
    except ClaimError as exc:
        reason = "nonce mismatch" if exc.claim == "nonce" else "invalid ID token"
        return await _failed(
            request,
            provider,
            source,
            reason,
            401,
            f"The answer from {name} did not prove who you are, so you are not signed in. "
            "Start again.",
            f"claim {exc.claim}",
        )
    except (JoseError, InvalidAnswer) as exc:
        return await _failed(
            request,
            provider,
            source,
            "invalid ID token",
            401,
            f"The answer from {name} did not prove who you are, so you are not signed in. "
            "Start again.",
            _describe(exc) if isinstance(exc, JoseError) else str(exc),
        )
    except (httpx2.HTTPError, ValueError) as exc:
        return await _unreachable(request, provider, source, _describe(exc))
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


class InvalidAnswer(Exception):
    """The provider's answer lacks what OpenID Connect requires (an ID token, a userinfo
    ``sub`` matching it)."""


async def _id_token_claims(
    client: Any, provider: OidcProvider, tokens: Mapping[str, Any], nonce: str
) -> dict[str, Any]:
    """The ID token's claims, verified: signature with the provider's keys, ``iss``,
    ``aud`` (our client_id), ``exp``, ``iat``, ``nonce``, ``azp`` and ``at_hash``."""
    if not isinstance(tokens.get("id_token"), str):
        raise InvalidAnswer("no ID token")
    try:
        claims = await client.parse_id_token(
            tokens,
            nonce=nonce,
            claims_options={
                "iss": {"essential": True, "value": provider.issuer},
                # Authlib checks "aud" only through "azp" otherwise.
                "aud": {"essential": True, "value": provider.client_id},
            },
        )
    except (httpx2.HTTPError, ValueError) as exc:  # the keys could not be fetched
        raise ProviderUnavailable(f"keys not fetched ({_describe(exc)})") from None
    return dict(claims)


async def _with_userinfo(
    client: Any, tokens: Mapping[str, Any], claims: dict[str, Any]
) -> dict[str, Any]:
    """The ID token's claims plus e-mail and name from the userinfo endpoint (providers that
    keep them out of the ID token); its ``sub`` must be the ID token's (OpenID Connect Core
    1.0 section 5.3.2)."""
    try:
        info = await client.userinfo(token=dict(tokens))
    except (httpx2.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"userinfo failed ({_describe(exc)})") from None
    if info.get("sub") != claims.get("sub"):
        raise InvalidAnswer("userinfo is about another subject")
    extra = {key: info[key] for key in ("email", "email_verified", "name") if key in info}
    return {**extra, **{key: value for key, value in claims.items() if key not in extra}}


async def _failed(
    request: Request,
    provider: OidcProvider,
    source: network.Address | None,
    reason: str,
    status_code: int,
    message: str,
    detail: str | None = None,
) -> Response:
    services = sessions.services_of(request)
    services.provider_sign_in.failed(provider=provider, reason=reason, source=source, detail=detail)
    return await render.error_page(request, status_code, message, title="You are not signed in")


async def _unreachable(
    request: Request, provider: OidcProvider, source: network.Address | None, why: str
) -> Response:
    log.warning("OpenID Connect provider %s (%s): %s", provider.name, provider.issuer, why)
    return await _failed(
        request,
        provider,
        source,
        "provider unreachable",
        503,
        f"The sign-in service of {provider.name} cannot be reached. Try again in a few "
        "minutes; if it keeps happening, tell your administrator.",
        why,
    )


async def end_session_url(request: Request, name: str) -> str | None:
    """Where to sign out at the provider too (its ``end_session_endpoint``), or None.

    Without an ID token (none is kept): ``client_id`` and ``post_logout_redirect_uri``
    (OpenID Connect RP-Initiated Logout 1.0), back to the sign-in page.
    """
    providers = providers_of(request)
    provider = providers.get(name)
    if provider is None:
        return None
    try:
        metadata = await providers.metadata(provider)
    except ProviderUnavailable:
        return None
    if not isinstance(metadata.get("end_session_endpoint"), str):
        return None
    settings = sessions.services_of(request).settings
    logout = await providers.client(provider).create_logout_url(
        post_logout_redirect_uri=settings.endpoint("/ui/"), client_id=provider.client_id
    )
    return str(logout["url"])
