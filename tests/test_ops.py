"""Health, readiness, metrics and the request log."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.app import create_app
from authserver.config import Settings
from authserver.errors import ConfigError
from authserver.store import Store
from authserver.store.database import Database, migrate
from tests.support.helpers import PEER, token_request
from tests.support.live import LiveServer
from tests.support.types import MakeCaller, MakeClient, MakeUser


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_when_database_answers(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200


def test_readyz_fails_when_database_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    settings = Settings(database_url=f"sqlite:///{folder}/a.db")
    database = Database(settings.database_url)
    migrate(database)
    with TestClient(create_app(settings, database=database)) as client:
        shutil.rmtree(folder)
        database.engine.dispose()
        response = client.get("/readyz")
    assert response.status_code == 503
    database.dispose()


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE authserver_token_requests_total counter" in response.text


METRICS_TOKEN = "a-scraper-token-of-some-length"


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": METRICS_TOKEN}])
def test_metrics_behind_a_token_answer_401_without_it(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert "authserver_token_requests" not in response.text


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": METRICS_TOKEN}])
def test_metrics_behind_a_token_refuse_another_token(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
    assert response.status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": METRICS_TOKEN}])
def test_metrics_behind_a_token_answer_with_it(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert "# TYPE authserver_token_requests_total counter" in response.text


def test_metrics_token_file_is_read_at_start(tmp_path: Path) -> None:
    path = tmp_path / "metrics-token"
    path.write_text(METRICS_TOKEN + "\n")
    assert Settings(metrics_token_file=str(path)).metrics_bearer == METRICS_TOKEN


def test_metrics_token_and_its_file_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "metrics-token"
    path.write_text(METRICS_TOKEN)
    with pytest.raises(ConfigError, match="not both"):
        Settings(metrics_token=METRICS_TOKEN, metrics_token_file=str(path))


def test_request_id_is_echoed(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )


def test_malformed_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "bad id\twith tab"})
    assert response.headers["x-request-id"] != "bad id\twith tab"
    assert len(response.headers["x-request-id"]) == 16


def test_access_log_line_has_no_credentials(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record, secret = make_client(make_user())
    with caplog.at_level(logging.INFO):
        token = token_request(client, record.client_id, secret).json()["access_token"]
        token_request(client, record.client_id, secret + "x")
    access = [r.getMessage() for r in caplog.records if r.name == "authserver.access"]
    assert any(
        line.startswith("POST /auth/v1/token 200 ") and "request_id=" in line for line in access
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged
    assert token not in logged


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "authserver.access"]


def test_access_log_line_names_the_source_address(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        client.get("/healthz")
    [line] = access_lines(caplog)
    assert line.startswith("GET /healthz 200 ")
    assert f" source={PEER} request_id=" in line


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": (f"{PEER}/32",)}])
def test_access_log_line_names_the_client_behind_a_trusted_proxy(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.20"})
    [line] = access_lines(caplog)
    assert " source=198.51.100.20 request_id=" in line


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]


def test_authentication_failure_reason_is_audited(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record, _ = make_client(make_user())
    with caplog.at_level(logging.INFO):
        response = client.post(
            "/auth/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(record.client_id, "wrong"),
            headers={"X-Request-Id": "req-1"},
        )
    assert response.status_code == 401
    [event] = [e for e in audit_events(caplog) if e["event"] == "auth_failed"]
    assert event["reason"].startswith("wrong secret")
    assert event["client_id"] == record.client_id
    assert event["request_id"] == "req-1"
    assert event["source"] == "203.0.113.7"


def test_token_issuance_is_audited(
    client: TestClient,
    make_user: MakeUser,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = make_user()
    record, secret = make_client(owner)
    with caplog.at_level(logging.INFO):
        token = token_request(client, record.client_id, secret).json()["access_token"]
    [event] = [e for e in audit_events(caplog) if e["event"] == "token_issued"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert event["credential_id"] == record.id
    assert event["user_id"] == owner.id
    assert event["jti"] == claims["jti"]
    assert event["source"] == "203.0.113.7"
    assert event["auth_method"] == "client_secret_basic"


def test_credential_lifecycle_is_audited(
    client: TestClient, caller: MakeCaller, caplog: pytest.LogCaptureFixture
) -> None:
    user, _, _, token = caller()
    headers = {"authorization": f"Bearer {token}"}
    with caplog.at_level(logging.INFO):
        created = client.post("/api/v1/iam/personal_clients", json={}, headers=headers).json()[
            "client"
        ]
        client.post(
            f"/api/v1/iam/personal_clients/{created['id']}",
            json={"client": {"displayName": "x"}, "updateMask": "displayName"},
            headers=headers,
        )
        client.delete(f"/api/v1/iam/personal_clients/{created['id']}", headers=headers)
    events = [
        (e["event"], e["actor"])
        for e in audit_events(caplog)
        if e.get("credential_id") == created["id"]
    ]
    assert events == [
        ("credential_created", user.id),
        ("credential_updated", user.id),
        ("credential_deleted", user.id),
    ]


def test_revocation_is_audited(
    client: TestClient, caller: MakeCaller, caplog: pytest.LogCaptureFixture
) -> None:
    _, record, secret, token = caller()
    with caplog.at_level(logging.INFO):
        client.post("/auth/v1/revoke", data={"token": token}, auth=(record.client_id, secret))
    [event] = [e for e in audit_events(caplog) if e["event"] == "token_revoked"]
    assert event["jti"] == jwt.decode(token, options={"verify_signature": False})["jti"]


def test_unknown_path_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


class _Stamp:
    """A middleware added after the app was built, as an operator's extension would be."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-stamp", b"1")]
            await send(message)

        await self.app(scope, receive, stamped)


@pytest.mark.parametrize("path", ["/auth/v1/token", "/auth/v1/introspect", "/auth/v1/revoke"])
def test_added_middleware_runs_on_the_oauth_endpoints(app: Starlette, peer: str, path: str) -> None:
    app.add_middleware(_Stamp)
    with TestClient(app, client=(peer, 50000)) as client:
        response = client.post(path, data={"grant_type": "client_credentials"})
    assert response.status_code in (400, 401)
    assert response.headers["x-stamp"] == "1"


def test_unexpected_error_on_the_token_endpoint_is_a_json_500(
    app: Starlette, peer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    with TestClient(app, client=(peer, 50000), raise_server_exceptions=False) as client:
        monkeypatch.setattr(app.state.services.authenticator, "authenticate", broken)
        response = client.post("/auth/v1/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "error_description": "internal error"}


def test_encoded_line_break_in_the_path_cannot_forge_a_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    forged = '{"event": "token_issued", "client_id": "forged"}'
    client.get("/x%0D%0A2026-01-01 INFO authserver.audit " + forged)
    lines = [r.getMessage() for r in caplog.records if r.name == "authserver.access"]
    assert len(lines) == 1
    assert "\n" not in lines[0] and "\r" not in lines[0]
    assert "\\r\\n2026-01-01 INFO authserver.audit" in lines[0]


def test_secret_pasted_into_a_path_is_logged_as_a_fingerprint(
    client: TestClient, caller: MakeCaller, caplog: pytest.LogCaptureFixture
) -> None:
    _, record, secret, _ = caller()
    client.get(f"/auth/v1/register/{secret}")
    lines = [r.getMessage() for r in caplog.records if r.name == "authserver.access"]
    assert lines[-1].startswith("GET /auth/v1/register/sha256:")


def test_log_formatter_keeps_every_message_on_one_line() -> None:
    from authserver.runtime.ops import OneLineFormatter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a\nb\u2028c %s", ("\r",), None)
    formatted = OneLineFormatter("%(levelname)s %(message)s").format(record)
    assert formatted == "INFO a\\nb\\u2028c \\r"


def test_metadata_publishes_no_roles_by_default(client: TestClient, make_user: MakeUser) -> None:
    make_user(roles=("billing:read", "system:owner"))
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert "scopes_supported" not in metadata
    assert "system:owner" not in json.dumps(metadata)


@pytest.mark.parametrize("settings_overrides", [{"scopes_supported": ("billing:read",)}])
def test_metadata_publishes_the_configured_scopes(client: TestClient, make_user: MakeUser) -> None:
    make_user(roles=("billing:read", "system:owner"))
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["scopes_supported"] == ["billing:read"]


def test_root_redirects_to_the_sign_in_page(
    live_server: tuple[LiveServer, Settings, Store],
) -> None:
    server, _, _ = live_server
    answer = httpx.get(server.url + "/")
    assert answer.status_code == 302
    assert answer.headers["location"] == "/ui/"
    followed = httpx.get(server.url + "/", follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url) == server.url + "/ui/"


# Log noise: expected conditions are one line, without a traceback -------------------


@pytest.mark.parametrize("path", ["/auth/v1/token", "/ui/login/password"])
def test_client_gone_before_its_body_is_one_access_line_499_without_traceback(
    app: Starlette, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    import anyio

    arriving: list[Message] = [
        {"type": "http.request", "body": b"grant_type=client", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return arriving.pop(0) if arriving else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    caplog.set_level(logging.INFO)
    anyio.run(app, scope, receive, send)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "authserver.access"]
    assert f"POST {path} 499 " in line


def test_database_outage_is_one_line_for_all_failed_last_used_flushes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from datetime import UTC, datetime
    from typing import cast

    import anyio

    from authserver.errors import Unavailable
    from authserver.store.credentials import CredentialStore
    from authserver.store.last_used import LastUsedRecorder

    class Credentials:
        down = True
        written: list[dict[str, datetime]] = []

        def record_last_used(self, *, used: dict[str, datetime], **usage: object) -> None:
            if self.down:
                raise Unavailable("database unavailable: connection refused")
            self.written.append(used)

    credentials = Credentials()
    recorder = LastUsedRecorder(cast(CredentialStore, credentials), interval=0.5)

    async def outage_then_recovery() -> None:
        for _ in range(5):
            recorder.touch("cred-1", datetime.now(UTC))
            await recorder.flush()
        credentials.down = False
        await recorder.flush()

    caplog.set_level(logging.INFO)
    anyio.run(outage_then_recovery)
    lines = [r for r in caplog.records if r.name == "authserver.last_used"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO]
    assert not any(r.exc_info for r in lines)
    assert "connection refused" in lines[0].getMessage()
    assert "after 5 failed attempts" in lines[1].getMessage()
    assert list(credentials.written[0]) == ["cred-1"]


def test_database_outage_is_one_line_for_all_503_pages(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from authserver.errors import Unavailable
    from authserver.ui import sessions

    signed_in = sessions.signed_in

    async def database_away(request: object) -> None:
        raise Unavailable("database unavailable: connection refused")

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(sessions, "signed_in", database_away)
    assert [client.get("/ui/").status_code for _ in range(3)] == [503] * 3
    monkeypatch.setattr(sessions, "signed_in", signed_in)
    assert client.get("/ui/").status_code == 200
    lines = [r for r in caplog.records if r.name == "authserver.ui"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO]
    assert not any(r.exc_info for r in lines)
    assert "connection refused" in lines[0].getMessage()
    assert "after 3 times" in lines[1].getMessage()
