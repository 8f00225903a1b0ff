"""``authserver audit export``: the audit trail kept in the database, as JSON lines."""

from __future__ import annotations

import json

import click

from authserver import wire
from authserver.cli.base import Context, command, now
from authserver.domain.durations import parse_duration


@click.group("audit")
def audit_group() -> None:
    """The audit trail kept in the database."""


@audit_group.command("export")
@click.option(
    "--since", default=None, metavar="DURATION", help="Only events of the last DURATION (e.g. 7d)."
)
@click.option(
    "--user",
    "user_ref",
    default=None,
    metavar="EMAIL|ID",
    help="Only events by or about this user.",
)
@command
def audit_export(ctx: Context, since: str | None, user_ref: str | None) -> None:
    """Print the kept audit events, oldest first, one JSON object a line."""
    start = now() - parse_duration(since) if since is not None else None
    for event in ctx.cases.audit.export(since=start, user_ref=user_ref):
        click.echo(json.dumps(wire.audit_event_json(event), separators=(",", ":")))
