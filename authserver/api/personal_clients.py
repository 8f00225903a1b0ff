"""``/api/v1/iam/personal_clients`` and friends: parse, call the credential service, render."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver import wire
from authserver.api import bodies
from authserver.api.auth import bearer
from authserver.domain.credentials import NewCredential, has_control_characters
from authserver.domain.durations import parse_proto_duration
from authserver.errors import InvalidArgument, PermissionDenied
from authserver.web.body import json_object
from authserver.web.context import services_of
from authserver.web.paths import record_id

if TYPE_CHECKING:
    from authserver.runtime.services import Services

CREATE_FIELDS = ("displayName", "allowSourceCidr", "scopedRoles", "expires", "requireDpop")


def _no_store(document: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(
        document, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


def _record_id(request: Request) -> str:
    """The ``{id}`` path parameter; only record ids name a personal client here."""
    return record_id(request, "personal client")


async def create(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    body = bodies.fields(await json_object(request), allowed=CREATE_FIELDS)
    new = NewCredential(**bodies.credential_fields(body))
    created = await anyio.to_thread.run_sync(
        lambda: services.credentials.create(
            caller=token.caller(), owner_id=token.state.user_id, new=new, now=datetime.now(UTC)
        )
    )
    return _no_store({"client": wire.client_json(created.record), "clientSecret": created.secret})


async def list_own(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    params = bodies.fields(request.query_params, allowed=("pageSize", "pageToken"), where="?")
    size = bodies.page_size(params.get("pageSize"))
    after = bodies.decode_page_token(params.get("pageToken"))
    return await _page(services, user_ids=[token.state.user_id], query=None, after=after, size=size)


async def search(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    if not services.credentials.is_admin(token.caller()):
        raise PermissionDenied("searching personal clients requires the admin role")
    body = bodies.fields(
        await json_object(request), allowed=("pageSize", "pageToken", "query", "users")
    )
    users = body.get("users")
    user_ids: list[str] | None = None
    if users is not None:
        if not isinstance(users, list):
            raise InvalidArgument('users: expected a list of {"id": …} objects')
        user_ids = []
        for entry in users:
            ref = entry.get("id") if isinstance(entry, dict) else None
            if not isinstance(ref, str) or set(entry) - {"id"} or has_control_characters(ref):
                raise InvalidArgument('users: expected a list of {"id": …} objects')
            user_ids.append(ref)
    query = bodies.optional_string(body, "query")
    if query is not None and (len(query) > 200 or has_control_characters(query)):
        raise InvalidArgument("query: at most 200 printable characters")
    return await _page(
        services,
        user_ids=user_ids or None,
        query=query,
        after=bodies.decode_page_token(body.get("pageToken")),
        size=bodies.page_size(body.get("pageSize")),
    )


async def _page(
    services: Services,
    *,
    user_ids: list[str] | None,
    query: str | None,
    after: str | None,
    size: int,
) -> Response:
    records, more = await anyio.to_thread.run_sync(
        lambda: services.store.credentials.page(
            user_ids=user_ids, name_query=query, after_id=after, limit=size
        )
    )
    return JSONResponse(bodies.listing(records, more, wire.client_json))


async def get(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    ref = _record_id(request)
    record = await anyio.to_thread.run_sync(
        lambda: services.credentials.visible(caller=token.caller(), ref=ref)
    )
    return JSONResponse({"client": wire.client_json(record)})


async def usage(request: Request) -> Response:
    """``GET …/{id}/usage``: where and when the credential minted tokens (as ``get`` sees it)."""
    services = services_of(request)
    token = await bearer(request, services)
    ref = _record_id(request)
    found = await anyio.to_thread.run_sync(
        lambda: services.credentials.usage(caller=token.caller(), ref=ref)
    )
    return JSONResponse(wire.usage_json(found))


async def update(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    paths, client = bodies.update_request(await json_object(request), "client")
    patch = bodies.credential_patch(client, paths)
    ref = _record_id(request)
    updated = await anyio.to_thread.run_sync(
        lambda: services.credentials.update(
            caller=token.caller(), ref=ref, patch=patch, now=datetime.now(UTC)
        )
    )
    return JSONResponse({"client": wire.client_json(updated)})


async def delete(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    ref = _record_id(request)
    await anyio.to_thread.run_sync(
        lambda: services.credentials.delete(caller=token.caller(), ref=ref, now=datetime.now(UTC))
    )
    return JSONResponse({})


async def introspect(request: Request) -> Response:
    """``GET /api/v1/auth/introspect``: who the bearer token speaks for."""
    services = services_of(request)
    token = await bearer(request, services)
    return JSONResponse(
        {
            "principleId": token.state.user_id,
            "userId": token.state.user_id,
            "roles": list(token.roles),
            "permissions": [],
            "features": [],
        }
    )


async def rotate(request: Request) -> Response:
    """``POST …/{id}/rotate``: a new secret for the same credential, shown once."""
    services = services_of(request)
    token = await bearer(request, services)
    body = bodies.fields(await json_object(request), allowed=("gracePeriod", "expires"))
    grace = bodies.optional_string(body, "gracePeriod")
    expires = bodies.optional_string(body, "expires")
    try:
        grace_period = parse_proto_duration(grace) if grace and grace != "0s" else timedelta(0)
    except InvalidArgument as exc:
        raise exc.about("grace") from None
    ref = _record_id(request)
    rotated = await anyio.to_thread.run_sync(
        lambda: services.credentials.rotate(
            caller=token.caller(),
            ref=ref,
            grace=grace_period,
            expires_in=parse_proto_duration(expires) if expires else None,
            now=datetime.now(UTC),
        )
    )
    return _no_store({"client": wire.client_json(rotated.record), "clientSecret": rotated.secret})
