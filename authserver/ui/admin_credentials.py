"""``/ui/admin/credentials``: everyone's credentials for holders of the admin role —
filtered, sorted and paged on the server; delete one or a selection after a page that
names them. Deleting goes through ``CredentialService.delete`` with the admin's ``Caller``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import anyio.to_thread
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.domain import roles
from authserver.domain.credentials import describe_duration, has_control_characters
from authserver.store.ids import is_record_id
from authserver.store.inventory import SORTS, InventoryFilter, InventoryItem
from authserver.ui import render, sessions
from authserver.ui.access import admin_only
from authserver.ui.forms import filter_day, read_form
from authserver.usecases.inventory import MAX_SELECTION
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of

BASE = "/ui/admin/credentials"
PAGE_SIZE = 50
SORT_LABELS = {
    "created": "Newest first",
    "created-oldest": "Oldest first",
    "name": "Name",
    "owner": "Owner",
    "expires": "Expiring soonest",
    "last-used": "Most recently used",
    "least-used": "Least recently used",
}
FLAGS = ("never_used", "outside_policy", "network_locked", "requires_dpop")


@dataclass(frozen=True)
class Filters:
    """The filter form as sent (for showing it again and the pager's links) and as a query."""

    values: dict[str, str]
    where: InventoryFilter
    sort: str
    page: int
    problems: tuple[str, ...]


def _filters(params: QueryParams, max_lifetime: timedelta | None) -> Filters:
    owner = params.get("owner", "").strip()[:200]
    if has_control_characters(owner):
        owner = ""
    problems: list[str] = []
    expiring = params.get("expiring_before", "").strip()
    unused = params.get("unused_since", "").strip()
    flags = {name: params.get(name) == "1" for name in FLAGS}
    sort = params.get("sort", "created")
    sort = sort if sort in SORTS else "created"
    try:
        page = max(1, min(int(params.get("page", "1")), 1_000_000))
    except ValueError:
        page = 1
    where = InventoryFilter(
        owner=owner or None,
        expiring_before=filter_day(expiring, "Expiring before", problems),
        unused_since=filter_day(unused, "Unused since", problems),
        never_used=flags["never_used"],
        longer_than=max_lifetime if flags["outside_policy"] and max_lifetime else None,
        network_locked=flags["network_locked"],
        requires_dpop=flags["requires_dpop"],
    )
    values = {
        "owner": owner,
        "expiring_before": expiring if where.expiring_before else "",
        "unused_since": unused if where.unused_since else "",
        **{name: "1" for name, on in flags.items() if on},
    }
    return Filters(values, where, sort, page, tuple(problems))


@dataclass(frozen=True)
class Row:
    """One line of the inventory, with what the page says about it."""

    item: InventoryItem
    roles: tuple[str, ...]
    reduced: bool
    expired: bool
    outside_policy: bool


def _row(item: InventoryItem, now: datetime, max_lifetime: timedelta | None) -> Row:
    return Row(
        item=item,
        roles=tuple(sorted(roles.effective_roles(item.owner.roles, item.scoped_roles))),
        reduced=bool(item.scoped_roles),
        expired=item.expires_time is not None and item.expires_time <= now,
        outside_policy=max_lifetime is not None
        and (item.expires_time is None or item.expires_time - item.lifetime_from > max_lifetime),
    )


@admin_only
async def inventory(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    max_lifetime = services.settings.max_lifetime
    filters = _filters(request.query_params, max_lifetime)
    found, total = await anyio.to_thread.run_sync(
        lambda: services.inventory.page(
            caller=person.caller(),
            where=filters.where,
            sort=filters.sort,
            offset=(filters.page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
    )
    now = datetime.now(UTC)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    keep = {**filters.values, **({"sort": filters.sort} if filters.sort != "created" else {})}

    def link(page: int) -> str:
        return f"{BASE}?{urlencode({**keep, 'page': str(page)})}"

    deleted = request.query_params.get("deleted", "")
    notice = f"{deleted} credential{'s' * (deleted != '1')} deleted." if deleted.isdigit() else ""
    return await render.page(
        request,
        "admin_credentials.html",
        rows=[_row(item, now, max_lifetime) for item in found],
        total=total,
        page=filters.page,
        pages=pages,
        previous=link(filters.page - 1) if filters.page > 1 else "",
        next=link(filters.page + 1) if filters.page < pages else "",
        values=filters.values,
        sort=filters.sort,
        sorts=list(SORT_LABELS.items()),
        problems=filters.problems,
        policy=describe_duration(max_lifetime) if max_lifetime else "",
        here=f"{BASE}?{urlencode(keep)}" if keep else BASE,
        notice=notice,
        now=now,
    )


def _ids(values: list[str]) -> list[str]:
    return [ref for ref in dict.fromkeys(values) if is_record_id(ref)][:MAX_SELECTION]


def _back(value: str) -> str:
    """Back to the inventory as it was filtered: only a path of this page."""
    return value if value.startswith(f"{BASE}?") or value == BASE else BASE


@admin_only
async def confirm_delete(request: Request, person: SignedIn, sid: str) -> Response:
    """The page that names what would be deleted (a GET: it changes nothing)."""
    services = services_of(request)
    ids = _ids(request.query_params.getlist("id"))
    named = await anyio.to_thread.run_sync(
        lambda: services.inventory.named(caller=person.caller(), ids=ids)
    )
    now = datetime.now(UTC)
    return await render.page(
        request,
        "admin_delete.html",
        rows=[_row(item, now, services.settings.max_lifetime) for item in named],
        back=_back(request.query_params.get("back", BASE)),
        now=now,
    )


@admin_only
async def delete(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    ids = _ids(form.all("id"))
    deleted = await anyio.to_thread.run_sync(
        lambda: services.inventory.delete(caller=person.caller(), ids=ids, now=datetime.now(UTC))
    )
    back = _back(form.get("back", BASE))
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}deleted={len(deleted)}", status_code=303)
