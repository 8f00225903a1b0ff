"""The admin inventory of everyone's credentials: read with filters, delete a selection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from authserver.config import Settings
from authserver.domain.credentials import Caller, is_admin
from authserver.errors import NotFound
from authserver.records import ClientRecord, TrustRecord
from authserver.store import Store
from authserver.store.inventory import KIND_TRUST, InventoryFilter, InventoryItem
from authserver.usecases.credentials import CredentialService
from authserver.usecases.federation import TrustService

#: The most credentials one confirmation deletes (a page of the inventory).
MAX_SELECTION = 100


class Inventory:
    """Everyone's credentials, for holders of the admin role only (others: not found)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        credentials: CredentialService,
        trusts: TrustService,
    ) -> None:
        self.store = store
        self.settings = settings
        self.credentials = credentials
        self.trusts = trusts

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

    def delete(
        self, *, caller: Caller, ids: Sequence[str], now: datetime
    ) -> list[ClientRecord | TrustRecord]:
        """Delete each of ``ids`` through its kind's use case (personal clients, trusts;
        each audited with the caller); ones already gone are skipped. The deleted records."""
        self._admin(caller)
        deleted: list[ClientRecord | TrustRecord] = []
        for item in self.store.inventory.named(ids=list(dict.fromkeys(ids))[:MAX_SELECTION]):
            use_case = self.trusts if item.kind == KIND_TRUST else self.credentials
            try:
                deleted.append(use_case.delete(caller=caller, ref=item.id, now=now))
            except NotFound:
                continue  # deleted meanwhile, by someone else
        return deleted
