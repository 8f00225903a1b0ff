"""``/ui/admin/users``: people for holders of the admin role — search, invite, roles,
disable and enable, end every session, invitations, provider identities.

Every change goes through the use cases the command line uses (``UserService``,
``PeopleService``, ``ProviderSignInService``) with the admin's ``Caller``, so the
audit trail names the acting person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.domain.credentials import has_control_characters
from authserver.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from authserver.records import OneTimeTokenRecord, UserRecord
from authserver.sso.providers import OidcProvider
from authserver.store.ids import is_record_id
from authserver.ui import render, sessions
from authserver.ui.access import admin_only
from authserver.ui.forms import Form, read_form
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of
from authserver.web.paths import record_id

BASE = "/ui/admin/users"
PAGE_SIZE = 50
INVITE_TTLS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
INVITE_TTL_LABELS = {"1d": "1 day", "7d": "7 days", "30d": "30 days"}
_ROLE_SEPARATORS = re.compile(r"[\s,]+")
NOTICES = {
    "roles": "The roles were saved.",
    "disabled": "The person was disabled: their sessions ended and their credentials stopped.",
    "enabled": "The person was enabled again.",
    "signed-out": "Every session of the person was ended.",
    "revoked": "Their open invitations were revoked.",
    "linked": "The provider identity was linked.",
    "unlinked": "The provider identity was unlinked.",
}


def _roles(text: str) -> list[str]:
    """Roles typed into one field, separated by spaces, commas or lines."""
    return [name for name in _ROLE_SEPARATORS.split(text.strip()) if name]


def _user_ref(request: Request) -> str:
    return record_id(request, "user")


# The list --------------------------------------------------------------------------


@admin_only
async def list_users(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    query = request.query_params.get("q", "").strip()[:200]
    if has_control_characters(query):
        query = ""
    after = request.query_params.get("after")
    after = after if after and is_record_id(after) else None
    now = datetime.now(UTC)

    def read() -> tuple[list[UserRecord], bool, list[tuple[OneTimeTokenRecord, UserRecord]]]:
        found, more = services.directory.page(
            caller=person.caller(), query=query or None, after_id=after, limit=PAGE_SIZE
        )
        return found, more, services.people.pending_invites(user_ref=None, now=now)

    found, more, invites = await anyio.to_thread.run_sync(read)
    keep = {"q": query} if query else {}
    later = f"{BASE}?{urlencode({**keep, 'after': found[-1].id})}" if more and found else ""
    first = f"{BASE}?{urlencode(keep)}" if after else ""
    return await render.page(
        request,
        "admin_users.html",
        users=found,
        invites=invites,
        q=query,
        later=later,
        first=first,
        admin_role=services.settings.admin_role,
        now=now,
    )


# Inviting a new person --------------------------------------------------------------


async def _invite_form(
    request: Request, form: Form | None = None, *, error: str = "", status_code: int = 200
) -> Response:
    values = {
        "email": form.get("email") if form else "",
        "name": form.get("name") if form else "",
        "roles": form.get("roles") if form else "",
        "ttl": form.get("ttl", "7d") if form else "7d",
    }
    return await render.page(
        request,
        "admin_invite.html",
        status_code=status_code,
        values=values,
        ttls=list(INVITE_TTL_LABELS.items()),
        error=error,
        password_on=services_of(request).settings.login_password,
    )


@admin_only
async def invite_form(request: Request, person: SignedIn, sid: str) -> Response:
    return await _invite_form(request)


@admin_only
async def invite(request: Request, person: SignedIn, sid: str) -> Response:
    """Create the person with their roles, and a one-time link on which they choose a password."""
    services = services_of(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    ttl = INVITE_TTLS.get(form.get("ttl"))
    if ttl is None:
        return await _invite_form(
            request, form, error="Choose how long the link works", status_code=400
        )
    if not services.settings.login_password:
        return await _invite_form(
            request,
            form,
            error="Sign-in with a password is turned off, so an invitation link would not work",
            status_code=400,
        )
    caller, now = person.caller(), datetime.now(UTC)

    def create() -> tuple[UserRecord, str]:
        user = services.users.create(
            email=form.get("email"),
            display_name=form.get("name").strip() or None,
            role_names=_roles(form.get("roles")),
            now=now,
            caller=caller,
        )
        link, _ = services.people.invite(user_ref=user.id, ttl=ttl, now=now, caller=caller)
        return user, link

    try:
        user, link = await anyio.to_thread.run_sync(create)
    except (InvalidArgument, AlreadyExists, PermissionDenied) as exc:
        return await _invite_form(request, form, error=exc.describe(FIELD_NAMES), status_code=400)
    return _hand_over_link(request, sid, user, link)


def _hand_over_link(request: Request, sid: str, user: UserRecord, link: str) -> Response:
    """Post/redirect/get: the link travels sealed to the page that shows it, once."""
    response = RedirectResponse(f"{BASE}/{user.id}/invitation", status_code=303)
    sessions.hand_over(response, request, sid, f"invite:{user.id}", link)
    return response


INVITATION_SHOWN = (
    "This invitation link was shown once and cannot be shown again. "
    "Create another one on the person’s page if it was not passed on."
)


@admin_only
async def show_invitation(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    ref = _user_ref(request)
    user = await anyio.to_thread.run_sync(lambda: services.store.users.find(ref=ref))
    link = sessions.handed_over(request, sid, f"invite:{user.id}")
    if link is None:
        response = await render.error_page(request, 410, INVITATION_SHOWN)
    else:
        response = await render.page(request, "admin_invitation.html", user=user, link=link)
    sessions.end_handover(response, request)
    return response


# One person -------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A provider identity linked to the person."""

    provider: str  # the configured name, or the issuer when no longer configured
    issuer: str
    subject: str
    configured: bool


async def _user_page(
    request: Request,
    person: SignedIn,
    ref: str,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    services = services_of(request)
    now = datetime.now(UTC)

    def read() -> tuple[UserRecord, list[OneTimeTokenRecord], list[Identity], int]:
        user = services.store.users.find(ref=ref)
        invites = [i for i, _ in services.people.pending_invites(user_ref=user.id, now=now)]
        by_issuer = {p.issuer: p for p in services.settings.login_oidc}
        links = [
            Identity(
                provider=by_issuer[issuer].name if issuer in by_issuer else issuer,
                issuer=issuer,
                subject=subject,
                configured=issuer in by_issuer,
            )
            for issuer, subject in services.store.provider_links.of_user(user_id=user.id)
        ]
        credentials = len(services.store.credentials.all(user_id=user.id))
        return user, invites, links, credentials

    user, invites, links, credentials = await anyio.to_thread.run_sync(read)
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return await render.page(
        request,
        "admin_user.html",
        status_code=status_code,
        user=user,
        invites=invites,
        links=links,
        credentials=credentials,
        providers=[p.name for p in services.settings.login_oidc],
        ttls=list(INVITE_TTL_LABELS.items()),
        is_self=user.id == person.user.id,
        error=error,
        notice=notice,
        now=now,
    )


@admin_only
async def show_user(request: Request, person: SignedIn, sid: str) -> Response:
    return await _user_page(request, person, _user_ref(request))


def _provider(request: Request, name: str) -> OidcProvider:
    for provider in services_of(request).settings.login_oidc:
        if provider.name == name:
            return provider
    raise InvalidArgument("choose one of the configured providers")


def _by_issuer(request: Request, issuer: str) -> OidcProvider:
    for provider in services_of(request).settings.login_oidc:
        if provider.issuer == issuer:
            return provider
    raise InvalidArgument("that provider is no longer configured")


@admin_only
async def change_user(request: Request, person: SignedIn, sid: str) -> Response:
    """Every form of the person's page posts here, naming its ``action``."""
    services = services_of(request)
    ref = _user_ref(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    action = form.get("action")
    caller, now = person.caller(), datetime.now(UTC)

    def change() -> str:
        if action == "roles":
            roles = _roles(form.get("roles"))
            services.users.update(ref=ref, role_names=roles, disabled=None, now=now, caller=caller)
            return "roles"
        if action in ("disable", "enable"):
            disabled = action == "disable"
            services.users.update(
                ref=ref, role_names=None, disabled=disabled, now=now, caller=caller
            )
            return "disabled" if disabled else "enabled"
        if action == "sign-out":
            services.people.sign_out_everywhere(user_ref=ref, now=now, caller=caller)
            return "signed-out"
        if action == "revoke-invites":
            services.people.revoke_invites(user_ref=ref, now=now, caller=caller)
            return "revoked"
        if action == "link":
            services.provider_sign_in.link(
                user_ref=ref,
                provider=_provider(request, form.get("provider")),
                subject=form.get("subject").strip(),
                now=now,
                caller=caller,
            )
            return "linked"
        if action == "unlink":
            services.provider_sign_in.unlink(
                user_ref=ref,
                provider=_by_issuer(request, form.get("issuer")),
                subject=form.get("subject"),
                caller=caller,
            )
            return "unlinked"
        raise InvalidArgument("unknown action")

    if action == "invite":
        ttl = INVITE_TTLS.get(form.get("ttl"))
        try:
            if ttl is None:
                raise InvalidArgument("choose how long the link works")
            link, _ = await anyio.to_thread.run_sync(
                lambda: services.people.invite(user_ref=ref, ttl=ttl, now=now, caller=caller)
            )
            user = await anyio.to_thread.run_sync(lambda: services.store.users.find(ref=ref))
        except (InvalidArgument, PermissionDenied) as exc:
            return await _user_page(
                request, person, ref, error=exc.describe(FIELD_NAMES), status_code=400
            )
        return _hand_over_link(request, sid, user, link)
    try:
        done = await anyio.to_thread.run_sync(change)
    except (InvalidArgument, AlreadyExists, PermissionDenied) as exc:
        return await _user_page(
            request, person, ref, error=exc.describe(FIELD_NAMES), status_code=400
        )
    except NotFound as exc:
        if action != "unlink":
            raise
        return await _user_page(request, person, ref, error=exc.message, status_code=400)
    return RedirectResponse(f"{BASE}/{ref}?done={done}", status_code=303)


#: How these pages name the use cases' fields.
FIELD_NAMES = {
    **render.FIELD_NAMES,
    "email": "E-mail",
    "roles": "Roles",
    "ttl": "Link works for",
    "sub": "Subject",
}
