"""Limits against guessing count once for a whole ``serve``: with two workers (and with two
instances on one database), the limit of 10 failures is 10, not 10 per process."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from authserver.config import Settings
from authserver.records import ClientRecord
from authserver.security.argon2 import PasswordHasher, SecretHasher
from authserver.store import Store
from authserver.usecases.credentials import CredentialService
from authserver.usecases.people import PeopleService
from authserver.usecases.users import UserService
from tests.support.helpers import PASSWORD, now, operator_creates
from tests.support.servers import ServerProcess

LIMIT = 10  # the default sign_in_failure_limit and auth_failure_limit
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

pytestmark = pytest.mark.slow


def _sign_in(url: str, email: str, password: str) -> int:
    """One sign-in through the page, on a connection (and a browser) of its own."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/ui/")
        found = CSRF.search(form.text)
        assert found is not None, form.text[:200]
        answer = browser.post(
            "/ui/login/password",
            data={"csrf_token": found.group(1), "email": email, "password": password},
        )
        return answer.status_code


def test_password_guesses_count_once_across_two_workers(
    database_url: str, tmp_path: Path, store: Store, settings: Settings
) -> None:
    user = UserService(store).create(
        email="guessed@example.com", display_name="", role_names=[], now=now()
    )
    PeopleService(store, PasswordHasher(settings), settings).set_password(
        user_ref=user.id, password=PASSWORD, now=now()
    )
    with ServerProcess(database_url, tmp_path, workers=2) as server:
        statuses = [
            _sign_in(server.url, "guessed@example.com", f"wrong guess {n:02d}") for n in range(30)
        ]
    assert statuses.count(401) == LIMIT
    assert statuses.count(429) == 30 - LIMIT


@pytest.fixture
def credential(store: Store, hasher: SecretHasher, settings: Settings) -> tuple[ClientRecord, str]:
    user = UserService(store).create(
        email="ci@example.com", display_name="", role_names=["deploy"], now=now()
    )
    return operator_creates(CredentialService(store, hasher, settings), user)


def test_client_authentication_failures_count_once_across_two_workers(
    database_url: str, tmp_path: Path, credential: tuple[ClientRecord, str]
) -> None:
    record, secret = credential
    with ServerProcess(database_url, tmp_path, workers=2) as server:
        statuses = []
        for _ in range(30):
            with httpx.Client(timeout=30) as fresh:  # a new connection each time
                answer = fresh.post(
                    f"{server.url}/auth/v1/token",
                    data={"grant_type": "client_credentials"},
                    auth=(record.client_id, "secret-token:127.0.0.1:v1:not-the-secret"),
                )
                statuses.append(answer.status_code)
    assert statuses.count(401) == LIMIT
    assert statuses.count(429) == 30 - LIMIT


def test_two_instances_on_one_database_share_the_limit(
    database_url: str, tmp_path: Path, credential: tuple[ClientRecord, str]
) -> None:
    record, _ = credential
    with (
        ServerProcess(database_url, tmp_path) as first,
        ServerProcess(database_url, tmp_path) as second,
    ):
        statuses = [
            httpx.post(
                f"{(first if n % 2 else second).url}/auth/v1/token",
                data={"grant_type": "client_credentials"},
                auth=(record.client_id, "secret-token:127.0.0.1:v1:not-the-secret"),
            ).status_code
            for n in range(20)
        ]
    assert statuses.count(401) == LIMIT
