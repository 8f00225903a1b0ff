"""A throwaway PostgreSQL cluster for the test run: initdb + pg_ctl in a temporary folder.

Loopback only, on a free port, durability off (it is thrown away). Every
connection needs the test role's password (scram-sha-256, as a deployment
would), so the suite connects through ``postgresql://user:password@host/db``
URLs as documented. ``initdb`` and ``postgres`` refuse to run as root, so as root the
cluster belongs to the ``postgres`` system user. Missing binaries are an
error, never a skip: PostgreSQL support must not go untested silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.ports import free_port

SEARCH_PATH = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in SEARCH_PATH if (Path(d) / name).exists()), None
    )
    if found is None:
        raise RuntimeError(
            f"PostgreSQL binary {name!r} not found: install postgresql-15 (scripts/test does this "
            "when run as root) — PostgreSQL tests are never skipped"
        )
    return found


PASSWORD = "pg-test-password"  # the test role's password; a throwaway cluster's


class PostgresCluster:
    """One private cluster; ``url(dbname)`` gives SQLAlchemy URLs into it."""

    password = PASSWORD

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="authserver-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120
        )

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        if not self.data.exists():
            password_file = self.folder / "password"
            password_file.write_text(self.password + "\n")
            if self._as_postgres:
                shutil.chown(password_file, "postgres", "postgres")
            self._run(
                _binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            )
        self._run(
            _binary("pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        )
        return self

    def stop(self, *, mode: str = "fast") -> None:
        self._run(_binary("pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data))

    def destroy(self) -> None:
        try:
            self.stop(mode="immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)
