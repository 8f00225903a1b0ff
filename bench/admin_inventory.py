"""How long the admin pages take with many credentials: ``/ui/admin/credentials`` (filters,
orders, a late page) and ``/ui/admin/audit``, over real HTTP from uvicorn.

    .venv/bin/python bench/admin_inventory.py [--credentials N] [--postgres | --database-url URL]

Seeds a fresh SQLite file (or a throwaway PostgreSQL cluster, or the given empty database) with
``--credentials`` personal clients — one user per ten, a mix of expiries, last uses,
network locks and DPoP, inserted in bulk without secrets (none is ever presented)
— and as many audit events, signs in as an admin through the
password form, then fetches each page ``--rounds`` times and prints the median and the
slowest time per page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from authserver.app import create_app  # noqa: E402
from authserver.config import Settings  # noqa: E402
from authserver.store import Database  # noqa: E402
from authserver.store.database import migrate  # noqa: E402
from authserver.store.ids import new_record_id  # noqa: E402
from authserver.store.models import AuditEvent, PersonalClient, User  # noqa: E402
from authserver.usecases.container import UseCases  # noqa: E402

PASSWORD = "quiet-lantern-orchard-17"
CHUNK = 5000


def seed(settings: Settings, credentials: int) -> None:
    database = Database(settings.database_url)
    migrate(database)
    cases = UseCases.build(settings, database)
    now = datetime.now(UTC)
    admin = cases.users.create(
        email="admin@example.com", display_name="Admin", role_names=["system:owner"], now=now
    )
    cases.people.set_password(user_ref=admin.id, password=PASSWORD, now=now)
    users = [
        {
            "id": new_record_id(),
            "email": f"person{i}@example.com",
            "display_name": f"Person {i}",
            "roles": ["deploy", "billing:read"],
            "disabled": False,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(max(1, credentials // 10))
    ]
    with database.session() as session:
        session.execute(User.__table__.insert(), users)
    for start in range(0, credentials, CHUNK):
        rows = [
            {
                "id": new_record_id(),
                "client_id": f"bench-{i}@bench/pcc",
                "user_id": users[i % len(users)]["id"],
                "display_name": f"credential {i}",
                "allow_source_cidr": ["10.0.0.0/8"] if i % 7 == 0 else [],
                "scoped_roles": ["deploy"] if i % 3 == 0 else [],
                "expires_time": None if i % 5 == 0 else now + timedelta(days=i % 400),
                "last_used_at": None if i % 4 == 0 else now - timedelta(hours=i % 5000),
                "created_at": now - timedelta(minutes=i),
                "updated_at": now,
                "deleted_at": None,
                "secret_hash": "",  # no secret: these are never presented
                "public_jwk": {},
                "require_dpop": i % 11 == 0,
            }
            for i in range(start, min(start + CHUNK, credentials))
        ]
        events = [
            {
                "at": now - timedelta(seconds=i),
                "event": "credential_created" if i % 2 else "signed_in",
                "actor": users[i % len(users)]["id"],
                "user_id": users[i % len(users)]["id"],
                "credential_id": row["id"],
                "client_id": row["client_id"],
                "details": {"via": "session"},
            }
            for i, row in zip(range(start, start + len(rows)), rows, strict=True)
        ]
        with database.session() as session:
            session.execute(PersonalClient.__table__.insert(), rows)
            session.execute(AuditEvent.__table__.insert(), events)
    # Statistics, as autovacuum gathers them soon after a bulk load: without them the
    # planner guesses two rows and joins with a nested loop.
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    database.dispose()


PAGES = {
    "inventory, newest first": "/ui/admin/credentials",
    "inventory, page 150": "/ui/admin/credentials?page=150",
    "inventory, by owner": "/ui/admin/credentials?sort=owner",
    "inventory, least used first": "/ui/admin/credentials?sort=least-used",
    "inventory, owner search": "/ui/admin/credentials?owner=person12",
    "inventory, never used + locked": "/ui/admin/credentials?never_used=1&network_locked=1",
    "inventory, outside policy": "/ui/admin/credentials?outside_policy=1",
    "inventory, expiring before": "/ui/admin/credentials?expiring_before=2027-01-15",
    "audit trail, newest": "/ui/admin/audit",
    "audit trail, one event": "/ui/admin/audit?event=signed_in",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--postgres", action="store_true", help="on a throwaway PostgreSQL cluster (initdb)"
    )
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if args.postgres:
        from tests.support.postgres import PostgresCluster

        cluster = PostgresCluster().start()
        try:
            run(args, cluster.create_database("admin_bench"))
        finally:
            cluster.destroy()
        return
    with tempfile.TemporaryDirectory(prefix="authserver-admin-bench-") as folder:
        run(args, args.database_url or f"sqlite:///{folder}/bench.db")


def run(args: argparse.Namespace, url: str) -> None:
    issuer = f"http://127.0.0.1:{args.port}"
    settings = Settings(database_url=url, issuer=issuer, policy_max_lifetime="90d")
    started = time.perf_counter()
    seed(settings, args.credentials)
    print(f"seeded {args.credentials} credentials in {time.perf_counter() - started:.1f}s ({url})")
    database = Database(url)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, database=database), port=args.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=issuer) as client:
            form = client.get("/ui/")
            csrf = form.text.split('name="csrf_token" value="')[1].split('"')[0]
            signed = client.post(
                "/ui/login/password",
                data={"csrf_token": csrf, "email": "admin@example.com", "password": PASSWORD},
            )
            assert signed.status_code == 303, signed.status_code
            print(f"{'page':34} {'median':>8} {'slowest':>8}")
            for name, path in PAGES.items():
                times = []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    answer = client.get(path)
                    times.append(time.perf_counter() - t0)
                    assert answer.status_code == 200, (path, answer.status_code)
                print(
                    f"{name:34} {statistics.median(times) * 1000:7.1f}ms {max(times) * 1000:7.1f}ms"
                )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        database.dispose()


if __name__ == "__main__":
    main()
