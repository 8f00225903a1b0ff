"""authserver.client: calling a protected API with httpx (sync and async) and requests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
import requests
from anyio.from_thread import start_blocking_portal

from authserver.client import RequestsTokenAuth, TokenAuth, TokenError
from authserver.security.argon2 import SecretHasher
from authserver.usecases.credentials import CredentialService
from authserver.usecases.users import UserService
from tests.support.helpers import operator_creates
from tests.support.types import LiveServerFixture

API = "/api/v1/auth/introspect"  # the protected API of these tests: who am I


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def credential(live_server: LiveServerFixture) -> dict[str, Any]:
    server, settings, store = live_server
    now = datetime.now(UTC)
    owner = UserService(store).create(
        email="py@example.com", display_name="", role_names=["deploy"], now=now
    )
    record, secret = operator_creates(
        CredentialService(store, SecretHasher(settings), settings), owner, name="script"
    )
    return {"url": server.url, "client_id": record.client_id, "secret": secret, "record": record}


@contextmanager
def httpx_sync(url: str, auth: Any) -> Iterator[Callable[..., Any]]:
    with httpx.Client(base_url=url, auth=auth) as client:
        yield lambda method, path, **kw: client.request(method, path, **kw)


@contextmanager
def httpx_async(url: str, auth: Any) -> Iterator[Callable[..., Any]]:
    with start_blocking_portal() as portal:
        client = httpx.AsyncClient(base_url=url, auth=auth)
        try:
            yield lambda method, path, **kw: portal.call(lambda: client.request(method, path, **kw))
        finally:
            portal.call(client.aclose)


@contextmanager
def requests_session(url: str, auth: Any) -> Iterator[Callable[..., Any]]:
    with requests.Session() as session:
        session.auth = auth
        yield lambda method, path, **kw: session.request(method, url + path, timeout=10, **kw)


FLAVOURS = {
    "httpx": (TokenAuth, httpx_sync),
    "httpx-async": (TokenAuth, httpx_async),
    "requests": (RequestsTokenAuth, requests_session),
}


@pytest.fixture(params=list(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ``connect(**options)`` opens a client; the request function it yields returns a response.
Connect = Callable[..., AbstractContextManager[Callable[..., Any]]]


@pytest.fixture
def connect(credential: dict[str, Any], flavour: str) -> Connect:
    """``connect(**options)``: a request function whose client authenticates with the helper."""

    @contextmanager
    def open_client(**options: Any) -> Iterator[Callable[..., Any]]:
        auth_class, client = FLAVOURS[flavour]
        auth = auth_class(
            credential["url"], credential["client_id"], credential["secret"], **options
        )
        with client(credential["url"], auth) as call:
            yield call

    return open_client


def issued(caplog: pytest.LogCaptureFixture) -> int:
    """Tokens the server issued, from its audit trail."""
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]
    return sum(1 for e in events if e["event"] == "token_issued")


def bearer(response: Any) -> str:
    return str(response.request.headers["Authorization"]).removeprefix("Bearer ")


def test_helper_calls_a_protected_api(connect: Connect, credential: dict[str, Any]) -> None:
    with connect() as call:
        response = call("GET", API)
    assert response.status_code == 200
    assert response.json()["roles"] == ["deploy"]


def test_helper_asks_for_the_scope_it_is_given(
    connect: Connect, live_server: LiveServerFixture
) -> None:
    _, _, store = live_server
    user = store.users.find(ref="py@example.com")
    UserService(store).update(
        ref=user.id, role_names=["deploy", "read"], disabled=None, now=datetime.now(UTC)
    )
    with connect(scope="read") as call:
        assert call("GET", API).json()["roles"] == ["read"]


def test_helper_reuses_its_token(connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    with connect() as call:
        first, second, third = (call("GET", API) for _ in range(3))
    assert bearer(first) == bearer(second) == bearer(third)
    assert issued(caplog) == 1


def test_helper_fetches_a_new_token_shortly_before_expiry(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    with connect(clock=clock) as call:
        first = call("GET", API)
        clock.now += 600 - 30 - 1  # the server's TTL is 600 s; 30 s before exp
        still = call("GET", API)
        clock.now += 2
        renewed = call("GET", API)
    assert bearer(first) == bearer(still) != bearer(renewed)
    assert renewed.status_code == 200
    assert issued(caplog) == 2


@pytest.mark.parametrize("live_settings_overrides", [{"access_token_ttl": 1}])
def test_helper_fetches_a_new_token_after_real_expiry(connect: Connect) -> None:
    with connect() as call:
        first = call("GET", API)
        time.sleep(1.2)
        later = call("GET", API)
    assert later.status_code == 200
    assert bearer(later) != bearer(first)


def test_helper_fetches_a_new_token_once_when_the_api_refuses_it(
    connect: Connect, credential: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with connect() as call:
        first = call("GET", API)
        httpx.post(
            f"{credential['url']}/auth/v1/revoke",
            data={"token": bearer(first)},
            auth=(credential["client_id"], credential["secret"]),
        )
        retried = call("GET", API)
    assert retried.status_code == 200
    assert bearer(retried) != bearer(first)
    assert issued(caplog) == 2


def test_helper_returns_the_second_401_instead_of_looping(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    # The introspection endpoint wants client authentication, never a bearer token.
    with connect() as call:
        response = call("POST", "/auth/v1/introspect", data={"token": "x"})
    assert response.status_code == 401
    assert issued(caplog) == 2


@pytest.mark.parametrize("flavour", ["httpx", "requests"])
def test_concurrent_threads_share_one_token_fetch(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    with connect() as call:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: call("GET", API), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert issued(caplog) == 1


def test_concurrent_tasks_share_one_token_fetch(
    credential: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    auth = TokenAuth(credential["url"], credential["client_id"], credential["secret"])

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=credential["url"], auth=auth) as client:
            statuses: list[int] = []

            async def one() -> None:
                statuses.append((await client.get(API)).status_code)

            async with anyio.create_task_group() as tasks:
                for _ in range(8):
                    tasks.start_soon(one)
            return statuses

    assert anyio.run(many) == [200] * 8
    assert issued(caplog) == 1


def test_refused_credential_raises_token_error(
    connect: Connect, live_server: LiveServerFixture, credential: dict[str, Any]
) -> None:
    _, _, store = live_server
    store.credentials.delete(id=credential["record"].id, now=datetime.now(UTC))
    with connect() as call, pytest.raises(TokenError) as refused:
        call("GET", API)
    assert refused.value.status_code == 401
    assert refused.value.error == "invalid_client"
    assert credential["secret"] not in str(refused.value)


def test_client_module_and_server_need_neither_httpx_nor_requests() -> None:
    check = (
        "import sys; sys.modules['httpx'] = None; sys.modules['requests'] = None\n"
        "import authserver.client, authserver.app, authserver.cli\n"
        "try:\n    authserver.client.TokenAuth\nexcept ImportError:\n    print('lazy')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "lazy\n"
