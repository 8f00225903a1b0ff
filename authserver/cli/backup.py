"""``authserver backup FILE``: a consistent copy of the SQLite database, while it serves."""

from __future__ import annotations

from pathlib import Path

import click

from authserver.cli.base import Context, command
from authserver.store.database import backup_sqlite


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@command
def backup_command(ctx: Context, file: Path) -> None:
    """Copy the SQLite database into FILE (a new file), safely while servers run.

    For PostgreSQL, use pg_dump. To restore: stop every server, put FILE in place
    of the database file (removing its -wal and -shm files), start again.
    """
    source = backup_sqlite(ctx.settings.database_url, file)
    click.echo(f"backed up {source} to {file.resolve()}")
