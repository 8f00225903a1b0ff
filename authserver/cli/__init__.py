"""The ``authserver`` command: serve, migrate, and manage users, credentials and keys.

One module per group of commands; ``base`` holds what they share (the lazily
opened use cases, errors as one line on stderr).
"""

from __future__ import annotations

import click

from authserver.cli import audit, backup, clients, keys, login, serve, trusts, users, webhooks
from authserver.config import unknown_variables


@click.group(context_settings={"help_option_names": ["-h", "--help"]})  # every subcommand too
@click.version_option(package_name="authserver", message="authserver %(version)s")
def main() -> None:
    """authserver: OAuth 2.0 tokens for personal client credentials."""
    for warning in unknown_variables():
        click.echo(f"warning: {warning}", err=True)


main.add_command(serve.serve)
main.add_command(serve.migrate_command)
main.add_command(users.users)
main.add_command(clients.clients)
main.add_command(trusts.trusts)
main.add_command(keys.keys_group)
main.add_command(keys.registration_tokens)
main.add_command(login.login_command)
main.add_command(login.token_command)
main.add_command(backup.backup_command)
main.add_command(webhooks.webhooks)
main.add_command(audit.audit_group)

__all__ = ["main"]
