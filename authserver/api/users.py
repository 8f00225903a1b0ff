"""ConductorOne's users API (``c1.api.user.v1``): get, list and search, as the caller may see.

``cone whoami`` reads ``/api/v1/auth/introspect`` and then ``GET /api/v1/users/{userId}``;
``cone get-user ID`` the latter. Both read ``userView.user``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver import wire
from authserver.api import bodies
from authserver.api.auth import bearer
from authserver.domain.credentials import Caller, has_control_characters
from authserver.errors import InvalidArgument, NotFound
from authserver.store.ids import is_record_id
from authserver.web.body import json_object
from authserver.web.context import services_of

if TYPE_CHECKING:
    from authserver.runtime.services import Services

SEARCH_FIELDS = ("query", "email", "ids", "pageSize", "pageToken")
MAX_IDS = 100


async def get(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    user_id: str = request.path_params["id"]
    if not is_record_id(user_id):
        raise NotFound(f"no user {user_id!r}")
    user = await anyio.to_thread.run_sync(
        lambda: services.directory.visible(caller=token.caller(), user_id=user_id)
    )
    return JSONResponse({"userView": {"user": wire.conductorone_user_json(user)}})


async def list_users(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    params = bodies.fields(request.query_params, allowed=("pageSize", "pageToken"), where="?")
    return await _page(
        services,
        token.caller(),
        after=bodies.decode_page_token(params.get("pageToken")),
        size=bodies.page_size(params.get("pageSize")),
    )


async def search(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    body = bodies.fields(await json_object(request), allowed=SEARCH_FIELDS)
    query = _short_text(body, "query")
    email = _short_text(body, "email")
    ids = body.get("ids")
    if ids is not None and (
        not isinstance(ids, list)
        or len(ids) > MAX_IDS
        or not all(isinstance(i, str) and not has_control_characters(i) for i in ids)
    ):
        raise InvalidArgument(f"ids: expected a list of at most {MAX_IDS} user ids")
    return await _page(
        services,
        token.caller(),
        ids=ids or None,
        email=email or None,
        query=query or None,
        after=bodies.decode_page_token(body.get("pageToken")),
        size=bodies.page_size(body.get("pageSize")),
    )


def _short_text(body: dict[str, Any], name: str) -> str | None:
    value = bodies.optional_string(body, name)
    if value is not None and (len(value) > 320 or has_control_characters(value)):
        raise InvalidArgument(f"{name}: at most 320 printable characters")
    return value


async def _page(
    services: Services,
    caller: Caller,
    *,
    ids: list[str] | None = None,
    email: str | None = None,
    query: str | None = None,
    after: str | None,
    size: int,
) -> Response:
    users, more = await anyio.to_thread.run_sync(
        lambda: services.directory.page(
            caller=caller, ids=ids, email=email, query=query, after_id=after, limit=size
        )
    )
    next_token = bodies.encode_page_token(users[-1].id) if more and users else ""
    return JSONResponse(
        {
            "list": [{"user": wire.conductorone_user_json(u)} for u in users],
            "nextPageToken": next_token,
        }
    )
