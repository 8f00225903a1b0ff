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

With the credential ``authserver login`` saved, no secret in the program at all::

    httpx.get(api_url, auth=TokenAuth.from_file())

In a CI job, with a federation trust instead of a secret (``authserver.client.federation``)::

    httpx.get(api_url, auth=JobTokenAuth("https://auth.example.com", trust_client_id))

httpx and requests are imported only by the class that uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authserver.client.assertions import assertion_form, private_jwk, signed_assertion
from authserver.client.credential_file import CredentialFileError, SavedCredential, read_credential
from authserver.client.tokens import TokenCache, TokenError

if TYPE_CHECKING:
    from authserver.client.federation import JobTokenAuth, JobTokenSource
    from authserver.client.httpx_auth import TokenAuth
    from authserver.client.requests_auth import RequestsTokenAuth

__all__ = [
    "CredentialFileError",
    "JobTokenAuth",
    "JobTokenSource",
    "RequestsTokenAuth",
    "SavedCredential",
    "TokenAuth",
    "TokenCache",
    "TokenError",
    "assertion_form",
    "private_jwk",
    "read_credential",
    "signed_assertion",
]


def __getattr__(name: str) -> Any:
    # The adapters import httpx or requests, which the server itself does not need.
    if name == "TokenAuth":
        from authserver.client.httpx_auth import TokenAuth

        return TokenAuth
    if name in ("JobTokenAuth", "JobTokenSource"):
        from authserver.client import federation

        return getattr(federation, name)
    if name == "RequestsTokenAuth":
        from authserver.client.requests_auth import RequestsTokenAuth

        return RequestsTokenAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
