"""A CI provider's OpenID Connect issuer on loopback: discovery, JWKS, and signed job tokens.

It signs ID tokens shaped like GitHub Actions' and GitLab CI's (their claims, RS256
with a ``kid``), and can rotate its key, so the tests exercise what a federation
trust meets in the field, over real HTTP.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.live import LiveServer
from tests.support.ports import free_port

Key = RSAKey | ECKey | OKPKey | OctKey


def github_claims(
    repository: str = "acme/deploy", ref: str = "refs/heads/main", **more: Any
) -> dict[str, Any]:
    """The claims of a GitHub Actions job's ID token (``token.actions.githubusercontent.com``)."""
    owner = repository.split("/")[0]
    return {
        "sub": f"repo:{repository}:ref:{ref}",
        "repository": repository,
        "repository_owner": owner,
        "repository_id": "123456",
        "ref": ref,
        "ref_type": "branch",
        "sha": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4",
        "workflow": "deploy",
        "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
        "event_name": "push",
        "run_id": "9876543210",
        "actor": "octocat",
        "runner_environment": "github-hosted",
        **more,
    }


def gitlab_claims(
    project_path: str = "acme/deploy", ref: str = "main", **more: Any
) -> dict[str, Any]:
    """The claims of a GitLab CI job's ID token (``id_tokens:`` in ``.gitlab-ci.yml``)."""
    return {
        "sub": f"project_path:{project_path}:ref_type:branch:ref:{ref}",
        "namespace_path": project_path.split("/")[0],
        "project_id": "42",
        "project_path": project_path,
        "pipeline_id": "1001",
        "pipeline_source": "push",
        "job_id": "2002",
        "ref": ref,
        "ref_type": "branch",
        "ref_protected": "true",
        "user_login": "alice",
        **more,
    }


class CiIssuer:
    """The issuer's app, its current key and the keys it publishes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4)})
        self.published: list[Key] = [self.key]
        self.jwks_requests = 0
        self.discovery_requests = 0
        # GitHub Actions' token service: ACTIONS_ID_TOKEN_REQUEST_URL/…_TOKEN of a job.
        self.github_request_token = secrets.token_urlsafe(16)
        self.github_claims: dict[str, Any] = {}
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/.well-known/jwks", self._jwks),
                Route("/github/token", self._github_token),
            ]
        )

    @property
    def github_request_url(self) -> str:
        return f"{self.url}/github/token?api-version=2.0"

    async def _github_token(self, request: Request) -> Response:
        """As GitHub's token service: a bearer request token, ``audience`` in the query."""
        if request.headers.get("authorization") != f"Bearer {self.github_request_token}":
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        audience = request.query_params.get("audience") or "https://github.com/acme"
        return JSONResponse({"value": self.token(self.github_claims, audience=audience)})

    async def _discovery(self, request: Request) -> Response:
        self.discovery_requests += 1
        return JSONResponse(
            {
                "issuer": self.url,
                "jwks_uri": f"{self.url}/.well-known/jwks",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse({"keys": [key.as_dict(private=False) for key in self.published]})

    def rotate(self) -> None:
        """A new key (new ``kid``) signs from now on; the old one is no longer published."""
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4)})
        self.published = [self.key]

    def token(
        self,
        claims: dict[str, Any],
        *,
        audience: str | list[str],
        issued_ago: float = 5,
        lifetime: float = 300,
        key: Key | None = None,
        alg: str = "RS256",
        header: dict[str, Any] | None = None,
        **override: Any,
    ) -> str:
        """A job's ID token signed by the issuer's current key (or ``key``)."""
        now = time.time()
        signing = key or self.key
        payload = {
            "iss": self.url,
            "aud": audience,
            "iat": int(now - issued_ago),
            "nbf": int(now - issued_ago),
            "exp": int(now - issued_ago + lifetime),
            "jti": secrets.token_hex(8),
            **claims,
            **override,
        }
        kid = signing.kid
        return jwt.encode(
            {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {}), **(header or {})},
            payload,
            signing,
            algorithms=[alg],
        )


@contextmanager
def running_issuer() -> Iterator[CiIssuer]:
    issuer = CiIssuer()
    with LiveServer(issuer.app, issuer.port):
        yield issuer
