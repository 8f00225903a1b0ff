"""``/ui/federation`` without a browser: list, presets, create, the condition test box, delete,
CSRF, and that a pasted token is neither kept nor logged."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from authserver.records import UserRecord
from authserver.store import Store
from tests.support.helpers import PASSWORD, now
from tests.support.types import MakeUser
from tests.support.ui_helpers import csrf_of, sign_in

PAGE = "/ui/federation"
CONDITION = 'claims.repository == "acme/deploy" && claims.ref == "refs/heads/main"'


@pytest.fixture
def alice(app: Starlette, make_user: MakeUser) -> UserRecord:
    user = make_user(email="alice@example.com", roles=("billing:read", "deploy"))
    app.state.services.people.set_password(user_ref=user.id, password=PASSWORD, now=now())
    return user


@pytest.fixture
def signed_in(client: TestClient, alice: UserRecord) -> TestClient:
    assert sign_in(client).status_code == 303
    return client


def _form(client: TestClient, **fields: str | list[str]) -> dict[str, str | list[str]]:
    return {
        "csrf_token": csrf_of(client.get(PAGE)),
        "name": "deploy",
        "issuer": "https://token.actions.githubusercontent.com",
        "audience": "",
        "condition": CONDITION,
        "networks": "",
        "expiry": "90d",
        **fields,
    }


def _jwt(claims: dict[str, object]) -> str:
    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJl"


def test_signed_out_is_sent_to_sign_in(client: TestClient) -> None:
    answer = client.get(PAGE, follow_redirects=False)
    assert answer.status_code in (302, 303)


def test_nav_links_to_the_page(signed_in: TestClient) -> None:
    assert 'href="/ui/federation"' in signed_in.get("/ui/personal-clients").text


def test_presets_fill_in_the_issuer_and_list_the_claims(signed_in: TestClient) -> None:
    github = signed_in.get(PAGE).text
    assert 'value="https://token.actions.githubusercontent.com"' in github
    for claim in ("repository", "ref", "environment", "workflow", "job_workflow_ref"):
        assert f"claims.{claim}</code>" in github
    gitlab = signed_in.get(PAGE, params={"preset": "gitlab"}).text
    assert 'value="https://gitlab.com"' in gitlab
    for claim in ("project_path", "ref", "ref_protected", "environment"):
        assert f"claims.{claim}</code>" in gitlab


def test_create_lists_the_trust(signed_in: TestClient, store: Store, alice: UserRecord) -> None:
    answer = signed_in.post(f"{PAGE}/new", data=_form(signed_in), follow_redirects=False)
    assert answer.status_code == 303, answer.text
    (trust,), _ = store.trusts.page(user_ids=[alice.id], after_id=None, limit=10)
    assert trust.condition == CONDITION and trust.expires_time is not None
    page = signed_in.get(answer.headers["location"]).text
    assert trust.client_id in page and "The trust was created" in page


def test_invalid_condition_is_refused_naming_it(signed_in: TestClient, store: Store) -> None:
    answer = signed_in.post(f"{PAGE}/new", data=_form(signed_in, condition="claims.ref =="))
    assert answer.status_code == 400
    assert "Condition: cannot parse" in answer.text
    assert store.trusts.page(user_ids=None, after_id=None, limit=10) == ([], False)


def test_create_without_the_csrf_token_is_refused(signed_in: TestClient, store: Store) -> None:
    form = _form(signed_in)
    form["csrf_token"] = "forged"
    assert signed_in.post(f"{PAGE}/new", data=form).status_code == 403
    assert store.trusts.page(user_ids=None, after_id=None, limit=10) == ([], False)


@pytest.mark.parametrize(
    ("ref", "verdict"),
    [
        pytest.param("refs/heads/main", "Accepted", id="true"),
        pytest.param("refs/heads/topic", "Refused", id="false"),
    ],
)
def test_test_box_evaluates_a_pasted_token(
    signed_in: TestClient,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    ref: str,
    verdict: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _jwt({"repository": "acme/deploy", "ref": ref, "iss": "x"})
    answer = signed_in.post(f"{PAGE}/test", data=_form(signed_in, claims=token))
    assert answer.status_code == 200
    assert f"<strong>{verdict}:</strong>" in answer.text
    assert "<code>repository</code>" in answer.text  # the names of the claims found
    assert token not in answer.text  # not sent back
    assert all(token not in record.getMessage() for record in caplog.records)
    assert store.trusts.page(user_ids=None, after_id=None, limit=10) == ([], False)


def test_test_box_takes_claims_as_json(signed_in: TestClient) -> None:
    claims = json.dumps({"repository": "acme/deploy", "ref": "refs/heads/main"})
    answer = signed_in.post(f"{PAGE}/test", data=_form(signed_in, claims=claims))
    assert "<strong>Accepted:</strong>" in answer.text


def test_test_box_names_a_bad_paste(signed_in: TestClient) -> None:
    answer = signed_in.post(f"{PAGE}/test", data=_form(signed_in, claims="hello"))
    assert "neither a JSON object nor a token" in answer.text


def test_test_box_names_a_bad_condition(signed_in: TestClient) -> None:
    answer = signed_in.post(
        f"{PAGE}/test", data=_form(signed_in, condition="claims.ref ==", claims="{}")
    )
    assert "Condition: cannot parse" in answer.text


def test_delete_after_confirmation(signed_in: TestClient, store: Store, alice: UserRecord) -> None:
    signed_in.post(f"{PAGE}/new", data=_form(signed_in))
    (trust,), _ = store.trusts.page(user_ids=[alice.id], after_id=None, limit=10)
    confirm = signed_in.get(f"{PAGE}/{trust.id}/delete")
    assert confirm.status_code == 200 and trust.client_id in confirm.text
    answer = signed_in.post(
        f"{PAGE}/{trust.id}/delete", data={"csrf_token": csrf_of(confirm)}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert store.trusts.page(user_ids=[alice.id], after_id=None, limit=10) == ([], False)


def test_another_persons_trust_cannot_be_deleted(
    signed_in: TestClient, app: Starlette, store: Store, make_user: MakeUser
) -> None:
    from authserver.domain.credentials import Caller
    from authserver.domain.federation import NewTrust

    bob = make_user(email="bob@example.com")
    trust = app.state.services.trusts.create(
        caller=Caller.operator(),
        owner_id=bob.id,
        new=NewTrust(issuer="https://gitlab.com", condition='claims.ref == "main"'),
        now=now(),
    )
    assert signed_in.get(f"{PAGE}/{trust.id}/delete").status_code == 404
    assert trust.client_id not in signed_in.get(PAGE).text
