"""``/api/v1/iam/federation_trusts``: create, list, get, update with ``updateMask``, delete —
under the personal clients' rules (ownership, no escalation, networks, the lifetime policy)
and the trust's own (issuer URL, CEL condition checked when saved)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.types import MakeCaller

PATH = "/api/v1/iam/federation_trusts"
CONDITION = 'claims.repository == "acme/deploy" && claims.ref == "refs/heads/main"'
GITHUB = "https://token.actions.githubusercontent.com"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(client: TestClient, token: str, **body: Any) -> Any:
    return client.post(
        PATH,
        json={"displayName": "deploy", "issuer": GITHUB, "condition": CONDITION, **body},
        headers=_auth(token),
    )


def test_create_returns_the_trust_with_a_wfe_client_id(
    client: TestClient, caller: MakeCaller
) -> None:
    user, _, _, token = caller()
    answer = _create(client, token)
    assert answer.status_code == 200, answer.text
    trust = answer.json()["trust"]
    assert trust["clientId"].endswith("@127.0.0.1/wfe")
    name, _, _ = trust["clientId"].partition("@")
    adjective, noun, digits = name.split("-")
    assert adjective.isalpha() and noun.isalpha() and len(digits) == 5 and digits.isdigit()
    assert trust["userId"] == user.id
    assert trust["issuer"] == GITHUB
    assert trust["audience"] == "http://127.0.0.1:8000"  # default: this server's issuer
    assert trust["condition"] == CONDITION
    assert "clientSecret" not in answer.json()


def test_list_get_and_delete(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    trust = _create(client, token).json()["trust"]
    listed = client.get(PATH, headers=_auth(token)).json()
    assert [t["id"] for t in listed["list"]] == [trust["id"]]
    assert listed["nextPageToken"] == ""
    got = client.get(f"{PATH}/{trust['id']}", headers=_auth(token))
    assert got.json() == {"trust": trust}
    assert client.delete(f"{PATH}/{trust['id']}", headers=_auth(token)).json() == {}
    assert client.get(f"{PATH}/{trust['id']}", headers=_auth(token)).status_code == 404
    assert client.get(PATH, headers=_auth(token)).json()["list"] == []


def test_trusts_are_not_personal_clients(client: TestClient, caller: MakeCaller) -> None:
    _, record, _, token = caller()
    trust = _create(client, token).json()["trust"]
    clients = client.get("/api/v1/iam/personal_clients", headers=_auth(token)).json()["list"]
    assert [c["id"] for c in clients] == [record.id]
    got = client.get(f"/api/v1/iam/personal_clients/{trust['id']}", headers=_auth(token))
    assert got.status_code == 404


def test_list_pages(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    ids = [_create(client, token).json()["trust"]["id"] for _ in range(3)]
    first = client.get(PATH, params={"pageSize": 2}, headers=_auth(token)).json()
    second = client.get(
        PATH, params={"pageSize": 2, "pageToken": first["nextPageToken"]}, headers=_auth(token)
    ).json()
    assert [t["id"] for t in first["list"] + second["list"]] == ids
    assert second["nextPageToken"] == ""


def test_update_with_update_mask(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    trust = _create(client, token).json()["trust"]
    new_condition = 'claims.repository == "acme/deploy" && claims.environment == "prod"'
    answer = client.post(
        f"{PATH}/{trust['id']}",
        json={
            "trust": {"condition": new_condition, "displayName": "ignored"},
            "updateMask": "condition,audience",
        },
        headers=_auth(token),
    )
    assert answer.status_code == 200, answer.text
    updated = answer.json()["trust"]
    assert updated["condition"] == new_condition
    assert updated["displayName"] == "deploy"  # not in the mask
    assert updated["audience"] == "http://127.0.0.1:8000"  # cleared: back to the default


def test_update_refuses_an_unknown_mask_path(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    trust = _create(client, token).json()["trust"]
    answer = client.post(
        f"{PATH}/{trust['id']}",
        json={"trust": {}, "updateMask": "clientId"},
        headers=_auth(token),
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == 3


def test_update_refuses_an_invalid_condition(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    trust = _create(client, token).json()["trust"]
    answer = client.post(
        f"{PATH}/{trust['id']}",
        json={"trust": {"condition": "claims.ref =="}, "updateMask": "condition"},
        headers=_auth(token),
    )
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("condition: ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"condition": "claims.ref =="}, "condition: cannot parse", id="syntax"),
        pytest.param({"condition": ""}, "condition: required", id="missing"),
        pytest.param(
            {"condition": 'claims.ref == "' + "x" * 1020 + '"'},
            "condition: at most 1024 characters",
            id="too-long",
        ),
        pytest.param(
            {"condition": 'repository == "acme/deploy"'},
            "condition: unknown variable repository",
            id="not-over-claims",
        ),
        pytest.param(
            {"issuer": "http://ci.example.com"}, "issuer: http://ci.example.com is plain", id="http"
        ),
        pytest.param({"issuer": "ftp://ci.example.com"}, "issuer: must be an absolute", id="ftp"),
        pytest.param({"issuer": ""}, "issuer: required", id="no-issuer"),
    ],
)
def test_create_refuses_bad_fields_naming_the_problem(
    client: TestClient, caller: MakeCaller, body: dict[str, str], message: str
) -> None:
    _, _, _, token = caller()
    answer = _create(client, token, **body)
    assert answer.status_code == 400
    assert answer.json()["code"] == 3
    assert answer.json()["message"].startswith(message), answer.json()


def test_http_issuer_on_loopback_is_accepted(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    assert _create(client, token, issuer="http://127.0.0.1:9999").status_code == 200


def test_reduced_caller_cannot_create_an_unreduced_trust(
    client: TestClient, caller: MakeCaller
) -> None:
    _, _, _, token = caller(scoped=("deploy",))
    answer = _create(client, token)
    assert answer.status_code == 403
    assert answer.json()["code"] == 7


def test_reduced_caller_cannot_exceed_its_roles(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller(scoped=("deploy",))
    answer = _create(client, token, scopedRoles=["deploy", "billing:read"])
    assert answer.status_code == 403
    assert _create(client, token, scopedRoles=["deploy"]).status_code == 200


def test_scoped_roles_must_be_the_owners(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    answer = _create(client, token, scopedRoles=["system:owner"])
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("scopedRoles:")


def test_networks_are_validated(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    answer = _create(client, token, allowSourceCidr=["not-a-cidr"])
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("allowSourceCidr:")


def test_expires_sets_the_expiry(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    trust = _create(client, token, expires="3600s").json()["trust"]
    assert "expiresTime" in trust


@pytest.mark.parametrize("settings_overrides", [{"policy_max_lifetime": "7d"}])
def test_lifetime_policy_applies_to_trusts(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, token = caller()
    refused = _create(client, token, expires=f"{int(timedelta(days=30).total_seconds())}s")
    assert refused.status_code == 400
    assert "policy" in refused.json()["message"]
    capped = _create(client, token).json()["trust"]
    assert "expiresTime" in capped  # a trust without an expiry gets the policy's


def test_another_users_trust_is_not_found(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, alice = caller()
    _, _, _, bob = caller()
    trust = _create(client, alice).json()["trust"]
    assert client.get(f"{PATH}/{trust['id']}", headers=_auth(bob)).status_code == 404
    assert client.delete(f"{PATH}/{trust['id']}", headers=_auth(bob)).status_code == 404
    assert client.get(PATH, headers=_auth(bob)).json()["list"] == []


def test_admin_sees_anyones_trust(client: TestClient, caller: MakeCaller) -> None:
    _, _, _, alice = caller()
    _, _, _, admin = caller(roles=("system:owner",))
    trust = _create(client, alice).json()["trust"]
    assert client.get(f"{PATH}/{trust['id']}", headers=_auth(admin)).status_code == 200


def test_reduced_caller_cannot_delete_an_unreduced_trust(
    client: TestClient, caller: MakeCaller, make_client: Any
) -> None:
    user, _, _, full = caller()
    trust = _create(client, full).json()["trust"]
    record, secret = make_client(user, scoped=("deploy",))
    from tests.support.helpers import mint

    reduced = mint(client, record.client_id, secret)
    assert client.delete(f"{PATH}/{trust['id']}", headers=_auth(reduced)).status_code == 403


def test_requires_a_bearer_token(client: TestClient) -> None:
    assert client.get(PATH).status_code == 401
