"""``authserver webhooks list``: recent webhook deliveries and their state."""

from __future__ import annotations

import json
from typing import Any

import click

from authserver import wire
from authserver.cli.base import Context, command, print_json
from authserver.security.logsafe import escaped
from authserver.store.outbox import OutboxRecord


@click.group("webhooks")
def webhooks() -> None:
    """Webhook deliveries of credential events ([[webhooks]] in the config)."""


def delivery_json(record: OutboxRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "type": record.type,
        "url": record.target,
        "state": record.state,
        "attempts": record.attempts,
        "createdAt": wire.timestamp(record.created_at),
        "nextAttemptAt": wire.timestamp(record.next_attempt_at)
        if record.state == "pending"
        else None,
        "deliveredAt": wire.timestamp(record.delivered_at),
        "lastError": record.last_error,
        "clientId": _client_id(record),
    }


def _client_id(record: OutboxRecord) -> str | None:
    try:
        value = json.loads(record.body)["data"]["client"]["clientId"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


@webhooks.command("list")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="How many."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def webhooks_list(ctx: Context, limit: int, as_json: bool) -> None:
    """Recent deliveries, newest first: pending (with its next attempt), delivered, failed."""
    records = ctx.cases.lifecycle.recent(limit=limit)
    if as_json:
        print_json([delivery_json(r) for r in records])
        return
    if not records:
        click.echo("no webhook deliveries")
        return
    for record in records:
        state = record.state
        if state == "pending":
            state = f"pending, next attempt {wire.timestamp(record.next_attempt_at)}"
        elif state == "delivered":
            state = f"delivered {wire.timestamp(record.delivered_at)}"
        line = (
            f"{record.id}  {wire.timestamp(record.created_at)}  {record.type}  "
            f"{_client_id(record) or '-'}  {escaped(record.target)}  {state}  "
            f"attempts {record.attempts}"
        )
        if record.last_error and record.state != "delivered":
            line += f"  last error: {escaped(record.last_error)}"
        click.echo(line)
