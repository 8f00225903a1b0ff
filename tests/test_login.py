"""``authserver login`` against a real server: the device flow from the command line's side.

The person's approval is given through the device-flow use case, as the
approval page gives it; ``test_ui_device.py`` does the same in a browser.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from authserver.config import DeviceClient
from authserver.domain.credentials import Caller
from authserver.usecases.devices import DeviceFlowService
from authserver.usecases.users import UserService
from tests.support.helpers import now, token_request
from tests.support.types import LiveServerFixture

CLI = "authserver-cli"


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return {"device_clients": (DeviceClient(CLI, "authserver login"),), "device_poll_interval": 1}


def run_login(server_url: str, output: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "authserver", "login", "--issuer", server_url,
         "--output", str(output), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AUTHSERVER_CONFIG": ""},
    )  # fmt: skip


def user_code_from(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"one-time code: ([A-Z]{4}-[A-Z]{4})", line)
        if found:
            return found.group(1)
    raise AssertionError("authserver login printed no user code")


def approve(live_server: LiveServerFixture, user_code: str, *, approve: bool = True) -> str:
    _, settings, store = live_server
    user = UserService(store).create(
        email="cli@example.com", display_name="", role_names=["deploy"], now=now()
    )
    person = Caller(user_id=user.id, effective_roles=frozenset(user.roles), reduced=False)
    DeviceFlowService(store, settings).decide(
        user_code=user_code, caller=person, approve=approve, now=now()
    )
    return user.id


def test_login_saves_a_working_credential_readable_only_by_its_owner(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    output = tmp_path / "conf" / "credential.json"
    process = run_login(server.url, output, "--name", "laptop")
    user_id = approve(live_server, user_code_from(process))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Saved credential" in stdout
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    saved = json.loads(output.read_text())
    assert saved["issuer"] == server.url
    with httpx.Client(base_url=server.url) as http:
        token = token_request(http, saved["client_id"], saved["client_secret"])
        assert token.status_code == 200, token.text
        listed = http.get(
            "/api/v1/iam/personal_clients",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        ).json()["list"]
    assert [(c["displayName"], c["userId"]) for c in listed] == [("laptop", user_id)]


def test_login_denied_in_the_browser_exits_1_and_saves_nothing(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    output = tmp_path / "credential.json"
    process = run_login(server.url, output)
    approve(live_server, user_code_from(process), approve=False)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr.strip().splitlines()[-1] == "error: the request was denied in the browser"
    assert not output.exists()


def test_login_never_overwrites_a_credential_file(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    output = tmp_path / "credential.json"
    output.write_text("keep me")
    process = run_login(server.url, output)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "--force" in stderr
    assert output.read_text() == "keep me"


def test_login_with_an_unknown_client_id_exits_1(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    process = run_login(server.url, tmp_path / "c.json", "--client-id", "nobody")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert (
        stderr.strip()
        == "error: the server refused to start: invalid_client: Client authentication failed."
    )


def test_login_to_a_server_that_is_not_there_exits_1(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    process = run_login(f"http://127.0.0.1:{free_port()}", tmp_path / "c.json")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr.startswith("error: cannot reach http://127.0.0.1:")
    assert stderr.count("\n") == 1
