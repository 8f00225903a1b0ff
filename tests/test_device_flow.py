"""RFC 8628 device authorization: start, decide, poll, and what the token may do."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from authserver.app import create_app
from authserver.config import DeviceClient, Settings
from authserver.domain.credentials import Caller
from authserver.records import UserRecord
from authserver.runtime.ops import configure_logging
from authserver.store import Store
from authserver.store.database import Database
from authserver.usecases.users import UserService
from tests.support.helpers import PEER, app_of, now, services_of, token_request, within
from tests.support.types import MakeClient, MakeUser

CONE = "2RGdOS94VDferT9e80mdgntl36K"
OTHER = "other-cli"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_SETTINGS = {
    "device_clients": (DeviceClient(CONE, "cone"), DeviceClient(OTHER, "other")),
    "device_poll_interval": 1,
}
pytestmark = pytest.mark.parametrize("settings_overrides", [DEVICE_SETTINGS])


def start(client: TestClient, client_id: str = CONE, **form: str) -> Any:
    return client.post("/auth/v1/device_authorization", data={"client_id": client_id, **form})


def poll(client: TestClient, device_code: str, client_id: str = CONE) -> Any:
    return client.post(
        "/auth/v1/token",
        data={"grant_type": GRANT, "client_id": client_id, "device_code": device_code},
    )


def person(user: UserRecord) -> Caller:
    """The signed-in person, as the approval page acts."""
    return Caller(
        user_id=user.id, effective_roles=frozenset(user.roles), reduced=False, via="session"
    )


def decide(client: TestClient, user_code: str, user: UserRecord, approve: bool = True) -> None:
    services_of(client.app).devices.decide(
        user_code=user_code, caller=person(user), approve=approve, now=now()
    )


def approved_token(client: TestClient, user: UserRecord, **form: str) -> dict[str, Any]:
    started = start(client, **form).json()
    decide(client, started["user_code"], user)
    response = poll(client, started["device_code"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_start_answers_the_fields_cone_reads(client: TestClient) -> None:
    response = start(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {
        "device_code", "user_code", "verification_uri", "verification_uri_complete",
        "expires_in", "interval",
    }  # fmt: skip
    assert len(body["device_code"]) >= 43  # 256 bits
    assert body["user_code"][4] == "-" and len(body["user_code"]) == 9
    assert set(body["user_code"].replace("-", "")) <= set("BCDFGHJKLMNPQRSTVWXZ")
    assert body["verification_uri"] == "http://127.0.0.1:8000/ui/device"
    assert body["verification_uri_complete"] == (
        f"http://127.0.0.1:8000/ui/device?user_code={body['user_code']}"
    )
    assert (body["expires_in"], body["interval"]) == (600, 1)
    assert response.headers["cache-control"] == "no-store"


def test_codes_are_stored_only_as_hashes(client: TestClient, database: Database) -> None:
    body = start(client).json()
    with database.engine.connect() as conn:
        stored = " ".join(
            str(v) for row in conn.execute(text("SELECT * FROM device_codes")) for v in row
        )
    assert body["device_code"] not in stored
    assert body["user_code"].replace("-", "") not in stored


def test_start_by_an_unknown_client_is_invalid_client(client: TestClient) -> None:
    response = start(client, client_id="nobody")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_start_with_credentials_is_refused(client: TestClient) -> None:
    response = client.post(
        "/auth/v1/device_authorization", data={"client_id": CONE}, auth=(CONE, "secret")
    )
    assert response.status_code == 401


def test_starts_are_throttled_per_source(client: TestClient) -> None:
    statuses = [start(client).status_code for _ in range(21)]
    assert statuses[:20] == [200] * 20
    assert statuses[20] == 429


def test_poll_before_the_decision_is_pending(client: TestClient) -> None:
    response = poll(client, start(client).json()["device_code"])
    assert response.status_code == 400
    assert response.json()["error"] == "authorization_pending"


def test_poll_at_the_interval_is_never_told_to_slow_down(client: TestClient) -> None:
    device_code = start(client).json()["device_code"]
    errors = []
    for _ in range(3):
        time.sleep(1.0)  # the interval, as cone waits before every poll
        errors.append(poll(client, device_code).json()["error"])
    assert errors == ["authorization_pending"] * 3


def test_poll_faster_than_the_interval_is_told_to_slow_down(client: TestClient) -> None:
    device_code = start(client).json()["device_code"]
    poll(client, device_code)
    response = poll(client, device_code)
    assert response.status_code == 400
    assert response.json()["error"] == "slow_down"


def test_approved_device_gets_a_token_of_the_person(
    client: TestClient, make_user: MakeUser
) -> None:
    user = make_user(roles=("billing:read", "deploy"))
    token = approved_token(client, user)
    assert token["token_type"] == "Bearer"
    assert isinstance(token["expires_in"], int) and token["expires_in"] == 600
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user.id
    assert claims["client_id"] == CONE
    assert claims["roles"] == ["billing:read", "deploy"]


def test_device_code_yields_one_token_only(client: TestClient, make_user: MakeUser) -> None:
    started = start(client).json()
    decide(client, started["user_code"], make_user())
    assert poll(client, started["device_code"]).status_code == 200
    again = poll(client, started["device_code"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_denied_device_gets_access_denied_once(client: TestClient, make_user: MakeUser) -> None:
    started = start(client).json()
    decide(client, started["user_code"], make_user(), approve=False)
    assert poll(client, started["device_code"]).json()["error"] == "access_denied"
    assert poll(client, started["device_code"]).json()["error"] == "invalid_grant"


def test_expired_device_code_is_expired_token(client: TestClient, database: Database) -> None:
    device_code = start(client).json()["device_code"]
    with database.engine.begin() as conn:
        conn.execute(
            text("UPDATE device_codes SET expires_at = :past"),
            {"past": (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None)},
        )
    response = poll(client, device_code)
    assert response.status_code == 400
    assert response.json()["error"] == "expired_token"


def test_unknown_device_code_is_invalid_grant(client: TestClient) -> None:
    response = poll(client, "not-a-device-code")
    assert response.json()["error"] == "invalid_grant"


def test_another_clients_device_code_is_invalid_grant(
    client: TestClient, make_user: MakeUser
) -> None:
    started = start(client).json()
    decide(client, started["user_code"], make_user())
    assert poll(client, started["device_code"], client_id=OTHER).json()["error"] == "invalid_grant"
    assert poll(client, started["device_code"]).status_code == 200


def test_poll_by_an_unknown_client_is_invalid_client(client: TestClient) -> None:
    response = poll(client, start(client).json()["device_code"], client_id="nobody")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_poll_without_device_code_is_invalid_request(client: TestClient) -> None:
    response = client.post("/auth/v1/token", data={"grant_type": GRANT, "client_id": CONE})
    assert response.json()["error"] == "invalid_request"


def test_user_code_is_compared_without_case_or_dash(
    client: TestClient, make_user: MakeUser
) -> None:
    started = start(client).json()
    typed = started["user_code"].replace("-", " ").lower()
    decide(client, typed, make_user())
    assert poll(client, started["device_code"]).status_code == 200


def test_scope_narrows_the_roles_granted(client: TestClient, make_user: MakeUser) -> None:
    user = make_user(roles=("billing:read", "deploy"))
    token = approved_token(client, user, scope="deploy")
    assert token["scope"] == "deploy"


def test_cone_creates_its_credential_with_the_token(
    client: TestClient, make_user: MakeUser
) -> None:
    """cone's request, byte for byte in shape: snake_case body, Bearer token, HTTP 200."""
    user = make_user(roles=("billing:read", "deploy"))
    access = approved_token(client, user)["access_token"]
    response = client.post(
        "/api/v1/iam/personal_clients",
        json={"display_name": "Created by Cone"},
        headers={"Authorization": f"Bearer {access}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["client"]["displayName"] == "Created by Cone"
    assert created["client"]["userId"] == user.id
    assert created["client"]["scopedRoles"] == []
    token = token_request(client, created["client"]["clientId"], created["clientSecret"])
    assert token.status_code == 200


def test_device_token_lists_only_the_persons_credentials(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    user, stranger = make_user(), make_user()
    mine, _ = make_client(user)
    make_client(stranger)
    access = approved_token(client, user)["access_token"]
    listed = client.get(
        "/api/v1/iam/personal_clients", headers={"Authorization": f"Bearer {access}"}
    ).json()["list"]
    assert [c["id"] for c in listed] == [mine.id]


def test_device_token_follows_the_persons_current_roles(
    client: TestClient, make_user: MakeUser, store: Store
) -> None:
    user = make_user(roles=("billing:read", "deploy"))
    headers = {"Authorization": f"Bearer {approved_token(client, user)['access_token']}"}
    UserService(store).update(ref=user.id, role_names=["deploy"], disabled=None, now=now())
    within(
        1.0,
        lambda: (
            client.get("/api/v1/auth/introspect", headers=headers).json()["roles"] == ["deploy"]
        ),
    )


def test_device_token_of_a_disabled_person_is_refused(
    client: TestClient, make_user: MakeUser, store: Store
) -> None:
    user = make_user()
    headers = {"Authorization": f"Bearer {approved_token(client, user)['access_token']}"}
    UserService(store).update(ref=user.id, role_names=None, disabled=True, now=now())
    within(
        1.0,
        lambda: client.get("/api/v1/auth/introspect", headers=headers).status_code == 401,
    )


def test_reduced_device_token_cannot_create_an_unreduced_credential(
    client: TestClient, make_user: MakeUser
) -> None:
    user = make_user(roles=("billing:read", "deploy"))
    access = approved_token(client, user, scope="deploy")["access_token"]
    response = client.post(
        "/api/v1/iam/personal_clients",
        json={"display_name": "x"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.status_code == 403


def test_metadata_advertises_the_device_flow(client: TestClient) -> None:
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["device_authorization_endpoint"] == (
        "http://127.0.0.1:8000/auth/v1/device_authorization"
    )
    assert GRANT in metadata["grant_types_supported"]


def test_start_on_one_instance_approve_on_another_poll_on_the_first(
    client: TestClient, settings: Settings, database: Database, make_user: MakeUser
) -> None:
    """Device codes live in the database, shared by every instance."""
    started = start(client).json()
    with TestClient(create_app(settings, database=database), client=(PEER, 1)) as other:
        decide(other, started["user_code"], make_user())
    assert poll(client, started["device_code"]).status_code == 200


def test_approval_by_a_person_disabled_since_gives_no_token(
    client: TestClient, make_user: MakeUser, store: Store
) -> None:
    user = make_user()
    started = start(client).json()
    decide(client, started["user_code"], user)
    UserService(store).update(ref=user.id, role_names=None, disabled=True, now=now())
    response = poll(client, started["device_code"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_token_carries_only_the_approved_roles_the_person_still_holds(
    client: TestClient, make_user: MakeUser, store: Store
) -> None:
    """The JWT itself is checked by resource servers without us: it must not say more."""
    user = make_user(roles=("billing:read", "deploy"))
    started = start(client).json()
    decide(client, started["user_code"], user)
    UserService(store).update(ref=user.id, role_names=["deploy"], disabled=None, now=now())
    token = poll(client, started["device_code"]).json()
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["deploy"]


def test_an_admins_device_token_manages_only_the_admins_own_credentials(
    client: TestClient, make_user: MakeUser, make_client: MakeClient
) -> None:
    """A tool the admin approved is not the admin: no search, no other people's credentials."""
    admin = make_user(roles=("system:owner",))
    other, _ = make_client(make_user())
    headers = {"Authorization": f"Bearer {approved_token(client, admin)['access_token']}"}
    search = client.post("/api/v1/search/iam/personal_clients", json={}, headers=headers)
    assert search.status_code == 403
    deleted = client.delete(f"/api/v1/iam/personal_clients/{other.id}", headers=headers)
    assert deleted.status_code == 404


def test_approval_without_a_scope_withholds_the_admin_role(
    client: TestClient, make_user: Any
) -> None:
    admin = make_user(roles=("deploy", "system:owner"))
    assert approved_token(client, admin)["scope"] == "deploy"


def test_admin_role_is_granted_when_the_tool_asks_for_it_in_its_scope(
    client: TestClient, make_user: Any
) -> None:
    admin = make_user(roles=("deploy", "system:owner"))
    token = approved_token(client, admin, scope="deploy system:owner")
    assert token["scope"] == "deploy system:owner"


def test_an_admins_cone_login_creates_a_credential_without_the_admin_role(
    client: TestClient, make_user: Any
) -> None:
    """M5: ``{}`` with a device token of an admin is scoped to the token's roles, not
    unreduced (which would hold ``system:owner`` and search everyone's credentials)."""
    admin = make_user(roles=("deploy", "system:owner"))
    access = approved_token(client, admin)["access_token"]
    response = client.post(
        "/api/v1/iam/personal_clients",
        json={"display_name": "Created by Cone"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["client"]["scopedRoles"] == ["deploy"]
    token = token_request(client, created["client"]["clientId"], created["clientSecret"]).json()
    assert token["scope"] == "deploy"
    search = client.post(
        "/api/v1/search/iam/personal_clients",
        json={},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert search.status_code == 403


def test_device_token_without_the_admin_role_cannot_name_it(
    client: TestClient, make_user: Any
) -> None:
    admin = make_user(roles=("deploy", "system:owner"))
    access = approved_token(client, admin)["access_token"]
    response = client.post(
        "/api/v1/iam/personal_clients",
        json={"display_name": "x", "scoped_roles": ["system:owner"]},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.status_code == 403
    assert "system:owner" in response.json()["message"]


def test_device_token_of_an_admin_holding_only_the_admin_role_is_told_to_ask_for_it(
    client: TestClient, make_user: Any
) -> None:
    admin = make_user(roles=("system:owner",))
    access = approved_token(client, admin)["access_token"]
    response = client.post(
        "/api/v1/iam/personal_clients",
        json={"display_name": "Created by Cone"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.status_code == 403
    assert "scope system:owner" in response.json()["message"]


def test_device_token_granted_the_admin_role_may_pass_it_on(
    client: TestClient, make_user: Any
) -> None:
    admin = make_user(roles=("deploy", "system:owner"))
    access = approved_token(client, admin, scope="deploy system:owner")["access_token"]
    response = client.post(
        "/api/v1/iam/personal_clients",
        json={"display_name": "Created by Cone"},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.status_code == 200, response.text


def introspected(client: TestClient, access_token: str) -> int:
    """The status of the management API's introspection with the token as the bearer."""
    response = client.get(
        "/api/v1/auth/introspect", headers={"Authorization": f"Bearer {access_token}"}
    )
    return int(response.status_code)


def test_public_device_client_revokes_its_own_token(client: TestClient, make_user: Any) -> None:
    """L1: RFC 7009 section 2.1, a public client presents only its client_id."""
    access = approved_token(client, make_user())["access_token"]
    response = client.post("/auth/v1/revoke", data={"client_id": CONE, "token": access})
    assert response.status_code == 200, response.text
    assert introspected(client, access) == 401


def test_device_client_cannot_revoke_another_device_clients_token(
    client: TestClient, make_user: Any
) -> None:
    access = approved_token(client, make_user())["access_token"]
    response = client.post("/auth/v1/revoke", data={"client_id": OTHER, "token": access})
    assert response.status_code == 200
    assert introspected(client, access) == 200


def test_device_client_cannot_revoke_a_credentials_token(
    client: TestClient, make_user: Any, make_client: Any
) -> None:
    record, secret = make_client(make_user())
    access = token_request(client, record.client_id, secret).json()["access_token"]
    client.post("/auth/v1/revoke", data={"client_id": CONE, "token": access})
    assert introspected(client, access) == 200


def test_revocation_by_a_device_client_without_token_is_invalid_request(
    client: TestClient,
) -> None:
    response = client.post("/auth/v1/revoke", data={"client_id": CONE})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_sign_out_everywhere_ends_the_persons_device_tokens_on_every_instance(
    client: TestClient, settings: Settings, database: Any, make_user: Any
) -> None:
    user = make_user()
    access = approved_token(client, user)["access_token"]
    with TestClient(create_app(settings, database=database), client=(PEER, 1)) as other:
        assert introspected(other, access) == 200
        time.sleep(1)  # iat has whole seconds: sign out in a later second than the token
        services_of(app_of(client)).people.sign_out_everywhere(user_ref=user.id, now=now())
        within(1.5, lambda: introspected(other, access) == 401)
    assert introspected(client, access) == 401


def test_device_token_issued_after_sign_out_everywhere_works(
    client: TestClient, make_user: Any
) -> None:
    user = make_user()
    services_of(app_of(client)).people.sign_out_everywhere(user_ref=user.id, now=now())
    time.sleep(1)
    assert introspected(client, approved_token(client, user)["access_token"]) == 200


def test_device_token_issuance_at_debug_level_logs_no_token(
    client: TestClient, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """L4: Authlib's device-code grant logs ``Issue token {'access_token': 'eyJ…'}`` at debug."""
    configure_logging("debug")  # what serve does at log_level = "debug"
    caplog.set_level(logging.DEBUG)
    grant_logger = logging.getLogger("authlib.oauth2.rfc8628.device_code")
    assert not grant_logger.disabled
    access = approved_token(client, make_user())["access_token"]
    assert not [r for r in caplog.records if access in r.getMessage()]
    assert grant_logger.getEffectiveLevel() == logging.INFO
