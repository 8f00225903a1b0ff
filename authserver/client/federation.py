"""Client side of federation trusts: a CI job exchanges its ID token for an access token.

No secret anywhere: the job's CI provider hands it a signed ID token, and the token
endpoint exchanges it (RFC 8693) for an access token of the trust's owner::

    from authserver.client import JobTokenAuth
    auth = JobTokenAuth("https://auth.example.com", "brave-otter-12345@auth.example.com/wfe")
    httpx.get(api_url, auth=auth)

The job's token is taken, at each exchange (job tokens are short-lived), from the
first of: the ``token`` given; the environment variable ``CONDUCTORONE_OIDC_TOKEN``
(what ``cone`` reads; another name with ``env=``); the file ``token_file`` (e.g. a
Kubernetes projected service-account token); GitHub Actions' token service
(``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``, which a
workflow with ``permissions: id-token: write`` has), asked for the trust's audience.
The access token is cached as ``TokenAuth`` caches it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from authserver.client.httpx_auth import TokenAuth
from authserver.client.tokens import TokenCache, TokenError

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
#: The variable ConductorOne's ``cone`` and Go SDK read the job's token from.
DEFAULT_ENV = "CONDUCTORONE_OIDC_TOKEN"
GITHUB_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"


class JobTokenError(TokenError):
    """No job token could be had (none configured, unreadable, or GitHub refused)."""

    def __init__(self, description: str, status_code: int = 0) -> None:
        super().__init__(status_code, "no_job_token", description)


class JobTokenSource:
    """Where the job's ID token comes from; read anew for every exchange."""

    def __init__(
        self,
        *,
        token: str | None = None,
        env: str = DEFAULT_ENV,
        token_file: Path | str | None = None,
        audience: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.token = token
        self.env = env
        self.token_file = Path(token_file) if token_file is not None else None
        self.audience = audience
        self.environ = os.environ if environ is None else environ

    def __repr__(self) -> str:  # never the token
        return f"JobTokenSource(env={self.env!r}, token_file={self.token_file!r})"

    def local(self) -> str | None:
        """The token from the arguments, the environment or the file; None for GitHub's."""
        if self.token:
            return self.token.strip()
        if self.environ.get(self.env, "").strip():
            return self.environ[self.env].strip()
        if self.token_file is not None:
            try:
                text = self.token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise JobTokenError(f"cannot read {self.token_file}: {exc}") from None
            if not text:
                raise JobTokenError(f"{self.token_file} is empty")
            return text
        if self.environ.get(GITHUB_URL) and self.environ.get(GITHUB_TOKEN):
            return None
        raise JobTokenError(
            f"no job token: set {self.env}, pass token_file, or run in GitHub Actions with "
            "permissions: id-token: write"
        )

    def github_request(self, default_audience: str) -> httpx.Request:
        """GitHub Actions' request for an ID token with the trust's audience."""
        parts = urlsplit(self.environ[GITHUB_URL])
        query = "&".join(
            q
            for q in (parts.query, urlencode({"audience": self.audience or default_audience}))
            if q
        )
        return httpx.Request(
            "GET",
            urlunsplit(parts._replace(query=query)),
            headers={
                "Authorization": f"Bearer {self.environ[GITHUB_TOKEN]}",
                "Accept": "application/json",
            },
        )

    @staticmethod
    def github_answer(status_code: int, body: bytes) -> str:
        try:
            value = json.loads(body).get("value") if status_code == 200 else None
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise JobTokenError("GitHub Actions did not hand out an ID token", status_code)
        return value


class ExchangeTokenCache(TokenCache):
    """A trust's access token, got by exchanging the job's ID token (RFC 8693)."""

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        scope: str | None = None,
        dpop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(url, client_id, None, scope=scope, dpop=dpop, clock=clock)
        self.subject_token: str | None = None

    def grant_form(self) -> dict[str, str]:
        """The form ConductorOne's ``NewTokenExchangeSource`` sends."""
        if not self.subject_token:
            raise JobTokenError("no job token to exchange")
        subject, self.subject_token = self.subject_token, None  # each one is sent once
        return {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject,
            "subject_token_type": JWT_TYPE,
            "client_id": self.client_id,
        }


class JobTokenAuth(TokenAuth):
    """httpx authentication for a CI job: its ID token exchanged for a cached access token.

    ``url`` is the issuer URL (the default audience of the job's token);
    ``client_id`` the trust's. See the module's documentation for where the job's
    token is found. One instance may serve many threads or tasks, as ``TokenAuth``.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        source: JobTokenSource | None = None,
        scope: str | None = None,
        dpop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(url, client_id, None, scope=scope, dpop=dpop, clock=clock)
        self.tokens = ExchangeTokenCache(url, client_id, scope=scope, dpop=dpop, clock=clock)
        self.exchanges: ExchangeTokenCache = self.tokens
        self.source = source or JobTokenSource()
        self.issuer = url.rstrip("/").removesuffix("/auth/v1/token")

    def _before_token_request(self) -> httpx.Request | None:
        local = self.source.local()
        if local is not None:
            self.exchanges.subject_token = local
            return None
        return self.source.github_request(self.issuer)

    def _before_answered(self, status_code: int, body: bytes) -> None:
        self.exchanges.subject_token = JobTokenSource.github_answer(status_code, body)
