"""``authserver users …``: people, their roles, passwords, invitations and sessions."""

from __future__ import annotations

import sys

import click

from authserver import wire
from authserver.cli.base import Context, command, now, print_json
from authserver.domain.durations import parse_duration
from authserver.security.logsafe import escaped
from authserver.sso.providers import OidcProvider


@click.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@click.option("--role", "roles", multiple=True, help="Role (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the user as JSON.")
@command
def users_create(
    ctx: Context, email: str, name: str | None, roles: tuple[str, ...], as_json: bool
) -> None:
    """Create a user."""
    user = ctx.cases.users.create(email=email, display_name=name, role_names=roles, now=now())
    if as_json:
        print_json(wire.user_json(user))
    else:
        roles_text = ",".join(user.roles) or "-"
        click.echo(f"created user {user.id} {escaped(user.email)} roles={roles_text}")


@users.command("update")
@click.argument("ref", metavar="EMAIL|ID")
@click.option("--role", "roles", multiple=True, help="Replace the roles with these (repeatable).")
@click.option("--no-roles", is_flag=True, help="Remove every role (instead of --role).")
@click.option("--disable/--enable", "disabled", default=None, help="Disable or enable the user.")
@click.option("--json", "as_json", is_flag=True, help="Print the user as JSON.")
@command
def users_update(
    ctx: Context,
    ref: str,
    roles: tuple[str, ...],
    no_roles: bool,
    disabled: bool | None,
    as_json: bool,
) -> None:
    """Replace a user's roles and/or disable or enable the user."""
    if no_roles and roles:
        raise click.UsageError("--no-roles and --role exclude each other")
    new_roles = () if no_roles else (roles or None)
    user = ctx.cases.users.update(ref=ref, role_names=new_roles, disabled=disabled, now=now())
    if as_json:
        print_json(wire.user_json(user))
    else:
        state = "disabled" if user.disabled else "enabled"
        roles_text = ",".join(user.roles) or "-"
        click.echo(f"updated user {user.id} {escaped(user.email)} roles={roles_text} {state}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@command
def users_list(ctx: Context, as_json: bool) -> None:
    """List users."""
    records = ctx.cases.store.users.all()
    if as_json:
        print_json([wire.user_json(u) for u in records])
        return
    for u in records:
        state = " (disabled)" if u.disabled else ""
        click.echo(f"{u.id}  {escaped(u.email)}  roles={','.join(u.roles) or '-'}{state}")


def _read_password() -> str:
    """From a terminal: asked twice, not echoed. Otherwise: the first line of stdin.

    Never an argument: arguments end up in shell history and in ``ps`` output.
    """
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    if not line:
        raise click.UsageError("give the password on standard input")
    return line.removesuffix("\n").removesuffix("\r")


@users.command("set-password")
@click.argument("ref", metavar="EMAIL|ID")
@command
def users_set_password(ctx: Context, ref: str) -> None:
    """Set a user's password, read from stdin; the user's browser sessions end."""
    password = _read_password()
    user = ctx.cases.people.set_password(user_ref=ref, password=password, now=now())
    click.echo(f"password set for {escaped(user.email)}; their browser sessions were ended")
    if not ctx.settings.login_password:
        click.echo(
            "note: sign-in with a password is turned off ([login] password = false); "
            "the password works once it is turned on again",
            err=True,
        )


@users.command("invite")
@click.argument("ref", metavar="EMAIL|ID", required=False)
@click.option("--ttl", default="7d", metavar="DURATION", help="Lifetime of the link (default 7d).")
@click.option("--revoke", is_flag=True, help="Revoke every open invitation of the user instead.")
@click.option("--list", "as_list", is_flag=True, help="List open invitations (of EMAIL|ID).")
@command
def users_invite(ctx: Context, ref: str | None, ttl: str, revoke: bool, as_list: bool) -> None:
    """Print a one-time link on which the user chooses a password."""
    if revoke and as_list:
        raise click.UsageError("--revoke and --list exclude each other")
    if as_list:
        _list_invitations(ctx, ref)
        return
    if ref is None:
        raise click.UsageError("name the user (EMAIL|ID)")
    if revoke:
        user, spent = ctx.cases.people.revoke_invites(user_ref=ref, now=now())
        click.echo(f"revoked {spent} invitation{'s' * (spent != 1)} of {escaped(user.email)}")
        return
    link, expires_at = ctx.cases.people.invite(user_ref=ref, ttl=parse_duration(ttl), now=now())
    click.echo(link)
    click.echo(f"single use; expires {wire.timestamp(expires_at)}", err=True)


@users.command("invitations")
@click.argument("ref", metavar="EMAIL|ID", required=False)
@command
def users_invitations(ctx: Context, ref: str | None) -> None:
    """List open invitations (of one user, or of everyone)."""
    _list_invitations(ctx, ref)


def _list_invitations(ctx: Context, ref: str | None) -> None:
    for invite, user in ctx.cases.people.pending_invites(user_ref=ref, now=now()):
        click.echo(
            f"{invite.id}  {escaped(user.email)}  created {wire.timestamp(invite.created_at)}"
            f"  expires {wire.timestamp(invite.expires_at)}"
        )


@users.command("delete")
@click.argument("ref", metavar="EMAIL|ID")
@command
def users_delete(ctx: Context, ref: str) -> None:
    """Delete a user with their credentials, sessions, password and open invitations."""
    deleted = ctx.cases.users.delete(ref=ref, now=now())
    count, ended = len(deleted.client_ids), deleted.sessions
    click.echo(
        f"deleted user {deleted.user.id} {escaped(deleted.user.email)}: "
        f"{count} credential{'s' * (count != 1)} stopped authenticating, "
        f"{ended} session{'s' * (ended != 1)} ended"
    )


@users.command("sign-out")
@click.argument("ref", metavar="EMAIL|ID")
@command
def users_sign_out(ctx: Context, ref: str) -> None:
    """End every browser session of a user, on every instance."""
    user, ended = ctx.cases.people.sign_out_everywhere(user_ref=ref, now=now())
    click.echo(f"ended {ended} session{'s' * (ended != 1)} of {escaped(user.email)}")


def _provider(ctx: Context, name: str) -> OidcProvider:
    for provider in ctx.settings.login_oidc:
        if provider.name == name:
            return provider
    configured = ", ".join(p.name for p in ctx.settings.login_oidc) or "none"
    raise click.UsageError(f"no provider {name!r} in [[login.oidc]] (configured: {configured})")


@users.command("link-provider")
@click.argument("ref", metavar="EMAIL|ID")
@click.argument("provider_name", metavar="PROVIDER")
@click.argument("subject", metavar="SUB")
@command
def users_link_provider(ctx: Context, ref: str, provider_name: str, subject: str) -> None:
    """Let the account SUB at PROVIDER sign in as the user."""
    provider = _provider(ctx, provider_name)
    user = ctx.cases.provider_sign_in.link(
        user_ref=ref, provider=provider, subject=subject, now=now()
    )
    click.echo(f"linked {escaped(subject)} at {provider.name} to {escaped(user.email)}")


@users.command("unlink-provider")
@click.argument("ref", metavar="EMAIL|ID")
@click.argument("provider_name", metavar="PROVIDER")
@click.argument("subject", metavar="SUB")
@command
def users_unlink_provider(ctx: Context, ref: str, provider_name: str, subject: str) -> None:
    """Stop the account SUB at PROVIDER from signing in as the user."""
    provider = _provider(ctx, provider_name)
    user = ctx.cases.provider_sign_in.unlink(user_ref=ref, provider=provider, subject=subject)
    click.echo(f"unlinked {escaped(subject)} at {provider.name} from {escaped(user.email)}")
