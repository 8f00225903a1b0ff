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
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from authserver.client import login as login_flow
from authserver.config import DeviceClient
from authserver.domain.credentials import Caller
from authserver.records import ClientRecord
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


def test_login_to_a_server_without_the_device_client_says_what_enables_it(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    process = run_login(server.url, tmp_path / "c.json", "--client-id", "nobody")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr.strip() == (
        "error: this server does not allow `authserver login`: its operator enables it by adding"
        ' a [[device_clients]] table with id = "nobody" (and a name) to its configuration'
    )


def test_login_to_a_server_that_is_not_there_exits_1(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    process = run_login(f"http://127.0.0.1:{free_port()}", tmp_path / "c.json")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr.startswith("error: cannot reach http://127.0.0.1:")
    assert stderr.count("\n") == 1


# --expires and --scoped-role --------------------------------------------------------------


def saved_record(live_server: LiveServerFixture, output: Path) -> ClientRecord:
    _, _, store = live_server
    found = store.credentials.find(client_id=json.loads(output.read_text())["client_id"])
    assert found is not None
    return found[0]


def login_with(live_server: LiveServerFixture, output: Path, *extra: str) -> tuple[int, str]:
    server, _, _ = live_server
    process = run_login(server.url, output, *extra)
    approve(live_server, user_code_from(process))
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def test_login_credential_expires_in_30_days_by_default(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    output = tmp_path / "credential.json"
    returncode, stderr = login_with(live_server, output)
    assert returncode == 0, stderr
    record = saved_record(live_server, output)
    assert record.expires_time is not None
    assert abs(record.expires_time - (now() + timedelta(days=30))) < timedelta(minutes=1)
    assert record.scoped_roles == ()


def test_login_expires_never_saves_a_credential_without_expiry(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    output = tmp_path / "credential.json"
    returncode, stderr = login_with(live_server, output, "--expires", "never")
    assert returncode == 0, stderr
    assert saved_record(live_server, output).expires_time is None


def test_login_sends_the_chosen_expiry_and_scoped_roles(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    output = tmp_path / "credential.json"
    returncode, stderr = login_with(
        live_server, output, "--expires", "2d", "--scoped-role", "deploy"
    )
    assert returncode == 0, stderr
    record = saved_record(live_server, output)
    assert record.scoped_roles == ("deploy",)
    assert record.expires_time is not None
    assert abs(record.expires_time - (now() + timedelta(days=2))) < timedelta(minutes=1)


def test_login_refuses_a_scoped_role_the_person_does_not_hold(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    output = tmp_path / "credential.json"
    returncode, stderr = login_with(live_server, output, "--scoped-role", "system:owner")
    assert returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: creating the credential failed: ")
    assert "system:owner" in last
    assert not output.exists()


def test_login_with_a_malformed_expiry_exits_1_before_asking_the_server(tmp_path: Path) -> None:
    process = run_login("http://127.0.0.1:9", tmp_path / "c.json", "--expires", "soon")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert stderr == (
        "error: --expires: invalid duration 'soon': use a number and s, m, h or d (e.g. 30d)\n"
    )


# Polling through a server that does not answer (RFC 8628 §3.5) ---------------------------


class FlakyProxy:
    """Relays to the live server, but answers the first token poll with 503 and drops the
    connection of the second without answering: an instance restarting mid-login."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.polls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # the form holds the device code

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/auth/v1/token":
                    proxy.polls += 1
                    if proxy.polls == 1:
                        self._answer(
                            503, b'{"error":"temporarily_unavailable"}', "application/json"
                        )
                        return
                    if proxy.polls == 2:
                        self.close_connection = True
                        return  # no answer at all
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                relayed = httpx.post(proxy.target + self.path, content=body, headers=headers)
                self._answer(
                    relayed.status_code,
                    relayed.content,
                    relayed.headers.get("content-type", "application/json"),
                )

            def _answer(self, status: int, content: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_login_keeps_polling_with_backoff_through_503_and_a_dropped_connection(
    live_server: LiveServerFixture, tmp_path: Path
) -> None:
    server, _, _ = live_server
    lines: list[str] = []
    waits: list[float] = []

    def say(line: str) -> None:
        lines.append(line)
        found = re.search(r"one-time code: ([A-Z]{4}-[A-Z]{4})", line)
        if found:
            approve(live_server, found.group(1))

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(min(seconds, 1.0))  # the server's interval is 1 s

    output = tmp_path / "credential.json"
    with FlakyProxy(server.url) as proxy:
        saved = login_flow.login(proxy.url, output=output, say=say, sleep=sleep)
    assert proxy.polls == 3
    assert waits == [1, 2, 4]  # the wait doubles while the server does not answer
    assert saved.path == output and output.exists()
    retries = [line for line in lines if "trying again" in line]
    assert retries[0] == f"{proxy.url}/auth/v1/token is unavailable right now (HTTP 503);" \
        " trying again in 2 s"  # fmt: skip
    assert retries[1].startswith(f"cannot reach {proxy.url}/auth/v1/token: ")
    assert retries[1].endswith("; trying again in 4 s")


class DownServer:
    """Starts device logins with a 2-second code, then answers every poll with 503."""

    def __init__(self) -> None:
        self.polls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/auth/v1/device_authorization":
                    started = {
                        "device_code": "d" * 43,
                        "user_code": "BCDF-GHJK",
                        "verification_uri_complete": fake.url + "/ui/device?user_code=BCDF-GHJK",
                        "expires_in": 2,
                        "interval": 1,
                    }
                    status, content = 200, json.dumps(started).encode()
                else:
                    fake.polls += 1
                    status, content = 503, b'{"error":"temporarily_unavailable"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DownServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_login_gives_up_when_the_code_expires_while_the_server_is_down(tmp_path: Path) -> None:
    output = tmp_path / "credential.json"
    with DownServer() as down, pytest.raises(login_flow.LoginError) as refused:
        login_flow.login(
            down.url, output=output, say=lambda line: None, sleep=lambda s: time.sleep(1.0)
        )
    assert down.polls >= 1
    assert str(refused.value) == (
        "the code expired while the server did not answer: "
        f"{down.url}/auth/v1/token is unavailable right now (HTTP 503)"
    )
    assert not output.exists()
