"""A real OpenID Connect provider for the tests: node-oidc-provider (``tests/oidc/``) on loopback.

``./scripts/test`` installs its node modules (``npm ci`` in ``tests/oidc``) when they
are missing. Each test registers a client of its own (RFC 7591) with the redirect
URI of the server it starts, so one provider serves a whole module.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import subprocess
from pathlib import Path
from typing import Any

import httpx

from authserver.sso.providers import OidcProvider

HERE = Path(__file__).resolve().parents[1] / "oidc"
SCRIPT = HERE / "provider.mjs"
START_TIMEOUT = 20.0

# The people known to the provider (the login form takes the account name, any password).
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"email": "Alice@Example.com", "email_verified": True, "name": "Alice"},
    "bob": {"email": "bob@example.com", "email_verified": False, "name": "Bob"},
    "carol": {"email": "carol@example.com", "email_verified": True, "name": "Carol"},
    "dana": {"email": "dana@example.com", "email_verified": True, "userinfo_only": True},
    "erin": {"email": "erin@elsewhere.example", "email_verified": True, "name": "Erin"},
    "frank": {"email": "frank@example.com", "email_verified": "true", "name": "Frank"},
}


def available() -> bool:
    return (HERE / "node_modules" / "oidc-provider" / "package.json").is_file()


class IdentityProvider:
    """node-oidc-provider running in a child process; ``issuer`` is its URL."""

    def __init__(self, log_path: Path) -> None:
        self.registration_token = secrets.token_urlsafe(16)
        self.log = log_path.open("w")
        config = {"accounts": ACCOUNTS, "registration_token": self.registration_token}
        self.process = subprocess.Popen(
            ["node", str(SCRIPT)],
            cwd=HERE,
            env={**os.environ, "PROVIDER_CONFIG": json.dumps(config)},
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError(f"the OpenID Connect provider did not start; see {log_path}")
        self.issuer: str = json.loads(line)["issuer"]

    def register(self, server_url: str, name: str) -> tuple[str, str]:
        """A client for the server at ``server_url`` signing people in as provider ``name``:
        its (client_id, client_secret)."""
        response = httpx.post(
            f"{self.issuer}/reg",
            headers={"Authorization": f"Bearer {self.registration_token}"},
            json={
                "redirect_uris": [f"{server_url}/ui/login/oidc/{name}/callback"],
                "post_logout_redirect_uris": [f"{server_url}/ui/"],
            },
        )
        response.raise_for_status()
        client = response.json()
        return client["client_id"], client["client_secret"]

    def provider(self, server_url: str, name: str = "corp", **options: Any) -> OidcProvider:
        """The ``[[login.oidc]]`` entry of a server at ``server_url``, registered here."""
        client_id, client_secret = self.register(server_url, name)
        return OidcProvider(
            name=name,
            issuer=self.issuer,
            client_id=client_id,
            client_secret=client_secret,
            **options,
        )

    def next_nonce(self, nonce: str) -> None:
        """The next authorization request reaches the provider with this nonce instead."""
        httpx.post(f"{self.issuer}/test/next-nonce", json={"nonce": nonce}).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()
