"""``authserver clients …``: personal clients, under the same rules as the API."""

from __future__ import annotations

from datetime import timedelta

import click

from authserver import wire
from authserver.cli.base import (
    Context,
    command,
    credential_options,
    now,
    print_credential,
    print_json,
)
from authserver.domain.credentials import UNSET, Caller, CredentialPatch, NewCredential
from authserver.domain.durations import parse_duration
from authserver.records import ClientRecord


@click.group()
def clients() -> None:
    """Manage personal clients."""


@clients.command("create")
@click.option("--user", "user_ref", required=True, metavar="EMAIL|ID", help="Owner.")
@click.option("--name", default=None, help="Display name.")
@credential_options
@click.option(
    "--require-dpop", is_flag=True, help="Tokens only with a DPoP proof (RFC 9449), never bearer."
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's create response.")
@command
def clients_create(
    ctx: Context,
    user_ref: str,
    name: str | None,
    scoped_roles: tuple[str, ...],
    cidrs: tuple[str, ...],
    expires: str | None,
    require_dpop: bool,
    as_json: bool,
) -> None:
    """Create a personal client; its secret is printed once."""
    new = NewCredential(
        display_name=name,
        allow_source_cidr=cidrs,
        scoped_roles=scoped_roles,
        expires_in=parse_duration(expires) if expires is not None else None,
        require_dpop=require_dpop,
    )
    owner = ctx.cases.store.users.find(ref=user_ref)
    created = ctx.cases.credentials.create(
        caller=Caller.operator(), owner_id=owner.id, new=new, now=now()
    )
    record, secret = created.record, created.secret
    if as_json:
        print_json({"client": wire.client_json(record), "clientSecret": secret})
        return
    click.echo(f"id:            {record.id}")
    click.echo(f"client_id:     {record.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only once; store it now.")


@clients.command("list")
@click.option("--user", "user_ref", default=None, metavar="EMAIL|ID", help="Only this owner's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def clients_list(ctx: Context, user_ref: str | None, as_json: bool) -> None:
    """List personal clients (not deleted)."""
    user_id = ctx.cases.store.users.find(ref=user_ref).id if user_ref else None
    records = ctx.cases.store.credentials.all(user_id=user_id)
    if as_json:
        print_json([wire.client_json(c) for c in records])
        return
    if not records:
        click.echo("no personal clients")
        return
    emails = {u.id: u.email for u in ctx.cases.store.users.all()}
    for c in records:
        expires = wire.timestamp(c.expires_time) or "never"
        owner = emails.get(c.user_id, c.user_id)
        click.echo(f"{c.id}  {c.client_id}  user={owner}  expires={expires}  {c.display_name}")


def _print_client(record: ClientRecord) -> None:
    print_credential(record)
    if record.require_dpop:
        click.echo("tokens:            only with a DPoP proof")


@clients.command("get")
@click.argument("client_ref", metavar="ID|CLIENT_ID")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the API's get response, with its usage."
)
@command
def clients_get(ctx: Context, client_ref: str, as_json: bool) -> None:
    """Show one personal client."""
    record = ctx.cases.credentials.visible(caller=Caller.operator(), ref=client_ref)
    usage = ctx.cases.credentials.usage(caller=Caller.operator(), ref=record.id)
    if as_json:  # the API's get response, and beside it the API's usage response
        print_json({"client": wire.client_json(record), "usage": wire.usage_json(usage)})
        return
    _print_client(record)
    if not usage.addresses:
        click.echo("used from:         -")
    for n, use in enumerate(usage.addresses):
        label = "used from:" if n == 0 else ""
        click.echo(f"{label:<19}{use.address}  last {wire.timestamp(use.last_used_at)}")


@clients.command("update")
@click.argument("client_ref", metavar="ID|CLIENT_ID")
@click.option("--name", default=None, help="New display name.")
@click.option(
    "--scoped-role",
    "scoped_roles",
    multiple=True,
    help="Reduce to these roles, replacing the current ones (repeatable).",
)
@click.option("--all-roles", is_flag=True, help="Remove the reduction: all of the owner's roles.")
@click.option(
    "--allow-cidr",
    "cidrs",
    multiple=True,
    help="Allow only these source networks, replacing the current ones (repeatable).",
)
@click.option("--any-network", is_flag=True, help="Remove the network lock.")
@click.option(
    "--expires",
    default=None,
    metavar="DURATION",
    help="Expire this long from now (only earlier than the current expiry).",
)
@click.option(
    "--require-dpop/--allow-bearer",
    "require_dpop",
    default=None,
    help="Tokens only with a DPoP proof (RFC 9449), or bearer tokens too.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's get response.")
@command
def clients_update(
    ctx: Context,
    client_ref: str,
    name: str | None,
    scoped_roles: tuple[str, ...],
    all_roles: bool,
    cidrs: tuple[str, ...],
    any_network: bool,
    expires: str | None,
    require_dpop: bool | None,
    as_json: bool,
) -> None:
    """Change a personal client, under the same rules as the API."""
    if all_roles and scoped_roles:
        raise click.UsageError("--all-roles and --scoped-role exclude each other")
    if any_network and cidrs:
        raise click.UsageError("--any-network and --allow-cidr exclude each other")
    moment = now()
    patch = CredentialPatch(
        display_name=name if name is not None else UNSET,
        scoped_roles=() if all_roles else (scoped_roles or UNSET),
        allow_source_cidr=() if any_network else (cidrs or UNSET),
        expires_time=moment + parse_duration(expires) if expires is not None else UNSET,
        require_dpop=require_dpop if require_dpop is not None else UNSET,
    )
    if patch.is_empty:
        raise click.UsageError("name at least one change (see --help)")
    record = ctx.cases.credentials.update(
        caller=Caller.operator(), ref=client_ref, patch=patch, now=moment
    )
    if as_json:
        print_json({"client": wire.client_json(record)})
    else:
        _print_client(record)


@clients.command("rotate")
@click.argument("client_ref", metavar="ID|CLIENT_ID")
@click.option(
    "--grace",
    default="0s",
    metavar="DURATION",
    help="How long the old secret keeps working (default: it stops at once).",
)
@click.option("--expires", default=None, metavar="DURATION", help="A new lifetime, e.g. 30d.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's rotate response.")
@command
def clients_rotate(
    ctx: Context, client_ref: str, grace: str, expires: str | None, as_json: bool
) -> None:
    """A new secret for the same personal client; it is printed once."""
    grace_period = timedelta(0) if grace.strip() in ("0", "0s") else parse_duration(grace)
    rotated = ctx.cases.credentials.rotate(
        caller=Caller.operator(),
        ref=client_ref,
        grace=grace_period,
        expires_in=parse_duration(expires) if expires is not None else None,
        now=now(),
    )
    record, secret = rotated.record, rotated.secret
    if as_json:
        print_json({"client": wire.client_json(record), "clientSecret": secret})
        return
    click.echo(f"id:            {record.id}")
    click.echo(f"client_id:     {record.client_id}")
    click.echo(f"client_secret: {secret}")
    old = f"until {wire.timestamp(now() + grace_period)}" if grace_period else "no longer"
    click.echo(f"The new secret is shown only once; the old one works {old}.")


@clients.command("delete")
@click.argument("client_ref", metavar="ID|CLIENT_ID")
@command
def clients_delete(ctx: Context, client_ref: str) -> None:
    """Delete a personal client (it stops authenticating at once)."""
    record = ctx.cases.credentials.delete(caller=Caller.operator(), ref=client_ref, now=now())
    click.echo(f"deleted {record.id} ({record.client_id})")
