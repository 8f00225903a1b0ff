"""What every command shares: lazily opened storage and use cases, and errors as one line."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from authserver import wire
from authserver.config import Settings, load_settings
from authserver.errors import AuthserverError
from authserver.records import ClientRecord, TrustRecord
from authserver.store.database import Database, migrate
from authserver.usecases.container import UseCases

T = TypeVar("T")
#: How the command line names the domain's fields: by the option that sets them.
FIELD_NAMES = {
    "display_name": "--name",
    "allow_source_cidr": "--allow-cidr",
    "scoped_roles": "--scoped-role",
    "expires_time": "--expires",
    "require_dpop": "--require-dpop",
    "grace": "--grace",
    "roles": "--role",
    "password": "password",
    "ttl": "--ttl",
}


class Context:
    """Settings, the database and the use cases, opened lazily once per command."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._database: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def use_settings(self, settings: Settings) -> Settings:
        """Run with ``settings`` (``serve``'s issuer) instead of those loaded; before any use."""
        assert self._database is None
        self._settings = settings
        return settings

    @property
    def database(self) -> Database:
        if self._database is None:
            database = Database(
                self.settings.database_url, change_signal=self.settings.change_signal
            )
            migrate(database)
            self._database = database
            if database.is_new:
                # Run from the wrong folder, the default ./var/authserver.db would silently
                # be a new, empty database: say so.
                click.echo(f"note: created a new, empty database {database.sqlite_path}", err=True)
        return self._database

    @functools.cached_property
    def cases(self) -> UseCases:
        """Storage and every use case, wired as the server wires them; the command's audit
        events go to the database too (written when it ends)."""
        cases = UseCases.build(self.settings, self.database)
        cases.audit.start(background=False)
        return cases

    def close(self) -> None:
        if "cases" in self.__dict__:
            self.cases.audit.stop()
        if self._database is not None:
            self._database.dispose()


@contextmanager
def one_line_errors() -> Iterator[None]:
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


def now() -> datetime:
    return datetime.now(UTC)


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def command(func: Callable[..., T]) -> Callable[..., T]:
    """Wrap a subcommand: it gets the ``Context``, errors exit cleanly, storage is closed."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx = click.get_current_context().ensure_object(Context)
        try:
            with one_line_errors():
                return func(ctx, *args, **kwargs)
        finally:
            ctx.close()

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def credential_options(func: Callable[..., T]) -> Callable[..., T]:
    """The create options every credential has: ``--scoped-role``, ``--allow-cidr`` (both
    repeatable) and ``--expires``, in that order in ``--help``."""
    func = click.option("--expires", default=None, metavar="DURATION", help="Lifetime, e.g. 30d.")(
        func
    )
    func = click.option(
        "--allow-cidr", "cidrs", multiple=True, help="Allowed source network (repeatable)."
    )(func)
    return click.option(
        "--scoped-role", "scoped_roles", multiple=True, help="Reduce to this role (repeatable)."
    )(func)


def print_credential(record: ClientRecord | TrustRecord, *own: tuple[str, str | None]) -> None:
    """A credential as ``label: value`` lines: who and what it is, then its ``own`` fields
    (a trust's issuer …), then its limits and times."""
    lines: list[tuple[str, object]] = [
        ("id", record.id),
        ("client_id", record.client_id),
        ("user", record.user_id),
        ("name", record.display_name),
        *own,
        ("scoped roles", ", ".join(record.scoped_roles) or "- (all of the owner’s)"),
        ("allowed networks", ", ".join(record.allow_source_cidr) or "- (any)"),
        ("expires", wire.timestamp(record.expires_time) or "never"),
        ("last used", wire.timestamp(record.last_used_at) or "never"),
        ("created", wire.timestamp(record.created_at)),
    ]
    for label, value in lines:
        click.echo(f"{label + ':':<19}{value}")
