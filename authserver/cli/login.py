"""``authserver login``: a personal client for this machine, through the device flow;
``authserver token``: an access token from the credential it saved."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from authserver.client import credential_file
from authserver.client import login as login_flow
from authserver.client.tokens import TokenError
from authserver.domain.durations import parse_duration
from authserver.errors import InvalidArgument


@click.command("login")
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
    "--expires",
    default="30d",
    show_default=True,
    metavar="DURATION|never",
    help="Lifetime of the new credential, e.g. 90d, or never.",
)
@click.option(
    "--scoped-role",
    "scoped_roles",
    multiple=True,
    metavar="ROLE",
    help="Reduce the credential to this role (repeatable; default: all of yours).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to save the credential (default: ~/.config/authserver/credential.json).",
)
@click.option("--force", is_flag=True, help="Replace an existing output file.")
def login_command(
    issuer: str,
    client_id: str,
    name: str | None,
    expires: str,
    scoped_roles: tuple[str, ...],
    output: Path | None,
    force: bool,
) -> None:
    """Get a personal client by approving this device in the browser (RFC 8628)."""
    try:
        expires_in = None if expires.strip().lower() == "never" else parse_duration(expires)
    except InvalidArgument as exc:
        click.echo(f"error: --expires: {exc}", err=True)
        sys.exit(1)
    try:
        saved = login_flow.login(
            issuer,
            client_id=client_id,
            name=name,
            expires_in=expires_in,
            scoped_roles=scoped_roles,
            output=output,
            force=force,
            say=lambda line: click.echo(line, err=True),
        )
    except login_flow.LoginError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"Saved credential {saved.client_id} to {saved.path} (readable only by you).")


@click.command("token")
@click.option(
    "--credential",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file `authserver login` saved (default: ~/.config/authserver/credential.json).",
)
@click.option(
    "--scope", default=None, metavar="ROLES", help="Space-separated roles to reduce the token to."
)
@click.option(
    "--dpop",
    "dpop_url",
    default=None,
    metavar="URL",
    help="Bind the token to a key of this command (DPoP, RFC 9449) and print, on stderr, "
    "the curl command that calls URL with it once.",
)
@click.option("--method", default="GET", show_default=True, help="The method of --dpop's call.")
def token_command(path: Path | None, scope: str | None, dpop_url: str | None, method: str) -> None:
    """Print an access token from the credential `authserver login` saved."""
    try:
        saved = credential_file.read_credential(path)
        tokens = credential_file.token_cache(saved, scope=scope, dpop=dpop_url is not None)
        token = credential_file.fetch(tokens)
    except (credential_file.CredentialFileError, TokenError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(token)
    if dpop_url is not None:
        headers = tokens.authorization(token, method.upper(), dpop_url)
        quoted = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())
        click.echo(
            "The token is bound to a key that only this command held; within 60 s, call:\n"
            f"curl -X {shlex.quote(method.upper())} {quoted} {shlex.quote(dpop_url)}",
            err=True,
        )
