"""``TokenCache``: one credential's access token, how to ask for it, and when to ask again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from authserver.client.assertions import assertion_form, private_jwk
from authserver.client.dpop import DpopSigner

TOKEN_PATH = "/auth/v1/token"
# A cached token is replaced this long before it expires (at most a tenth of its lifetime),
# so that it does not expire on its way to the API.
REFRESH_MARGIN = 30.0


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
    ``RequestsTokenAuth`` (requests), which hold a lock around it. With ``dpop``,
    every request carries a DPoP proof (RFC 9449) signed with the process's key,
    and the token is bound to that key.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        secret: str | None,
        *,
        scope: str | None = None,
        dpop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if secret is not None:  # None: a grant without a secret (``ExchangeTokenCache``)
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
        self.dpop = DpopSigner() if dpop else None
        self._scheme = "Bearer"

    def __repr__(self) -> str:  # never the secret or the token
        return f"TokenCache({self.token_url!r}, {self.client_id!r})"

    def current(self) -> str | None:
        """The token held, unless it is missing or about to expire."""
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def form(self) -> dict[str, str]:
        """The body of a token request: the grant's form, and the scope."""
        self._asked_at = self._clock()
        form = self.grant_form()
        if self.scope:
            form["scope"] = self.scope
        return form

    def grant_form(self) -> dict[str, str]:
        """``client_credentials`` with a fresh assertion."""
        assert self._secret is not None
        return {
            "grant_type": "client_credentials",
            **assertion_form(self._secret, client_id=self.client_id, audience=self.token_url),
        }

    def token_headers(self) -> dict[str, str]:
        """The headers of a token request (with a fresh DPoP proof when bound)."""
        headers = {"Accept": "application/json"}
        if self.dpop is not None:
            headers["DPoP"] = self.dpop.proof("POST", self.token_url)
        return headers

    def wants_nonce(self, status_code: int, headers: Mapping[str, str]) -> bool:
        """True when the server asked for a DPoP nonce (``use_dpop_nonce``), now kept: ask again."""
        nonce = headers.get("dpop-nonce")
        if self.dpop is None or status_code not in (400, 401) or not nonce:
            return False
        fresh = nonce != self.dpop.nonce
        self.dpop.nonce = nonce
        return fresh

    def authorization(self, token: str, method: str, url: str) -> dict[str, str]:
        """The headers that present ``token`` on an API request (with its DPoP proof)."""
        if self.dpop is None or self._scheme != "DPoP":
            return {"Authorization": f"Bearer {token}"}
        return {
            "Authorization": f"DPoP {token}",
            "DPoP": self.dpop.proof(method, url, access_token=token),
        }

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
        self._scheme = "DPoP" if answer.get("token_type") == "DPoP" else "Bearer"
        return token

    def discard(self, token: str) -> None:
        """Forget ``token`` (the API refused it); a newer token someone else fetched stays."""
        if self._token == token:
            self._token = None
