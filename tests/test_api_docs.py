"""docs/api.md is checked against the server: its routes, and every example's answer."""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from starlette.routing import Mount, Route

from authserver.app import create_app
from authserver.config import DeviceClient, Settings
from authserver.oauth.routes import OAuthEndpoints
from authserver.security.argon2 import SecretHasher
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import mint, operator_creates
from tests.support.types import LiveServerFixture

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
PAGES_DOC = DOC.with_name("ui.md")
DOC_URL = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
# Values that differ on every run; both sides show them as "…" (empty values stay: they mean
# something, such as the end of a list).
VOLATILE = {
    "access_token", "id", "clientId", "client_id", "userId", "sub", "principleId", "jti",
    "exp", "iat", "createdAt", "updatedAt", "expiresTime", "lastUsedAt", "clientSecret",
    "client_secret", "registration_access_token", "registration_client_uri",
    "client_id_issued_at", "client_secret_expires_at", "nextPageToken", "kid", "x", "y",
    "device_code", "user_code", "verification_uri_complete",
}  # fmt: skip
# Written in the background, at most a second after a token is minted: present
# or not depending on timing, so left out on both sides.
LAGGING = {"lastUsedAt"}


@dataclass
class Example:
    """A ```sh block of the document and the answer documented under it."""

    heading: str
    command: str
    kind: str  # "json" or "text"
    answer: str


def examples() -> list[Example]:
    text = DOC.read_text()
    found: list[Example] = []
    fences = list(FENCE.finditer(text))
    for block, following in zip(fences, fences[1:], strict=False):
        if block.group(1) != "sh":
            continue
        between = text[block.end() : following.start()]
        assert following.group(1) in ("json", "text") and not between.strip(), (
            f"docs/api.md: the example at {heading_of(text, block.start())!r} has no "
            "```json or ```text answer right below it"
        )
        found.append(
            Example(
                heading=heading_of(text, block.start()),
                command=block.group(2),
                kind=following.group(1),
                answer=following.group(2),
            )
        )
    return found


def heading_of(text: str, position: int) -> str:
    headings: list[str] = re.findall(r"^#+ (.*)$", text[:position], re.M)
    return headings[-1]


def normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "…" if k in VOLATILE and v not in ("", 0, None) else normalised(v)
            for k, v in value.items()
            if k not in LAGGING
        }
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def shown(value: Any) -> list[str]:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False).splitlines()


def test_every_route_is_documented(tmp_path: Path) -> None:
    text = DOC.read_text()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/a.db"))
    missing = []
    for route in app.routes:
        if isinstance(route, Mount | Route) and route.path == "/ui":
            continue  # pages for people, not the API: docs/ui.md lists them
        assert isinstance(route, Route)
        path = route.path.replace("{client_id:path}", "{client_id}")
        methods = (route.methods or {"GET"}) - {"HEAD"}
        missing += [f"{m} {path}" for m in sorted(methods) if f"{m} {path}" not in text]
    # The OAuth endpoints the app answers before its router (app.OAuthEndpoints): POST only.
    [oauth] = [m for m in app.user_middleware if cast(object, m.cls) is OAuthEndpoints]
    endpoints = cast(Iterable[str], oauth.kwargs["endpoints"])
    missing += [f"POST {path}" for path in endpoints if f"POST {path}" not in text]
    assert not missing, f"routes that docs/api.md does not show: {missing}"


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return {"device_clients": (DeviceClient("authserver-cli", "authserver login"),)}


def test_every_page_is_listed_in_the_pages_document(tmp_path: Path) -> None:
    text = PAGES_DOC.read_text()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/a.db"))
    [pages] = [r for r in app.routes if isinstance(r, Mount) and r.path == "/ui"]
    missing = [
        f"{method} /ui{route.path}"
        for route in pages.routes
        if isinstance(route, Route)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"})
        if f"{method} /ui{route.path}" not in text
    ]
    assert not missing, f"pages that docs/ui.md does not list: {missing}"


def test_documented_examples_answer_what_the_server_answers(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    """Runs each ```sh example of docs/api.md, in order, with curl against a live server.

    ``$U`` is the server's URL (shown in answers as the document's
    http://127.0.0.1:8000), ``$CID``/``$SECRET`` a credential of a user with
    the roles ``billing:read`` and ``system:owner`` (``$USER_ID``), ``$T`` a fresh token of
    that credential for each example, ``$REG`` a fresh registration token of
    that user; ``$ID``, ``$TRUST_ID``, ``$RAT``, ``$URI``, ``$RCID`` and ``$DEVICE`` are taken from the
    answers that create them. The device client ``authserver-cli`` is configured. Answers are compared as JSON with the values that change on
    every run (ids, times, tokens, secrets, keys) replaced by "…" on both sides.
    """
    server, settings, store = live_server
    now = datetime.now(UTC)
    owner = UserService(store).create(
        email="alice@example.com",
        display_name="Alice",
        role_names=["billing:read", "system:owner"],
        now=now,
    )
    record, secret = operator_creates(
        CredentialService(store, SecretHasher(settings), settings), owner, name="laptop"
    )
    variables = {"U": server.url, "CID": record.client_id, "SECRET": secret, "USER_ID": owner.id}
    drifts = []
    documented = examples()
    assert len(documented) >= 15, "docs/api.md lost its examples"
    with httpx.Client(base_url=server.url) as http:
        for example in documented:
            variables["T"] = mint(http, record.client_id, secret)
            variables["REG"], _ = CredentialService(
                store, SecretHasher(settings), settings
            ).mint_registration_token(
                user_ref=owner.id, ttl=timedelta(hours=1), now=datetime.now(UTC)
            )
            run = subprocess.run(
                ["bash", "-c", "set -euo pipefail\n" + example.command],
                env={"PATH": "/usr/bin:/bin", **variables},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert run.returncode == 0, f"{example.heading}: {run.stderr}"
            output = run.stdout.replace(server.url, DOC_URL)
            if example.kind == "text":
                if output.strip() != example.answer.strip():
                    drifts.append(f"### {example.heading}\n- {example.answer}+ {output}")
                continue
            real = json.loads(output)
            if normalised(real) != normalised(json.loads(example.answer)):
                diff = difflib.unified_diff(
                    shown(normalised(json.loads(example.answer))),
                    shown(normalised(real)),
                    "docs/api.md",
                    "server",
                    lineterm="",
                )
                drifts.append(f"### {example.heading}\n" + "\n".join(diff))
            created = json.loads(run.stdout)  # with the server's own URL
            if isinstance(created.get("client"), dict) and "id" in created["client"]:
                variables["ID"] = created["client"]["id"]
            if isinstance(created.get("trust"), dict) and "id" in created["trust"]:
                variables["TRUST_ID"] = created["trust"]["id"]
            if "device_code" in created:
                variables["DEVICE"] = created["device_code"]
            if "registration_access_token" in created:
                variables["RAT"] = created["registration_access_token"]
                variables["URI"] = created["registration_client_uri"]
                variables["RCID"] = created["client_id"]
    assert not drifts, "docs/api.md no longer matches the server:\n\n" + "\n\n".join(drifts)
