"""Storage: one store per aggregate over SQLAlchemy, the change feed, Alembic migrations.

Every store method is one short transaction, takes keyword-only arguments and
returns frozen records (``authserver.records``), never ORM objects or
sessions. They block: async code calls them through a worker thread.
"""

from __future__ import annotations

from authserver.store.audit import AuditStore
from authserver.store.changes import ChangeFeed
from authserver.store.credentials import CredentialStore
from authserver.store.database import Database
from authserver.store.device_codes import DeviceCodeStore
from authserver.store.inventory import InventoryStore
from authserver.store.invites import InviteStore
from authserver.store.notices import NoticeStore
from authserver.store.one_time_tokens import RegistrationTokenStore
from authserver.store.outbox import OutboxStore
from authserver.store.passwords import PasswordStore
from authserver.store.pending_sign_ins import PendingSignInStore
from authserver.store.provider_links import ProviderLinkStore
from authserver.store.revocations import RevocationStore
from authserver.store.sessions import SessionStore
from authserver.store.signing_keys import KeyStore
from authserver.store.throttles import ThrottleStore
from authserver.store.trusts import TrustStore
from authserver.store.usage import UsageStore
from authserver.store.users import UserStore


class Store:
    """Every store over one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.users = UserStore(database)
        self.credentials = CredentialStore(database)
        self.keys = KeyStore(database)
        self.revocations = RevocationStore(database)
        self.registration_tokens = RegistrationTokenStore(database)
        self.changes = ChangeFeed(database)
        self.device_codes = DeviceCodeStore(database)
        self.passwords = PasswordStore(database)
        self.sessions = SessionStore(database)
        self.invites = InviteStore(database)
        self.pending_sign_ins = PendingSignInStore(database)
        self.throttles = ThrottleStore(database)
        self.provider_links = ProviderLinkStore(database)
        self.trusts = TrustStore(database)
        self.outbox = OutboxStore(database)
        self.notices = NoticeStore(database)
        self.audit = AuditStore(database)
        self.inventory = InventoryStore(database)
        self.usage = UsageStore(database)


__all__ = ["Database", "Store"]
