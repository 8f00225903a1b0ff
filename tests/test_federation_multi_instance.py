"""Federation trusts on two instances sharing one PostgreSQL database: a trust made through one
is usable on the other, and its deletion stops exchanges there within a second."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import httpx
import pytest

from authserver.config import Settings
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.store.database import Database
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.ci_issuer import CiIssuer, github_claims, running_issuer
from tests.support.helpers import now, operator_creates, within
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.slow
BOUND = 1.0
ISSUER = "http://authserver.test"


class Shared(TypedDict):
    """The environment both instances share (TypedDict: each key goes to ``**env``)."""

    AUTHSERVER_ISSUER: str
    AUTHSERVER_ALLOW_INSECURE_ISSUER: str


SHARED: Shared = {"AUTHSERVER_ISSUER": ISSUER, "AUTHSERVER_ALLOW_INSECURE_ISSUER": "1"}


@pytest.fixture
def issuer() -> Iterator[CiIssuer]:
    with running_issuer() as running:
        yield running


def exchange(server: ServerProcess, client_id: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/v1/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "client_id": client_id,
        },
    )


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_trust_made_on_one_instance_works_on_the_other_until_deleted(
    database_url: str, tmp_path: Path, hasher: SecretHasher, issuer: CiIssuer
) -> None:
    database = Database(database_url)
    store = Store(database)
    try:
        user = UserService(store).create(
            email="ci@example.com", display_name="", role_names=["deploy"], now=now()
        )
        settings = Settings(issuer=ISSUER, allow_insecure_issuer=True)
        record, secret = operator_creates(CredentialService(store, hasher, settings), user)
        with (
            ServerProcess(database_url, tmp_path, **SHARED) as a,
            ServerProcess(database_url, tmp_path, **SHARED) as b,
        ):
            token = httpx.post(
                f"{a.url}/auth/v1/token",
                data={"grant_type": "client_credentials"},
                auth=(record.client_id, secret),
            ).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            created = httpx.post(
                f"{a.url}/api/v1/iam/federation_trusts",
                json={"issuer": issuer.url, "condition": 'claims.repository == "acme/deploy"'},
                headers=bearer,
            )
            assert created.status_code == 200, created.text
            trust = created.json()["trust"]
            job = issuer.token(github_claims(), audience=ISSUER)
            answer = exchange(b, trust["clientId"], job)
            assert answer.status_code == 200, answer.text
            assert exchange(a, trust["clientId"], job).status_code == 200
            deleted = httpx.delete(
                f"{a.url}/api/v1/iam/federation_trusts/{trust['id']}", headers=bearer
            )
            assert deleted.json() == {}
            within(BOUND, lambda: exchange(b, trust["clientId"], job).status_code == 401)
        assert store.trusts.get(id=trust["id"]).last_used_at is not None  # flushed at shutdown
    finally:
        database.dispose()
