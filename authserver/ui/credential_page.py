"""``/ui/personal-clients/{id}``: one credential's own page — every field, where and how
much it was used, its history — and what its owner does with it: rename it, narrow its
roles, networks and expiry, rotate its secret (shown once), delete it.

Changes go through ``CredentialService`` with the session's ``Caller``, the API's own
update (``narrow_only``: the page never widens) and rotation; visibility is the API's
(the owner, or the admin role; anyone else gets 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.domain.credentials import UNSET, CredentialPatch, describe_duration
from authserver.domain.durations import parse_duration
from authserver.errors import InvalidArgument, PermissionDenied
from authserver.records import AuditEventRecord, CredentialUsage
from authserver.ui import render, sessions
from authserver.ui.access import signed_in_only
from authserver.ui.forms import Form, read_form
from authserver.ui.personal_clients import EVERYONE, OWN, Row, _ref, _row
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of

DAYS_SHOWN = 30  # tokens issued per day, over this many days
EVENTS_SHOWN = 20  # the newest audit events of the credential
GRACE_PRESETS = (("0s", "It stops at once"), ("1h", "1 hour"), ("1d", "1 day"), ("7d", "7 days"))


def grace_choices(limit: timedelta) -> list[tuple[str, str]]:
    """The grace periods ``max_rotation_grace`` allows; the limit itself when no preset is it."""
    allowed = [(v, label) for v, label in GRACE_PRESETS if _grace(v) <= limit]
    if limit > timedelta(0) and all(_grace(v) != limit for v, _ in allowed):
        allowed.append((f"{int(limit.total_seconds())}s", f"{describe_duration(limit)} (the most)"))
    return allowed


def _grace(value: str) -> timedelta:
    return timedelta(0) if value == "0s" else parse_duration(value)


@dataclass(frozen=True)
class Detail:
    """What the page shows of one credential."""

    row: Row
    usage: CredentialUsage
    per_day: list[tuple[date, int]]  # the last DAYS_SHOWN days, oldest first
    own: bool  # the signed-in person owns it (only the owner rotates: the secret is shown)
    events: list[AuditEventRecord]  # its own audit events, newest first (EVENTS_SHOWN)

    @property
    def total(self) -> int:
        return sum(n for _, n in self.per_day)

    @property
    def busiest(self) -> int:
        return max((n for _, n in self.per_day), default=0)

    @property
    def days_used(self) -> list[tuple[date, int]]:
        """Days with tokens, newest first."""
        return [(day, n) for day, n in reversed(self.per_day) if n]


async def _detail(request: Request, person: SignedIn, ref: str) -> Detail:
    services = services_of(request)
    caller = person.caller()

    def read() -> Detail:
        now = datetime.now(UTC)
        record = services.credentials.visible(caller=caller, ref=ref)
        owner = services.store.users.find(ref=record.user_id)
        return Detail(
            row=_row(record, owner, now, services.settings.max_idle),
            usage=services.credentials.usage(caller=caller, ref=record.id),
            per_day=services.credentials.issued_per_day(
                caller=caller, ref=record.id, days=DAYS_SHOWN, now=now
            ),
            own=record.user_id == person.user.id,
            events=services.audit.of_credential(caller=caller, ref=record.id, limit=EVENTS_SHOWN)[
                0
            ],
        )

    return await anyio.to_thread.run_sync(read)


def _edit_values(detail: Detail, form: Form | None) -> dict[str, object]:
    """What the change form shows: the credential as it is, or what the person sent."""
    record = detail.row.record
    if form is None:
        return {
            "name": record.display_name,
            "roles": list(record.scoped_roles),
            "networks": "\n".join(record.allow_source_cidr),
            "expiry": "keep",
            "expires_on": "",
        }
    return {
        "name": form.get("name"),
        "roles": form.all("role"),
        "networks": form.get("networks"),
        "expiry": form.get("expiry", "keep"),
        "expires_on": form.get("expires_on"),
    }


async def _page(
    request: Request,
    person: SignedIn,
    detail: Detail,
    *,
    form: Form | None = None,
    which: str = "",
    error: InvalidArgument | PermissionDenied | None = None,
) -> Response:
    services = services_of(request)
    record = detail.row.record
    now = datetime.now(UTC)
    notices = {
        "updated": "The changes were saved.",
        "unchanged": "Nothing was changed.",
    }
    last_day = ""
    if record.expires_time is not None:  # a new date must end before the current expiry
        last_day = (record.expires_time.astimezone(UTC).date() - timedelta(days=1)).isoformat()
    return await render.page(
        request,
        "detail.html",
        status_code=error.http_status if error is not None else 200,
        d=detail,
        record=record,
        now=now,
        back=OWN if detail.own else EVERYONE,
        notice=next((text for key, text in notices.items() if key in request.query_params), ""),
        values=_edit_values(detail, form if which == "edit" else None),
        grace=form.get("grace", "0s") if form is not None and which == "rotate" else "0s",
        graces=grace_choices(services.settings.rotation_grace_limit),
        which=which,
        error=error.describe(render.FIELD_NAMES) if error else "",
        error_field=error.field if error else None,
        today=now.date().isoformat(),
        last_day=last_day,
        may_keep_all=not record.scoped_roles,
    )


@signed_in_only
async def show(request: Request, person: SignedIn, sid: str) -> Response:
    detail = await _detail(request, person, _ref(request))
    return await _page(request, person, detail)


def _patch(detail: Detail, form: Form, now: datetime) -> CredentialPatch:
    """Only what the form changes; the rules (never wider, expiry only earlier) are the
    use case's."""
    record = detail.row.record
    name = form.get("name")
    chosen = sorted(set(form.all("role")))
    shown = sorted(set(record.scoped_roles) & set(detail.row.roles))  # checked at first
    if not record.scoped_roles and not chosen:
        roles: tuple[str, ...] | None = None  # still all of the owner's roles: unchanged
    else:
        roles = tuple(chosen) if chosen != shown else None
    networks = form.lines("networks")
    expiry = form.get("expiry", "keep")
    expires: datetime | None = None
    if expiry == "date":
        text = form.get("expires_on").strip()
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidArgument(
                "choose a date (YYYY-MM-DD)" if text else "choose the last day it works",
                field="expires_time",
            ) from None
        expires = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        if expires <= now:
            raise InvalidArgument("choose today or a later date", field="expires_time")
    elif expiry != "keep":
        raise InvalidArgument("choose one of the options", field="expires_time")
    return CredentialPatch(
        display_name=name if name != record.display_name else UNSET,
        scoped_roles=roles if roles is not None else UNSET,
        allow_source_cidr=networks if tuple(networks) != record.allow_source_cidr else UNSET,
        expires_time=expires if expires is not None else UNSET,
    )


@signed_in_only
async def edit(request: Request, person: SignedIn, sid: str) -> Response:
    """Rename, narrow: through the API's update, which refuses escalation and later expiry."""
    services = services_of(request)
    ref = _ref(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    detail = await _detail(request, person, ref)
    now = datetime.now(UTC)
    try:
        patch = _patch(detail, form, now)
        if patch.is_empty:
            return RedirectResponse(f"{OWN}/{ref}?unchanged=1", status_code=303)
        await anyio.to_thread.run_sync(
            lambda: services.credentials.update(
                caller=person.caller(), ref=ref, patch=patch, now=now, narrow_only=True
            )
        )
    except (InvalidArgument, PermissionDenied) as exc:
        return await _page(request, person, detail, form=form, which="edit", error=exc)
    return RedirectResponse(f"{OWN}/{ref}?updated=1", status_code=303)


@signed_in_only
async def rotate(request: Request, person: SignedIn, sid: str) -> Response:
    """A new secret, shown once on the creation's secret page; the old one works for the
    grace period chosen."""
    services = services_of(request)
    ref = _ref(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    detail = await _detail(request, person, ref)
    try:
        if not detail.own:
            raise PermissionDenied("only its owner may rotate it here: the new secret is shown")
        choice = form.get("grace", "0s")
        if choice not in dict(grace_choices(services.settings.rotation_grace_limit)):
            raise InvalidArgument("choose one of the options", field="grace")
        rotated = await anyio.to_thread.run_sync(
            lambda: services.credentials.rotate(
                caller=person.caller(),
                ref=ref,
                grace=_grace(choice),
                expires_in=None,
                now=datetime.now(UTC),
            )
        )
    except (InvalidArgument, PermissionDenied) as exc:
        return await _page(request, person, detail, form=form, which="rotate", error=exc)
    response = RedirectResponse(f"{OWN}/{rotated.record.id}/secret?rotated=1", status_code=303)
    sessions.hand_over(response, request, sid, rotated.record.id, rotated.secret)
    return response
