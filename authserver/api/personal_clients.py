"""``/api/v1/iam/personal_clients`` and friends: parse, delegate to ``manage``, render."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver import manage, wire
from authserver.api import bodies
from authserver.api.auth import bearer, caller_of, is_admin
from authserver.domain.credentials import (
    WRITABLE,
    check_may_manage,
    has_control_characters,
    parse_update_mask,
)
from authserver.domain.durations import parse_proto_duration
from authserver.domain.roles import effective_roles
from authserver.errors import InvalidArgument, NotFound, PermissionDenied
from authserver.services import Services
from authserver.store.repository import ClientRecord
from authserver.tokens import ActiveToken

CREATE_FIELDS = ("displayName", "allowSourceCidr", "scopedRoles", "expires")
READ_ONLY = ("id", "clientId", "userId", "lastUsedAt", "createdAt", "updatedAt", "deletedAt")


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _no_store(document: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(
        document, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


async def _visible_client(services: Services, token: ActiveToken, client_id: str) -> ClientRecord:
    """The live credential ``client_id`` if the caller owns it or is admin; NotFound otherwise."""
    if not bodies.is_record_id(client_id):
        raise NotFound(f"no personal client {client_id!r}")
    try:
        record = await anyio.to_thread.run_sync(lambda: services.repo.get_client(id=client_id))
    except NotFound:
        raise NotFound(f"no personal client {client_id!r}") from None
    if record.deleted_at is not None:
        raise NotFound(f"no personal client {client_id!r}")
    if record.user_id != token.state.user_id and not is_admin(token, services):
        raise NotFound(f"no personal client {client_id!r}")
    return record


async def create(request: Request) -> Response:
    services = _services(request)
    token = await bearer(request, services)
    body = bodies.fields(await bodies.json_object(request), allowed=CREATE_FIELDS)
    expires = bodies.optional_string(body, "expires")
    expires_in = parse_proto_duration(expires) if expires else None
    display_name = bodies.optional_string(body, "displayName")
    cidrs = bodies.string_list(body, "allowSourceCidr")
    scoped = bodies.string_list(body, "scopedRoles")

    def work() -> tuple[ClientRecord, str]:
        owner = services.repo.find_user(ref=token.state.user_id)
        return manage.create_credential(
            services.repo,
            services.hasher,
            services.settings,
            caller=caller_of(token),
            owner=owner,
            display_name=display_name,
            allow_source_cidr=cidrs,
            scoped_roles=scoped,
            expires_in=expires_in,
            now=datetime.now(UTC),
        )

    record, secret = await anyio.to_thread.run_sync(work)
    return _no_store({"client": wire.client_json(record), "clientSecret": secret})


async def list_own(request: Request) -> Response:
    services = _services(request)
    token = await bearer(request, services)
    params = request.query_params
    for name in params:
        if bodies.camel(name) not in ("pageSize", "pageToken"):
            raise InvalidArgument(f"unknown query parameter {name!r}")
    size = bodies.page_size(params.get("pageSize", params.get("page_size")))
    after = bodies.decode_page_token(params.get("pageToken", params.get("page_token")))
    return await _page(services, user_ids=[token.state.user_id], query=None, after=after, size=size)


async def search(request: Request) -> Response:
    services = _services(request)
    token = await bearer(request, services)
    if not is_admin(token, services):
        raise PermissionDenied("searching personal clients requires the admin role")
    body = bodies.fields(
        await bodies.json_object(request), allowed=("pageSize", "pageToken", "query", "users")
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
        lambda: services.repo.page_clients(
            user_ids=user_ids, name_query=query, after_id=after, limit=size
        )
    )
    next_token = bodies.encode_page_token(records[-1].id) if more and records else ""
    return JSONResponse(
        {"list": [wire.client_json(r) for r in records], "nextPageToken": next_token}
    )


async def get(request: Request) -> Response:
    services = _services(request)
    token = await bearer(request, services)
    record = await _visible_client(services, token, request.path_params["id"])
    return JSONResponse({"client": wire.client_json(record)})


async def update(request: Request) -> Response:
    services = _services(request)
    token = await bearer(request, services)
    body = bodies.fields(await bodies.json_object(request), allowed=("client", "updateMask"))
    mask = body.get("updateMask")
    if mask is None:
        raise InvalidArgument("updateMask: required")
    paths = parse_update_mask(mask)
    client = body.get("client") or {}
    if not isinstance(client, dict):
        raise InvalidArgument("client: expected an object")
    client = bodies.fields(client, allowed=WRITABLE, ignored=READ_ONLY, where="client.")
    values: dict[str, Any] = {
        "displayName": bodies.optional_string(client, "displayName"),
        "allowSourceCidr": bodies.string_list(client, "allowSourceCidr"),
        "scopedRoles": bodies.string_list(client, "scopedRoles"),
        "expiresTime": bodies.optional_timestamp(client, "expiresTime"),
    }
    record = await _visible_client(services, token, request.path_params["id"])

    updated = await anyio.to_thread.run_sync(
        lambda: manage.update_credential(
            services.repo,
            record=record,
            caller=caller_of(token),
            paths=paths,
            values=values,
            now=datetime.now(UTC),
        )
    )
    services.forget_credential(client_id=updated.client_id)
    return JSONResponse({"client": wire.client_json(updated)})


async def delete(request: Request) -> Response:
    services = _services(request)
    token = await bearer(request, services)
    record = await _visible_client(services, token, request.path_params["id"])

    def work() -> None:
        owner = services.repo.find_user(ref=record.user_id)
        caller = caller_of(token)
        check_may_manage(caller, effective_roles(owner.roles, record.scoped_roles))
        deleted = services.repo.delete_client(id=record.id, now=datetime.now(UTC))
        manage.audit_credential("credential_deleted", deleted, caller)

    await anyio.to_thread.run_sync(work)
    services.forget_credential(client_id=record.client_id)
    return JSONResponse({})


async def introspect(request: Request) -> Response:
    """``GET /api/v1/auth/introspect``: who the bearer token speaks for."""
    services = _services(request)
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
