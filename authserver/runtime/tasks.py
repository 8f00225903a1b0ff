"""The app's lifespan: the first signing key, and the background tasks every instance runs.

Each task follows the database on its own worker-thread slot: requests that fill
anyio's default worker threads (a burst of argon2 work, say) must not delay
them. A task that fails (the database may be briefly away) keeps what it had
and tries again on its next round.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
import anyio.to_thread
from starlette.applications import Starlette

from authserver.runtime import deliveries
from authserver.runtime.services import Services
from authserver.security import audit
from authserver.store.changes import listen

log = logging.getLogger("authserver")
KEY_REFRESH_SECONDS = 0.5  # a rotation reaches every instance well within 1 s
PURGE_SECONDS = 60.0


async def refresh_keys(services: Services, limiter: anyio.CapacityLimiter | None = None) -> None:
    """Load signing keys from the database (another instance or the CLI may have rotated)."""
    await services.refresh_keys(limiter)


async def _key_refresher(services: Services) -> None:
    limiter = anyio.CapacityLimiter(1)
    while True:
        await anyio.sleep(KEY_REFRESH_SECONDS)
        try:
            await refresh_keys(services, limiter)
        except Exception as exc:  # the database may be briefly away; keep the keys we have
            log.warning("signing key refresh failed: %s", exc)


async def _notified(services: Services) -> None:
    """A change committed elsewhere (PostgreSQL NOTIFY): take it in now, not at the next poll."""
    try:
        await services.state_cache.sync(services.store.changes)
    except Exception as exc:  # the poll tries again
        log.warning("credential state sync failed: %s", exc)
    try:
        await services.refresh_keys()  # the change may be a key rotation
    except Exception as exc:
        log.warning("signing key refresh failed: %s", exc)


async def _purger(services: Services) -> None:
    """Drop revocations, retired keys and sessions that nothing can need any more."""
    limiter = anyio.CapacityLimiter(1)
    while True:
        await anyio.sleep(PURGE_SECONDS)
        try:
            await anyio.to_thread.run_sync(
                lambda: services.maintenance.purge(now=datetime.now(UTC)), limiter=limiter
            )
        except Exception as exc:
            log.warning("purge failed: %s", exc)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Make sure a signing key exists, run the background tasks, flush ``lastUsedAt`` and
    the audit trail at the end."""
    services: Services = app.state.services
    # From here on audit events are also written to the database, by a thread of the trail's.
    services.audit.start()
    try:
        await anyio.to_thread.run_sync(lambda: services.keys.ensure_active(now=datetime.now(UTC)))
        await refresh_keys(services)
        await anyio.to_thread.run_sync(services.last_used.recover)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(services.last_used.run)
            tasks.start_soon(services.state_cache.follow, services.store.changes)
            tasks.start_soon(listen, services.database, lambda: _notified(services))
            tasks.start_soon(_key_refresher, services)
            tasks.start_soon(_purger, services)
            # Credential lifecycle: only what has somewhere to send runs.
            if services.settings.webhooks:
                tasks.start_soon(deliveries.webhook_sender, services)
            if services.settings.mail_enabled:
                tasks.start_soon(deliveries.mail_sender, services)
            if services.lifecycle.sends_anything:
                tasks.start_soon(deliveries.expiry_checker, services)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await services.last_used.flush()
            services.last_used.close()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(services.audit.stop)
        audit.flush()  # the log lines still waiting for the end of the loop's turn
