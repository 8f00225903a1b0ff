"""The objects one app instance is made of, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from authserver.config import Settings
from authserver.hashing import SecretHasher
from authserver.keys import KeyRing
from authserver.last_used import LastUsedRecorder
from authserver.metrics import Metrics
from authserver.oauth.client_auth import ClientAuthenticator
from authserver.oauth.server import Server
from authserver.state_cache import StateCache
from authserver.store.database import Database
from authserver.store.repository import Repository
from authserver.tokens import ActiveToken, active_token


@dataclass
class Services:
    """Settings, storage and the long-lived helpers handlers use."""

    settings: Settings
    database: Database
    repo: Repository
    hasher: SecretHasher
    keyring: KeyRing
    last_used: LastUsedRecorder
    authenticator: ClientAuthenticator
    server: Server
    metrics: Metrics
    state_cache: StateCache

    @classmethod
    def build(cls, settings: Settings, database: Database | None = None) -> Services:
        database = database or Database(settings.database_url)
        repo = Repository(database)
        hasher = SecretHasher(settings)
        keyring = KeyRing()
        state_cache = StateCache(settings.auth_cache_ttl)
        last_used = LastUsedRecorder(repo, interval=settings.last_used_flush_interval)
        server = Server(
            settings,
            keyring,
            on_issued=lambda client, when: last_used.touch(client.state.id, when),
        )
        return cls(
            settings=settings,
            database=database,
            repo=repo,
            hasher=hasher,
            keyring=keyring,
            last_used=last_used,
            authenticator=ClientAuthenticator(settings, repo, hasher, state_cache),
            server=server,
            metrics=Metrics(lambda: (hasher.cache_hits, hasher.cache_misses)),
            state_cache=state_cache,
        )

    async def active_token(self, token: str) -> ActiveToken | None:
        """``tokens.active_token`` with this instance's keys, settings, store and cache."""
        return await active_token(
            token,
            keyring=self.keyring,
            settings=self.settings,
            repo=self.repo,
            cache=self.state_cache,
        )

    def forget_credential(self, *, client_id: str) -> None:
        """Drop what this process remembers of a credential that just changed.

        The verified-secret cache needs nothing: its entries are tied to the stored hash.
        """
        self.state_cache.forget(client_id)
