"""``POST /auth/v1/register``: RFC 7591 dynamic client registration.

Implemented here rather than through Authlib's ``ClientRegistrationEndpoint``:
it is synchronous (our storage calls run in worker threads), and its default
``introspect_client`` would echo stored secrets. The rules are the credential
service's, the same ones the management API and the CLI use. RFC 7592
(read, update, delete a registration) is ``client_configuration``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authserver.domain.credentials import Caller
from authserver.errors import (
    AuthserverError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from authserver.oauth.client_metadata import metadata_document, parse_metadata, refused
from authserver.oauth.errors import InvalidClientMetadata, InvalidToken, oauth_errors
from authserver.oauth.responses import NO_STORE, json_response
from authserver.usecases.credentials import Registration
from authserver.web.bearer import bearer_token
from authserver.web.body import json_object
from authserver.web.context import services_of

if TYPE_CHECKING:
    from authserver.runtime.services import Services


def required_bearer(request: Request) -> str:
    token = bearer_token(request.headers)
    if token is None:
        raise InvalidToken("a Bearer token is required")
    return token


async def json_metadata(request: Request) -> dict[str, Any]:
    """The JSON body (RFC 7591 §3.1); a malformed one is ``invalid_client_metadata``.

    A JSON body is read whatever its Content-Type claims (``curl -d`` says a form);
    a body that is not JSON and not labelled JSON, such as a form, is told what to send.
    """
    try:
        return await json_object(request)
    except AuthserverError as exc:
        if exc.message.startswith("malformed JSON body") and not _labelled_json(request):
            raise InvalidClientMetadata(
                "expected a JSON body (Content-Type: application/json)"
            ) from None
        raise InvalidClientMetadata(exc.message) from None


def _labelled_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def _registrar(services: Services, token: str) -> tuple[Caller, str, str | None]:
    """(caller, owner id, initial-token hash) for an access token or an initial access token."""
    if token.count(".") == 2:
        active = await services.active_token(token)
        if active is None:
            raise InvalidToken("the access token is invalid, expired or revoked")
        return active.caller(), active.state.user_id, None
    initial = await anyio.to_thread.run_sync(
        lambda: services.credentials.initial_access(token=token, now=datetime.now(UTC))
    )
    if initial is None:
        raise InvalidToken("the initial access token is unknown, spent or expired")
    return initial


@oauth_errors
async def register(request: Request) -> Response:
    """``POST /auth/v1/register``."""
    services = services_of(request)
    caller, user_id, initial_hash = await _registrar(services, required_bearer(request))
    metadata = parse_metadata(await json_metadata(request))

    def work() -> Registration:
        return services.credentials.register(
            caller=caller,
            owner_id=user_id,
            new=metadata.new_credential(),
            auth_method=metadata.token_endpoint_auth_method,
            jwks=metadata.jwks,
            initial_token_hash=initial_hash,
            now=datetime.now(UTC),
        )

    try:
        registration = await anyio.to_thread.run_sync(work)
    except (Unauthenticated, NotFound):
        raise InvalidToken("the bearer token cannot register clients") from None
    except (InvalidArgument, PermissionDenied) as exc:
        raise refused(exc) from None
    document = metadata_document(services.settings, registration.record)
    if registration.secret is not None:
        document["client_secret"] = registration.secret
    document["registration_access_token"] = registration.registration_access_token
    return json_response(201, document, NO_STORE)
