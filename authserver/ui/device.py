"""``/ui/device``: a person approves, or denies, a command-line tool's device login (RFC 8628).

The tool showed a code and this page's address; the person signs in if needed,
types or confirms the code, sees which tool asks, for which account and with
which roles, and decides. Codes are short, so looking them up is throttled per
session and per source address, and the page says plainly when to approve.
"""

from __future__ import annotations

from datetime import UTC, datetime

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authserver.errors import NotFound
from authserver.security.logsafe import fingerprint
from authserver.security.throttle import source_key
from authserver.ui import render, sessions
from authserver.ui.access import signed_in_only
from authserver.ui.forms import read_form
from authserver.usecases.devices import PendingDevice, normalize_user_code
from authserver.usecases.people import SignedIn
from authserver.web.context import services_of
from authserver.web.source import source_address


def _guess_keys(request: Request, sid: str) -> tuple[str, str]:
    """Throttle keys: this session and its source address (an IPv6 /64)."""
    source = source_address(request, services_of(request).settings)
    return f"session:{fingerprint(sid)}", source_key(source)


async def _looked_up(request: Request, sid: str, typed: str) -> PendingDevice | None | int:
    """The pending request a typed code names, None when it names none, or the seconds to
    wait when this session or address has looked up too many codes in vain.

    Every lookup counts before it happens and is forgiven when it finds a request, so
    lookups sent at once cannot get past the limit (GET and POST alike)."""
    throttle = services_of(request).device_code_guesses
    keys = _guess_keys(request, sid)
    wait = await anyio.to_thread.run_sync(lambda: throttle.reserve(keys))
    if wait:
        return wait
    pending = await _pending(request, typed)
    if pending is not None:
        await anyio.to_thread.run_sync(lambda: throttle.forgive(keys))
    return pending


TOO_MANY = "Too many codes were tried. Wait a few minutes, then try again."


async def _enter_code(
    request: Request, *, status_code: int = 200, error: str = "", code: str = ""
) -> Response:
    return await render.page(
        request, "device.html", status_code=status_code, step="enter", error=error, code=code
    )


@signed_in_only
async def device_page(request: Request, person: SignedIn, sid: str) -> Response:
    """Without a code: a box to type it. With one: what approving would grant."""
    typed = request.query_params.get("user_code", "").strip()[:32]
    if not typed:
        return await _enter_code(request)
    services = services_of(request)
    pending = await _looked_up(request, sid, typed)
    if isinstance(pending, int):
        return await render.error_page(request, 429, TOO_MANY)
    if pending is None:
        return await _enter_code(
            request,
            status_code=404,
            code=typed,
            error="No waiting request has this code. Check it against the one your tool shows; "
            "codes expire after ten minutes.",
        )
    granted = services.devices.granted_roles(pending, person.user.roles)
    return await render.page(
        request,
        "device.html",
        step="confirm",
        pending=pending,
        granted=granted,
        grants_admin=services.devices.grants_admin(granted),
        admin_role=services.settings.admin_role,
        error="",
        code=pending.user_code,
    )


async def _pending(request: Request, typed: str) -> PendingDevice | None:
    if normalize_user_code(typed) is None:
        return None
    devices = services_of(request).devices
    try:
        return await anyio.to_thread.run_sync(
            lambda: devices.pending(user_code=typed, now=datetime.now(UTC))
        )
    except NotFound:
        return None


@signed_in_only
async def decide(request: Request, person: SignedIn, sid: str) -> Response:
    """Approve or deny; the tool learns it on its next poll."""
    services = services_of(request)
    form = await read_form(request)
    sessions.check_session_csrf(request, form, sid)
    approve = form.get("decision") == "approve"
    code = form.get("user_code")[:32]
    pending = await _looked_up(request, sid, code)
    if isinstance(pending, int):
        return await render.error_page(request, 429, TOO_MANY)
    if pending is None:
        return await _enter_code(
            request,
            status_code=404,
            code=code,
            error="This request was decided already, or it expired. Start again in your tool.",
        )
    await anyio.to_thread.run_sync(
        lambda: services.devices.decide(
            user_code=code, caller=person.caller(), approve=approve, now=datetime.now(UTC)
        )
    )
    return await render.page(
        request, "device.html", step="done", approved=approve, pending=pending, error="", code=""
    )
