"""The credential ``authserver login`` saved, used without writing code: ``authserver token``,
and ``TokenAuth.from_file`` / ``RequestsTokenAuth.from_file``, over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import requests

from authserver.client import CredentialFileError, RequestsTokenAuth, TokenAuth
from authserver.config import Settings
from authserver.domain.credentials import Caller
from authserver.records import ClientRecord, UserRecord
from authserver.security.argon2 import SecretHasher
from authserver.store import Store
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import now, operator_creates
from tests.support.live import LiveServer

LiveServerFixture = tuple[LiveServer, Settings, Store]
WHO_AM_I = "/api/v1/auth/introspect"


def saved_credential(live_server: LiveServerFixture, path: Path) -> tuple[UserRecord, ClientRecord]:
    """A credential of a user with two roles, saved in ``path`` as ``authserver login`` does."""
    server, settings, store = live_server
    user = UserService(store).create(
        email="saved@example.com", display_name="", role_names=["billing:read", "deploy"], now=now()
    )
    record, secret = operator_creates(
        CredentialService(store, SecretHasher(settings), settings), user
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"issuer": server.url, "client_id": record.client_id, "client_secret": secret})
    )
    path.chmod(0o600)
    return user, record


def run_token(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authserver", "token", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AUTHSERVER_CONFIG": "", "XDG_CONFIG_HOME": str(home)},
    )


def who(server: LiveServer, token: str) -> dict[str, object]:
    answer = httpx.get(server.url + WHO_AM_I, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_token_prints_an_access_token_from_the_default_saved_credential(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    user, _ = saved_credential(live_server, tmp_path / "authserver" / "credential.json")
    run = run_token(home=tmp_path)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    assert run.stdout == token + "\n"
    assert who(server, token)["userId"] == user.id


def test_token_with_credential_and_scope_reduces_the_token(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    path = tmp_path / "elsewhere.json"
    saved_credential(live_server, path)
    run = run_token("--credential", str(path), "--scope", "deploy", home=tmp_path / "empty")
    assert run.returncode == 0, run.stderr
    assert who(server, run.stdout.strip())["roles"] == ["deploy"]


def test_token_without_a_saved_credential_says_to_log_in(tmp_path: Path) -> None:
    run = run_token(home=tmp_path)
    assert run.returncode == 1
    expected = tmp_path / "authserver" / "credential.json"
    assert run.stderr == (
        f"error: no saved credential at {expected}; run `authserver login --issuer URL` first\n"
    )


def test_token_with_a_file_that_is_not_a_credential_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"issuer": "http://127.0.0.1:9"}')
    run = run_token("--credential", str(path), home=tmp_path)
    assert run.returncode == 1
    assert run.stderr == (
        f"error: {path} is not a saved credential (JSON with issuer, client_id and client_secret)\n"
    )


def test_token_of_a_deleted_credential_exits_1_with_the_servers_refusal(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    _, settings, store = live_server
    path = tmp_path / "c.json"
    _, record = saved_credential(live_server, path)
    CredentialService(store, SecretHasher(settings), settings).delete(
        caller=Caller.operator(), ref=record.id, now=now()
    )
    run = run_token("--credential", str(path), home=tmp_path)
    assert run.returncode == 1
    assert run.stderr == (
        "error: token request refused (401 invalid_client): Client authentication failed.\n"
    )
    assert run.stdout == ""


def test_token_with_a_scope_beyond_the_credential_exits_1(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    path = tmp_path / "c.json"
    saved_credential(live_server, path)
    run = run_token("--credential", str(path), "--scope", "system:owner", home=tmp_path)
    assert run.returncode == 1
    assert run.stderr.startswith("error: token request refused (400 invalid_scope)")
    assert run.stderr.count("\n") == 1


def test_httpx_token_auth_from_file_calls_the_api(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    path = tmp_path / "c.json"
    user, _ = saved_credential(live_server, path)
    answer = httpx.get(server.url + WHO_AM_I, auth=TokenAuth.from_file(path, scope="deploy"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["userId"], answer.json()["roles"]) == (user.id, ["deploy"])


def test_httpx_token_auth_from_file_reads_the_default_path(
    live_server: LiveServerFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _, _ = live_server
    user, _ = saved_credential(live_server, tmp_path / "authserver" / "credential.json")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    answer = httpx.get(server.url + WHO_AM_I, auth=TokenAuth.from_file())
    assert answer.json()["userId"] == user.id


def test_requests_token_auth_from_file_calls_the_api(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    path = tmp_path / "c.json"
    user, _ = saved_credential(live_server, path)
    answer = requests.get(
        server.url + WHO_AM_I, auth=RequestsTokenAuth.from_file(str(path)), timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["roles"] == ["billing:read", "deploy"]


def test_from_file_without_a_saved_credential_raises_credential_file_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(CredentialFileError, match="no saved credential at "):
        TokenAuth.from_file(tmp_path / "missing.json")


@pytest.mark.parametrize("live_settings_overrides", [{}, {"dpop_nonce": True}])
def test_token_with_dpop_prints_a_bound_token_and_the_call_that_uses_it(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    import shlex

    server, _, _ = live_server
    user, _ = saved_credential(live_server, tmp_path / "authserver" / "credential.json")
    url = server.url + WHO_AM_I
    run = run_token("--dpop", url, home=tmp_path)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    # As Bearer the bound token is refused; the printed call (its proof) works, once.
    refused = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    words = shlex.split(run.stderr.splitlines()[-1])
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    assert headers["Authorization"] == f"DPoP {token}"
    answer = httpx.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["userId"] == user.id
