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
from authserver.domain.durations import parse_proto_duration
from authserver.domain.federation import NewTrust, TrustPatch
from authserver.errors import InvalidArgument, NotFound
from authserver.store.ids import is_record_id
from authserver.web.body import json_object
from authserver.web.context import services_of

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
    ref: str = request.path_params["id"]
    if not is_record_id(ref):
        raise NotFound(f"no federation trust {ref!r}")
    return ref


def _string(body: dict[str, object], name: str) -> str:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{name}: expected a string")
    return value or ""


async def create(request: Request) -> Response:
    services = services_of(request)
    token = await bearer(request, services)
    body = bodies.fields(await json_object(request), allowed=CREATE_FIELDS)
    expires = bodies.optional_string(body, "expires")
    new = NewTrust(
        issuer=_string(body, "issuer"),
        condition=_string(body, "condition"),
        audience=bodies.optional_string(body, "audience"),
        display_name=bodies.optional_string(body, "displayName"),
        allow_source_cidr=bodies.string_list(body, "allowSourceCidr"),
        scoped_roles=bodies.string_list(body, "scopedRoles"),
        expires_in=parse_proto_duration(expires) if expires else None,
        require_dpop=bool(bodies.optional_bool(body, "requireDpop")),
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
    next_token = bodies.encode_page_token(records[-1].id) if more and records else ""
    return JSONResponse(
        {"list": [wire.trust_json(r) for r in records], "nextPageToken": next_token}
    )


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
    body = bodies.fields(await json_object(request), allowed=("trust", "updateMask"))
    mask = body.get("updateMask")
    if mask is None:
        raise InvalidArgument("updateMask: required")
    paths = bodies.parse_update_mask(mask, WRITABLE)
    trust = body.get("trust") or {}
    if not isinstance(trust, dict):
        raise InvalidArgument("trust: expected an object")
    trust = bodies.fields(trust, allowed=WRITABLE, where="trust.")
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
