"""``/ui/device`` without a browser: the person approves or denies a device login (RFC 8628).

The end-to-end flow with cone's exact requests and a real browser is in
``test_browser_device.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.config import DeviceClient
from authserver.records import UserRecord
from tests.support.helpers import PASSWORD, now
from tests.support.types import MakeUser
from tests.support.ui_helpers import csrf_of, sign_in

CONE = "2RGdOS94VDferT9e80mdgntl36K"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"
pytestmark = pytest.mark.parametrize(
    "settings_overrides", [{"device_clients": (DeviceClient(CONE, "cone"),)}]
)


@pytest.fixture
def alice(app: Starlette, make_user: MakeUser) -> UserRecord:
    user = make_user(email="alice@example.com", roles=("billing:read", "deploy"))
    app.state.services.people.set_password(user_ref=user.id, password=PASSWORD, now=now())
    return user


def start(client: TestClient) -> dict[str, Any]:
    started = client.post("/auth/v1/device_authorization", data={"client_id": CONE})
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    return body


def poll(client: TestClient, device_code: str) -> Any:
    return client.post(
        "/auth/v1/token",
        data={"grant_type": GRANT, "client_id": CONE, "device_code": device_code},
    )


def decide(client: TestClient, user_code: str, decision: str) -> Any:
    page = client.get("/ui/device", params={"user_code": user_code})
    return client.post(
        "/ui/device",
        data={"csrf_token": csrf_of(page), "user_code": user_code, "decision": decision},
    )


def test_the_link_the_tool_shows_needs_sign_in_and_comes_back(
    client: TestClient, alice: UserRecord
) -> None:
    started = start(client)
    path = started["verification_uri_complete"].removeprefix("http://127.0.0.1:8000")
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/?next=/ui/device")
    back = sign_in(client, next=path)
    assert back.headers["location"] == path


def test_confirmation_names_the_tool_the_account_and_the_roles(
    client: TestClient, alice: UserRecord
) -> None:
    started = start(client)
    sign_in(client)
    page = client.get("/ui/device", params={"user_code": started["user_code"]})
    assert page.status_code == 200
    assert "Approve cone?" in page.text
    assert "alice@example.com" in page.text
    assert "billing:read, deploy" in page.text
    assert started["user_code"] in page.text
    assert "Only approve a request you started yourself" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


def test_approving_gives_the_tool_the_persons_token(client: TestClient, alice: UserRecord) -> None:
    started = start(client)
    sign_in(client)
    done = decide(client, started["user_code"], "approve")
    assert "cone is approved" in done.text
    token = poll(client, started["device_code"])
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "billing:read deploy"


def test_denying_tells_the_tool_access_denied(client: TestClient, alice: UserRecord) -> None:
    started = start(client)
    sign_in(client)
    assert "Request denied" in decide(client, started["user_code"], "deny").text
    assert poll(client, started["device_code"]).json()["error"] == "access_denied"


def test_typed_code_is_accepted_in_lower_case_without_dash(
    client: TestClient, alice: UserRecord
) -> None:
    started = start(client)
    sign_in(client)
    typed = started["user_code"].replace("-", "").lower()
    page = client.get("/ui/device", params={"user_code": typed})
    assert "Approve cone?" in page.text


def test_a_code_cannot_be_decided_twice(client: TestClient, alice: UserRecord) -> None:
    started = start(client)
    sign_in(client)
    decide(client, started["user_code"], "approve")
    again = decide(client, started["user_code"], "deny")
    assert again.status_code == 404
    assert poll(client, started["device_code"]).status_code == 200


def test_unknown_code_says_so(client: TestClient, alice: UserRecord) -> None:
    sign_in(client)
    page = client.get("/ui/device", params={"user_code": "BBBB-BBBB"})
    assert page.status_code == 404
    assert "No waiting request has this code" in page.text


def test_guessing_codes_is_throttled_per_session(client: TestClient, alice: UserRecord) -> None:
    started = start(client)
    sign_in(client)
    statuses = [
        client.get("/ui/device", params={"user_code": f"BBBB-BBB{letter}"}).status_code
        for letter in "BCDFGHJKLMN"
    ]
    assert statuses == [404] * 10 + [429]
    # Even the right code waits now: the throttle cannot tell a guess from a typo.
    page = client.get("/ui/device", params={"user_code": started["user_code"]})
    assert page.status_code == 429


def test_approval_without_the_csrf_token_is_refused(client: TestClient, alice: UserRecord) -> None:
    started = start(client)
    sign_in(client)
    answer = client.post(
        "/ui/device", data={"user_code": started["user_code"], "decision": "approve"}
    )
    assert answer.status_code == 403
    assert poll(client, started["device_code"]).json()["error"] == "authorization_pending"


def test_approval_is_audited_with_the_session_as_actor(
    client: TestClient, alice: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    started = start(client)
    sign_in(client)
    decide(client, started["user_code"], "approve")
    events = [r.getMessage() for r in caplog.records if "device_approved" in r.getMessage()]
    assert events and f'"actor": "{alice.id}"' in events[0] and '"via": "session"' in events[0]


def test_guessing_codes_through_the_form_is_throttled_too(
    client: TestClient, alice: UserRecord
) -> None:
    """The approve/deny form looks codes up as well: misses count the same."""
    started = start(client)
    sign_in(client)
    token = csrf_of(client.get("/ui/device"))
    statuses = [
        client.post(
            "/ui/device",
            data={"csrf_token": token, "user_code": f"BBBB-BBB{letter}", "decision": "deny"},
        ).status_code
        for letter in "BCDFGHJKLMNPQRSTVWXZ"
    ]
    assert statuses[:10] == [404] * 10
    assert set(statuses[10:]) == {429}
    assert poll(client, started["device_code"]).json()["error"] == "authorization_pending"


def test_looking_up_the_right_code_is_not_counted(client: TestClient, alice: UserRecord) -> None:
    started = start(client)
    sign_in(client)
    for _ in range(15):
        page = client.get("/ui/device", params={"user_code": started["user_code"]})
        assert page.status_code == 200


@pytest.fixture
def admin(app: Starlette, make_user: MakeUser) -> UserRecord:
    user = make_user(email="alice@example.com", roles=("deploy", "system:owner"))
    app.state.services.people.set_password(user_ref=user.id, password=PASSWORD, now=now())
    return user


def test_confirmation_without_a_scope_leaves_out_the_admin_role(
    client: TestClient, admin: UserRecord
) -> None:
    started = start(client)
    sign_in(client)
    page = client.get("/ui/device", params={"user_code": started["user_code"]})
    assert "these roles: deploy —" in page.text
    assert "administrator rights" not in page.text


def test_confirmation_says_plainly_when_the_tool_asks_for_administrator_rights(
    client: TestClient, admin: UserRecord
) -> None:
    started = client.post(
        "/auth/v1/device_authorization", data={"client_id": CONE, "scope": "system:owner"}
    ).json()
    sign_in(client)
    page = client.get("/ui/device", params={"user_code": started["user_code"]})
    assert "these roles: system:owner" in page.text
    assert "approving grants it administrator rights" in page.text
