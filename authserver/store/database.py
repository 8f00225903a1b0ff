"""Engine, sessions and migrations for SQLite files and PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    DatabaseError,
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from authserver.errors import ConfigError, InvalidArgument, Unavailable
from authserver.store.signal import ChangeSignal, open_signal

log = logging.getLogger("authserver.store")
F = TypeVar("F", bound=Callable[..., Any])
MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x61757468  # PostgreSQL advisory lock key held while migrating
CHANGED = "authserver.changed"  # session.info key: this transaction changed the feed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while the last-used flusher writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _describe(exc: Exception) -> str:
    """A one-line reason for an outage that an operator can act on (never the SQL)."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "full" in text:
        return "database unavailable: the database or disk is full"
    if "readonly" in text or "read-only" in text:
        return "database unavailable: the database is read-only"
    if "locked" in text:
        return "database unavailable: the database is locked"
    return "database unavailable"


def _displayed(parsed: URL) -> str:
    """The URL as it may be printed: the password hidden, a SQLite path made absolute."""
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return parsed.render_as_string(hide_password=True)


def writes(method: F) -> F:
    """Mark a store method that changes rows: only use cases may call it (the architecture
    test finds the callers by this mark)."""
    method.__dict__["writes_rows"] = True
    return method


class Database:
    """One engine and its session factory; repositories borrow short sessions from it."""

    def __init__(self, url: str, *, change_signal: bool = True) -> None:
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ConfigError(f"database_url is not a database URL: {url!r}") from exc
        self.url = url
        self._parsed = parsed
        self._use_signal = change_signal
        self._signal: ChangeSignal | None = None
        self._signal_opened = False
        self.display_url = _displayed(parsed)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # A SQLite file that does not exist yet (or is empty): opening it makes a new database.
        self.sqlite_path: Path | None = None
        self.is_new = False
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            database = parsed.database or ""
            if database in ("", ":memory:"):
                raise ConfigError("database_url must name a SQLite file, not memory")
            self.sqlite_path = Path(database).resolve()
            self.is_new = not self.sqlite_path.exists() or self.sqlite_path.stat().st_size == 0
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the folder {self.sqlite_path.parent} for the SQLite "
                    f"database: {exc.strerror or exc}"
                ) from exc
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 5}
            # Keep a connection per worker thread (anyio runs up to 40): opening a SQLite
            # connection (and its pragmas) per request would cost more than the query.
            kwargs.update(pool_size=40, max_overflow=10)
        elif parsed.get_backend_name() == "postgresql":
            if parsed.drivername == "postgresql":
                # render_as_string, not str(): str() masks the password as "***", and the
                # engine would then connect with that instead of the configured password.
                url = parsed.set(drivername="postgresql+psycopg").render_as_string(
                    hide_password=False
                )
            kwargs.update(
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=10,
                pool_timeout=5,
                connect_args={"connect_timeout": 5},
            )
        else:
            raise ConfigError("database_url must be sqlite:///… or postgresql://…")
        try:
            # hide_parameters: an error message must never carry a hash or token into a log.
            self.engine: Engine = create_engine(url, hide_parameters=True, **kwargs)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"database_url needs the {exc.name} driver: pip install 'authserver[postgresql]'"
            ) from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        try:
            with self._sessions.begin() as session:
                yield session
            if session.info.get(CHANGED) and self.signal is not None:
                self.signal.bump()  # committed: the other processes here may sync at once
        except (OperationalError, InterfaceError, SQLAlchemyTimeoutError) as exc:
            log.warning("%s (%s)", _describe(exc), type(exc.__cause__ or exc).__name__)
            raise Unavailable(_describe(exc)) from exc
        except DataError as exc:
            # Last line of defence: values the database cannot store (e.g. NUL in text).
            raise InvalidArgument("a value in the request cannot be stored") from exc
        except IntegrityError:
            raise  # a unique value taken: the store turns it into a domain answer
        except (DatabaseError, InternalError) as exc:
            # Corruption, a read-only standby after failover: unavailable, and said so.
            log.warning("%s (%s)", _describe(exc), type(exc.__cause__ or exc).__name__)
            raise Unavailable(_describe(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable("database unavailable") from exc
            raise

    @property
    def signal(self) -> ChangeSignal | None:
        """This machine's change signal for the database (``store/signal.py``), opened on
        first use; None when turned off (``change_signal = false``) or not usable here."""
        if not self._signal_opened:
            self._signal_opened = True
            if self._use_signal:
                self._signal = open_signal(self._parsed)
        return self._signal

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
        if self._signal is not None:
            self._signal.close()
            self._signal = None


def migrate(database: Database) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = database.engine
    try:
        with database.engine.begin() as connection:
            if not database.is_sqlite:
                # Two instances migrating at once: the second waits, then finds nothing to do.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except (OperationalError, InterfaceError, SQLAlchemyTimeoutError) as exc:
        # The first contact with the database at every start: say which one, and why not.
        raise Unavailable(f"cannot use the database {database.display_url}: {_cause(exc)}") from exc


def _cause(exc: Exception) -> str:
    """The driver's own first line (e.g. "Connection refused"), without SQLAlchemy's footer."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def backup_sqlite(url: str, destination: Path) -> Path:
    """Copy the SQLite database of ``url`` into ``destination`` (a new file, mode 0600) with
    SQLite's online backup API, safe while servers use it; returns the database's path.

    PostgreSQL is refused with a pointer to ``pg_dump``, which does this job there.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"database_url is not a database URL: {url!r}") from exc
    if parsed.get_backend_name() != "sqlite":
        raise ConfigError(
            f"backup copies SQLite databases; for {_displayed(parsed)} use pg_dump "
            "(pg_dump --format=custom --file=FILE DBNAME, restored with pg_restore)"
        )
    source = Path(parsed.database or "").resolve()
    if not parsed.database or not source.is_file() or source.stat().st_size == 0:
        raise ConfigError(f"there is no SQLite database at {source} to back up")
    if destination.exists():
        raise ConfigError(f"{destination} already exists: name a new file")
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        # The source is opened read-only: a backup never creates or changes it.
        with contextlib.closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as src:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            with contextlib.closing(sqlite3.connect(partial)) as dst:
                src.backup(dst)
        os.replace(partial, destination)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot back up {source} to {destination}: {reason}") from exc
    return source
