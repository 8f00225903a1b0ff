"""``/ui/personal-clients``: a person's credentials (everyone's for admins), create, delete.

Every change goes through ``CredentialService`` with the session's ``Caller``,
the same rules and audit lines as the API and the CLI; lists read the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.domain import roles
from authserver.domain.credentials import (
    NewCredential,
    describe_duration,
    has_control_characters,
)
from authserver.errors import InvalidArgument, PermissionDenied
from authserver.records import ClientRecord, UserRecord
from authserver.store.ids import is_record_id
from authserver.ui import render, sessions
from authserver.ui.access import signed_in_only
from authserver.ui.forms import Form, read_form
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of
from authserver.web.paths import record_id

PAGE_SIZE = 25
OWN = "/ui/personal-clients"
EVERYONE = "/ui/personal-clients/all"
EXPIRY_PRESETS = {"30d": timedelta(days=30), "90d": timedelta(days=90), "never": None}
PRESET_LABELS = {"30d": "30 days", "90d": "90 days", "never": "Never"}


def expiry_presets(max_lifetime: timedelta | None) -> list[tuple[str, str]]:
    """The presets the lifetime policy allows; the policy's maximum when it allows none."""
    allowed = [
        (value, PRESET_LABELS[value])
        for value, length in EXPIRY_PRESETS.items()
        if max_lifetime is None or (length is not None and length <= max_lifetime)
    ]
    if max_lifetime is not None and not any(value == "30d" for value, _ in allowed):
        allowed.insert(0, ("max", f"{describe_duration(max_lifetime)} (the most allowed)"))
    return allowed


@dataclass(frozen=True)
class Row:
    """One line of the list: the credential, its owner, and what it may do now."""

    record: ClientRecord
    owner: UserRecord
    roles: tuple[str, ...]
    reduced: bool
    expired: bool
    idle_at: datetime | None = None  # when, unused until then, it stops working ([policy])


def _row(
    record: ClientRecord, owner: UserRecord, now: datetime, max_idle: timedelta | None = None
) -> Row:
    return Row(
        record=record,
        owner=owner,
        roles=tuple(sorted(roles.effective_roles(owner.roles, record.scoped_roles))),
        reduced=bool(record.scoped_roles),
        expired=record.expires_time is not None and record.expires_time <= now,
        idle_at=(record.last_used_at or record.created_at) + max_idle if max_idle else None,
    )


@signed_in_only
async def list_own(request: Request, person: SignedIn, sid: str) -> Response:
    return await _list(request, person, everyone=False)


@signed_in_only
async def list_everyone(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    if not services.credentials.is_admin(person.caller()):
        raise PermissionDenied(
            f"Only people holding the {services.settings.admin_role} role see everyone's "
            "personal clients."
        )
    return await _list(request, person, everyone=True)


async def _list(request: Request, person: SignedIn, *, everyone: bool) -> Response:
    services = services_of(request)
    before = request.query_params.get("before")
    before = before if before and is_record_id(before) else None
    query = request.query_params.get("q", "").strip()[:200] if everyone else ""
    if has_control_characters(query):
        query = ""
    found, more = await anyio.to_thread.run_sync(
        lambda: services.store.credentials.newest_first(
            user_id=None if everyone else person.user.id,
            query=query or None,
            before_id=before,
            limit=PAGE_SIZE,
        )
    )
    now = datetime.now(UTC)
    rows = [_row(record, owner, now, services.settings.max_idle) for record, owner in found]
    base = EVERYONE if everyone else OWN
    older = (
        f"{base}?{urlencode({'before': rows[-1].record.id, **({'q': query} if query else {})})}"
        if more and rows
        else ""
    )
    newest = (f"{base}?{urlencode({'q': query})}" if query else base) if before else ""
    notice = "The personal client was deleted." if request.query_params.get("deleted") else ""
    return await render.page(
        request,
        "list.html",
        rows=rows,
        everyone=everyone,
        q=query,
        older=older,
        newest=newest,
        notice=notice,
        now=now,
    )


def _form_values(form: Form | None, person: SignedIn) -> dict[str, object]:
    """What the create form shows: the defaults, or what the person sent."""
    if form is None:
        return {
            "name": "",
            "roles": [],
            "networks": "",
            "expiry": "30d",
            "expires_on": "",
            "require_dpop": False,
        }
    return {
        "name": form.get("name"),
        "roles": form.all("role"),
        "networks": form.get("networks"),
        "expiry": form.get("expiry", "30d"),
        "expires_on": form.get("expires_on"),
        "require_dpop": form.get("require_dpop") == "1",
    }


async def _new_page(
    request: Request,
    person: SignedIn,
    form: Form | None = None,
    *,
    error: InvalidArgument | PermissionDenied | None = None,
) -> Response:
    presets = expiry_presets(services_of(request).settings.max_lifetime)
    values = _form_values(form, person)
    if values["expiry"] not in {value for value, _ in presets} | {"date"}:
        values["expiry"] = presets[0][0]  # the default preset is beyond the policy
    return await render.page(
        request,
        "new.html",
        status_code=400 if error is not None else 200,
        values=values,
        own_roles=sorted(person.user.roles),
        error=error.describe(render.FIELD_NAMES) if error else "",
        error_field=error.field if error else None,
        error_message=error.message if error else "",
        today=datetime.now(UTC).date().isoformat(),
        presets=presets,
        last_day=_last_day(services_of(request).settings.max_lifetime),
    )


def _last_day(max_lifetime: timedelta | None) -> str:
    """The last day the date field offers: one whose end is within the policy."""
    if max_lifetime is None:
        return ""
    return ((datetime.now(UTC) + max_lifetime).date() - timedelta(days=1)).isoformat()


@signed_in_only
async def new_form(request: Request, person: SignedIn, sid: str) -> Response:
    return await _new_page(request, person)


def _expires_in(
    form: Form, now: datetime, max_lifetime: timedelta | None = None
) -> timedelta | None:
    """The expiry preset, or the chosen date (the credential works to the end of that day, UTC)."""
    choice = form.get("expiry", "30d")
    if choice == "max" and max_lifetime is not None:
        return max_lifetime
    if choice in EXPIRY_PRESETS:
        if choice not in dict(expiry_presets(max_lifetime)):
            raise InvalidArgument(
                f"the lifetime policy allows at most {describe_duration(max_lifetime)}"
                if max_lifetime is not None
                else "choose one of the options",
                field="expires_time",
            )
        return EXPIRY_PRESETS[choice]
    if choice != "date":
        raise InvalidArgument("choose one of the options", field="expires_time")
    text = form.get("expires_on").strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            "choose a date (YYYY-MM-DD)" if text else "choose the date it expires",
            field="expires_time",
        ) from None
    if not day < date(9000, 1, 1):
        raise InvalidArgument("choose an earlier date", field="expires_time")
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    if end <= now:
        raise InvalidArgument("choose today or a later date", field="expires_time")
    return end - now


@signed_in_only
async def create(request: Request, person: SignedIn, sid: str) -> Response:
    """Create through the credential service; the secret is shown on this answer, once."""
    services = services_of(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    now = datetime.now(UTC)
    try:
        new = NewCredential(
            display_name=form.get("name"),
            allow_source_cidr=form.lines("networks"),
            scoped_roles=form.all("role"),
            expires_in=_expires_in(form, now, services.settings.max_lifetime),
            require_dpop=form.get("require_dpop") == "1",
        )
        created = await anyio.to_thread.run_sync(
            lambda: services.credentials.create(
                caller=person.caller(), owner_id=person.user.id, new=new, now=now
            )
        )
    except (InvalidArgument, PermissionDenied) as exc:
        return await _new_page(request, person, form, error=exc)
    # Post/redirect/get: reloading the secret page must not send the form again.
    response = RedirectResponse(f"{OWN}/{created.record.id}/secret", status_code=303)
    sessions.hand_over(response, request, sid, created.record.id, created.secret)
    return response


SHOWN_ONCE = (
    "The secret of this personal client was shown once and cannot be shown again. "
    "If you did not store it, delete the personal client and create another."
)


@signed_in_only
async def show_secret(request: Request, person: SignedIn, sid: str) -> Response:
    """The new credential's client id and secret, this once."""
    services = services_of(request)
    ref = _ref(request)
    record = await anyio.to_thread.run_sync(
        lambda: services.credentials.visible(caller=person.caller(), ref=ref)
    )
    secret = sessions.handed_over(request, sid, record.id)
    if secret is None or record.user_id != person.user.id:
        response = await render.error_page(request, 410, SHOWN_ONCE)
    else:
        response = await render.page(
            request,
            "secret.html",
            record=record,
            secret=secret,
            rotated=bool(request.query_params.get("rotated")),
        )
    sessions.end_handover(response, request)
    return response


def _ref(request: Request) -> str:
    return record_id(request, "personal client")


@signed_in_only
async def confirm_delete(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    ref = _ref(request)

    def read() -> Row:
        record = services.credentials.visible(caller=person.caller(), ref=ref)
        owner = services.store.users.find(ref=record.user_id)
        return _row(record, owner, datetime.now(UTC))

    row = await anyio.to_thread.run_sync(read)
    back = OWN if row.owner.id == person.user.id else EVERYONE
    return await render.page(request, "delete.html", row=row, back=back, now=datetime.now(UTC))


@signed_in_only
async def delete(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    ref = _ref(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    await anyio.to_thread.run_sync(
        lambda: services.credentials.delete(caller=person.caller(), ref=ref, now=datetime.now(UTC))
    )
    back = EVERYONE if form.get("back") == EVERYONE else OWN
    return RedirectResponse(f"{back}?deleted=1", status_code=303)
