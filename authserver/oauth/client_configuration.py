"""``GET/PUT/DELETE /auth/v1/register/{client_id}``: RFC 7592 client configuration.

The registration access token acts with its credential's own powers, under the
same rules as every other change (the credential service's).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authserver.errors import InvalidArgument, NotFound, PermissionDenied
from authserver.oauth.client_metadata import metadata_document, parse_metadata, refused
from authserver.oauth.errors import InvalidClientMetadata, InvalidToken, oauth_errors
from authserver.oauth.registration import json_metadata, required_bearer
from authserver.oauth.responses import NO_STORE, json_response
from authserver.usecases.credentials import RegistrationAccess
from authserver.web.context import services_of
from authserver.web.source import source_address

if TYPE_CHECKING:
    from authserver.runtime.services import Services


def _refused() -> InvalidToken:
    return InvalidToken("unknown client or wrong registration access token")


async def _access(request: Request, services: Services) -> tuple[RegistrationAccess, str]:
    """The client named in the path, if the bearer is its registration access token."""
    token = required_bearer(request)
    client_id = request.path_params["client_id"]
    source = source_address(request, services.settings)
    access = await anyio.to_thread.run_sync(
        lambda: services.credentials.registration_access(
            client_id=client_id, token=token, source=source, now=datetime.now(UTC)
        )
    )
    if access is None:
        raise _refused()
    return access, token


@oauth_errors
async def read(request: Request) -> Response:
    """``GET``: the metadata, never a secret or its hash."""
    services = services_of(request)
    access, token = await _access(request, services)
    return json_response(200, metadata_document(services.settings, access.record, token), NO_STORE)


@oauth_errors
async def replace(request: Request) -> Response:
    """``PUT``: replacement of the writable metadata (``ClientMetadata.replacement``)."""
    services = services_of(request)
    access, token = await _access(request, services)
    record = access.record
    metadata = parse_metadata(await json_metadata(request))
    if metadata.client_id != record.client_id:
        raise InvalidClientMetadata("client_id: must be present and match the client")
    if metadata.token_endpoint_auth_method != (record.auth_method or "client_secret_basic"):
        raise InvalidClientMetadata("token_endpoint_auth_method: cannot be changed")
    if metadata.jwks is not None and metadata.jwks != list(record.jwks or []):
        raise InvalidClientMetadata("jwks: cannot be changed")
    now = datetime.now(UTC)
    try:
        updated = await anyio.to_thread.run_sync(
            lambda: services.credentials.update(
                caller=access.caller, ref=record.id, patch=metadata.replacement(now=now), now=now
            )
        )
    except NotFound:
        raise _refused() from None
    except (InvalidArgument, PermissionDenied) as exc:
        raise refused(exc) from None
    return json_response(200, metadata_document(services.settings, updated, token), NO_STORE)


@oauth_errors
async def remove(request: Request) -> Response:
    """``DELETE``: the same soft delete as everywhere."""
    services = services_of(request)
    access, _ = await _access(request, services)
    try:
        await anyio.to_thread.run_sync(
            lambda: services.credentials.delete(
                caller=access.caller, ref=access.record.id, now=datetime.now(UTC)
            )
        )
    except NotFound:
        raise _refused() from None
    return Response(status_code=204, headers=NO_STORE)
