"""``POST /auth/v1/credentials/revoke``: report leaked secrets; each one found is revoked.

``{"credentials": ["secret-token:…", …]}`` with at most 1000 strings, no
authentication (whoever found a secret can kill it). The answer is always
``202 {}`` whatever matched, so it tells nothing about which strings were
secrets; reports are throttled per source.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio.to_thread
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.requests import Request
from starlette.responses import Response

from authserver.errors import AuthserverError
from authserver.oauth.errors import TooManyAttempts, oauth_errors, printable
from authserver.oauth.responses import NO_STORE, json_response
from authserver.security.throttle import source_key
from authserver.usecases.leaks import MAX_REPORTED
from authserver.web.body import json_object
from authserver.web.context import services_of
from authserver.web.source import source_address

PATH = "/auth/v1/credentials/revoke"
MAX_SECRET_LENGTH = 1024


@oauth_errors
async def report(request: Request) -> Response:
    services = services_of(request)
    source = source_address(request, services.settings)
    key = (source_key(source),)
    wait = await anyio.to_thread.run_sync(lambda: services.leak_reports.retry_after(key))
    if wait:
        raise TooManyAttempts(wait)
    # Every report counts: each costs lookups.
    await anyio.to_thread.run_sync(lambda: services.leak_reports.record_failure(key))
    try:
        # Room for MAX_REPORTED strings of MAX_SECRET_LENGTH (ours are about 200 bytes).
        body = await json_object(request, limit=MAX_REPORTED * (MAX_SECRET_LENGTH + 8))
    except AuthserverError as exc:
        raise InvalidRequestError(printable(exc.message, limit=200)) from None
    reported = body.get("credentials")
    if not isinstance(reported, list) or not all(isinstance(s, str) for s in reported):
        raise InvalidRequestError("expected an object with credentials, a list of strings")
    if len(reported) > MAX_REPORTED:
        raise InvalidRequestError(f"at most {MAX_REPORTED} credentials a report")
    secrets = [s.strip() for s in reported if len(s) <= MAX_SECRET_LENGTH]
    await anyio.to_thread.run_sync(
        lambda: services.leaks.report(
            secrets=secrets, source=str(source) if source else None, now=datetime.now(UTC)
        )
    )
    return json_response(202, {}, NO_STORE)
