"""Helpers for page tests without a browser: forms, CSRF tokens, signing in."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.records import UserRecord
from tests.support.helpers import PASSWORD, now, services_of
from tests.support.types import MakeUser, Response

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ADMIN = "root@example.com"


def csrf_of(page: Response) -> str:
    found = CSRF.search(page.text)
    assert found, "the page has no CSRF token"
    return found.group(1)


def field_value(page: Response, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*value="([^"]*)"', page.text)
    assert found, f"no field {element_id}"
    return html.unescape(found.group(1))


def sign_in(
    client: TestClient | httpx.Client,
    email: str = "alice@example.com",
    password: str = PASSWORD,
    **extra: str,
) -> Response:
    client.cookies.clear()  # a fresh browser: /ui/ would send a signed-in person onwards
    form = client.get("/ui/")
    return client.post(
        "/ui/login/password",
        data={"csrf_token": csrf_of(form), "email": email, "password": password, **extra},
        follow_redirects=False,
    )


def create(client: TestClient | httpx.Client, **fields: Any) -> Response:
    form = client.get("/ui/personal-clients/new")
    data = {"csrf_token": csrf_of(form), "name": "laptop", "expiry": "30d", **fields}
    return client.post("/ui/personal-clients/new", data=data)


def people_with_passwords(
    app: Starlette, make_user: MakeUser, roles: tuple[str, ...] = ("billing:read", "deploy")
) -> Callable[..., UserRecord]:
    """A maker of people who can sign in with ``PASSWORD``: make(email, roles), ``roles``
    being its default."""
    default_roles = roles

    def make(
        email: str = "alice@example.com", roles: tuple[str, ...] = default_roles
    ) -> UserRecord:
        user = make_user(email=email, roles=roles)
        services_of(app).people.set_password(user_ref=user.id, password=PASSWORD, now=now())
        return user

    return make


def signed_in_admin(person: Callable[..., UserRecord], client: TestClient) -> UserRecord:
    """The admin (``ADMIN``, system:owner and deploy), signed in on ``client``."""
    user = person(ADMIN, roles=("system:owner", "deploy"))
    assert sign_in(client, ADMIN).status_code == 303
    return user
