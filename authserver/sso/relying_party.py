"""The OpenID Connect relying party: discovery, the authorization request, the callback.

Authlib's Starlette client (``authlib.integrations.starlette_client``) speaks the
protocol: discovery, the authorization URL with PKCE (S256), ``state`` and
``nonce``, the code exchange, and the ID token's signature (through the
provider's JWKS), ``iss``, ``aud``, ``exp`` and ``nonce``. What it would keep in
a cookie session between the redirect and the callback is handed back to the
caller instead (``Authorization``), which keeps it in the database: the callback
may reach another instance than the redirect.

Every way the callback can fail raises ``SignInFailure``, which carries what the
person is told, what the audit trail records and the HTTP status; the page only
renders it. Never a code or a token in a message or a log line.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc.errors import ClaimError, JoseError

from authserver.security.logsafe import quiet_authlib
from authserver.sso.providers import OidcProvider

log = logging.getLogger("authserver.sso")
# Authlib logs the PKCE code verifier at debug level; it is as secret as the code.
quiet_authlib()

TIMEOUT = 5.0  # seconds for each call to a provider: discovery, keys, token, userinfo
# Errors a provider sends back when the person cancelled or was not let in there.
REFUSED_AT_PROVIDER = {
    "access_denied",
    "consent_required",
    "interaction_required",
    "login_required",
    "account_selection_required",
}


class SignInFailure(Exception):
    """A sign-in through a provider that did not prove who the person is.

    ``reason`` and ``detail`` go to the audit trail, ``message`` to the person,
    ``status_code`` to the HTTP answer.
    """

    def __init__(
        self, reason: str, status_code: int, message: str, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status_code = status_code
        self.message = message
        self.detail = detail


class _InvalidAnswer(Exception):
    """The provider's answer lacks what OpenID Connect requires (an ID token, a userinfo
    ``sub`` matching it)."""


class _Unreachable(Exception):
    """The provider could not be reached, or its answer was not what OpenID Connect says."""


@dataclass(frozen=True)
class Authorization:
    """Where to send the person, and what the callback must check and send back."""

    url: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)


def _describe(exc: BaseException) -> str:
    """An exception in a few words for the log (its class; never a URL's query)."""
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _error_code(said: str) -> str:
    """An OAuth error code as the provider sent it, if it looks like one (it is shown and
    logged)."""
    return said if re.fullmatch(r"[a-z_]{1,64}", said) else "invalid_error"


def _unreachable(provider: OidcProvider, why: str) -> SignInFailure:
    log.warning("OpenID Connect provider %s (%s): %s", provider.name, provider.issuer, why)
    return SignInFailure(
        "provider unreachable",
        503,
        f"The sign-in service of {provider.name} cannot be reached. Try again in a few "
        "minutes; if it keeps happening, tell your administrator.",
        why,
    )


def _not_proven(provider: OidcProvider, reason: str, detail: str) -> SignInFailure:
    return SignInFailure(
        reason,
        401,
        f"The answer from {provider.name} did not prove who you are, so you are not signed "
        "in. Start again.",
        detail,
    )


class RelyingParty:
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
        try:
            return await self._metadata(provider)
        except _Unreachable as exc:
            raise _unreachable(provider, str(exc)) from None

    async def _metadata(self, provider: OidcProvider) -> Mapping[str, Any]:
        client = self.client(provider)
        try:
            metadata: Mapping[str, Any] = await client.load_server_metadata()
        except (httpx2.HTTPError, ValueError) as exc:
            raise _Unreachable(f"discovery failed ({_describe(exc)})") from None
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
            raise _Unreachable(f"discovery document refused: {problem}")
        return metadata

    async def begin(self, provider: OidcProvider, redirect_uri: str) -> Authorization:
        """The authorization request (state, nonce, PKCE); ``SignInFailure`` if the provider
        cannot be reached."""
        await self.metadata(provider)
        try:
            made = await self.client(provider).create_authorization_url(redirect_uri)
        except (httpx2.HTTPError, ValueError) as exc:
            raise _unreachable(provider, _describe(exc)) from None
        return Authorization(
            url=made["url"],
            state=made["state"],
            nonce=made["nonce"],
            code_verifier=made["code_verifier"],
        )

    async def finish(
        self,
        provider: OidcProvider,
        params: Mapping[str, str],
        *,
        expected: Authorization | None,
        redirect_uri: str,
    ) -> dict[str, Any]:
        """The verified claims of the person the provider's answer (``params``) is about.

        ``expected`` is the authorization this browser started (None when it has none:
        never started here, expired, or used already). ``SignInFailure`` otherwise.
        """
        name = provider.name
        if expected is None or not hmac.compare_digest(
            params.get("state", "").encode(), expected.state.encode()
        ):
            # A forged or replayed callback, or a second tab.
            raise SignInFailure(
                "state mismatch",
                400,
                "This sign-in was not started in this browser, took longer than ten minutes, "
                "or has been used already. Start again from the sign-in page.",
                "no pending sign-in in this browser" if expected is None else "state differs",
            )
        said_issuer = params.get("iss")
        if said_issuer is not None and said_issuer != provider.issuer:
            # RFC 9207: the answer names the provider that sent it; another one's is a mix-up.
            raise SignInFailure(
                "issuer mismatch",
                400,
                f"This answer did not come from {name}. Start again from the sign-in page.",
            )
        if said_issuer is None and (await self.metadata(provider)).get(
            "authorization_response_iss_parameter_supported"
        ):
            # RFC 9207 section 2.4: a provider that says it sends iss always does; an answer
            # without it was made up, or comes from another provider.
            raise SignInFailure(
                "issuer mismatch",
                400,
                f"This answer did not say it came from {name}. Start again from the sign-in page.",
                "no iss",
            )
        error = params.get("error")
        if error is not None:
            said = _error_code(error)
            if said in REFUSED_AT_PROVIDER:
                message = (
                    f"The sign-in at {name} was cancelled or refused, so you are not signed in."
                )
            else:
                message = (
                    f"The provider {name} could not sign you in (it answered “{said}”). "
                    "Please try again."
                )
            raise SignInFailure("provider error", 401, message, said)
        code = params.get("code")
        if not code:
            raise SignInFailure(
                "provider error",
                502,
                f"The provider {name} sent back no sign-in. Please try again.",
                "no code",
            )
        return await self._claims(provider, code, expected, redirect_uri)

    async def _claims(
        self, provider: OidcProvider, code: str, expected: Authorization, redirect_uri: str
    ) -> dict[str, Any]:
        client = self.client(provider)
        try:
            metadata = await self._metadata(provider)
            tokens = await client.fetch_access_token(
                code=code, redirect_uri=redirect_uri, code_verifier=expected.code_verifier
            )
            claims = await self.id_token_claims(provider, tokens, expected.nonce)
            if ("email" not in claims or "email_verified" not in claims) and metadata.get(
                "userinfo_endpoint"
            ):
                claims = await self._with_userinfo(client, tokens, claims)
        except _Unreachable as exc:
            raise _unreachable(provider, str(exc)) from None
        except OAuthError as exc:  # the token endpoint said no: a used or stolen code, a bad secret
            error_code = _error_code(str(exc.error))
            raise SignInFailure(
                "provider error",
                401,
                f"The provider {provider.name} refused to complete the sign-in (“{error_code}”). "
                "Start again.",
                f"token endpoint: {error_code}",
            ) from None
        except ClaimError as exc:
            reason = "nonce mismatch" if exc.claim == "nonce" else "invalid ID token"
            raise _not_proven(provider, reason, f"claim {exc.claim}") from None
        except JoseError as exc:
            raise _not_proven(provider, "invalid ID token", _describe(exc)) from None
        except _InvalidAnswer as exc:
            raise _not_proven(provider, "invalid ID token", str(exc)) from None
        except (httpx2.HTTPError, ValueError) as exc:
            raise _unreachable(provider, _describe(exc)) from None
        return claims

    async def id_token_claims(
        self, provider: OidcProvider, tokens: Mapping[str, Any], nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims, verified: signature with the provider's keys, ``iss``,
        ``aud`` (our client_id), ``exp``, ``iat``, ``nonce``, ``azp`` and ``at_hash``.

        Raises joserfc's errors as they are (``ClaimError`` names the claim).
        """
        if not isinstance(tokens.get("id_token"), str):
            raise _InvalidAnswer("no ID token")
        try:
            claims = await self.client(provider).parse_id_token(
                tokens,
                nonce=nonce,
                claims_options={
                    "iss": {"essential": True, "value": provider.issuer},
                    # Authlib checks "aud" only through "azp" otherwise.
                    "aud": {"essential": True, "value": provider.client_id},
                },
            )
        except (httpx2.HTTPError, ValueError) as exc:  # the keys could not be fetched
            raise _Unreachable(f"keys not fetched ({_describe(exc)})") from None
        return dict(claims)

    @staticmethod
    async def _with_userinfo(
        client: Any, tokens: Mapping[str, Any], claims: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims plus e-mail and name from the userinfo endpoint (providers
        that keep them out of the ID token); its ``sub`` must be the ID token's (OpenID
        Connect Core 1.0 section 5.3.2)."""
        try:
            info = await client.userinfo(token=dict(tokens))
        except (httpx2.HTTPError, ValueError) as exc:
            raise _Unreachable(f"userinfo failed ({_describe(exc)})") from None
        if info.get("sub") != claims.get("sub"):
            raise _InvalidAnswer("userinfo is about another subject")
        extra = {key: info[key] for key in ("email", "email_verified", "name") if key in info}
        return {**extra, **{key: value for key, value in claims.items() if key not in extra}}

    async def end_session_url(self, name: str, *, post_logout_redirect_uri: str) -> str | None:
        """Where to sign out at the provider too (its ``end_session_endpoint``), or None.

        Without an ID token (none is kept): ``client_id`` and ``post_logout_redirect_uri``
        (OpenID Connect RP-Initiated Logout 1.0).
        """
        provider = self.get(name)
        if provider is None:
            return None
        try:
            metadata = await self.metadata(provider)
        except SignInFailure:
            return None
        if not isinstance(metadata.get("end_session_endpoint"), str):
            return None
        logout = await self.client(provider).create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri, client_id=provider.client_id
        )
        return str(logout["url"])
