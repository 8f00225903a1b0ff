"""Hostile input at the OAuth endpoints: no 500, no hang, no state change from a rejected request."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TypedDict

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from authserver.store import Store
from tests.support.types import LiveServerFixture, MakeCaller

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("AUTHSERVER_FUZZ_EXAMPLES", "60"))
ENDPOINTS = ["/auth/v1/token", "/auth/v1/introspect", "/auth/v1/revoke", "/auth/v1/register"]
PARAMS = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "token",
    "token_type_hint",
    "client_assertion",
    "client_assertion_type",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data",
    "",
]

form_bodies = st.one_of(
    st.binary(max_size=400),
    st.lists(st.tuples(st.sampled_from(PARAMS), st.text(max_size=60)), max_size=8).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
    ),
)


# Row counts per table, and each credential's (id, deleted_at, expires_time, scoped_roles).
StoredState = tuple[
    tuple[int, ...], list[tuple[str, datetime | None, datetime | None, tuple[str, ...]]]
]


class BasicAuth(TypedDict, total=False):
    """The keyword arguments that add (or leave out) HTTP Basic authentication."""

    auth: tuple[str, str]


def stored_state(store: Store) -> StoredState:
    with store.database.engine.connect() as conn:
        counts = tuple(
            int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
            for table in (
                "personal_clients",
                "revoked_tokens",
                "used_assertions",
                "registration_tokens",
            )
        )
    clients = [
        (c.id, c.deleted_at, c.expires_time, c.scoped_roles)
        for c in store.credentials.all(include_deleted=True)
    ]
    return counts, clients


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_requests_are_answered_cleanly(
    client: TestClient, caller: MakeCaller, store: Store, endpoint: str
) -> None:
    _, record, secret, _ = caller()

    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(
        body=form_bodies,
        content_type=st.sampled_from(CONTENT_TYPES),
        auth=st.sampled_from(["none", "good", "garbage", "bearer"]),
    )
    def run(body: bytes, content_type: str, auth: str) -> None:
        headers = {"content-type": content_type} if content_type else {}
        kwargs: BasicAuth
        if auth == "good":
            kwargs = {"auth": (record.client_id, secret)}
        elif auth == "garbage":
            headers["authorization"] = "Basic " + "A" * 50
            kwargs = {}
        elif auth == "bearer":
            headers["authorization"] = "Bearer not.a.token"
            kwargs = {}
        else:
            kwargs = {}
        before = stored_state(store)
        response = client.post(endpoint, content=body, headers=headers, **kwargs)
        assert response.status_code < 500, (endpoint, body[:80], response.text[:200])
        if response.status_code >= 400:
            assert stored_state(store) == before
        assert response.headers["content-type"].startswith(
            "application/json"
        ) or response.status_code in (200, 204)

    run()


def test_enormous_headers_and_bodies_over_real_http(live_server: LiveServerFixture) -> None:
    server, settings, _ = live_server
    with httpx.Client(base_url=server.url, timeout=10) as http:
        huge_header = http.post(
            "/auth/v1/token",
            data={"grant_type": "client_credentials"},
            headers={"x-filler": "a" * 200_000},
        )
        assert huge_header.status_code < 500 or huge_header.status_code == 431
        huge_body = http.post(
            "/auth/v1/token",
            content=b"a=" + b"b" * 2_000_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert huge_body.status_code == 413
        many_params = "&".join(f"p{i}=v" for i in range(5000))
        response = http.post(
            "/auth/v1/token",
            content=many_params.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400
        assert http.get("/healthz").status_code == 200
