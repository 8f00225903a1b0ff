"""``authserver keys …`` (token signing keys) and ``authserver registration-tokens …``."""

from __future__ import annotations

import click

from authserver import wire
from authserver.cli.base import Context, command, now, print_json
from authserver.domain.durations import parse_duration
from authserver.security.logsafe import escaped


@click.group("keys")
def keys_group() -> None:
    """Manage token signing keys."""


@keys_group.command("rotate")
@command
def keys_rotate(ctx: Context) -> None:
    """Add a new active signing key; the old one stays published until its tokens expire."""
    record = ctx.cases.keys.rotate(now=now())
    click.echo(f"active key {record.kid} ({record.alg})")


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def keys_list(ctx: Context, as_json: bool) -> None:
    """List signing keys."""
    records = ctx.cases.store.keys.all()
    if as_json:
        print_json([wire.key_json(k) for k in records])
        return
    for k in records:
        state = (
            "active"
            if k.retired_at is None
            else f"retired, published until {wire.timestamp(k.publish_until)}"
        )
        click.echo(f"{k.kid}  {k.alg}  {state}")


@click.group("registration-tokens")
def registration_tokens() -> None:
    """Initial access tokens for dynamic client registration (RFC 7591)."""


@registration_tokens.command("create")
@click.option("--user", "user_ref", required=True, metavar="EMAIL|ID", help="Whose clients.")
@click.option("--ttl", default="1h", metavar="DURATION", help="Lifetime (default 1h).")
@click.option("--json", "as_json", is_flag=True, help='Print {"token","expiresTime"}.')
@command
def registration_tokens_create(ctx: Context, user_ref: str, ttl: str, as_json: bool) -> None:
    """Mint a one-time token that registers one client for a user."""
    token, expires_at = ctx.cases.credentials.mint_registration_token(
        user_ref=user_ref, ttl=parse_duration(ttl), now=now()
    )
    if as_json:
        print_json({"token": token, "expiresTime": wire.timestamp(expires_at)})
        return
    click.echo(f"token:   {token}")
    click.echo(f"expires: {wire.timestamp(expires_at)} (single use)")


@registration_tokens.command("list")
@click.option("--user", "user_ref", default=None, metavar="EMAIL|ID", help="Of this user only.")
@command
def registration_tokens_list(ctx: Context, user_ref: str | None) -> None:
    """List open (unspent, unexpired) registration tokens; the id names one to revoke."""
    for token, user in ctx.cases.credentials.pending_registration_tokens(
        user_ref=user_ref, now=now()
    ):
        click.echo(
            f"{token.id}  {escaped(user.email)}  created {wire.timestamp(token.created_at)}"
            f"  expires {wire.timestamp(token.expires_at)}"
        )


@registration_tokens.command("revoke")
@click.argument("ref", metavar="ID|TOKEN")
@command
def registration_tokens_revoke(ctx: Context, ref: str) -> None:
    """Revoke an open registration token, by the id ``list`` shows or the token itself."""
    revoked = ctx.cases.credentials.revoke_registration_token(ref=ref, now=now())
    click.echo(f"revoked registration token {revoked.id}")
