"""RFC 8693 token exchange for federation trusts: a CI job's ID token from a test issuer on
loopback (GitHub-/GitLab-shaped, RS256, real HTTP for its discovery and keys) becomes an
access token of the trust's owner; every refusal answers alike and is audited with its reason."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey
from starlette.testclient import TestClient

from authserver.config import Settings
from authserver.domain.credentials import Caller
from authserver.domain.federation import NewTrust
from authserver.records import TrustRecord, UserRecord
from authserver.store import Store
from authserver.usecases.federation import TrustService
from tests.support.ci_issuer import CiIssuer, github_claims, gitlab_claims, running_issuer
from tests.support.helpers import PEER, app_of, now, services_of, within
from tests.support.ports import free_port
from tests.support.types import MakeUser

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
AUDIENCE = "http://127.0.0.1:8000"  # the test server's issuer URL: the default audience
CONDITION = 'claims.repository == "acme/deploy" && claims.ref == "refs/heads/main"'


@pytest.fixture(scope="module")
def issuer() -> Iterator[CiIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Every test starts with an empty key cache (a new app); let rotations refetch at once.
    return {"federation_jwks_refetch_interval": 0}


@pytest.fixture
def owner(make_user: MakeUser) -> UserRecord:
    return make_user(roles=("deploy", "billing:read"))


def make_trust(
    store: Store,
    settings: Settings,
    owner: UserRecord,
    issuer: str,
    *,
    condition: str = CONDITION,
    **fields: Any,
) -> TrustRecord:
    service = TrustService(store, settings)
    return service.create(
        caller=Caller.operator(),
        owner_id=owner.id,
        new=NewTrust(issuer=issuer, condition=condition, **fields),
        now=now(),
    )


@pytest.fixture
def trust(store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer) -> TrustRecord:
    return make_trust(store, settings, owner, issuer.url, display_name="deploy from CI")


def exchange(client: TestClient, client_id: str, subject_token: str, **form: str) -> Any:
    return client.post(
        "/auth/v1/token",
        data={
            "grant_type": GRANT,
            "subject_token": subject_token,
            "subject_token_type": JWT_TYPE,
            "client_id": client_id,
            **form,
        },
    )


def claims_of(access_token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = pyjwt.decode(access_token, options={"verify_signature": False})
    return decoded


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]
    return [line for line in lines if line["event"] in ("token_exchange_refused", "auth_failed")]


# Success ------------------------------------------------------------------------------------


def test_github_job_token_is_exchanged_for_the_owners_token(
    client: TestClient, trust: TrustRecord, owner: UserRecord, issuer: CiIssuer
) -> None:
    job = issuer.token(github_claims(), audience=AUDIENCE)
    answer = exchange(client, trust.client_id, job)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "billing:read deploy"
    assert answer.headers["cache-control"] == "no-store"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == owner.id
    assert claims["client_id"] == trust.client_id
    assert claims["act"] == {"iss": issuer.url, "sub": "repo:acme/deploy:ref:refs/heads/main"}
    assert claims["roles"] == ["billing:read", "deploy"]
    assert 0 < body["expires_in"] <= 600


def test_gitlab_job_token_with_the_id_token_type_is_exchanged(
    client: TestClient, store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer
) -> None:
    trust = make_trust(
        store,
        settings,
        owner,
        issuer.url,
        audience="https://authserver.example",
        condition='claims.project_path == "acme/deploy" && claims.ref_protected == "true"',
    )
    job = issuer.token(gitlab_claims(), audience="https://authserver.example")
    answer = exchange(
        client,
        trust.client_id,
        job,
        subject_token_type="urn:ietf:params:oauth:token-type:id_token",
    )
    assert answer.status_code == 200, answer.text


def test_scope_narrows_the_roles(client: TestClient, trust: TrustRecord, issuer: CiIssuer) -> None:
    answer = exchange(
        client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE), scope="deploy"
    )
    assert answer.status_code == 200, answer.text
    assert claims_of(answer.json()["access_token"])["roles"] == ["deploy"]


def test_scope_beyond_the_trusts_roles_is_invalid_scope(
    client: TestClient, store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer
) -> None:
    trust = make_trust(store, settings, owner, issuer.url, scoped_roles=("deploy",))
    answer = exchange(
        client,
        trust.client_id,
        issuer.token(github_claims(), audience=AUDIENCE),
        scope="billing:read",
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"


def test_roles_follow_the_owners_current_roles(
    client: TestClient, store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer
) -> None:
    trust = make_trust(store, settings, owner, issuer.url, scoped_roles=("deploy", "billing:read"))
    from authserver.usecases.users import UserService

    UserService(store).update(ref=owner.id, role_names=("deploy",), disabled=None, now=now())
    answer = exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    assert answer.status_code == 200, answer.text
    assert claims_of(answer.json()["access_token"])["roles"] == ["deploy"]


def test_exchanged_token_works_on_the_management_api(
    client: TestClient, trust: TrustRecord, owner: UserRecord, issuer: CiIssuer
) -> None:
    token = exchange(
        client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE)
    ).json()["access_token"]
    whoami = client.get("/api/v1/auth/introspect", headers={"Authorization": f"Bearer {token}"})
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["userId"] == owner.id


def test_exchanged_token_stops_working_when_the_trust_is_deleted(
    client: TestClient, store: Store, settings: Settings, trust: TrustRecord, issuer: CiIssuer
) -> None:
    token = exchange(
        client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE)
    ).json()["access_token"]
    services_of(app_of(client)).trusts.delete(caller=Caller.operator(), ref=trust.id, now=now())
    whoami = client.get("/api/v1/auth/introspect", headers={"Authorization": f"Bearer {token}"})
    assert whoami.status_code == 401


def test_last_used_is_recorded(
    client: TestClient, store: Store, trust: TrustRecord, issuer: CiIssuer
) -> None:
    assert (
        exchange(
            client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE)
        ).status_code
        == 200
    )
    within(5, lambda: store.trusts.get(id=trust.id).last_used_at is not None)


def test_metadata_lists_the_grant(client: TestClient) -> None:
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert GRANT in metadata["grant_types_supported"]


def test_keys_are_fetched_once_for_many_exchanges(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer
) -> None:
    before = issuer.jwks_requests
    for _ in range(3):
        job = issuer.token(github_claims(), audience=AUDIENCE)
        assert exchange(client, trust.client_id, job).status_code == 200
    assert issuer.jwks_requests - before == 1


def test_a_key_rotation_at_the_issuer_is_picked_up(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer
) -> None:
    assert (
        exchange(
            client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE)
        ).status_code
        == 200
    )
    issuer.rotate()
    answer = exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    assert answer.status_code == 200, answer.text


# Refusals of the subject token: 400 invalid_grant, one body, the reason audited -------------


def _refused_token(issuer: CiIssuer, case: str) -> str:
    claims = github_claims()
    if case == "condition":
        return issuer.token(github_claims(ref="refs/heads/feature"), audience=AUDIENCE)
    if case == "audience":
        return issuer.token(claims, audience="https://someone-else.example")
    if case == "too_old":
        return issuer.token(claims, audience=AUDIENCE, issued_ago=700, lifetime=3600)
    if case == "expired":
        return issuer.token(claims, audience=AUDIENCE, issued_ago=400, lifetime=300)
    if case == "signature":  # a key of the same type that the issuer never published
        foreign = RSAKey.generate_key(2048, parameters={"kid": issuer.key.kid or ""})
        return issuer.token(claims, audience=AUDIENCE, key=foreign)
    if case == "unknown key":
        foreign_ec = ECKey.generate_key("P-256", parameters={"kid": "not-published"})
        return issuer.token(claims, audience=AUDIENCE, key=foreign_ec, alg="ES256")
    if case == "hs256":
        secret = OctKey.import_key("a-shared-secret-nobody-should-use-xx")
        return issuer.token(claims, audience=AUDIENCE, key=secret, alg="HS256")
    if case == "none":
        signed = issuer.token(claims, audience=AUDIENCE)
        head = _b64(json.dumps({"alg": "none", "typ": "JWT"}))
        return f"{head}.{signed.split('.')[1]}."
    if case == "issuer":
        return issuer.token(claims, audience=AUDIENCE, iss="https://token.actions.example")
    raise AssertionError(case)


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


REFUSALS = [
    pytest.param("condition", "condition", id="condition-false"),
    pytest.param("audience", "audience", id="wrong-audience"),
    pytest.param("too_old", "too_old", id="too-old"),
    pytest.param("expired", "expired", id="expired"),
    pytest.param("signature", "signature", id="foreign-key"),
    pytest.param("unknown key", "signature", id="unpublished-kid"),
    pytest.param("hs256", "algorithm", id="hs256"),
    pytest.param("none", "algorithm", id="alg-none"),
    pytest.param("issuer", "issuer", id="other-issuer"),
]


@pytest.mark.parametrize(("case", "reason"), REFUSALS)
def test_refused_subject_token_is_invalid_grant_with_its_reason_audited(
    client: TestClient,
    trust: TrustRecord,
    issuer: CiIssuer,
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: str,
) -> None:
    caplog.set_level(logging.INFO, logger="authserver.audit")
    answer = exchange(client, trust.client_id, _refused_token(issuer, case))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "the subject token was not accepted",
    }
    assert [line["reason"] for line in refusals(caplog)] == [reason]


def test_every_refused_subject_token_gets_the_same_body(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer
) -> None:
    bodies = {
        exchange(client, trust.client_id, _refused_token(issuer, case)).text
        for case in ("condition", "audience", "expired", "hs256", "none")
    }
    assert len(bodies) == 1


def test_unreachable_issuer_is_invalid_grant_with_reason_jwks_unreachable(
    client: TestClient,
    store: Store,
    settings: Settings,
    owner: UserRecord,
    issuer: CiIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    trust = make_trust(store, settings, owner, dead)
    caplog.set_level(logging.INFO, logger="authserver.audit")
    job = issuer.token(github_claims(), audience=AUDIENCE, iss=dead)
    answer = exchange(client, trust.client_id, job)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert [line["reason"] for line in refusals(caplog)] == ["jwks_unreachable"]


def test_unreachable_issuer_does_not_stop_other_trusts(
    client: TestClient,
    store: Store,
    settings: Settings,
    owner: UserRecord,
    trust: TrustRecord,
    issuer: CiIssuer,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    other = make_trust(store, settings, owner, dead)
    refused = exchange(
        client, other.client_id, issuer.token(github_claims(), audience=AUDIENCE, iss=dead)
    )
    assert refused.status_code == 400
    served = exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    assert served.status_code == 200, served.text


# Refusals of the trust: 401 invalid_client, one body ------------------------------------------


def _invalid_client(answer: Any) -> None:
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_unknown_trust_is_invalid_client(client: TestClient, issuer: CiIssuer) -> None:
    job = issuer.token(github_claims(), audience=AUDIENCE)
    _invalid_client(exchange(client, "brave-otter-12345@127.0.0.1/wfe", job))


def test_deleted_trust_is_invalid_client(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer
) -> None:
    services_of(app_of(client)).trusts.delete(caller=Caller.operator(), ref=trust.id, now=now())
    _invalid_client(
        exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    )


def test_disabled_owner_is_invalid_client(
    client: TestClient, store: Store, trust: TrustRecord, owner: UserRecord, issuer: CiIssuer
) -> None:
    from authserver.usecases.users import UserService

    services = services_of(app_of(client))
    UserService(store).update(ref=owner.id, role_names=None, disabled=True, now=now())
    services.state_cache.forget(trust.client_id)
    _invalid_client(
        exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    )


def test_source_outside_the_trusts_networks_is_invalid_client(
    client: TestClient, store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer
) -> None:
    trust = make_trust(store, settings, owner, issuer.url, allow_source_cidr=("192.0.2.0/24",))
    _invalid_client(
        exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    )


def test_expired_trust_is_invalid_client(
    client: TestClient, store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer
) -> None:
    from sqlalchemy import update

    from authserver.store.models import PersonalClient

    trust = make_trust(store, settings, owner, issuer.url, expires_in=timedelta(days=1))
    with store.database.session() as session:
        session.execute(
            update(PersonalClient)
            .where(PersonalClient.id == trust.id)
            .values(expires_time=now() - timedelta(seconds=1))
        )
    services_of(app_of(client)).state_cache.forget(trust.client_id)
    _invalid_client(
        exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    )


def test_personal_client_id_cannot_be_used_for_an_exchange(
    client: TestClient, owner: UserRecord, issuer: CiIssuer, make_client: Any
) -> None:
    record, _ = make_client(owner)
    _invalid_client(
        exchange(client, record.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    )


def test_trust_cannot_authenticate_with_client_credentials(
    client: TestClient, trust: TrustRecord
) -> None:
    answer = client.post(
        "/auth/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(trust.client_id, "secret-token:127.0.0.1:v1:e30"),
    )
    _invalid_client(answer)


def test_failed_exchanges_are_throttled(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer
) -> None:
    bad = _refused_token(issuer, "condition")
    statuses = [exchange(client, trust.client_id, bad).status_code for _ in range(12)]
    assert statuses[:10] == [400] * 10
    assert statuses[-1] == 429


# Malformed requests: RFC 6749 invalid_request -----------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"subject_token_type": "urn:ietf:params:oauth:token-type:saml2"}, id="type"),
        pytest.param({"subject_token_type": JWT_TYPE, "drop": "subject_token"}, id="no-token"),
        pytest.param({"actor_token": "x"}, id="actor-token"),
        pytest.param({"client_secret": "x"}, id="client-auth"),
    ],
)
def test_malformed_exchange_is_invalid_request(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer, form: dict[str, str]
) -> None:
    data = {
        "grant_type": GRANT,
        "subject_token": issuer.token(github_claims(), audience=AUDIENCE),
        "subject_token_type": JWT_TYPE,
        "client_id": trust.client_id,
        **form,
    }
    data.pop(data.pop("drop", "drop"), None)
    answer = client.post("/auth/v1/token", data=data)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


# DPoP, idleness, throttling of refused trusts ------------------------------------------------


def test_a_dpop_proof_binds_the_exchanged_token(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer
) -> None:
    from authserver.client.dpop import DpopSigner

    signer = DpopSigner()
    answer = client.post(
        "/auth/v1/token",
        data={
            "grant_type": GRANT,
            "subject_token": issuer.token(github_claims(), audience=AUDIENCE),
            "subject_token_type": JWT_TYPE,
            "client_id": trust.client_id,
        },
        headers={"DPoP": signer.proof("POST", f"{AUDIENCE}/auth/v1/token")},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    assert set(claims_of(answer.json()["access_token"])["cnf"]) == {"jkt"}


def test_a_trust_requiring_dpop_refuses_an_exchange_without_a_proof(
    client: TestClient, store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer
) -> None:
    trust = make_trust(store, settings, owner, issuer.url, require_dpop=True)
    answer = exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(
    "settings_overrides",
    [{"federation_jwks_refetch_interval": 0, "policy_max_idle": "1d"}],
)
def test_an_idle_trust_is_invalid_client(
    client: TestClient, store: Store, settings: Settings, owner: UserRecord, issuer: CiIssuer
) -> None:
    from sqlalchemy import update

    from authserver.store.models import PersonalClient

    trust = make_trust(store, settings, owner, issuer.url)
    with store.database.session() as session:
        session.execute(
            update(PersonalClient)
            .where(PersonalClient.id == trust.id)
            .values(created_at=now() - timedelta(days=2))
        )
    _invalid_client(
        exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    )


def test_refused_trusts_are_throttled_too(client: TestClient, issuer: CiIssuer) -> None:
    job = issuer.token(github_claims(), audience=AUDIENCE)
    statuses = [
        exchange(client, "brave-otter-12345@127.0.0.1/wfe", job).status_code for _ in range(12)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429


def test_a_refused_trust_is_audited_with_its_reason(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authserver.audit")
    services_of(app_of(client)).trusts.delete(caller=Caller.operator(), ref=trust.id, now=now())
    exchange(client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE))
    assert [line["reason"] for line in refusals(caplog)] == ["credential deleted"]


def test_the_exchanged_token_is_introspected_with_its_act(
    client: TestClient, trust: TrustRecord, issuer: CiIssuer, make_client: Any, owner: UserRecord
) -> None:
    token = exchange(
        client, trust.client_id, issuer.token(github_claims(), audience=AUDIENCE)
    ).json()["access_token"]
    record, secret = make_client(owner)
    answer = client.post(
        "/auth/v1/introspect", data={"token": token}, auth=(record.client_id, secret)
    )
    body = answer.json()
    assert body["active"] is True
    assert body["client_id"] == trust.client_id


def test_the_source_address_of_an_exchange_is_kept_as_usage(
    client: TestClient, store: Store, trust: TrustRecord, issuer: CiIssuer
) -> None:
    token = issuer.token(github_claims(), audience=AUDIENCE)
    assert exchange(client, trust.client_id, token).status_code == 200
    within(5, lambda: bool(store.usage.addresses(credential_id=trust.id)))
    [use] = store.usage.addresses(credential_id=trust.id)
    assert use.address == PEER
