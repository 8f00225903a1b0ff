"""``authserver trusts …``: federation trusts (SPEC section 12), under the same rules as the API."""

from __future__ import annotations

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
from authserver.domain.credentials import Caller
from authserver.domain.durations import parse_duration
from authserver.domain.federation import NewTrust
from authserver.records import TrustRecord


@click.group()
def trusts() -> None:
    """Manage federation trusts: CI jobs exchange their ID token, no secret stored."""


@trusts.command("create")
@click.option("--user", "user_ref", required=True, metavar="EMAIL|ID", help="Owner.")
@click.option("--name", required=True, help="Display name.")
@click.option("--issuer", required=True, metavar="URL", help="The CI provider's issuer URL.")
@click.option(
    "--audience", default=None, metavar="AUD", help="The job token's aud (default: our issuer)."
)
@click.option(
    "--condition",
    required=True,
    metavar="CEL",
    help='CEL over claims, e.g. claims.repository == "acme/deploy".',
)
@credential_options
@click.option("--json", "as_json", is_flag=True, help='Print the API\'s {"trust"} response.')
@command
def trusts_create(
    ctx: Context,
    user_ref: str,
    name: str,
    issuer: str,
    audience: str | None,
    condition: str,
    scoped_roles: tuple[str, ...],
    cidrs: tuple[str, ...],
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a federation trust (it has no secret)."""
    new = NewTrust(
        issuer=issuer,
        condition=condition,
        audience=audience,
        display_name=name,
        allow_source_cidr=cidrs,
        scoped_roles=scoped_roles,
        expires_in=parse_duration(expires) if expires is not None else None,
    )
    owner = ctx.cases.store.users.find(ref=user_ref)
    record = ctx.cases.trusts.create(
        caller=Caller.operator(), owner_id=owner.id, new=new, now=now()
    )
    if as_json:
        print_json({"trust": wire.trust_json(record)})
    else:
        _print_trust(record)


@trusts.command("list")
@click.option("--user", "user_ref", default=None, metavar="EMAIL|ID", help="Only this owner's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def trusts_list(ctx: Context, user_ref: str | None, as_json: bool) -> None:
    """List federation trusts (not deleted), newest first."""
    listed = ctx.cases.trusts.listed(user_ref=user_ref, caller=Caller.operator())
    if as_json:
        print_json([wire.trust_json(t) for t, _ in listed])
        return
    if not listed:
        click.echo("no federation trusts")
        return
    for t, owner in listed:
        expires = wire.timestamp(t.expires_time) or "never"
        click.echo(
            f"{t.id}  {t.client_id}  user={owner.email}  issuer={t.issuer}  "
            f"expires={expires}  {t.display_name}"
        )


def _print_trust(record: TrustRecord) -> None:
    print_credential(
        record,
        ("issuer", record.issuer),
        ("audience", record.audience),
        ("condition", record.condition),
    )


@trusts.command("get")
@click.argument("trust_ref", metavar="ID|CLIENT_ID")
@click.option("--json", "as_json", is_flag=True, help="Print the API's get response.")
@command
def trusts_get(ctx: Context, trust_ref: str, as_json: bool) -> None:
    """Show one federation trust."""
    record = ctx.cases.trusts.visible(caller=Caller.operator(), ref=trust_ref)
    if as_json:
        print_json({"trust": wire.trust_json(record)})
    else:
        _print_trust(record)


@trusts.command("delete")
@click.argument("trust_ref", metavar="ID|CLIENT_ID")
@command
def trusts_delete(ctx: Context, trust_ref: str) -> None:
    """Delete a federation trust (it exchanges no token from now on)."""
    record = ctx.cases.trusts.delete(caller=Caller.operator(), ref=trust_ref, now=now())
    click.echo(f"deleted {record.id} ({record.client_id})")
