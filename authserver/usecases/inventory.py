"""The admin inventory of everyone's credentials: read with filters, delete a selection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from authserver.config import Settings
from authserver.domain.credentials import Caller, is_admin
from authserver.errors import NotFound
from authserver.records import ClientRecord
from authserver.store import Store
from authserver.store.inventory import InventoryFilter, InventoryItem
from authserver.usecases.credentials import CredentialService

#: The most credentials one confirmation deletes (a page of the inventory).
MAX_SELECTION = 100


class Inventory:
    """Everyone's credentials, for holders of the admin role only (others: not found)."""

    def __init__(self, store: Store, settings: Settings, credentials: CredentialService) -> None:
        self.store = store
        self.settings = settings
        self.credentials = credentials

    def _admin(self, caller: Caller) -> None:
        if not is_admin(caller, self.settings.admin_role):
            raise NotFound("no such page")

    def page(
        self, *, caller: Caller, where: InventoryFilter, sort: str, offset: int, limit: int
    ) -> tuple[list[InventoryItem], int]:
        self._admin(caller)
        return self.store.inventory.page(where=where, sort=sort, offset=offset, limit=limit)

    def named(self, *, caller: Caller, ids: Sequence[str]) -> list[InventoryItem]:
        """The live credentials among ``ids``, to name them before deleting."""
        self._admin(caller)
        return self.store.inventory.named(ids=list(dict.fromkeys(ids))[:MAX_SELECTION])

    def delete(self, *, caller: Caller, ids: Sequence[str], now: datetime) -> list[ClientRecord]:
        """Delete each of ``ids`` through the credential use case (each audited with the
        caller); ones already gone are skipped. The deleted records."""
        self._admin(caller)
        deleted = []
        for ref in list(dict.fromkeys(ids))[:MAX_SELECTION]:
            try:
                deleted.append(self.credentials.delete(caller=caller, ref=ref, now=now))
            except NotFound:
                continue  # deleted meanwhile, by someone else
        return deleted
