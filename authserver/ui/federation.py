"""``/ui/federation``: a person's federation trusts — list, create (presets for GitHub Actions
and GitLab CI), test a condition against a pasted token's claims, delete.

Every change goes through ``TrustService`` with the session's ``Caller``: the rules and
audit lines of the API and the CLI. The test box evaluates the condition against the
claims of what was pasted (a job's ID token, read without verifying it, or its claims
as JSON); what was pasted is neither stored nor logged, and shown back only as the
names of the claims it held.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authserver.domain import roles
from authserver.domain.federation import PRESETS, NewTrust, evaluate, preset
from authserver.errors import InvalidArgument, PermissionDenied
from authserver.security.subject_tokens import SubjectTokenRefused, unverified
from authserver.ui import render, sessions
from authserver.ui.access import signed_in_only
from authserver.ui.forms import Form, read_form
from authserver.ui.personal_clients import _expires_in, expiry_presets
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of
from authserver.web.paths import record_id

PAGE = "/ui/federation"
MAX_PASTED = 16 * 1024
FIELD_NAMES = {
    **render.FIELD_NAMES,
    "issuer": "Issuer",
    "audience": "Audience",
    "condition": "Condition",
    "claims": "ID token or claims",
}


def _values(form: Form | None, chosen: str | None) -> dict[str, Any]:
    """What the create form shows: a preset's issuer and example, or what was sent."""
    if form is None:
        start = preset(chosen) or PRESETS[0]
        return {
            "name": "",
            "issuer": start.issuer,
            "audience": "",
            "condition": start.example,
            "roles": [],
            "networks": "",
            "expiry": "90d",
            "expires_on": "",
            "claims": "",
        }
    return {
        "name": form.get("name"),
        "issuer": form.get("issuer"),
        "audience": form.get("audience"),
        "condition": form.get("condition"),
        "roles": form.all("role"),
        "networks": form.get("networks"),
        "expiry": form.get("expiry", "90d"),
        "expires_on": form.get("expires_on"),
        "claims": "",  # never sent back: the pasted token is not kept, even in the page
    }


async def _page(
    request: Request,
    person: SignedIn,
    *,
    form: Form | None = None,
    error: InvalidArgument | PermissionDenied | None = None,
    test: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    services = services_of(request)
    chosen = request.query_params.get("preset") or (form.get("preset") if form else None)
    current = preset(chosen) or PRESETS[0]
    found = await anyio.to_thread.run_sync(
        lambda: services.trusts.listed(user_ref=None, caller=person.caller(), limit=200)
    )
    now = datetime.now(UTC)
    rows = [
        {
            "trust": trust,
            "roles": sorted(roles.effective_roles(owner.roles, trust.scoped_roles)),
            "expired": trust.expires_time is not None and trust.expires_time <= now,
        }
        for trust, owner in found
    ]
    presets = expiry_presets(services.settings.max_lifetime)
    values = _values(form, chosen)
    if values["expiry"] not in {value for value, _ in presets} | {"date"}:
        values["expiry"] = presets[0][0]
    notice = ""
    if request.query_params.get("created"):
        notice = "The trust was created. Give its client ID to the CI job (no secret needed)."
    elif request.query_params.get("deleted"):
        notice = "The trust was deleted."
    return await render.page(
        request,
        "federation.html",
        status_code=status_code,
        rows=rows,
        presets=PRESETS,
        current=current,
        values=values,
        own_roles=sorted(person.user.roles),
        expiry_presets=presets,
        today=now.date().isoformat(),
        error=error.describe(FIELD_NAMES) if error else "",
        error_field=error.field if error else None,
        test=test,
        notice=notice,
        now=now,
    )


@signed_in_only
async def federation_page(request: Request, person: SignedIn, sid: str) -> Response:
    return await _page(request, person)


@signed_in_only
async def create(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    now = datetime.now(UTC)
    try:
        new = NewTrust(
            issuer=form.get("issuer"),
            condition=form.get("condition"),
            audience=form.get("audience") or None,
            display_name=form.get("name"),
            allow_source_cidr=form.lines("networks"),
            scoped_roles=form.all("role"),
            expires_in=_expires_in(form, now, services.settings.max_lifetime),
        )
        await anyio.to_thread.run_sync(
            lambda: services.trusts.create(
                caller=person.caller(), owner_id=person.user.id, new=new, now=now
            )
        )
    except (InvalidArgument, PermissionDenied) as exc:
        return await _page(request, person, form=form, error=exc, status_code=400)
    return RedirectResponse(f"{PAGE}?created=1", status_code=303)


@signed_in_only
async def test_condition(request: Request, person: SignedIn, sid: str) -> Response:
    """Evaluate the form's condition against the pasted claims; nothing is stored."""
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    result: dict[str, Any]
    try:
        claims = _pasted_claims(form.get("claims"))
        holds = evaluate(form.get("condition"), claims)
        result = {"holds": holds, "names": sorted(claims), "problem": ""}
    except InvalidArgument as exc:
        result = {"holds": False, "names": [], "problem": exc.describe(FIELD_NAMES)}
    return await _page(request, person, form=form, test=result)


def _pasted_claims(text: str) -> dict[str, Any]:
    """The claims of a pasted ID token (its payload, not verified) or of a JSON object."""
    text = text.strip()
    if not text:
        raise InvalidArgument("paste a job's ID token or its claims as JSON", field="claims")
    if len(text) > MAX_PASTED:
        raise InvalidArgument(f"at most {MAX_PASTED} characters", field="claims")
    if text.startswith("{"):
        try:
            claims = json.loads(text)
        except ValueError:
            raise InvalidArgument("not valid JSON", field="claims") from None
        if not isinstance(claims, dict):
            raise InvalidArgument("expected a JSON object", field="claims")
        return claims
    try:
        _, payload = unverified(text)
    except SubjectTokenRefused:
        raise InvalidArgument(
            "neither a JSON object nor a token (header.payload.signature)", field="claims"
        ) from None
    return payload


def _ref(request: Request) -> str:
    return record_id(request, "federation trust")


@signed_in_only
async def confirm_delete(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    ref = _ref(request)
    trust = await anyio.to_thread.run_sync(
        lambda: services.trusts.visible(caller=person.caller(), ref=ref)
    )
    return await render.page(request, "federation_delete.html", trust=trust, now=datetime.now(UTC))


@signed_in_only
async def delete(request: Request, person: SignedIn, sid: str) -> Response:
    services = services_of(request)
    ref = _ref(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    await anyio.to_thread.run_sync(
        lambda: services.trusts.delete(caller=person.caller(), ref=ref, now=datetime.now(UTC))
    )
    return RedirectResponse(f"{PAGE}?deleted=1", status_code=303)
