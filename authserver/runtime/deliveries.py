"""Background senders of the outbox (webhooks, e-mail) and the expiry check.

None of it runs on a request: each loop claims due rows in the database (so two
instances never send the same one at once), sends, and settles them. Outbound
webhook requests go only where ``[[webhooks]]`` says (https, or http to loopback),
follow no redirect, read at most ``MAX_RESPONSE_BYTES`` of the answer, and give up
after ``TIMEOUT`` seconds; any failure is retried with backoff.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import anyio
import anyio.to_thread
import httpx2

from authserver.runtime.services import Services
from authserver.security.logsafe import escaped
from authserver.security.webhooks import signed_headers
from authserver.store.outbox import MAIL, WEBHOOK, OutboxRecord
from authserver.usecases import mail

log = logging.getLogger("authserver")
POLL_SECONDS = 1.0  # a change's webhook leaves within about a second
TIMEOUT = 5.0
MAX_RESPONSE_BYTES = 64 * 1024


def http_client() -> httpx2.AsyncClient:
    """The webhooks' HTTP client: no redirects, no proxies from the environment, short."""
    return httpx2.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx2.Timeout(TIMEOUT),
        headers={"user-agent": "authserver-webhooks"},
    )


async def send_webhooks(
    services: Services,
    client: httpx2.AsyncClient,
    *,
    now: datetime | None = None,
    limiter: anyio.CapacityLimiter | None = None,
) -> int:
    """One round: claim the due deliveries, send them side by side, settle each; how many."""
    when = now or datetime.now(UTC)
    claimed = await anyio.to_thread.run_sync(
        lambda: services.lifecycle.claim(channel=WEBHOOK, now=when), limiter=limiter
    )
    async with anyio.create_task_group() as group:
        for message in claimed:
            group.start_soon(_deliver, services, client, message, when, limiter)
    return len(claimed)


async def _deliver(
    services: Services,
    client: httpx2.AsyncClient,
    message: OutboxRecord,
    now: datetime,
    limiter: anyio.CapacityLimiter | None,
) -> None:
    hook = next((w for w in services.settings.webhooks if w.url == message.target), None)
    if hook is None:
        await anyio.to_thread.run_sync(
            lambda: services.lifecycle.give_up(
                message, error="no [[webhooks]] table has this url any more", now=now
            ),
            limiter=limiter,
        )
        return
    error = await post(client, message, key=hook.key)
    if error is not None:
        log.warning(
            "webhook %s to %s not delivered: %s", message.id, escaped(message.target), error
        )
    await anyio.to_thread.run_sync(
        lambda: services.lifecycle.settle(message, error=error, now=now), limiter=limiter
    )


async def post(client: httpx2.AsyncClient, message: OutboxRecord, *, key: bytes) -> str | None:
    """POST one signed delivery; None when the receiver took it (2xx), else why not."""
    headers = signed_headers(
        key=key, message_id=message.id, timestamp=int(time.time()), body=message.body
    )
    headers["content-type"] = "application/json"
    try:
        async with client.stream(
            "POST", message.target, content=message.body.encode(), headers=headers
        ) as response:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break  # nothing of the answer is needed beyond its status
            status = response.status_code
    except httpx2.TimeoutException:
        return f"no answer within {TIMEOUT:g} s"
    except httpx2.HTTPError as exc:
        return f"cannot connect: {type(exc).__name__}"
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status} (redirects are not followed)"
    return f"HTTP {status}"


async def send_mail(
    services: Services,
    *,
    now: datetime | None = None,
    limiter: anyio.CapacityLimiter | None = None,
) -> int:
    """One round: claim the due e-mails, send them over one SMTP connection, settle each."""
    when = now or datetime.now(UTC)

    def round_trip() -> int:
        claimed = services.lifecycle.claim(channel=MAIL, now=when)
        if not claimed:
            return 0
        outcome = mail.send(services.settings, claimed)
        for message in claimed:
            error = outcome[message.id]
            if error is not None:
                log.warning("e-mail %s not sent (retried later): %s", message.id, error)
            services.lifecycle.settle(message, error=error, now=when)
        return len(claimed)

    return await anyio.to_thread.run_sync(round_trip, limiter=limiter)


async def check_expiry(
    services: Services,
    *,
    now: datetime | None = None,
    limiter: anyio.CapacityLimiter | None = None,
) -> int:
    """The expiry check: claim and write the notices due now; how many."""
    when = now or datetime.now(UTC)
    return await anyio.to_thread.run_sync(
        lambda: services.lifecycle.check(now=when), limiter=limiter
    )


async def webhook_sender(services: Services) -> None:
    limiter = anyio.CapacityLimiter(1)
    async with http_client() as client:
        while True:
            try:
                await send_webhooks(services, client, limiter=limiter)
            except Exception as exc:  # the database may be briefly away; the next round retries
                log.warning("webhook round failed: %s", exc)
            await anyio.sleep(POLL_SECONDS)


async def mail_sender(services: Services) -> None:
    limiter = anyio.CapacityLimiter(1)
    while True:
        try:
            await send_mail(services, limiter=limiter)
        except Exception as exc:
            log.warning("e-mail round failed: %s", exc)
        await anyio.sleep(POLL_SECONDS)


async def expiry_checker(services: Services) -> None:
    limiter = anyio.CapacityLimiter(1)
    while True:
        try:
            await check_expiry(services, limiter=limiter)
        except Exception as exc:
            log.warning("expiry check failed: %s", exc)
        await anyio.sleep(services.settings.lifecycle_check_interval)
