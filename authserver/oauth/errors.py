"""The OAuth endpoints' errors, and the one place where errors there become RFC 6749 JSON.

Our errors subclass Authlib's (``error`` and ``status_code`` attributes): the
one answer to a failed client authentication, throttling, outages, oversized
or misdirected requests, bad registration metadata, a bad bearer token.
``oauth_errors`` renders them (and the domain's errors) on each endpoint;
``http_error`` and ``unexpected`` answer for Starlette's own 404/405 and for
anything unforeseen outside the API and the pages.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from authserver.errors import AuthserverError, Unavailable
from authserver.oauth.responses import json_response
from authserver.security.logsafe import loggable_path

log = logging.getLogger("authserver")
Endpoint = Callable[[Request], Awaitable[Response]]


def printable(text: str, *, limit: int = 64) -> str:
    """Restrict echoed input to the characters RFC 6749 allows in ``error_description``."""
    cleaned = "".join(ch if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\' else "?" for ch in text)
    return cleaned[:limit]


class InvalidClient(InvalidClientError):
    """The one answer to every client-authentication failure."""

    status_code = 401

    def __init__(self) -> None:
        super().__init__(description="Client authentication failed.")

    def get_headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            ("WWW-Authenticate", 'Basic realm="authserver", error="invalid_client"'),
        ]


class TooManyAttempts(OAuth2Error):
    """Too many failed authentications for this client_id or source: 429 with Retry-After."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(description="too many failed client authentications; retry later")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class TemporarilyUnavailable(OAuth2Error):
    """The database cannot be reached; the client should retry shortly."""

    error = "temporarily_unavailable"
    status_code = 503

    def __init__(self) -> None:
        super().__init__(description="the credential store is unreachable; retry shortly")

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", "1")]


class InvalidDpopProof(OAuth2Error):
    """RFC 9449 section 5: the DPoP proof is missing where required, malformed or invalid."""

    error = "invalid_dpop_proof"
    status_code = 400


class UseDpopNonce(OAuth2Error):
    """RFC 9449 section 8: the proof must carry this server's current nonce (sent along)."""

    error = "use_dpop_nonce"
    status_code = 400

    def __init__(self, nonce: str) -> None:
        super().__init__(description="send the DPoP proof again with the nonce given")
        self.nonce = nonce

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("DPoP-Nonce", self.nonce)]


class PayloadTooLarge(InvalidRequestError):
    """The request body exceeds ``max_body_bytes``."""

    status_code = 413


class MethodNotAllowed(InvalidRequestError):
    """Only POST is defined on this endpoint."""

    status_code = 405

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Allow", "POST")]


class InvalidClientMetadata(OAuth2Error):
    """RFC 7591 section 3.2.2: a metadata value is invalid or unsupported."""

    error = "invalid_client_metadata"
    status_code = 400

    def __init__(self, description: str) -> None:
        super().__init__(description=printable(description, limit=400))


class InvalidToken(OAuth2Error):
    """RFC 6750 section 3.1: the bearer token is missing, spent, expired or not for this client."""

    error = "invalid_token"
    status_code = 401

    def get_headers(self) -> list[tuple[str, str]]:
        return [
            *super().get_headers(),
            ("WWW-Authenticate", 'Bearer realm="authserver", error="invalid_token"'),
        ]


def error_response(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return json_response(status, body, headers)


def oauth_errors(endpoint: Endpoint) -> Endpoint:
    """Render ``OAuth2Error`` as RFC 6749 section 5.2 JSON and storage outages as 503."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except OAuth2Error as error:
            request.state.oauth_error = error.error
            return error_response(error)
        except Unavailable:
            request.state.oauth_error = TemporarilyUnavailable.error
            return error_response(TemporarilyUnavailable())
        except AuthserverError as error:
            request.state.oauth_error = "invalid_request"
            return error_response(InvalidRequestError(printable(error.message)))

    return wrapper


def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own errors (an unknown path, a wrong method) in RFC 6749's shape."""
    return json_response(
        exc.status_code,
        {
            "error": "not_found" if exc.status_code == 404 else "invalid_request",
            "error_description": exc.detail,
        },
        exc.headers,
    )


def unexpected(request: Request, exc: Exception) -> Response:
    """An unforeseen error: logged with its traceback, answered as ``server_error``."""
    log.exception("unhandled error on %s %s", request.method, loggable_path(request.url.path))
    return json_response(500, {"error": "server_error", "error_description": "internal error"})
