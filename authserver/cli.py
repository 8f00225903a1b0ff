"""The ``authserver`` command: serve, migrate, and manage users, credentials and keys."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from authserver import wire
from authserver.client import login as login_flow
from authserver.config import (
    MAX_WORKERS,
    Settings,
    config_file,
    load_settings,
    unknown_variables,
    worker_count,
)
from authserver.domain.credentials import UNSET, Caller, CredentialPatch, NewCredential
from authserver.domain.durations import parse_duration
from authserver.errors import AuthserverError
from authserver.records import ClientRecord
from authserver.runtime import serving
from authserver.security import keys
from authserver.security.argon2 import PasswordHasher, SecretHasher
from authserver.store import Store
from authserver.store.database import Database, migrate
from authserver.usecases.credentials import CredentialService
from authserver.usecases.people import PeopleService
from authserver.usecases.users import UserService

T = TypeVar("T")
#: How the command line names the domain's fields: by the option that sets them.
FIELD_NAMES = {
    "display_name": "--name",
    "allow_source_cidr": "--allow-cidr",
    "scoped_roles": "--scoped-role",
    "expires_time": "--expires",
    "roles": "--role",
    "password": "password",
    "ttl": "--ttl",
}


class Context:
    """Settings and storage, opened lazily once per command."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._database: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def database(self) -> Database:
        if self._database is None:
            database = Database(self.settings.database_url)
            migrate(database)
            self._database = database
            if database.is_new:
                # Run from the wrong folder, the default ./var/authserver.db would silently
                # be a new, empty database: say so.
                click.echo(f"note: created a new, empty database {database.sqlite_path}", err=True)
        return self._database

    @functools.cached_property
    def store(self) -> Store:
        return Store(self.database)

    @functools.cached_property
    def hasher(self) -> SecretHasher:
        return SecretHasher(self.settings)

    @functools.cached_property
    def credentials(self) -> CredentialService:
        return CredentialService(self.store, self.hasher, self.settings)

    @functools.cached_property
    def people(self) -> PeopleService:
        return PeopleService(self.store, PasswordHasher(self.settings), self.settings)

    @functools.cached_property
    def users(self) -> UserService:
        return UserService(self.store)

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()


@contextmanager
def _errors() -> Iterator[None]:
    """Domain and storage errors become one line on stderr and exit status 1."""
    try:
        yield
    except AuthserverError as exc:
        click.echo(f"error: {exc.describe(FIELD_NAMES)}", err=True)
        sys.exit(1)
    except (OSError, SQLAlchemyError) as exc:
        # Not translated where it happened: still one line, never a traceback.
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        click.echo(f"error: {lines[0]}", err=True)
        sys.exit(1)


def _now() -> datetime:
    return datetime.now(UTC)


def _print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def _command(func: Callable[..., T]) -> Callable[..., T]:
    """Wrap a subcommand so its AuthserverErrors exit cleanly and storage is closed."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx = click.get_current_context().ensure_object(Context)
        try:
            with _errors():
                return func(ctx, *args, **kwargs)
        finally:
            ctx.close()

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


class Workers(click.ParamType[int | str]):
    """``--workers``: 1 to 64, or "auto" (one per CPU)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f'{value!r} is not a number or "auto"', param, ctx)
        if not 1 <= number <= MAX_WORKERS:
            self.fail(f"{number} is not in the range 1 to {MAX_WORKERS}", param, ctx)
        return number


WORKERS = Workers()


@click.group()
@click.version_option(package_name="authserver", message="authserver %(version)s")
def main() -> None:
    """authserver: OAuth 2.0 tokens for personal client credentials."""
    for warning in unknown_variables():
        click.echo(f"warning: {warning}", err=True)


@main.command()
@click.option("--host", default=None, help="Bind address (default: config host, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default: config port, 8000)."
)
@click.option(
    "--workers",
    type=WORKERS,
    default=None,
    metavar="N|auto",
    help='Worker processes, 1 to 64 or "auto" for one per CPU (default: config workers, auto).',
)
@click.option(
    "--tls-cert",
    metavar="FILE",
    default=None,
    help="Serve https with this PEM certificate (chain); needs --tls-key.",
)
@click.option("--tls-key", metavar="FILE", default=None, help="The certificate's PEM private key.")
@_command
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    workers: int | str | None,
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Migrate the database and run the server."""
    import uvicorn

    from authserver.runtime.ops import configure_logging

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = ctx.settings
    host = host or settings.host
    port = port if port is not None else settings.port
    processes = worker_count(workers if workers is not None else settings.workers)
    if tls_cert is not None and tls_key is not None:
        serving.check_tls(tls_cert, tls_key)
    # uvicorn binds only after the application has started, and then logs a traceback.
    serving.check_listen(host, port)
    configure_logging(settings.log_level)
    database = ctx.database
    keys.ensure_active_key(ctx.store.keys, settings, now=_now())
    active = [
        k for k in ctx.store.keys.all() if k.retired_at is None and k.alg == settings.signing_alg
    ]
    ctx.close()
    unroutable = serving.conductorone_routing(settings.issuer)
    if unroutable:
        click.echo(f"warning: {unroutable}", err=True)
    click.echo(
        serving.startup_line(
            url=f"{'https' if tls_cert else 'http'}://{serving.host_port(host, port)}",
            workers=processes,
            config=config_file(),
            database=database,
            issuer=settings.issuer,
            key=active[-1],
        ),
        err=True,
    )
    uvicorn.run(
        "authserver.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        # The source address decides CIDR locks: only our own trusted_proxies logic may
        # read X-Forwarded-For, never uvicorn's (which trusts 127.0.0.1 by default).
        proxy_headers=False,
        server_header=False,
    )


@main.command("migrate")
@_command
def migrate_command(ctx: Context) -> None:
    """Create or upgrade the database schema."""
    ctx.database  # noqa: B018 - opening the database migrates it
    click.echo("database is up to date")


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@click.option("--role", "roles", multiple=True, help="Role (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the user as JSON.")
@_command
def users_create(
    ctx: Context, email: str, name: str | None, roles: tuple[str, ...], as_json: bool
) -> None:
    """Create a user."""
    user = ctx.users.create(email=email, display_name=name, role_names=roles, now=_now())
    if as_json:
        _print_json(wire.user_json(user))
    else:
        click.echo(f"created user {user.id} {user.email} roles={','.join(user.roles) or '-'}")


@users.command("update")
@click.argument("ref", metavar="EMAIL|ID")
@click.option("--role", "roles", multiple=True, help="Replace the roles with these (repeatable).")
@click.option("--no-roles", is_flag=True, help="Remove every role (instead of --role).")
@click.option("--disable/--enable", "disabled", default=None, help="Disable or enable the user.")
@click.option("--json", "as_json", is_flag=True, help="Print the user as JSON.")
@_command
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
    user = ctx.users.update(ref=ref, role_names=new_roles, disabled=disabled, now=_now())
    if as_json:
        _print_json(wire.user_json(user))
    else:
        state = "disabled" if user.disabled else "enabled"
        click.echo(
            f"updated user {user.id} {user.email} roles={','.join(user.roles) or '-'} {state}"
        )


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@_command
def users_list(ctx: Context, as_json: bool) -> None:
    """List users."""
    records = ctx.store.users.all()
    if as_json:
        _print_json([wire.user_json(u) for u in records])
        return
    for u in records:
        state = " (disabled)" if u.disabled else ""
        click.echo(f"{u.id}  {u.email}  roles={','.join(u.roles) or '-'}{state}")


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
@_command
def users_set_password(ctx: Context, ref: str) -> None:
    """Set a user's password, read from stdin; the user's browser sessions end."""
    password = _read_password()
    user = ctx.people.set_password(user_ref=ref, password=password, now=_now())
    click.echo(f"password set for {user.email}; their browser sessions were ended")
    if not ctx.settings.login_password:
        click.echo(
            "note: sign-in with a password is turned off ([login] password = false); "
            "the password works once it is turned on again",
            err=True,
        )


@users.command("invite")
@click.argument("ref", metavar="EMAIL|ID")
@click.option("--ttl", default="7d", metavar="DURATION", help="Lifetime of the link (default 7d).")
@_command
def users_invite(ctx: Context, ref: str, ttl: str) -> None:
    """Print a one-time link on which the user chooses a password."""
    link, expires_at = ctx.people.invite(user_ref=ref, ttl=parse_duration(ttl), now=_now())
    click.echo(link)
    click.echo(f"single use; expires {wire.timestamp(expires_at)}", err=True)


@users.command("sign-out")
@click.argument("ref", metavar="EMAIL|ID")
@_command
def users_sign_out(ctx: Context, ref: str) -> None:
    """End every browser session of a user, on every instance."""
    user, ended = ctx.people.sign_out_everywhere(user_ref=ref)
    click.echo(f"ended {ended} session{'s' * (ended != 1)} of {user.email}")


@main.group()
def clients() -> None:
    """Manage personal clients."""


@clients.command("create")
@click.option("--user", "user_ref", required=True, metavar="EMAIL|ID", help="Owner.")
@click.option("--name", default=None, help="Display name.")
@click.option(
    "--scoped-role", "scoped_roles", multiple=True, help="Reduce to this role (repeatable)."
)
@click.option("--allow-cidr", "cidrs", multiple=True, help="Allowed source network (repeatable).")
@click.option("--expires", default=None, metavar="DURATION", help="Lifetime, e.g. 30d.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's create response.")
@_command
def clients_create(
    ctx: Context,
    user_ref: str,
    name: str | None,
    scoped_roles: tuple[str, ...],
    cidrs: tuple[str, ...],
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a personal client; its secret is printed once."""
    new = NewCredential(
        display_name=name,
        allow_source_cidr=cidrs,
        scoped_roles=scoped_roles,
        expires_in=parse_duration(expires) if expires is not None else None,
    )
    owner = ctx.store.users.find(ref=user_ref)
    created = ctx.credentials.create(
        caller=Caller.operator(), owner_id=owner.id, new=new, now=_now()
    )
    record, secret = created.record, created.secret
    if as_json:
        _print_json({"client": wire.client_json(record), "clientSecret": secret})
        return
    click.echo(f"id:            {record.id}")
    click.echo(f"client_id:     {record.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only once; store it now.")


@clients.command("list")
@click.option("--user", "user_ref", default=None, metavar="EMAIL|ID", help="Only this owner's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@_command
def clients_list(ctx: Context, user_ref: str | None, as_json: bool) -> None:
    """List personal clients (not deleted)."""
    user_id = ctx.store.users.find(ref=user_ref).id if user_ref else None
    records = ctx.store.credentials.all(user_id=user_id)
    if as_json:
        _print_json([wire.client_json(c) for c in records])
        return
    for c in records:
        expires = wire.timestamp(c.expires_time) or "never"
        click.echo(f"{c.id}  {c.client_id}  user={c.user_id}  expires={expires}  {c.display_name}")


def _print_client(record: ClientRecord) -> None:
    click.echo(f"id:                {record.id}")
    click.echo(f"client_id:         {record.client_id}")
    click.echo(f"user:              {record.user_id}")
    click.echo(f"name:              {record.display_name}")
    click.echo(f"scoped roles:      {', '.join(record.scoped_roles) or '- (all of the owner’s)'}")
    click.echo(f"allowed networks:  {', '.join(record.allow_source_cidr) or '- (any)'}")
    click.echo(f"expires:           {wire.timestamp(record.expires_time) or 'never'}")
    click.echo(f"last used:         {wire.timestamp(record.last_used_at) or 'never'}")
    click.echo(f"created:           {wire.timestamp(record.created_at)}")


@clients.command("get")
@click.argument("client_ref", metavar="ID|CLIENT_ID")
@click.option("--json", "as_json", is_flag=True, help="Print the API's get response.")
@_command
def clients_get(ctx: Context, client_ref: str, as_json: bool) -> None:
    """Show one personal client."""
    record = ctx.credentials.visible(caller=Caller.operator(), ref=client_ref)
    if as_json:
        _print_json({"client": wire.client_json(record)})
    else:
        _print_client(record)


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
@click.option("--json", "as_json", is_flag=True, help="Print the API's get response.")
@_command
def clients_update(
    ctx: Context,
    client_ref: str,
    name: str | None,
    scoped_roles: tuple[str, ...],
    all_roles: bool,
    cidrs: tuple[str, ...],
    any_network: bool,
    expires: str | None,
    as_json: bool,
) -> None:
    """Change a personal client, under the same rules as the API."""
    if all_roles and scoped_roles:
        raise click.UsageError("--all-roles and --scoped-role exclude each other")
    if any_network and cidrs:
        raise click.UsageError("--any-network and --allow-cidr exclude each other")
    now = _now()
    patch = CredentialPatch(
        display_name=name if name is not None else UNSET,
        scoped_roles=() if all_roles else (scoped_roles or UNSET),
        allow_source_cidr=() if any_network else (cidrs or UNSET),
        expires_time=now + parse_duration(expires) if expires is not None else UNSET,
    )
    if patch.is_empty:
        raise click.UsageError("name at least one change (see --help)")
    record = ctx.credentials.update(caller=Caller.operator(), ref=client_ref, patch=patch, now=now)
    if as_json:
        _print_json({"client": wire.client_json(record)})
    else:
        _print_client(record)


@clients.command("delete")
@click.argument("client_ref", metavar="ID|CLIENT_ID")
@_command
def clients_delete(ctx: Context, client_ref: str) -> None:
    """Delete a personal client (it stops authenticating at once)."""
    record = ctx.credentials.delete(caller=Caller.operator(), ref=client_ref, now=_now())
    click.echo(f"deleted {record.id} ({record.client_id})")


@main.group("keys")
def keys_group() -> None:
    """Manage token signing keys."""


@keys_group.command("rotate")
@_command
def keys_rotate(ctx: Context) -> None:
    """Add a new active signing key; the old one stays published until its tokens expire."""
    record = keys.rotate(ctx.store.keys, ctx.settings, now=_now())
    click.echo(f"active key {record.kid} ({record.alg})")


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@_command
def keys_list(ctx: Context, as_json: bool) -> None:
    """List signing keys."""
    records = ctx.store.keys.all()
    if as_json:
        _print_json([wire.key_json(k) for k in records])
        return
    for k in records:
        state = (
            "active"
            if k.retired_at is None
            else f"retired, published until {wire.timestamp(k.publish_until)}"
        )
        click.echo(f"{k.kid}  {k.alg}  {state}")


@main.group("registration-tokens")
def registration_tokens() -> None:
    """Initial access tokens for dynamic client registration (RFC 7591)."""


@registration_tokens.command("create")
@click.option("--user", "user_ref", required=True, metavar="EMAIL|ID", help="Whose clients.")
@click.option("--ttl", default="1h", metavar="DURATION", help="Lifetime (default 1h).")
@click.option("--json", "as_json", is_flag=True, help='Print {"token","expiresTime"}.')
@_command
def registration_tokens_create(ctx: Context, user_ref: str, ttl: str, as_json: bool) -> None:
    """Mint a one-time token that registers one client for a user."""
    token, expires_at = ctx.credentials.mint_registration_token(
        user_ref=user_ref, ttl=parse_duration(ttl), now=_now()
    )
    if as_json:
        _print_json({"token": token, "expiresTime": wire.timestamp(expires_at)})
        return
    click.echo(f"token:   {token}")
    click.echo(f"expires: {wire.timestamp(expires_at)} (single use)")


@main.command("login")
@click.option(
    "--issuer", required=True, metavar="URL", help="The server, e.g. https://auth.example.com."
)
@click.option(
    "--client-id",
    default=login_flow.DEFAULT_CLIENT_ID,
    show_default=True,
    help="The device client configured on the server (device_clients).",
)
@click.option("--name", default=None, help="Display name of the new credential.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to save the credential (default: ~/.config/authserver/credential.json).",
)
@click.option("--force", is_flag=True, help="Replace an existing output file.")
def login_command(
    issuer: str, client_id: str, name: str | None, output: Path | None, force: bool
) -> None:
    """Get a personal client by approving this device in the browser (RFC 8628)."""
    try:
        saved = login_flow.login(
            issuer,
            client_id=client_id,
            name=name,
            output=output,
            force=force,
            say=lambda line: click.echo(line, err=True),
        )
    except login_flow.LoginError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"Saved credential {saved.client_id} to {saved.path} (readable only by you).")


if __name__ == "__main__":  # pragma: no cover
    main()
