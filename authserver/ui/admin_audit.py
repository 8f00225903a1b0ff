"""``/ui/admin/audit``: the audit trail kept in the database, for holders of the admin role —
filtered by person, credential, event and time, newest first, paged on the server."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authserver.domain.credentials import has_control_characters
from authserver.errors import NotFound
from authserver.records import AuditEventRecord
from authserver.security.audit import EVENTS
from authserver.store.audit import AuditFilter
from authserver.store.ids import is_record_id
from authserver.ui import render
from authserver.ui.access import admin_only
from authserver.ui.forms import filter_day
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of

BASE = "/ui/admin/audit"
PAGE_SIZE = 50
FIELDS = ("person", "credential", "event", "since", "until")


def _text(request: Request, name: str, limit: int = 320) -> str:
    value = request.query_params.get(name, "").strip()[:limit]
    return "" if has_control_characters(value) else value


@admin_only
async def audit_page(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    values = {name: _text(request, name) for name in FIELDS}
    problems: list[str] = []
    since = filter_day(values["since"], "From", problems)
    until = filter_day(values["until"], "To", problems, end=True)
    before = request.query_params.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) < 19 else None

    def read() -> tuple[list[AuditEventRecord], bool, dict[str, str]]:
        who = values["person"]
        if who:
            try:
                who = services.store.users.find(ref=who).id
            except NotFound:
                pass  # a user deleted since keeps their id in the trail
        refs: tuple[str, ...] | None = None
        if values["credential"]:
            refs = (values["credential"],)
            found = (
                services.store.credentials.find(client_id=values["credential"])
                if not is_record_id(values["credential"])
                else None
            )
            if found is not None:
                refs = (found[0].id, found[0].client_id)
            elif is_record_id(values["credential"]):
                try:
                    record = services.store.credentials.get(id=values["credential"])
                    refs = (record.id, record.client_id)
                except NotFound:
                    pass
        where = AuditFilter(
            person=who or None,
            credential=refs,
            events=[values["event"]] if values["event"] else None,
            since=since,
            until=until,
        )
        events, more = services.audit.page(
            caller=person.caller(), where=where, before_id=before_id, limit=PAGE_SIZE
        )
        # The people on this page by e-mail (the id stays on hover; a deleted user's id alone).
        ids = sorted({i for e in events for i in (e.actor, e.user_id) if i and is_record_id(i)})
        users, _ = services.store.users.page(ids=ids, after_id=None, limit=len(ids) or 1)
        return events, more, {user.id: user.email for user in users}

    events, more, emails = await anyio.to_thread.run_sync(read)
    keep = {name: value for name, value in values.items() if value}
    older = f"{BASE}?{urlencode({**keep, 'before': str(events[-1].id)})}" if more and events else ""
    newest = f"{BASE}?{urlencode(keep)}" if before_id is not None else ""
    return await render.page(
        request,
        "admin_audit.html",
        events=events,
        emails=emails,
        values=values,
        known_events=EVENTS,
        problems=problems,
        older=older,
        newest=newest,
        retention=services.settings.audit_retention,
        now=datetime.now(UTC),
    )
