"""Credential lifecycle rules: the events a change sends, and which expiry notice is due."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

CREATED = "credential.created"
UPDATED = "credential.updated"
ROTATED = "credential.rotated"
DELETED = "credential.deleted"
EXPIRING = "credential.expiring"
EXPIRED = "credential.expired"
LEAKED = "credential.leaked"
EVENT_TYPES = (CREATED, UPDATED, ROTATED, DELETED, EXPIRING, EXPIRED, LEAKED)
EXPIRED_THRESHOLD = 0  # the notice "has expired", beside the days-before thresholds


def due_threshold(
    expires_time: datetime, *, now: datetime, notice_days: Sequence[int]
) -> int | None:
    """The notice due now for a credential expiring at ``expires_time``: 0 once expired,
    else the smallest of ``notice_days`` it is already within; None when none is.

    Only the smallest: a credential first seen 5 days before its expiry is due the
    7-day notice alone, never the 30-day one as well.
    """
    if expires_time <= now:
        return EXPIRED_THRESHOLD
    within = [d for d in notice_days if expires_time - now <= timedelta(days=d)]
    return min(within) if within else None


def days_left(expires_time: datetime, *, now: datetime) -> int:
    """Whole days until the expiry, rounded up (a credential expiring in 3 hours: 1)."""
    seconds = (expires_time - now).total_seconds()
    return max(0, -int(-seconds // 86400))


def in_words(expires_time: datetime, *, now: datetime) -> str:
    """``in 6 days``, ``in 3 hours``, ``in 20 minutes``; ``expired 2 days ago``."""
    delta = expires_time - now
    seconds = abs(int(delta.total_seconds()))
    count, unit = max(seconds, 1), "second"
    for size, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count, unit = seconds // size, name
            break
    amount = f"{count} {unit}{'s' * (count != 1)}"
    return f"in {amount}" if delta.total_seconds() > 0 else f"expired {amount} ago"
