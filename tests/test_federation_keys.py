"""Fetching a CI issuer's keys (``security/issuer_keys.py``): careful outbound traffic to an
address a user typed, over real HTTP on loopback — https only (http on loopback), no redirect
to another host, a size cap, no fetch while the cached set is valid, a background refresh
when it is stale, refetches for an unknown ``kid`` bounded, failures remembered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from authserver.security.issuer_keys import MAX_DOCUMENT_BYTES, IssuerKeys, KeysUnavailable
from tests.support.live import LiveServer
from tests.support.ports import free_port

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


class Quirky:
    """An issuer whose discovery document and keys behave as each test needs."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.jwks_uri = f"{self.url}/jwks"
        self.discovery_issuer: str | None = None
        self.keys: list[dict[str, Any]] = [KEY.as_dict(private=False)]
        self.jwks_requests = 0
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/same-host", lambda r: RedirectResponse(f"{self.url}/jwks")),
                Route(
                    "/other-host",
                    lambda r: RedirectResponse(f"http://localhost:{self.port}/jwks"),
                ),
                Route("/huge", lambda r: Response(b"{" + b" " * MAX_DOCUMENT_BYTES + b"}")),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {"issuer": self.discovery_issuer or self.url, "jwks_uri": self.jwks_uri}
        )

    async def jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse({"keys": self.keys})


@pytest.fixture(scope="module")
def running() -> Iterator[Quirky]:
    quirky = Quirky()
    with LiveServer(quirky.app, quirky.port):
        yield quirky


@pytest.fixture
def issuer(running: Quirky) -> Iterator[Quirky]:
    yield running
    running.jwks_uri = f"{running.url}/jwks"
    running.discovery_issuer = None
    running.keys = [KEY.as_dict(private=False)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _keys(clock: Clock | None = None, **options: float) -> IssuerKeys:
    return IssuerKeys(
        ttl=options.get("ttl", 900),
        refetch_interval=options.get("refetch_interval", 60),
        clock=clock or Clock(),
    )


def _key(keys: IssuerKeys, issuer: str, kid: str | None = "k1") -> Any:
    return asyncio.run(keys.key(issuer, kid, "RSA"))


def test_the_key_named_by_kid_is_found(issuer: Quirky) -> None:
    key = _key(_keys(), issuer.url)
    assert key is not None and key.as_dict(private=False)["n"] == KEY.as_dict(private=False)["n"]


def test_a_redirect_on_the_same_host_is_followed(issuer: Quirky) -> None:
    issuer.jwks_uri = f"{issuer.url}/same-host"
    assert _key(_keys(), issuer.url) is not None


def test_a_redirect_to_another_host_is_refused(issuer: Quirky) -> None:
    issuer.jwks_uri = f"{issuer.url}/other-host"
    with pytest.raises(KeysUnavailable):
        _key(_keys(), issuer.url)


def test_a_document_over_the_size_cap_is_refused(issuer: Quirky) -> None:
    issuer.jwks_uri = f"{issuer.url}/huge"
    with pytest.raises(KeysUnavailable):
        _key(_keys(), issuer.url)


def test_a_plain_http_jwks_uri_off_loopback_is_refused(issuer: Quirky) -> None:
    issuer.jwks_uri = "http://keys.example.com/jwks"
    with pytest.raises(KeysUnavailable):
        _key(_keys(), issuer.url)


def test_a_discovery_document_of_another_issuer_is_refused(issuer: Quirky) -> None:
    issuer.discovery_issuer = "https://token.actions.githubusercontent.com"
    with pytest.raises(KeysUnavailable):
        _key(_keys(), issuer.url)


def test_a_plain_http_issuer_off_loopback_is_never_fetched() -> None:
    with pytest.raises(KeysUnavailable):
        _key(_keys(), "http://ci.example.com")


def test_no_fetch_while_the_cached_set_is_valid(issuer: Quirky) -> None:
    clock = Clock()
    keys = _keys(clock)

    async def twice() -> None:
        await keys.key(issuer.url, "k1", "RSA")
        clock.now += 899
        await keys.key(issuer.url, "k1", "RSA")

    asyncio.run(twice())
    assert keys.fetches == 1


def test_a_stale_set_keeps_serving_while_it_is_refreshed_in_the_background(
    issuer: Quirky,
) -> None:
    clock = Clock()
    keys = _keys(clock)

    async def scenario() -> tuple[Any, int]:
        await keys.key(issuer.url, "k1", "RSA")
        clock.now += 901
        issuer.keys = []  # the refresh will find nothing; the old set stays in use
        served = await keys.key(issuer.url, "k1", "RSA")
        fetches_at_answer = keys.fetches
        for _ in range(200):  # let the background refresh run
            if keys.fetches == 2 and not any(e.refreshing for e in keys._entries.values()):
                break
            await asyncio.sleep(0.01)
        return served, fetches_at_answer

    served, fetches_at_answer = asyncio.run(scenario())
    assert served is not None
    assert fetches_at_answer == 1  # the answer did not wait for the refresh
    assert keys.fetches == 2


def test_an_unknown_kid_refetches_at_most_once_per_interval(issuer: Quirky) -> None:
    clock = Clock()
    keys = _keys(clock)

    async def scenario() -> list[Any]:
        await keys.key(issuer.url, "k1", "RSA")
        clock.now += 61
        found = [await keys.key(issuer.url, f"made-up-{n}", "RSA") for n in range(5)]
        return found

    assert asyncio.run(scenario()) == [None] * 5
    assert keys.fetches == 2


def test_a_new_kid_at_the_issuer_is_found_by_the_refetch(issuer: Quirky) -> None:
    clock = Clock()
    keys = _keys(clock)
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})

    async def scenario() -> Any:
        await keys.key(issuer.url, "k1", "RSA")
        issuer.keys = [rotated.as_dict(private=False)]
        clock.now += 61
        return await keys.key(issuer.url, "k2", "RSA")

    assert asyncio.run(scenario()) is not None


def test_a_failed_fetch_is_remembered_so_the_next_request_fails_at_once() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    keys = _keys()

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(KeysUnavailable):
                await keys.key(dead, "k1", "RSA")

    asyncio.run(scenario())
    assert keys.fetches == 1


def test_keys_of_the_wrong_type_or_use_are_not_offered(issuer: Quirky) -> None:
    issuer.keys = [{**KEY.as_dict(private=False), "use": "enc"}]
    assert _key(_keys(), issuer.url) is None


def test_without_kid_the_only_key_of_the_type_is_used(issuer: Quirky) -> None:
    assert _key(_keys(), issuer.url, kid=None) is not None


def test_concurrent_first_requests_share_one_fetch(issuer: Quirky) -> None:
    keys = _keys()

    async def scenario() -> list[Any]:
        return list(await asyncio.gather(*(keys.key(issuer.url, "k1", "RSA") for _ in range(20))))

    found = asyncio.run(scenario())
    assert all(key is not None for key in found)
    assert keys.fetches == 1


def test_an_issuer_that_never_answers_does_not_hold_up_other_trusts(
    live_server: Any, tmp_path: Any
) -> None:
    """While one exchange waits on an issuer that hangs, another trust's exchange is served."""
    import threading

    import httpx

    from authserver.domain.credentials import Caller
    from authserver.domain.federation import NewTrust
    from authserver.usecases.federation import TrustService
    from authserver.usecases.users import UserService
    from tests.support.ci_issuer import github_claims, running_issuer
    from tests.support.helpers import now

    release = threading.Event()
    entered = threading.Event()
    hanging_port = free_port()
    hanging_url = f"http://127.0.0.1:{hanging_port}"

    async def hang(request: Request) -> Response:
        entered.set()
        while not release.is_set():
            await asyncio.sleep(0.02)
        return JSONResponse({}, status_code=503)

    hanging = Starlette(routes=[Route("/.well-known/openid-configuration", hang)])
    server, settings, store = live_server
    owner = UserService(store).create(
        email="h@example.com", display_name="", role_names=["deploy"], now=now()
    )
    service = TrustService(store, settings)
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    }
    with running_issuer() as good, LiveServer(hanging, hanging_port):
        slow = service.create(
            caller=Caller.operator(),
            owner_id=owner.id,
            new=NewTrust(issuer=hanging_url, condition="true"),
            now=now(),
        )
        fast = service.create(
            caller=Caller.operator(),
            owner_id=owner.id,
            new=NewTrust(issuer=good.url, condition="true"),
            now=now(),
        )
        results: dict[str, int] = {}

        def slow_exchange() -> None:
            job = good.token(github_claims(), audience=server.url, iss=hanging_url)
            answer = httpx.post(
                f"{server.url}/auth/v1/token",
                data={**form, "subject_token": job, "client_id": slow.client_id},
                timeout=30,
            )
            results["slow"] = answer.status_code

        waiting = threading.Thread(target=slow_exchange)
        waiting.start()
        try:
            assert entered.wait(10)  # the slow exchange is waiting on its issuer now
            job = good.token(github_claims(), audience=server.url)
            answer = httpx.post(
                f"{server.url}/auth/v1/token",
                data={**form, "subject_token": job, "client_id": fast.client_id},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            assert "slow" not in results  # served while the other one was still waiting
        finally:
            release.set()
            waiting.join(30)
        assert results["slow"] == 400
