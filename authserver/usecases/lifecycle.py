"""What a credential's owner and the webhooks hear of it: events, expiry notices, retries.

Every change writes its webhook deliveries (and e-mails) to the outbox in its own
transaction (``store/outbox.py``); background senders on every instance deliver
them at least once. The expiry check claims each (credential, threshold) in the
database before writing its messages, so every notice is written once across
all instances, and then sent (retried) like any other message.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from authserver.config import Settings, Webhook
from authserver.domain import lifecycle
from authserver.domain.lifecycle import EXPIRED_THRESHOLD, days_left, due_threshold, in_words
from authserver.records import ClientRecord, TrustRecord, UserRecord
from authserver.store import Store
from authserver.store.notices import Due
from authserver.store.outbox import MAIL, WEBHOOK, Message, Notify, OutboxRecord
from authserver.wire import client_json, timestamp, trust_json

WEBHOOK_LEASE = timedelta(seconds=60)  # far beyond a delivery's timeout
MAIL_LEASE = timedelta(seconds=120)
WEBHOOK_RETRY_FOR = timedelta(hours=24)  # then a delivery is marked failed
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=1)
# An expired credential is told of if it expired this recently (not years-old ones the
# first time the check runs).
EXPIRED_LOOKBACK = timedelta(days=7)
BATCH = 20


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the ``attempts``-th failure: 5 s, 10 s, 20 s, … at most 1 h."""
    delay: timedelta = FIRST_RETRY * (2 ** min(max(attempts - 1, 0), 20))
    return min(delay, LONGEST_RETRY)


class Lifecycle:
    """Events of credential changes, the expiry check, and the outbox's retry rules."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    # Events ------------------------------------------------------------------------

    def notify(
        self,
        event: str,
        *,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        owner: UserRecord | None = None,
    ) -> Notify | None:
        """What a change sends: ``event`` to each webhook that wants it, and for a leak the
        owner's e-mail; None when nothing is to be sent."""
        hooks = [w for w in self.settings.webhooks if w.wants(event)]
        mail_to = owner if event == lifecycle.LEAKED and self.settings.mail_enabled else None
        if not hooks and mail_to is None:
            return None

        def messages(record: ClientRecord | TrustRecord) -> list[Message]:
            sent = [self._webhook(hook, event, record, now, extra or {}) for hook in hooks]
            if mail_to is not None:
                sent.append(self._leaked_mail(mail_to, record, now))
            return sent

        return messages

    def _webhook(
        self,
        hook: Webhook,
        event: str,
        record: ClientRecord | TrustRecord,
        now: datetime,
        extra: Mapping[str, Any],
    ) -> Message:
        # data.client is the record as the API shows it: a PersonalClient or a trust.
        shown = trust_json(record) if isinstance(record, TrustRecord) else client_json(record)
        data: dict[str, Any] = {"client": shown, **extra}
        body = {"type": event, "timestamp": timestamp(now), "data": data}
        return Message(
            channel=WEBHOOK,
            target=hook.url,
            type=event,
            body=json.dumps(body, separators=(",", ":"), sort_keys=True),
        )

    def _link(self, record: ClientRecord | TrustRecord) -> str:
        if isinstance(record, TrustRecord):
            return self.settings.endpoint("/ui/federation")
        return self.settings.endpoint(f"/ui/personal-clients/{record.id}")

    def _leaked_mail(
        self, owner: UserRecord, record: ClientRecord | TrustRecord, now: datetime
    ) -> Message:
        body = (
            f"Hello {owner.display_name or owner.email},\n\n"
            f'The secret of your credential "{record.display_name}" ({record.client_id}) '
            f"was reported as published at {timestamp(now)}. It has been revoked: it no "
            "longer authenticates. Create a new credential where you need one, and check "
            "where the secret was stored.\n\n"
            f"{self.settings.endpoint('/ui/personal-clients')}\n"
        )
        return Message(
            channel=MAIL,
            target=owner.email,
            type=lifecycle.LEAKED,
            subject=f'Your credential "{record.display_name}" was revoked: its secret leaked',
            body=body,
        )

    # Expiry notices -----------------------------------------------------------------

    @property
    def sends_anything(self) -> bool:
        return self.settings.mail_enabled or bool(self.settings.webhooks)

    def check(self, *, now: datetime) -> int:
        """Claim and write the expiry notices due now; how many (credential, threshold).

        One e-mail per owner listing their credentials, and one webhook event per
        credential. Nothing is claimed when there is nowhere to send it.
        """
        if not self.sends_anything:
            return 0
        days = self.settings.expiry_notice_days
        until = now + timedelta(days=max(days, default=0))
        claimed = 0
        expiring = self.store.notices.expiring(until=until, since=now - EXPIRED_LOOKBACK)
        # Read first: the notices already sent cost no write (no lock) in every later check.
        sent = self.store.notices.claimed(
            credential_ids=[r.id for _, records in expiring for r in records]
        )
        for owner, records in expiring:
            due = []
            for record in records:
                assert record.expires_time is not None
                threshold = due_threshold(record.expires_time, now=now, notice_days=days)
                if (
                    threshold is not None
                    and (record.id, threshold, record.expires_time) not in sent
                ):
                    due.append(Due(record, threshold))
            if due:
                claimed += len(self._claim(owner, due, now))
        return claimed

    def _claim(self, owner: UserRecord, due: Sequence[Due], now: datetime) -> list[Due]:
        def messages(claimed: Sequence[Due]) -> list[Message]:
            return self._notices(owner, claimed, now)

        return self.store.notices.claim(due=due, messages=messages, now=now)

    def _notices(self, owner: UserRecord, due: Sequence[Due], now: datetime) -> list[Message]:
        messages: list[Message] = []
        for notice in due:
            record = notice.record
            assert record.expires_time is not None
            if notice.threshold == EXPIRED_THRESHOLD:
                event, extra = lifecycle.EXPIRED, {}
            else:
                event = lifecycle.EXPIRING
                extra = {"daysLeft": days_left(record.expires_time, now=now)}
            messages.extend(
                self._webhook(hook, event, record, now, extra)
                for hook in self.settings.webhooks
                if hook.wants(event)
            )
        if self.settings.mail_enabled:
            messages.append(self._expiry_mail(owner, due, now))
        return messages

    def _expiry_mail(self, owner: UserRecord, due: Sequence[Due], now: datetime) -> Message:
        kinds = Counter(d.threshold == EXPIRED_THRESHOLD for d in due)
        if kinds[True] and not kinds[False]:
            subject = (
                "Your credential has expired"
                if len(due) == 1
                else f"{len(due)} of your credentials have expired"
            )
        else:
            subject = (
                "Your credential expires soon"
                if len(due) == 1
                else f"{len(due)} of your credentials expire soon or have expired"
            )
        lines = [f"Hello {owner.display_name or owner.email},", ""]
        lines.append(
            "These credentials expire soon or have expired; tokens stop at the expiry. "
            "Rotate or replace them before then:"
        )
        for notice in due:
            record = notice.record
            assert record.expires_time is not None
            lines += [
                "",
                f"- {record.display_name} ({record.client_id})",
                f"  {'expires' if record.expires_time > now else 'expired'} "
                f"{in_words(record.expires_time, now=now)}: {timestamp(record.expires_time)}",
                f"  {self._link(record)}",
            ]
        return Message(
            channel=MAIL,
            target=owner.email,
            type="credential.expiry",
            subject=subject,
            body="\n".join(lines) + "\n",
        )

    # The outbox ----------------------------------------------------------------------

    def claim(self, *, channel: str, now: datetime, limit: int = BATCH) -> list[OutboxRecord]:
        """Due messages of ``channel``, leased to this sender."""
        lease = WEBHOOK_LEASE if channel == WEBHOOK else MAIL_LEASE
        return self.store.outbox.claim(channel=channel, now=now, lease=lease, limit=limit)

    def settle(self, message: OutboxRecord, *, error: str | None, now: datetime) -> None:
        """Delivered, or due again after a backoff; a webhook undelivered for 24 h fails.

        E-mail is never given up: a notice that could not be sent is retried.
        """
        assert message.claim is not None
        retry_at: datetime | None = None
        if error is not None:
            retry_at = now + retry_delay(message.attempts)
            if message.channel == WEBHOOK and retry_at - message.created_at > WEBHOOK_RETRY_FOR:
                retry_at = None
        self.store.outbox.settle(
            id=message.id, claim=message.claim, now=now, error=error, retry_at=retry_at
        )

    def give_up(self, message: OutboxRecord, *, error: str, now: datetime) -> None:
        """Mark a message failed at once (its receiver is no longer configured)."""
        assert message.claim is not None
        self.store.outbox.settle(
            id=message.id, claim=message.claim, now=now, error=error, retry_at=None
        )

    def recent(self, *, channel: str | None = WEBHOOK, limit: int = 50) -> list[OutboxRecord]:
        return self.store.outbox.recent(channel=channel, limit=limit)
