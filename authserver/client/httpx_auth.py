"""``TokenAuth``: httpx authentication with a personal client's access token (sync and async)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path

import anyio
import httpx

from authserver.client.credential_file import read_credential
from authserver.client.tokens import TokenCache


class TokenAuth(httpx.Auth):
    """Sets ``Authorization`` from a token fetched with ``private_key_jwt`` and cached.

    ``url`` is the issuer URL (or the token endpoint URL itself). The token is
    fetched through the same client (its transport, proxies and TLS settings),
    reused until shortly before it expires, and fetched again once when the
    API answers 401. With ``dpop=True`` the token is bound to a key of this
    process (RFC 9449) and every request carries a proof. One instance may serve
    many threads, or many tasks of one event loop: a lock makes concurrent
    requests wait for a single fetch.
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
        self.tokens = TokenCache(url, client_id, secret, scope=scope, dpop=dpop, clock=clock)
        self._lock = threading.Lock()
        self._async_lock: anyio.Lock | None = None

    @classmethod
    def from_file(cls, path: Path | str | None = None, scope: str | None = None) -> TokenAuth:
        """With the credential ``authserver login`` saved (default: its default path);
        ``CredentialFileError`` if there is none."""
        saved = read_credential(path)
        return cls(saved.issuer, saved.client_id, saved.client_secret, scope=scope)

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.tokens.token_url,
            data=self.tokens.form(),
            headers=self.tokens.token_headers(),
        )

    def _before_token_request(self) -> httpx.Request | None:
        """A request to send before each token request (none here; see ``JobTokenAuth``)."""
        return None

    def _before_answered(self, status_code: int, body: bytes) -> None:
        """The answer to ``_before_token_request``'s request."""

    def _present(self, request: httpx.Request, token: str) -> None:
        url = str(request.url.copy_with(query=None, fragment=None))
        request.headers.update(self.tokens.authorization(token, request.method, url))

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        refused: str | None = None
        while True:
            with self._lock:  # one fetch at a time; the others then reuse its token
                if refused is not None:
                    self.tokens.discard(refused)
                token = self.tokens.current()
                if token is None:
                    before = self._before_token_request()
                    if before is not None:  # e.g. the CI job's ID token (federation)
                        first = yield before
                        self._before_answered(first.status_code, first.read())
                    answer = yield self._token_request()
                    if self.tokens.wants_nonce(answer.status_code, answer.headers):
                        answer = yield self._token_request()
                    token = self.tokens.store(answer.status_code, answer.read())
            self._present(request, token)
            response = yield request
            if response.status_code != 401 or refused is not None:
                return
            refused = token  # once more, with a fresh token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._async_lock is None:
            self._async_lock = anyio.Lock()
        refused: str | None = None
        while True:
            async with self._async_lock:
                if refused is not None:
                    self.tokens.discard(refused)
                token = self.tokens.current()
                if token is None:
                    before = self._before_token_request()
                    if before is not None:
                        first = yield before
                        self._before_answered(first.status_code, await first.aread())
                    answer = yield self._token_request()
                    if self.tokens.wants_nonce(answer.status_code, answer.headers):
                        answer = yield self._token_request()
                    token = self.tokens.store(answer.status_code, await answer.aread())
            self._present(request, token)
            response = yield request
            if response.status_code != 401 or refused is not None:
                return
            refused = token
