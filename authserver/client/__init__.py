"""Client side: call an API protected by authserver with a personal client's secret.

The two lines a Python program needs (``httpx``; ``RequestsTokenAuth`` is the
same for ``requests``)::

    from authserver.client import TokenAuth
    httpx.get(api_url, auth=TokenAuth("https://auth.example.com", client_id, secret))

``TokenAuth`` fetches an access token with ``private_key_jwt`` (the secret
never leaves the program), reuses it until shortly before it expires, and
fetches a new one once when the API answers 401. The lower level: the
``secret-token:`` string holds an Ed25519 private key, and ``assertion_form``
signs an RFC 7523 client assertion with it::

    form = assertion_form(secret, client_id=client_id, audience="https://auth.example.com")
    httpx.post(token_url, data={"grant_type": "client_credentials", **form})

httpx and requests are imported only by the class that uses them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.jwk import OKPKey

from authserver.domain.secrets import parse_secret
from authserver.oauth.assertions import ASSERTION_TYPE
from authserver.security.jose import ASSERTION_ALGORITHMS

if TYPE_CHECKING:
    from authserver.client.httpx_auth import TokenAuth
    from authserver.client.requests_auth import RequestsTokenAuth

__all__ = [
    "RequestsTokenAuth",
    "TokenAuth",
    "TokenCache",
    "TokenError",
    "assertion_form",
    "private_jwk",
    "signed_assertion",
]

TOKEN_PATH = "/auth/v1/token"
# A cached token is replaced this long before it expires (at most a tenth of its lifetime),
# so that it does not expire on its way to the API.
REFRESH_MARGIN = 30.0
# "EdDSA" (RFC 8037), which every JOSE library reads; the server also accepts RFC 9864's
# "Ed25519".
ASSERTION_ALG = "EdDSA"


def private_jwk(secret: str) -> dict[str, str]:
    """The Ed25519 private JWK inside a ``secret-token:`` string (ValueError if it is not one)."""
    jwk = parse_secret(secret)
    if jwk is None:
        raise ValueError("not an authserver secret-token")
    return jwk


def signed_assertion(
    secret: str, *, client_id: str, audience: str | list[str], lifetime: int = 60
) -> str:
    """An EdDSA-signed JWT with ``iss`` = ``sub`` = client_id, a fresh ``jti``, ``exp`` soon."""
    key = OKPKey.import_key({k: v for k, v in private_jwk(secret).items()})
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode({"alg": ASSERTION_ALG}, claims, key, registry=ASSERTION_ALGORITHMS)


def assertion_form(secret: str, *, client_id: str, audience: str | list[str]) -> dict[str, str]:
    """The two form fields that replace ``client_secret`` in a request."""
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed_assertion(secret, client_id=client_id, audience=audience),
    }


class TokenError(Exception):
    """The token endpoint did not issue a token; ``error`` is its RFC 6749 error code."""

    def __init__(self, status_code: int, error: str, description: str = "") -> None:
        super().__init__(f"token request refused ({status_code} {error}): {description}".strip())
        self.status_code = status_code
        self.error = error
        self.description = description


class TokenCache:
    """One credential's access token: how to ask for it, and whether the one held is still good.

    The HTTP exchange itself is left to ``TokenAuth`` (httpx) and
    ``RequestsTokenAuth`` (requests), which hold a lock around it.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        secret: str,
        *,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        private_jwk(secret)  # a malformed secret fails here, not at the first request
        url = url.rstrip("/")
        self.token_url = url if url.endswith(TOKEN_PATH) else url + TOKEN_PATH
        self.client_id = client_id
        self.scope = scope
        self._secret = secret
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._asked_at = 0.0

    def __repr__(self) -> str:  # never the secret or the token
        return f"TokenCache({self.token_url!r}, {self.client_id!r})"

    def current(self) -> str | None:
        """The token held, unless it is missing or about to expire."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def form(self) -> dict[str, str]:
        """The body of a token request: ``client_credentials`` with a fresh assertion."""
        self._asked_at = self._clock()
        form = {
            "grant_type": "client_credentials",
            **assertion_form(self._secret, client_id=self.client_id, audience=self.token_url),
        }
        if self.scope:
            form["scope"] = self.scope
        return form

    def store(self, status_code: int, body: bytes) -> str:
        """Keep the token from a token response (TokenError if there is none) and return it."""
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise TokenError(status_code, "invalid_response", "the answer is not a JSON object")
        token = answer.get("access_token")
        if status_code != 200 or not isinstance(token, str):
            raise TokenError(
                status_code,
                str(answer.get("error") or "invalid_response"),
                str(answer.get("error_description") or ""),
            )
        lifetime = answer.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, int | float) else REFRESH_MARGIN
        # Counted from when the request left: the token's clock started no earlier.
        self._refresh_at = self._asked_at + lifetime - min(REFRESH_MARGIN, lifetime / 10)
        self._token = token
        return token

    def discard(self, token: str) -> None:
        """Forget ``token`` (the API refused it); a newer token someone else fetched stays."""
        if self._token == token:
            self._token = None


def __getattr__(name: str) -> Any:
    # The adapters import httpx or requests, which the server itself does not need.
    if name == "TokenAuth":
        from authserver.client.httpx_auth import TokenAuth

        return TokenAuth
    if name == "RequestsTokenAuth":
        from authserver.client.requests_auth import RequestsTokenAuth

        return RequestsTokenAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
