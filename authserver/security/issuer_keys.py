"""The signing keys of CI providers' issuers (JWKS), fetched and cached per issuer.

An issuer is an address a user typed, so the fetch is careful outbound traffic:
only https (http on a loopback host), the discovery document's ``issuer`` must be
the trust's, no redirect to another host, a size cap and short timeouts. It never
blocks the event loop (httpx's async client), and each issuer has a lock of its
own: an unreachable issuer delays only the exchanges of its own trusts, and only
until its first failure is remembered.

While a cached key set is valid it is used without any fetch; once older than
``ttl`` it is still used while a refresh runs in the background. A token naming
a key the set lacks (``kid``) refetches it, at most once per ``refetch_interval``
per issuer, so that an issuer's key rotation is picked up at once but made-up
``kid`` values cannot turn the server into a fetching machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from authserver.domain.federation import discovery_url
from authserver.domain.urls import issuer_problem

log = logging.getLogger("authserver.federation")

MAX_DOCUMENT_BYTES = 256 * 1024  # a discovery document or key set larger than this is refused
MAX_KEYS = 100
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 3.0
FETCH_DEADLINE = 6.0  # both documents, redirects included
#: After a failed fetch, exchanges for that issuer fail at once for this long.
FAILURE_BACKOFF = 5.0

PublicKey = RSAKey | ECKey | OKPKey


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched (the reason is logged, never shown)."""


@dataclass
class _Entry:
    keys: dict[str, PublicKey] = field(default_factory=dict)  # kid ("" when none) → key
    fetched_at: float | None = None  # monotonic time of the last successful fetch
    attempted_at: float | None = None  # monotonic time of the last fetch, ok or not
    failed: bool = False  # the last fetch failed
    generation: int = 0  # fetches finished, ok or not
    refreshing: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock)


class IssuerKeys:
    """Key sets by issuer URL; ``key`` finds the one a token names."""

    def __init__(
        self,
        *,
        ttl: float,
        refetch_interval: float,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self._transport = transport
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.fetches = 0  # key-set fetches attempted (for tests and metrics)

    async def key(self, issuer: str, kid: str | None, kty: str) -> PublicKey | None:
        """The issuer's key ``kid`` (of type ``kty``), None when it has no such key.

        Raises ``KeysUnavailable`` when no key set could be had at all.
        """
        entry = self._entries.get(issuer)
        if entry is None:
            entry = self._entries[issuer] = _Entry()
        now = self._clock()
        if entry.fetched_at is not None:
            found = _pick(entry.keys, kid, kty)
            if entry.fetched_at + self.ttl <= now and not entry.refreshing:
                self._refresh_in_background(issuer, entry)
            if found is not None or not self._may_fetch(entry, now):
                return found
        elif entry.failed and not self._may_fetch(entry, now, backoff=FAILURE_BACKOFF):
            raise KeysUnavailable("the last fetch failed moments ago")
        seen = entry.generation
        async with entry.lock:
            if entry.generation == seen:  # no fetch finished while this one waited
                await self._fetch(issuer, entry)
        if entry.fetched_at is None:
            raise KeysUnavailable("no key set could be fetched")
        return _pick(entry.keys, kid, kty)

    def _may_fetch(self, entry: _Entry, now: float, backoff: float | None = None) -> bool:
        wait = self.refetch_interval if backoff is None else min(backoff, self.refetch_interval)
        return entry.attempted_at is None or now - entry.attempted_at >= wait

    def _refresh_in_background(self, issuer: str, entry: _Entry) -> None:
        entry.refreshing = True

        async def refresh() -> None:
            try:
                async with entry.lock:
                    await self._fetch(issuer, entry)
            finally:
                entry.refreshing = False

        task = asyncio.get_running_loop().create_task(refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fetch(self, issuer: str, entry: _Entry) -> None:
        """Fetch the key set; a failure keeps the previous set (and is logged once)."""
        entry.attempted_at = self._clock()
        self.fetches += 1
        try:
            with anyio.fail_after(FETCH_DEADLINE):
                keys = await self._download(issuer)
        except (KeysUnavailable, TimeoutError, httpx2.HTTPError, OSError) as exc:
            if not entry.failed:
                log.warning("federation: cannot fetch the keys of %s: %s", issuer, _why(exc))
            entry.failed = True
            entry.generation += 1
            return
        if entry.failed:
            log.info("federation: the keys of %s can be fetched again", issuer)
        entry.keys, entry.fetched_at, entry.failed = keys, self._clock(), False
        entry.generation += 1

    async def _download(self, issuer: str) -> dict[str, PublicKey]:
        timeout = httpx2.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        async with httpx2.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            transport=self._transport,
            trust_env=False,  # no proxy from the environment: the fetch goes where it says
            headers={"Accept": "application/json", "User-Agent": "authserver-federation"},
        ) as client:
            discovery = await _get_json(client, discovery_url(issuer))
            if discovery.get("issuer") != issuer:
                raise KeysUnavailable("the discovery document names another issuer")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str) or issuer_problem(jwks_uri) is not None:
                raise KeysUnavailable("jwks_uri is missing or not https")
            document = await _get_json(client, jwks_uri)
        listed = document.get("keys")
        if not isinstance(listed, list):
            raise KeysUnavailable("the key set has no keys")
        keys: dict[str, PublicKey] = {}
        for jwk in listed[:MAX_KEYS]:
            key = _public_key(jwk)
            if key is not None:
                keys.setdefault(str(jwk.get("kid") or ""), key)
        return keys


async def _get_json(client: httpx2.AsyncClient, url: str) -> dict[str, Any]:
    """GET a JSON object, following at most 3 redirects on the same host, size-capped."""
    host = urlsplit(url).hostname
    for _hop in range(MAX_REDIRECTS + 1):
        problem = issuer_problem(url)
        if problem is not None:
            raise KeysUnavailable(f"refused URL: {problem}")
        async with client.stream("GET", url) as response:
            if response.is_redirect:
                target = urljoin(url, response.headers.get("location", ""))
                if urlsplit(target).hostname != host:
                    raise KeysUnavailable("redirected to another host")
                url = target
                continue
            if response.status_code != 200:
                raise KeysUnavailable(f"HTTP {response.status_code} from {url}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeysUnavailable(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(bytes(body))
        except ValueError:
            raise KeysUnavailable(f"{url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise KeysUnavailable(f"{url} did not answer a JSON object")
        return document
    raise KeysUnavailable("too many redirects")


def _public_key(jwk: Any) -> PublicKey | None:
    """A signing key of the set as a public key; None for what we do not use."""
    if not isinstance(jwk, dict) or jwk.get("use") not in (None, "sig"):
        return None
    kty = jwk.get("kty")
    public = {
        "RSA": ("kty", "n", "e"),
        "EC": ("kty", "crv", "x", "y"),
        "OKP": ("kty", "crv", "x"),
    }.get(kty if isinstance(kty, str) else "")
    if public is None or not all(isinstance(jwk.get(name), str) for name in public):
        return None
    try:
        key = JWKRegistry.import_key({name: jwk[name] for name in public})
    except (JoseError, ValueError, TypeError):
        return None
    if not isinstance(key, RSAKey | ECKey | OKPKey):
        return None
    return key


def _pick(keys: dict[str, PublicKey], kid: str | None, kty: str) -> PublicKey | None:
    if kid is not None:
        key = keys.get(kid)
        return key if key is not None and key.key_type == kty else None
    # No kid: only a set holding exactly one key of that type tells which one.
    matching = [key for key in keys.values() if key.key_type == kty]
    return matching[0] if len(matching) == 1 else None


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
