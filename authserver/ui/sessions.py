"""Who is signed in: the session cookie, CSRF tokens, and where to go after sign-in.

How a person signed in (password, invitation, later OpenID Connect) does not
matter here: a sign-in method hands ``PeopleService.start_session``'s answer to
``set_session_cookie``, and every page asks ``signed_in`` who is there, which
reads the session and its user from the database each time.

CSRF: with a session, each form carries ``csrf_token(session id)``, an HMAC
that only the holder of the cookie can compute; before sign-in, a random
token in its own cookie and in the form (double submit). Every POST is also
refused when its ``Origin`` is another site. Cookies are ``HttpOnly``,
``SameSite=Lax``, and under an https issuer ``Secure`` with the ``__Host-``
prefix (no subdomain can set them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit

import anyio.to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from authserver.config import Settings
from authserver.domain.credentials import has_control_characters
from authserver.errors import PermissionDenied
from authserver.ui.forms import Form
from authserver.usecases.people import NewSession, SignedIn
from authserver.web.context import services_of

CSRF_PREFIX = "csrf_"
CSRF_FIELD = "csrf_token"
HOME = "/ui/personal-clients"


def session_cookie(settings: Settings) -> str:
    return "__Host-authserver_session" if settings.is_https else "authserver_session"


def login_csrf_cookie(settings: Settings) -> str:
    return "__Host-authserver_csrf" if settings.is_https else "authserver_csrf"


def _set_cookie(response: Response, settings: Settings, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path="/", httponly=True, samesite="lax", secure=settings.is_https
    )


def set_session_cookie(response: Response, settings: Settings, started: NewSession) -> None:
    """Put a new session's id in the cookie (a browser session cookie: no Max-Age)."""
    _set_cookie(response, settings, session_cookie(settings), started.session_id)
    response.delete_cookie(
        login_csrf_cookie(settings), path="/", secure=settings.is_https, httponly=True
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie(settings),
        path="/",
        secure=settings.is_https,
        httponly=True,
        samesite="lax",
    )


def session_id(request: Request) -> str | None:
    return request.cookies.get(session_cookie(services_of(request).settings))


async def signed_in(request: Request) -> SignedIn | None:
    """The person this request's session belongs to now, or None (read fresh, no cache)."""
    cached: SignedIn | None = request.scope.get("authserver.signed_in")
    if cached is not None:
        return cached
    sid = session_id(request)
    if not sid:
        return None
    people = services_of(request).people
    found = await anyio.to_thread.run_sync(
        lambda: people.current(session_id=sid, now=datetime.now(UTC))
    )
    request.scope["authserver.signed_in"] = found
    return found


def csrf_token(sid: str) -> str:
    """The session's CSRF token: an HMAC of a fixed label under the session id."""
    digest = hmac.new(sid.encode(), b"authserver csrf v1", hashlib.sha256).digest()
    return CSRF_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def login_csrf(request: Request) -> tuple[str, bool]:
    """The pre-session CSRF token (from its cookie, or new) and whether it is new."""
    existing = request.cookies.get(login_csrf_cookie(services_of(request).settings), "")
    if existing.startswith(CSRF_PREFIX) and len(existing) < 100:
        return existing, False
    return CSRF_PREFIX + secrets.token_urlsafe(32), True


def remember_login_csrf(response: Response, request: Request, token: str) -> None:
    settings = services_of(request).settings
    _set_cookie(response, settings, login_csrf_cookie(settings), token)


def _same_origin(request: Request) -> bool:
    """False only for a POST that says it comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # curl sends none, and browsers send "null" under Referrer-Policy: no-referrer
        # (which every response carries): the CSRF token decides alone.
        return True
    issuer = urlsplit(services_of(request).settings.issuer)
    own = {f"{issuer.scheme}://{issuer.netloc}", f"{request.url.scheme}://{request.url.netloc}"}
    return origin in own


def check_session_csrf(request: Request, form: Form, sid: str) -> None:
    """Refuse a POST without this session's token (``PermissionDenied``)."""
    if not _same_origin(request) or not hmac.compare_digest(
        form.get(CSRF_FIELD).encode(), csrf_token(sid).encode()
    ):
        raise PermissionDenied(CSRF_MESSAGE)


def check_login_csrf(request: Request, form: Form) -> None:
    """Refuse a pre-session POST whose token differs from its cookie's."""
    cookie = request.cookies.get(login_csrf_cookie(services_of(request).settings), "")
    sent = form.get(CSRF_FIELD)
    if (
        not _same_origin(request)
        or not cookie
        or not hmac.compare_digest(sent.encode(), cookie.encode())
    ):
        raise PermissionDenied(CSRF_MESSAGE)


# A new secret travels from the create form's answer to the page that shows it inside
# a cookie, sealed (AES-GCM) under a key only the session's holder can derive: nothing
# is stored on the server, any instance can show it, and a reload finds it gone.
HANDOVER_SECONDS = 300


def _handover_cookie(settings: Settings) -> str:
    return "__Host-authserver_new_secret" if settings.is_https else "authserver_new_secret"


def _handover_key(sid: str) -> bytes:
    return hmac.new(sid.encode(), b"authserver new secret v1", hashlib.sha256).digest()


def hand_over(response: Response, request: Request, sid: str, record_id: str, secret: str) -> None:
    """Carry ``secret`` to the next page of this session, once."""
    settings = services_of(request).settings
    nonce = os.urandom(12)
    sealed = AESGCM(_handover_key(sid)).encrypt(nonce, secret.encode(), record_id.encode())
    value = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
    response.set_cookie(
        _handover_cookie(settings),
        value,
        max_age=HANDOVER_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.is_https,
    )


def handed_over(request: Request, sid: str, record_id: str) -> str | None:
    """The secret handed over for ``record_id`` in this session, or None."""
    value = request.cookies.get(_handover_cookie(services_of(request).settings))
    if not value or len(value) > 2048:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        opened = AESGCM(_handover_key(sid)).decrypt(raw[:12], raw[12:], record_id.encode())
        return opened.decode()
    except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
        return None


def end_handover(response: Response, request: Request) -> None:
    """The browser forgets the sealed secret: it is shown once."""
    settings = services_of(request).settings
    response.delete_cookie(
        _handover_cookie(settings),
        path="/",
        secure=settings.is_https,
        httponly=True,
        samesite="strict",
    )


CSRF_MESSAGE = (
    "this form has expired or was not sent from this site; "
    "go back, reload the page and send it again"
)


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: only a path of these pages, never another site."""
    if (
        not value
        or len(value) > 512
        or not value.startswith("/ui/")
        or value.startswith("/ui//")
        or "\\" in value
        or has_control_characters(value)
        or ".." in value.split("?")[0]
    ):
        return HOME
    return value
