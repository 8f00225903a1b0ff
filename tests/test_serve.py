"""``authserver serve`` start-up: failures before anything runs, and what it says when it starts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from authserver.runtime.serving import conductorone_routing
from tests.support.checkout import script_env
from tests.support.ports import free_port
from tests.support.postgres import PostgresCluster
from tests.support.servers import assert_one_line_error, run_authserver, wait_ready
from tests.support.tls import self_signed

pytestmark = pytest.mark.slow


@dataclass
class Started:
    """A running ``authserver serve``; ``stderr`` is complete once the block has exited."""

    url: str
    log: Path

    @property
    def stderr(self) -> str:
        return self.log.read_text()


@contextmanager
def started(
    cwd: Path,
    *args: str,
    scheme: str = "http",
    verify: object = True,
    workers: str | None = "1",
    own_issuer: bool = True,
    **env: str,
) -> Iterator[Started]:
    """``authserver serve --port <free> ARGS`` with its issuer at its own URL, stopped by SIGTERM.

    ``--workers 1`` unless ``workers`` says otherwise (None: serve's default);
    ``own_issuer=False`` leaves ``AUTHSERVER_ISSUER`` unset.
    """
    if workers is not None:
        args = (*args, "--workers", workers)
    port = free_port()
    url = f"{scheme}://127.0.0.1:{port}"
    server = Started(url=url, log=cwd / f"serve-{port}.log")
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "authserver", "serve", "--port", str(port), *args],
            cwd=cwd,
            env=script_env(
                **({"AUTHSERVER_ISSUER": url} if own_issuer else {}),
                **{"AUTHSERVER_SHUTDOWN_DRAIN": "0", **env},
            ),
            stderr=log,
        )
        try:
            wait_ready(url, process, verify=verify)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_port_in_use_is_one_line_before_the_application_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_authserver(
            "serve", "--port", str(port), cwd=tmp_path, AUTHSERVER_LOG_LEVEL="info"
        )
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use")
    assert not (tmp_path / "var").exists()


# TLS --------------------------------------------------------------------------------


def test_serve_with_tls_files_answers_https(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    with started(
        tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), scheme="https", verify=trust
    ) as server:
        response = httpx.get(f"{server.url}/.well-known/oauth-authorization-server", verify=trust)
    assert response.status_code == 200
    assert response.json()["token_endpoint"] == f"{server.url}/auth/v1/token"


def test_serve_with_tls_files_sends_strict_transport_security(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    with started(
        tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), scheme="https", verify=trust
    ) as server:
        response = httpx.get(f"{server.url}/healthz", verify=trust)
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_plain_http_sends_no_strict_transport_security(tmp_path: Path) -> None:
    with started(tmp_path) as server:
        response = httpx.get(f"{server.url}/healthz")
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize("given", ["--tls-cert", "--tls-key"])
def test_tls_cert_and_key_go_together(tmp_path: Path, given: str) -> None:
    cert, _ = self_signed(tmp_path)
    result = run_authserver("serve", given, str(cert), cwd=tmp_path)
    assert result.returncode == 2
    assert "--tls-cert and --tls-key go together" in result.stderr


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        pytest.param(lambda cert, key: cert.unlink(), "cannot read --tls-cert", id="missing-cert"),
        pytest.param(
            lambda cert, key: cert.write_text("not a certificate"),
            "holds no PEM certificate",
            id="cert-not-pem",
        ),
        pytest.param(
            lambda cert, key: key.write_bytes(cert.read_bytes()),
            "holds no unencrypted PEM private key",
            id="key-not-a-key",
        ),
        pytest.param(
            lambda cert, key: key.write_bytes(self_signed(cert.parent, "other")[1].read_bytes()),
            "does not fit the certificate",
            id="key-of-another-certificate",
        ),
    ],
)
def test_bad_tls_files_are_one_line_naming_them(
    tmp_path: Path, spoil: Callable[[Path, Path], object], message: str
) -> None:
    cert, key = self_signed(tmp_path)
    spoil(cert, key)
    result = run_authserver(
        "serve", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key), cwd=tmp_path
    )
    assert_one_line_error(result, message)
    assert not (tmp_path / "var").exists()


# Routing for ConductorOne's clients (https on 443, host from the client id) ---------------


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        pytest.param("http://auth.example.com", "is plain http", id="plain-http"),
        pytest.param("https://auth.example.com:8443", "has port 8443", id="port"),
        pytest.param("https://example.com/auth", "has the path /auth", id="path"),
        pytest.param("https://localhost", "has a host without a dot (localhost)", id="localhost"),
        pytest.param("https://auth", "call https://auth.conductor.one/auth/v1/token", id="no-dot"),
        pytest.param("https://192.0.2.10", "has an IP address as host", id="ipv4"),
        pytest.param("https://[2001:db8::1]", "has an IP address as host", id="ipv6"),
    ],
)
def test_issuer_that_conductorone_clients_cannot_route_is_explained(
    issuer: str, reason: str
) -> None:
    warning = conductorone_routing(issuer)
    assert warning is not None
    assert reason in warning


@pytest.mark.parametrize("issuer", ["https://auth.example.com", "https://auth.example.com:443/"])
def test_https_issuer_with_a_dns_name_routes(issuer: str) -> None:
    assert conductorone_routing(issuer) is None


def test_serve_warns_at_start_when_cone_is_a_device_client_that_cannot_route(
    tmp_path: Path,
) -> None:
    cone = '[{"id": "2RGdOS94VDferT9e80mdgntl36K", "name": "cone"}]'
    with started(tmp_path, AUTHSERVER_DEVICE_CLIENTS=cone) as server:
        pass
    [warning] = [line for line in server.stderr.splitlines() if "ConductorOne" in line]
    assert warning.startswith("warning: cone is a device client, but ConductorOne clients")
    assert f"the issuer {server.url} is plain http, has port" in warning


def test_default_start_only_notes_the_conductorone_routing_once(tmp_path: Path) -> None:
    with started(tmp_path, workers="2") as server:
        pass
    [note] = [line for line in server.stderr.splitlines() if "ConductorOne" in line]
    assert note.startswith(f"note: the issuer {server.url} suits OAuth clients in general;")
    assert "warning" not in server.stderr


# The start-up line ----------------------------------------------------------------


def startup_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("serving ")]
    return line


@pytest.mark.postgres
def test_serve_names_config_database_issuer_key_and_workers(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    url = postgres.create_database("serve_banner")
    config = tmp_path / "authserver.toml"
    config.write_text(f'database_url = "{url}"\n')
    with started(tmp_path, AUTHSERVER_CONFIG=str(config)) as server:
        [key] = httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"]
    port = server.url.rsplit(":", 1)[1]
    assert startup_line(server.stderr) == (
        f"serving http://127.0.0.1:{port} with 1 worker: config {config}, "
        f"database {url.replace(postgres.password, '***')}, issuer {server.url}, "
        f"signing key {key['kid']} (ES256)"
    )
    assert postgres.password not in server.stderr


def test_serve_without_a_config_file_says_defaults_and_that_it_created_the_database(
    tmp_path: Path,
) -> None:
    with started(tmp_path) as server:
        pass
    assert "config defaults, database sqlite:///" in startup_line(server.stderr)
    path = tmp_path / "var" / "authserver.db"
    assert f"note: created a new, empty database {path}\n" in server.stderr


@pytest.mark.parametrize("workers", [None, "auto"], ids=["default", "auto"])
def test_serve_starts_one_worker_per_cpu_by_default_and_with_auto(
    tmp_path: Path, workers: str | None
) -> None:
    with started(tmp_path, workers=workers) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    count = os.cpu_count() or 1
    assert f" with {count} worker{'s' if count > 1 else ''}: " in startup_line(server.stderr)


def test_serve_workers_1_starts_one_worker(tmp_path: Path) -> None:
    with started(tmp_path, workers="1") as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert " with 1 worker: " in startup_line(server.stderr)


# The issuer follows the address serve listens on ---------------------------------


def test_serve_on_another_port_advertises_that_port_in_every_worker(tmp_path: Path) -> None:
    with started(tmp_path, workers="2", own_issuer=False) as server:
        issuers = {
            httpx.get(f"{server.url}/.well-known/oauth-authorization-server").json()["issuer"]
            for _ in range(12)
        }
    assert issuers == {server.url}
    assert f"issuer {server.url}," in startup_line(server.stderr)


def test_serve_with_tls_advertises_an_https_issuer(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with started(tmp_path, *tls, scheme="https", verify=False, own_issuer=False) as server:
        metadata = httpx.get(f"{server.url}/.well-known/oauth-authorization-server", verify=False)
    assert metadata.json()["issuer"] == server.url


def test_explicit_issuer_other_than_the_loopback_address_is_kept_with_a_warning(
    tmp_path: Path,
) -> None:
    with started(tmp_path, own_issuer=False, AUTHSERVER_ISSUER="http://127.0.0.1:8000") as server:
        metadata = httpx.get(f"{server.url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == "http://127.0.0.1:8000"
    [warning] = [line for line in server.stderr.splitlines() if "listens on" in line]
    assert warning.startswith("warning: the issuer http://127.0.0.1:8000 is not the address")
    assert f"({server.url})" in warning


def test_issuer_matching_the_address_gives_no_issuer_warning(tmp_path: Path) -> None:
    with started(tmp_path) as server:
        pass
    assert "listens on" not in server.stderr


def test_tls_with_a_plain_http_issuer_warns(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    http_issuer = {"AUTHSERVER_ISSUER": "http://127.0.0.1:8000"}
    with started(
        tmp_path, *tls, scheme="https", verify=False, own_issuer=False, **http_issuer
    ) as server:
        pass
    [warning] = [line for line in server.stderr.splitlines() if "--tls-cert serves" in line]
    assert warning.startswith("warning: --tls-cert serves https but the issuer http://")


def test_all_interfaces_with_a_loopback_issuer_warns(tmp_path: Path) -> None:
    with started(tmp_path, "--host", "0.0.0.0", own_issuer=False) as server:
        metadata = httpx.get(f"{server.url}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == server.url  # 127.0.0.1 and the port: the best guess
    [warning] = [line for line in server.stderr.splitlines() if "other machines" in line]
    assert warning.startswith("warning: serve listens on 0.0.0.0:")


# The log: audit and access lines of a serving worker ----------------------------------

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO (authserver\.\w+) (.*)")


def test_serve_logs_audit_and_access_lines_in_the_log_format(tmp_path: Path) -> None:
    """The worker writes them in batches; every line is there once serve has stopped."""
    with started(tmp_path) as server:
        for n in range(3):
            response = httpx.post(
                f"{server.url}/auth/v1/token",
                data={"grant_type": "client_credentials"},
                auth=("nobody@127.0.0.1/pcc", "wrong"),
                headers={"X-Request-Id": f"req-{n}"},
            )
            assert response.status_code == 401
    lines = [m for m in map(LOG_LINE.fullmatch, server.stderr.splitlines()) if m]
    audited = [json.loads(m[2]) for m in lines if m[1] == "authserver.audit"]
    assert [(e["event"], e["request_id"]) for e in audited] == [
        ("auth_failed", f"req-{n}") for n in range(3)
    ]
    access = [m[2] for m in lines if m[1] == "authserver.access"]
    for n in range(3):
        [line] = [a for a in access if a.endswith(f" request_id=req-{n}")]
        assert line.startswith("POST /auth/v1/token 401 ")
        assert " source=127.0.0.1 " in line


# /metrics: one view of every worker -------------------------------------------------


def token_requests_counted(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("authserver_token_requests_total{")
    )


def test_metrics_of_two_workers_are_summed_in_every_scrape(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with started(tmp_path, workers="2", TMPDIR=str(temporary)) as server:
        assert len(list(temporary.glob("authserver-metrics-*"))) == 1
        for _ in range(6):  # a new connection each: the workers share them out
            response = httpx.post(
                f"{server.url}/auth/v1/token",
                data={"grant_type": "client_credentials"},
                auth=("nobody@127.0.0.1/pcc", "wrong"),
            )
            assert response.status_code == 401
        scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(6)]
    assert [token_requests_counted(text) for text in scrapes] == [6.0] * 6
    assert list(temporary.iterdir()) == []  # the workers' folder is gone with serve


# E-mail at start ------------------------------------------------------------------


def test_serve_says_once_that_email_is_off_without_mail(tmp_path: Path) -> None:
    with started(tmp_path, workers="2") as server:
        pass
    assert [line for line in server.stderr.splitlines() if "e-mail" in line] == [
        "note: e-mail is off (no [mail] smtp_url in the config)"
    ]


def test_serve_says_nothing_of_email_with_mail(tmp_path: Path) -> None:
    with started(
        tmp_path,
        AUTHSERVER_MAIL_SMTP_URL="smtp://127.0.0.1:2525",
        AUTHSERVER_MAIL_FROM="a@b.example",
    ) as server:
        pass
    assert "e-mail is off" not in server.stderr
