"""Helpers for page tests without a browser: forms, CSRF tokens, signing in."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from starlette.testclient import TestClient

from tests.support.helpers import PASSWORD
from tests.support.types import Response

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


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
