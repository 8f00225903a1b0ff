"""``RequestsTokenAuth``: requests authentication with a personal client's access token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from requests.auth import AuthBase

from authserver.client.credential_file import read_credential
from authserver.client.tokens import TokenCache


class RequestsTokenAuth(AuthBase):
    """Sets ``Authorization: Bearer`` from a token fetched with ``private_key_jwt`` and cached.

    ``url`` is the issuer URL (or the token endpoint URL itself). The token is
    fetched with ``session`` (a new ``requests.Session`` if none is given),
    reused until shortly before it expires, and fetched again once when the
    API answers 401. Thread-safe: concurrent requests wait for a single fetch.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        secret: str,
        *,
        scope: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        dpop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = TokenCache(url, client_id, secret, scope=scope, dpop=dpop, clock=clock)
        self._session = session or requests.Session()
        self._timeout = timeout
        self._lock = threading.Lock()

    @classmethod
    def from_file(
        cls,
        path: Path | str | None = None,
        scope: str | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> RequestsTokenAuth:
        """With the credential ``authserver login`` saved (default: its default path);
        ``CredentialFileError`` if there is none."""
        saved = read_credential(path)
        return cls(
            saved.issuer,
            saved.client_id,
            saved.client_secret,
            scope=scope,
            session=session,
            timeout=timeout,
        )

    def _token(self, *, refused: str | None = None) -> str:
        with self._lock:
            if refused is not None:
                self.tokens.discard(refused)
            token = self.tokens.current()
            if token is None:
                answer = self._fetch()
                if self.tokens.wants_nonce(answer.status_code, answer.headers):
                    answer = self._fetch()
                token = self.tokens.store(answer.status_code, answer.content)
            return token

    def _fetch(self) -> requests.Response:
        return self._session.post(
            self.tokens.token_url,
            data=self.tokens.form(),
            headers=self.tokens.token_headers(),
            timeout=self._timeout,
        )

    def _present(self, request: requests.PreparedRequest, token: str) -> None:
        url = (request.url or "").split("?", 1)[0].split("#", 1)[0]
        request.headers.update(self.tokens.authorization(token, request.method or "GET", url))

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._present(request, self._token())
        request.register_hook("response", self._retry_once_on_401)
        return request

    def _retry_once_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        # As requests' own HTTPDigestAuth: the retry goes straight to the connection adapter,
        # so this hook does not run for its answer, and a second 401 is returned as it is.
        if response.status_code != 401 or response.request is None:
            return response
        used = str(response.request.headers.get("Authorization", "")).partition(" ")[2]
        token = self._token(refused=used)
        response.content  # noqa: B018 - read it, so that the connection can be reused
        response.close()
        retry = response.request.copy()
        self._present(retry, token)
        answer = response.connection.send(retry, **kwargs)
        answer.history.append(response)
        answer.request = retry
        return answer
