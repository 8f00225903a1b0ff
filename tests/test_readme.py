"""README.md's shell examples work by copy-paste."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from authserver.config import load_settings
from tests.support.checkout import ROOT, clean_copy, script_env
from tests.support.ports import free_port
from tests.support.servers import ServerProcess, wait_ready

pytestmark = pytest.mark.slow

README_URL = "http://127.0.0.1:8000"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M)

Check = Callable[[str, list[Any]], bool]
# What each block must print, found by a line of the block (so a block cannot lose its check).
EXPECTED: dict[str, list[tuple[str, Check]]] = {
    "clients create --user alice@example.com": [
        (
            "a token with the requested role",
            lambda _, docs: any(
                d.get("token_type") == "Bearer"
                and d.get("access_token")
                and d.get("scope") == "billing:read"
                for d in docs
            ),
        ),
        ("its claims, decoded", lambda out, _: '"typ": "at+jwt"' in out and '"roles": [' in out),
        (
            "an active introspection answer",
            lambda _, docs: any(d.get("active") is True for d in docs),
        ),
        (
            "the user's personal clients",
            lambda _, docs: any(len(d.get("list", ())) == 1 for d in docs),
        ),
        ("the JWKS", lambda _, docs: any(len(d.get("keys", ())) == 1 for d in docs)),
        ("the metadata", lambda _, docs: any("token_endpoint" in d for d in docs)),
    ],
    "from authserver.client import assertion_form": [
        (
            "a token from private_key_jwt",
            lambda out, _: re.fullmatch(r"Bearer 600 [^\n]+\n", out) is not None,
        ),
    ],
    "from authserver.client import TokenAuth": [
        (
            "the roles of a token from TokenAuth",
            lambda out, _: out == "['billing:read', 'system:owner']\n",
        ),
    ],
    "auth/v1/register | tee registration.json": [
        (
            "a registration with its management token",
            lambda _, docs: any(
                d.get("client_name") == "deploy-bot" and d.get("registration_access_token")
                for d in docs
            ),
        ),
    ],
    "users invite bob@example.com": [
        (
            "a one-time invitation link",
            lambda out, _: (
                re.search(r"^http://127\.0\.0\.1:\d+/ui/invite\?token=inv_", out, re.M) is not None
            ),
        ),
    ],
    "-X DELETE": [
        (
            "the registration read back",
            lambda _, docs: any(d.get("client_name") == "deploy-bot" for d in docs),
        ),
        ("its deletion", lambda out, _: out.rstrip().endswith("204")),
    ],
}


def json_lines(output: str) -> list[Any]:
    documents = []
    for line in output.splitlines():
        try:
            documents.append(json.loads(line))
        except ValueError:
            continue
    return [d for d in documents if isinstance(d, dict)]


def only_runs_scripts(block: str) -> bool:
    """A block that sets up or starts the server: the test does that itself."""
    commands = [
        line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    return all(line.startswith("./scripts/") for line in commands)


def test_readme_shell_blocks_run_in_order_against_a_fresh_server(tmp_path: Path) -> None:
    """Runs every ```sh block of README.md, in order, in one shell, as a reader would.

    Set-up: a clean copy of the repository (``tests.support.checkout``) whose
    ``.venv/bin/authserver`` and ``.venv/bin/python`` are the real entry points
    of that copy, and ``./scripts/serve`` started there as the quickstart says.
    Blocks that only run ``./scripts/…`` are left out: the test has started the
    server itself, and ``./scripts/test`` is this very run. Substituted: the
    README's ``http://127.0.0.1:8000`` by the test server's URL on a free port
    (the server's issuer is set to that URL, ``AUTHSERVER_ISSUER``), so that the
    run cannot reach another server listening on 8000 and the assertions'
    audience is the server's issuer. Every block runs under ``set -euo
    pipefail``; each must exit 0 and print what ``EXPECTED`` says.
    """
    root = clean_copy(tmp_path / "store")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = script_env(AUTHSERVER_ISSUER=url)
    blocks = SH_BLOCK.findall((ROOT / "README.md").read_text())
    runnable = [block.replace(README_URL, url) for block in blocks if not only_runs_scripts(block)]
    assert len(runnable) < len(blocks), "the README no longer shows how to start the server"
    work = tmp_path / "blocks"
    work.mkdir()
    driver = ["set -euo pipefail", "shopt -s inherit_errexit"]
    for number, block in enumerate(runnable):
        (work / f"{number}.sh").write_text(block)
        driver.append(f"source {work}/{number}.sh > {work}/{number}.out 2> {work}/{number}.err")
        driver.append(f"echo {number} > {work}/done")
    with (tmp_path / "server.log").open("wb") as server_log:
        server = subprocess.Popen(
            ["./scripts/serve", "--port", str(port)], cwd=root, env=env, stderr=server_log
        )
        try:
            wait_ready(url, server)
            run = subprocess.run(["bash", "-c", "\n".join(driver)], cwd=root, env=env, timeout=120)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
    done = int((work / "done").read_text()) if (work / "done").exists() else -1
    if run.returncode != 0:
        failed = done + 1
        raise AssertionError(
            f"README block {failed} failed (exit {run.returncode}):\n{runnable[failed]}\n"
            f"--- stdout\n{(work / f'{failed}.out').read_text()}\n"
            f"--- stderr\n{(work / f'{failed}.err').read_text()}"
        )
    unchecked = set(EXPECTED)
    for number, block in enumerate(runnable):
        output = (work / f"{number}.out").read_text()
        for marker, checks in EXPECTED.items():
            if marker not in block:
                continue
            unchecked.discard(marker)
            for what, check in checks:
                assert check(output, json_lines(output)), (
                    f"README block {number} did not print {what}:\n{output}"
                )
    assert not unchecked, f"no README block contains {sorted(unchecked)} any more"


TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```$", re.S | re.M)
EXAMPLE = ROOT / "config" / "authserver.example.toml"
SNIPPETS = [
    pytest.param(block, id=f"{doc.replace('/', '-')}-{number}")
    for doc in ("README.md", "docs/sso.md")
    for number, block in enumerate(TOML_BLOCK.findall((ROOT / doc).read_text()))
]


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_config_snippet_works_appended_to_the_example(tmp_path: Path, snippet: str) -> None:
    """Each ```toml block, appended to a copy of the shipped example as the README says,
    gives a file that loads and a server that starts on it (secret files made up here)."""
    for secret_file in set(re.findall(r'client_secret_file = "(/etc/authserver/[^"]+)"', snippet)):
        made_up = tmp_path / Path(secret_file).name
        made_up.write_text("a-client-secret-for-the-test\n")
        snippet = snippet.replace(secret_file, str(made_up))
    path = tmp_path / "authserver.toml"
    path.write_text(EXAMPLE.read_text() + "\n" + snippet)
    settings = load_settings(path, environ={})
    assert settings != load_settings(EXAMPLE, environ={}), "the snippet configured nothing"
    with ServerProcess(
        f"sqlite:///{tmp_path}/a.db", tmp_path, AUTHSERVER_CONFIG=str(path)
    ) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
