"""``/api/v1/iam/federation_trusts``: parse, call the trust service, render (SPEC section 12).

Shaped like the personal clients' API: create → ``{"trust"}``, list →
``{"list","nextPageToken"}`` (the caller's own), get, update with ``updateMask``,
delete → ``{}``. A trust has no secret, so nothing here is shown only once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver import wire
from authserver.api import bodies
from authserver.api.auth import bearer
from authserver.domain.credentials import UNSET
from authserver.domain.federation import NewTrust, TrustPatch
from authserver.errors import InvalidArgument
from authserver.web.body import json_object
from authserver.web.context import services_of
from authserver.web.paths import record_id

CREATE_FIELDS = (
    "displayName",
    "issuer",
    "audience",
    "condition",
    "allowSourceCidr",
    "scopedRoles",
    "expires",
    "requireDpop",
)
#: Writable fields of a trust (``updateMask`` paths).
WRITABLE = (
    "displayName",
    "issuer",
    "audience",
    "condition",
    "allowSourceCidr",
    "scopedRoles",
    "expiresTime",
    "requireDpop",
)


def _record_id(request: Request) -> str:
    return record_id(request, "federation trust")


def _string(body: dict[str, object], name: str) -> str:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{name}: expected a string")
    return value or ""


async def create(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    body = bodies.fields(await json_object(request), allowed=CREATE_FIELDS)
    new = NewTrust(
        issuer=_string(body, "issuer"),
        condition=_string(body, "condition"),
        audience=bodies.optional_string(body, "audience"),
        **bodies.credential_fields(body),
    )
    created = await anyio.to_thread.run_sync(
        lambda: services.trusts.create(
            caller=token.caller(), owner_id=token.state.user_id, new=new, now=datetime.now(UTC)
        )
    )
    return JSONResponse({"trust": wire.trust_json(created)})


async def list_own(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    params = bodies.fields(request.query_params, allowed=("pageSize", "pageToken"), where="?")
    size = bodies.page_size(params.get("pageSize"))
    after = bodies.decode_page_token(params.get("pageToken"))
    records, more = await anyio.to_thread.run_sync(
        lambda: services.trusts.page(caller=token.caller(), after_id=after, limit=size)
    )
    return JSONResponse(bodies.listing(records, more, wire.trust_json))


async def get(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    ref = _record_id(request)
    record = await anyio.to_thread.run_sync(
        lambda: services.trusts.visible(caller=token.caller(), ref=ref)
    )
    return JSONResponse({"trust": wire.trust_json(record)})


async def update(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    paths, trust = bodies.update_request(await json_object(request), "trust", WRITABLE)
    own = {name: _string(trust, name) for name in ("issuer", "audience", "condition")}
    patch = TrustPatch(
        credential=bodies.credential_patch(trust, paths),
        issuer=own["issuer"] if "issuer" in paths else UNSET,
        audience=own["audience"] if "audience" in paths else UNSET,
        condition=own["condition"] if "condition" in paths else UNSET,
    )
    ref = _record_id(request)
    updated = await anyio.to_thread.run_sync(
        lambda: services.trusts.update(
            caller=token.caller(), ref=ref, patch=patch, now=datetime.now(UTC)
        )
    )
    return JSONResponse({"trust": wire.trust_json(updated)})


async def delete(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    ref = _record_id(request)
    await anyio.to_thread.run_sync(
        lambda: services.trusts.delete(caller=token.caller(), ref=ref, now=datetime.now(UTC))
    )
    return JSONResponse({})
