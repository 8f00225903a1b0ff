"""One place where errors on the OAuth endpoints become RFC 6749 JSON."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.requests import Request
from starlette.responses import Response

from authserver.errors import AuthserverError, Unavailable
from authserver.oauth.adapter import TemporarilyUnavailable, error_response, printable

Endpoint = Callable[[Request], Awaitable[Response]]


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
