"""Benchmark: real ``authserver serve`` processes under wrk, optionally against node-oidc-provider.

Scenarios (each on a fresh SQLite file, seeded through the same code the CLI
uses; the server keeps its default configuration: argon2id secrets, every
credential rule, ES256 signing, batched lastUsedAt, audit and access logs):

- token: ``client_credentials`` with ``client_secret_basic``, round-robin over
  the credentials, 32 keep-alive connections;
- introspection: each credential introspects its own access token;
- cold: the token load again while 20 never-used credentials authenticate
  (one argon2 verification each) — p99 of the warm traffic meanwhile;
- workers: the token load against ``serve`` with its default worker count
  (one per CPU), alternating with the others;
- scale: the token load with 100,000 and with 1,000,000 credentials (one user
  per ten) in the database — the 100 load credentials plus rows inserted in
  bulk that share one argon2 hash, since a million hashes would take days —
  alternating with the plain database; for each, the worker's start-up time
  (to ``/readyz``) and its memory (RSS) after the load.

wrk (C, from Debian) generates the load on the same machine, so the figures
include its share of the two cores. ``--peer`` runs node-oidc-provider 9.x
(installed from npm into ``~/.cache/authserver-bench/peer``) under the same
token and introspection loads, alternating runs with authserver's (median of
``--rounds``), and prints the ratios. ``--peer dot`` adds django-oauth-toolkit
(installed from PyPI into ``~/.cache/authserver-bench/dot``, run by gunicorn,
configured by ``bench/dot``), with its default hashed client secrets and with
plaintext ones. ``--plot FILE`` also sweeps the connection count for
authserver and node-oidc-provider and draws throughput and p99. ``--soak
SECONDS`` only runs a mixed token and introspection load for that long and
reports the worker's memory every minute. ``--exchange`` only compares RFC 8693
token exchanges of federation trusts (a CI job's RS256 ID token from a test
issuer on loopback, verified against its cached JWKS, then a CEL condition)
with ``client_credentials``, alternating runs on one server process.
``--baseline CHECKOUT`` only runs the token load against this checkout's server
and CHECKOUT's (another checkout of authserver, e.g. the commit before a change,
on the same installed dependencies), alternating in one run, and prints the ratio.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authserver.client.dpop import DpopSigner  # noqa: E402
from authserver.config import load_settings  # noqa: E402
from authserver.domain.credentials import Caller, NewCredential  # noqa: E402
from authserver.domain.federation import NewTrust  # noqa: E402
from authserver.domain.secrets import new_secret  # noqa: E402
from authserver.security.argon2 import SecretHasher  # noqa: E402
from authserver.store import Store  # noqa: E402
from authserver.store.database import Database, migrate  # noqa: E402
from authserver.store.ids import new_record_id  # noqa: E402
from authserver.store.models import PersonalClient, User  # noqa: E402
from authserver.usecases.credentials import CredentialService  # noqa: E402
from authserver.usecases.federation import TrustService  # noqa: E402
from authserver.usecases.users import UserService  # noqa: E402
from tests.support.ci_issuer import github_claims, running_issuer  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

PEER_CACHE = Path.home() / ".cache" / "authserver-bench" / "peer"
DOT_CACHE = Path.home() / ".cache" / "authserver-bench" / "dot"
DOT_PROJECT = ROOT / "bench" / "dot"
BULK_CHUNK = 50_000  # rows per insert: a million row dicts at once would take gigabytes
SWEEP = (1, 4, 16, 32, 64)

# Each request i uses requests[i % n]: (path, Authorization header, form body).
LUA = """
local requests = {%s}
local i = 0
request = function()
  i = i + 1
  local r = requests[(i %% #requests) + 1]
  return wrk.format("POST", r[1],
    {["Authorization"] = r[2], ["Content-Type"] = "application/x-www-form-urlencoded"}, r[3])
end
"""

# DPoP: every request carries a proof of its own, used once (a proof is refused the second
# time): wrk's threads (at most two) take every other one.
DPOP_LUA = """
local requests = {%s}
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local i = 0
request = function()
  i = i + 1
  local r = requests[(((i - 1) * 2 + tid) %% #requests) + 1]
  return wrk.format("POST", r[1],
    {["Authorization"] = r[2], ["Content-Type"] = "application/x-www-form-urlencoded",
     ["DPoP"] = r[4]}, r[3])
end
"""

# Token exchange (RFC 8693): no client authentication, only the form.
EXCHANGE_LUA = """
local requests = {%s}
local i = 0
request = function()
  i = i + 1
  local r = requests[(i %% #requests) + 1]
  return wrk.format("POST", r[1], {["Content-Type"] = "application/x-www-form-urlencoded"}, r[3])
end
"""
EXCHANGE_CONDITION = 'claims.repository == "acme/deploy" && claims.ref == "refs/heads/main"'

Pairs = list[tuple[str, str]]


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def lua_script(folder: Path, name: str, requests: list[tuple[str, str, str]]) -> Path:
    rows = ", ".join("{" + ", ".join(json.dumps(part) for part in r) + "}" for r in requests)
    path = folder / f"{name}.lua"
    path.write_text(LUA % rows)
    return path


def seed(database_url: str, credentials: int, users: int) -> Pairs:
    """Users and credentials created through the code the CLI uses (one argon2 hash each)."""
    settings = load_settings(environ={"AUTHSERVER_DATABASE_URL": database_url})
    database = Database(database_url)
    migrate(database)
    store = Store(database)
    service = CredentialService(store, SecretHasher(settings), settings)
    now = datetime.now(UTC)
    owners = [
        UserService(store).create(
            email=f"bench{i}@example.com", display_name="", role_names=["read", "write"], now=now
        )
        for i in range(users)
    ]
    pairs = []
    for i in range(credentials):
        created = service.create(
            caller=Caller.operator(),
            owner_id=owners[i % len(owners)].id,
            new=NewCredential(display_name=f"bench {i}"),
            now=now,
        )
        pairs.append((created.record.client_id, created.secret))
    database.dispose()
    return pairs


def add_bulk_rows(database_url: str, credentials: int, users: int) -> None:
    """Fill the database to scale: rows shaped like real ones, inserted in one transaction.

    They copy the stored hash and public key of an existing credential; their
    secrets are never presented, so they only add volume to tables and indexes.
    """
    database = Database(database_url)
    now = datetime.now(UTC)
    with database.session() as session:
        template = session.scalars(select(PersonalClient).limit(1)).first()
        assert template is not None
        secret_hash, public_jwk = template.secret_hash, dict(template.public_jwk)
    with database.session() as session:
        user_rows = [
            {
                "id": new_record_id(),
                "email": f"scale{i}@example.com",
                "display_name": "",
                "roles": ["read", "write"],
                "disabled": False,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(users)
        ]
        session.execute(User.__table__.insert(), user_rows)
    user_ids = [row["id"] for row in user_rows]
    del user_rows
    for start in range(0, credentials, BULK_CHUNK):
        client_rows = [
            {
                "id": new_record_id(),
                "client_id": f"scale-{i}-{secrets.token_hex(4)}@bench/pcc",
                "user_id": user_ids[i % users],
                "display_name": f"scale {i}",
                "allow_source_cidr": [],
                "scoped_roles": [],
                "expires_time": None,
                "last_used_at": None,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
                "secret_hash": secret_hash,
                "public_jwk": public_jwk,
            }
            for i in range(start, min(start + BULK_CHUNK, credentials))
        ]
        with database.session() as session:
            session.execute(PersonalClient.__table__.insert(), client_rows)
    database.dispose()


def wrk(
    url: str, script: Path, connections: int, duration: float, timeout: int = 2
) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            f"--timeout={timeout}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"^\s*(\d+) requests in", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": (float(non2xx.group(1)) if non2xx else 0.0)
        + (float(sum(int(g) for g in errors.groups())) if errors else 0.0),
        "connections": connections,
        "requests": float(total.group(1)) if total else 0.0,
    }


def warm_up(url: str, script: Path, connections: int, seconds: float) -> None:
    """Unmeasured load until a run is clean: every process has verified every secret once.

    Under full load argon2 runs at low priority, so first uses finish slowly: a light
    load comes first (several workers each verify every secret once).
    """
    wrk(url, script, 4, seconds)
    for _ in range(8):
        run = wrk(url, script, connections, seconds)
        if run["errors"] == 0 and run["p99_ms"] < 250:
            return


class Server:
    """A running ``authserver serve``: its URL, process id and seconds from launch to ready."""

    def __init__(self, url: str, pid: int, startup_s: float) -> None:
        self.url, self.pid, self.startup_s = url, pid, startup_s

    def rss_mib(self) -> float:
        """Resident memory of the serving process (with one worker, uvicorn serves in it)."""
        return rss_mib(self.pid)


def rss_mib(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


@contextmanager
def authserver(
    database_url: str,
    workers: int | None = 1,
    *,
    python: str = sys.executable,
    root: Path = ROOT,
    **settings: str,
) -> Iterator[Server]:
    """``serve`` with ``--workers`` (None: its default, one worker per CPU), and ``settings``
    as AUTHSERVER_* variables; ``python`` and ``root``: another interpreter, or another
    checkout of the code (``--compare``)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AUTHSERVER_DATABASE_URL": database_url,
        "AUTHSERVER_ISSUER": url,
        **{f"AUTHSERVER_{key.upper()}": value for key, value in settings.items()},
    }
    command = [python, "-m", "authserver", "serve", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    launched = time.monotonic()
    server = subprocess.Popen(
        command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = launched + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("authserver did not start")
            time.sleep(0.05)
        yield Server(url, server.pid, time.monotonic() - launched)
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def peer_server(folder: Path, pairs: Pairs, token_format: str = "opaque") -> Iterator[str]:
    """node-oidc-provider with the same grant, auth method, TTL and clients (bench/peer.mjs)."""
    if not (PEER_CACHE / "node_modules" / "oidc-provider").exists():
        PEER_CACHE.mkdir(parents=True, exist_ok=True)
        (PEER_CACHE / "package.json").write_text('{"name":"peer","private":true,"type":"module"}')
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "oidc-provider@9"],
            cwd=PEER_CACHE,
            check=True,
        )
    script = PEER_CACHE / "peer.mjs"
    script.write_text((ROOT / "bench" / "peer.mjs").read_text())
    clients = folder / "peer-clients.json"
    clients.write_text(json.dumps(pairs))
    port = free_port()
    node = subprocess.Popen(
        ["node", str(script), str(port), str(clients), token_format],
        cwd=PEER_CACHE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NODE_ENV": "production"},
    )
    try:
        assert node.stdout is not None and node.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        node.terminate()
        node.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its child processes (gunicorn's workers are its children)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0.0
    for process in [pid, *map(int, children)]:
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def drain(pid: int, limit: float = 120) -> None:
    """Wait until ``pid`` stops using the CPU: a sync server answers the requests wrk gave
    up on long after wrk has stopped, and must not take the CPU from the next run."""
    deadline = time.monotonic() + limit
    used = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - used < 0.02:
            return
        used = now


@contextmanager
def dot_server(folder: Path, pairs: Pairs, *, hashed: bool) -> Iterator[tuple[str, int]]:
    """django-oauth-toolkit (latest) under gunicorn, one sync worker, SQLite (bench/dot).

    ``hashed``: its default, client secrets stored with Django's password hasher and
    checked against it on every request; otherwise stored and compared in plaintext.
    """
    python = DOT_CACHE / "bin" / "python"
    if not (DOT_CACHE / "bin" / "gunicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", str(DOT_CACHE)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "django-oauth-toolkit", "gunicorn"],
            check=True,
        )
    kind = "hashed" if hashed else "plain"
    clients = folder / "peer-clients.json"
    clients.write_text(json.dumps(pairs))
    env = {**os.environ, "DOTBENCH_DB": str(folder / f"dot-{kind}.sqlite3")}
    subprocess.run(
        [str(python), "seed.py", str(clients), kind],
        cwd=DOT_PROJECT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    gunicorn = subprocess.Popen(
        [
            str(DOT_CACHE / "bin" / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
            "dotbench.wsgi",
        ],
        cwd=DOT_PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/o/token/")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or gunicorn.poll() is not None:
                    raise SystemExit("django-oauth-toolkit did not start") from None
                time.sleep(0.1)
        first_tokens(url, "/o/token/", pairs[:1])
        yield url, gunicorn.pid
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)


def first_tokens(url: str, path: str, pairs: Pairs) -> list[str]:
    """One token per credential (for authserver this is the argon2 verification of each)."""
    tokens = []
    with httpx.Client(timeout=30) as http:
        for client_id, secret in pairs:
            response = http.post(
                url + path, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
            response.raise_for_status()
            tokens.append(response.json()["access_token"])
    return tokens


def token_requests(path: str, pairs: Pairs) -> list[tuple[str, str, str]]:
    return [(path, basic(c, s), "grant_type=client_credentials") for c, s in pairs]


def introspection_requests(
    path: str, pairs: Pairs, tokens: list[str]
) -> list[tuple[str, str, str]]:
    return [(path, basic(c, s), f"token={t}") for (c, s), t in zip(pairs, tokens, strict=True)]


def cold_start(url: str, pairs: Pairs, delay: float) -> list[float]:
    """After ``delay``, the first token request of every credential in ``pairs``, all at once.

    Clients are made beforehand: creating one costs the load generator more CPU
    than the request does.
    """
    latencies: list[float] = []
    clients = [httpx.Client(base_url=url, timeout=60) for _ in pairs]
    time.sleep(delay)

    def one(http: httpx.Client, client_id: str, secret: str) -> None:
        started = time.perf_counter()
        http.post(
            "/auth/v1/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        ).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)

    threads = [
        threading.Thread(target=one, args=(http, *pair))
        for http, pair in zip(clients, pairs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for http in clients:
        http.close()
    return latencies


class Target:
    """A running server under test and its wrk scripts."""

    def __init__(self, url: str, token: Path, introspection: Path | None = None) -> None:
        self.url, self.token, self.introspection = url, token, introspection


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def median_p99(runs: list[dict[str, float]]) -> dict[str, float]:
    return dict(sorted(runs, key=lambda r: r["p99_ms"])[len(runs) // 2])


def side_by_side(
    args: argparse.Namespace,
    targets: dict[str, Target],
    scenario: str,
    connections: int,
    rounds: int,
) -> dict[str, dict[str, float]]:
    """``rounds`` runs per server, alternating, so drift of a shared machine hits all alike.

    Each server's median run (by throughput) is kept.
    """
    runs: dict[str, list[dict[str, float]]] = {
        name: [] for name, target in targets.items() if getattr(target, scenario) is not None
    }
    duration = args.duration if connections == args.connections else args.sweep_duration
    for _ in range(rounds):
        for name in runs:
            target = targets[name]
            runs[name].append(wrk(target.url, getattr(target, scenario), connections, duration))
    return {name: median_run(r) for name, r in runs.items()}


def run_all(args: argparse.Namespace, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    ours: dict[str, Any] = {}
    peer: dict[str, Any] = {}
    url_db = f"sqlite:///{folder}/bench.db"
    all_pairs = seed(url_db, args.credentials + args.rounds * args.cold, args.users)
    pairs, cold = all_pairs[: args.credentials], all_pairs[args.credentials :]
    token_lua = lua_script(folder, "token", token_requests("/auth/v1/token", pairs))
    peer_pairs = [(f"peer-client-{i}", secrets.token_urlsafe(32)) for i in range(args.credentials)]
    with ExitStack() as stack:
        server = stack.enter_context(authserver(url_db))
        url = server.url
        tokens = first_tokens(url, "/auth/v1/token", pairs)
        introspect_lua = lua_script(
            folder, "introspect", introspection_requests("/auth/v1/introspect", pairs, tokens)
        )
        targets = {"authserver": Target(url, token_lua, introspect_lua)}
        # serve as ./scripts/serve runs it: one worker per CPU (its default).
        default = stack.enter_context(authserver(url_db, workers=None))
        targets["authserver-default"] = Target(default.url, token_lua)
        if args.peer:
            peer_url = stack.enter_context(peer_server(folder, peer_pairs))
            peer_tokens = first_tokens(peer_url, "/token", peer_pairs)
            targets["peer"] = Target(
                peer_url,
                lua_script(folder, "peer-token", token_requests("/token", peer_pairs)),
                lua_script(
                    folder,
                    "peer-introspect",
                    introspection_requests("/token/introspection", peer_pairs, peer_tokens),
                ),
            )
            jwt_url = stack.enter_context(peer_server(folder, peer_pairs, "jwt"))
            first_tokens(jwt_url, "/token", peer_pairs)
            targets["peer-jwt"] = Target(jwt_url, targets["peer"].token)
        for target in targets.values():
            warm_up(target.url, target.token, args.connections, args.warmup)
        for scenario in ("token", "introspection"):
            measured = side_by_side(args, targets, scenario, args.connections, args.rounds)
            ours[scenario] = measured["authserver"]
            if scenario == "token":
                ours["default_workers"] = measured["authserver-default"]
            if args.peer:
                peer[scenario] = measured["peer"]
                if scenario == "token":
                    peer["token_jwt"] = measured["peer-jwt"]
        ours["default_workers"]["workers"] = os.cpu_count() or 1
        if args.peer == "dot":
            # Apart from the alternating rounds: with hashed secrets, gunicorn keeps hashing
            # for the requests wrk timed out on for seconds after a run, so every DOT run
            # waits for it to drain, and the one authserver run beside them is not disturbed.
            dot_token = lua_script(folder, "dot-token", token_requests("/o/token/", peer_pairs))
            for kind in ("hashed", "plain"):
                with dot_server(folder, peer_pairs, hashed=kind == "hashed") as (dot_url, pid):
                    runs = []
                    for _ in range(args.rounds):
                        # With hashed secrets a request waits several seconds in gunicorn's
                        # queue: a long timeout, so wrk counts the answers at all.
                        runs.append(
                            wrk(dot_url, dot_token, args.connections, args.duration, timeout=60)
                        )
                        drain(pid)
                    peer[f"dot_{kind}"] = median_run(runs)
        # Cold path: a run with 20 first uses in it, against a run just before without,
        # alternating (fresh never-used credentials each round).
        plain_runs, cold_runs, latencies = [], [], []
        for k in range(args.rounds):
            fresh = cold[k * args.cold : (k + 1) * args.cold]
            plain_runs.append(wrk(url, token_lua, args.connections, args.duration))
            starter = threading.Thread(
                target=lambda fresh=fresh: latencies.extend(cold_start(url, fresh, delay=1.0))
            )
            starter.start()
            cold_runs.append(wrk(url, token_lua, args.connections, args.duration))
            starter.join()
        ours["cold"] = median_p99(cold_runs)
        ours["cold"]["without_p99_ms"] = median_p99(plain_runs)["p99_ms"]
        ours["cold"]["cold_credentials"] = len(latencies)
        ours["cold"]["cold_max_ms"] = max(latencies, default=float("nan"))
        if args.plot:
            sweep_targets = {
                k: v for k, v in targets.items() if k in ("authserver", "peer", "peer-jwt")
            }
            sweep = [side_by_side(args, sweep_targets, "token", c, rounds=1) for c in SWEEP]
            ours["sweep"] = [point["authserver"] for point in sweep]
            if args.peer:
                peer["sweep"] = [point["peer"] for point in sweep]
                peer["sweep_jwt"] = [point["peer-jwt"] for point in sweep]
        ours["rss_mib"] = server.rss_mib()
        ours["startup_s"] = server.startup_s
        for stage in args.scale:
            ours[f"scale_{stage}"] = scale_run(args, folder, stage, targets["authserver"])
    return ours, peer


def compared(spec: str) -> tuple[str, str, Path]:
    """``LABEL=PYTHON[:ROOT]`` for ``--compare``."""
    label, _, rest = spec.partition("=")
    python, _, root = rest.partition(":")
    if not label or not python:
        raise argparse.ArgumentTypeError("expected LABEL=PYTHON[:ROOT]")
    return label, python, Path(root) if root else ROOT


def measured_cpu(
    url: str, script: Path, connections: int, duration: float, pid: int
) -> dict[str, float]:
    """A wrk run with the CPU the server process used meanwhile, per request (user, kernel)."""
    before = cpu_split(pid)
    run = wrk(url, script, connections, duration)
    after = cpu_split(pid)
    count = max(run["requests"], 1.0)
    run["cpu_us"] = (sum(after) - sum(before)) / count * 1e6
    run["user_us"] = (after[0] - before[0]) / count * 1e6
    run["sys_us"] = (after[1] - before[1]) / count * 1e6
    return run


def cpu_split(pid: int) -> tuple[float, float]:
    """User and kernel CPU seconds of ``pid`` (every thread) and of its child processes (the
    workers of ``serve``'s default)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    tick = os.sysconf("SC_CLK_TCK")
    user = kernel = 0.0
    for process in [pid, *map(int, children)]:
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        user, kernel = user + int(fields[11]) / tick, kernel + int(fields[12]) / tick
    return user, kernel


def compare(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, dict[str, float]]]:
    """This checkout against other interpreters or checkouts (``--compare``), and the peer with
    ``--peer``: one worker each, token and introspection runs alternating round by round, the
    CPU each server process used per request measured around every run."""
    url_db = f"sqlite:///{folder}/compare.db"
    pairs = seed(url_db, args.credentials, args.users)
    token_lua = lua_script(folder, "token", token_requests("/auth/v1/token", pairs))
    peer_pairs = [(f"peer-client-{i}", secrets.token_urlsafe(32)) for i in range(args.credentials)]
    servers: dict[str, tuple[Target, int]] = {}
    with ExitStack() as stack:
        for label, python, root in [("this", sys.executable, ROOT), *args.compare]:
            server = stack.enter_context(authserver(url_db, python=python, root=root))
            tokens = first_tokens(server.url, "/auth/v1/token", pairs)
            introspect = lua_script(
                folder,
                f"introspect-{label}",
                introspection_requests("/auth/v1/introspect", pairs, tokens),
            )
            servers[label] = (Target(server.url, token_lua, introspect), server.pid)
        if args.default_workers:
            default = stack.enter_context(authserver(url_db, workers=None))
            servers["this, serve default"] = (Target(default.url, token_lua), default.pid)
        if args.peer:
            peer_url = stack.enter_context(peer_server(folder, peer_pairs))
            peer_tokens = first_tokens(peer_url, "/token", peer_pairs)
            peer_target = Target(
                peer_url,
                lua_script(folder, "peer-token", token_requests("/token", peer_pairs)),
                lua_script(
                    folder,
                    "peer-introspect",
                    introspection_requests("/token/introspection", peer_pairs, peer_tokens),
                ),
            )
            servers["peer"] = (peer_target, peer_pid(peer_url))
        for target, _ in servers.values():
            warm_up(target.url, target.token, args.connections, args.warmup)
        results: dict[str, dict[str, dict[str, float]]] = {}
        for scenario in ("token", "introspection"):
            runs: dict[str, list[dict[str, float]]] = {label: [] for label in servers}
            for _ in range(args.rounds):
                for label, (target, pid) in servers.items():
                    script = getattr(target, scenario)
                    if script is None:
                        continue
                    runs[label].append(
                        measured_cpu(target.url, script, args.connections, args.duration, pid)
                    )
            results[scenario] = {label: median_run(r) for label, r in runs.items() if r}
    return results


def peer_pid(url: str) -> int:
    """The process listening on ``url``'s port (node-oidc-provider's)."""
    port = int(url.rsplit(":", 1)[1])
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"pid=(\d+)", out)
    assert match, out
    return int(match.group(1))


def compare_report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(
        f"one worker each, {args.connections} connections, {args.duration} s runs, median of "
        f"{args.rounds} alternating; CPU of the server process per request (user + kernel)"
    )
    for scenario, by_label in results.items():
        print(scenario)
        base = by_label["this"]
        for label, r in by_label.items():
            print(
                f"{line(label, r)}   CPU {r['cpu_us']:>5.0f} us ({r['user_us']:.0f} + "
                f"{r['sys_us']:.0f})   {r['rps'] / base['rps']:.2f}x this"
            )
        if "peer" in by_label:
            print(f"  this / peer: {base['rps'] / by_label['peer']['rps']:.2f}x")


def scale_run(
    args: argparse.Namespace, folder: Path, credentials: int, plain: Target
) -> dict[str, float]:
    """The token load on a database of ``credentials`` (one user per ten), alternating with
    ``plain``; with the worker's start-up time and its memory after the load."""
    scale_db = f"sqlite:///{folder}/scale-{credentials}.db"
    scale_pairs = seed(scale_db, args.credentials, args.users)
    add_bulk_rows(
        scale_db,
        credentials - args.credentials,
        max(1, credentials // 10 - args.users),
    )
    scale_lua = lua_script(
        folder, f"scale-{credentials}", token_requests("/auth/v1/token", scale_pairs)
    )
    with authserver(scale_db) as server:
        first_tokens(server.url, "/auth/v1/token", scale_pairs)
        warm_up(server.url, scale_lua, args.connections, args.warmup)
        targets = {"plain": plain, "scale": Target(server.url, scale_lua)}
        measured = side_by_side(args, targets, "token", args.connections, args.rounds)
        result = dict(measured["scale"])
        result["plain_rps"] = measured["plain"]["rps"]
        result["startup_s"] = server.startup_s
        result["rss_mib"] = server.rss_mib()
    return result


def soak(args: argparse.Namespace, folder: Path) -> list[dict[str, float]]:
    """Mixed load for ``args.soak`` seconds: tokens, and introspection of 2,000 distinct tokens
    (20 per credential) so the verified-token cache grows; RSS of the worker every minute."""
    url_db = f"sqlite:///{folder}/soak.db"
    pairs = seed(url_db, args.credentials, args.users)
    samples = []
    with authserver(url_db) as server:
        tokens = [first_tokens(server.url, "/auth/v1/token", pairs) for _ in range(20)]
        mixed = token_requests("/auth/v1/token", pairs)
        for batch in tokens:
            mixed += introspection_requests("/auth/v1/introspect", pairs, batch)
        script = lua_script(folder, "soak", mixed)
        samples.append({"seconds": 0.0, "rss_mib": server.rss_mib(), "rps": 0.0})
        started = time.monotonic()
        while time.monotonic() - started < args.soak:
            run = wrk(server.url, script, args.connections, min(60, args.soak))
            samples.append(
                {
                    "seconds": round(time.monotonic() - started),
                    "rss_mib": server.rss_mib(),
                    "rps": run["rps"],
                }
            )
            print(
                f"  {samples[-1]['seconds']:>5} s  RSS {samples[-1]['rss_mib']:.1f} MiB  "
                f"{run['rps']:.0f} req/s",
                flush=True,
            )
    return samples


def flood_ratio(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    url_db = f"sqlite:///{folder}/flood.db"
    pairs = seed(url_db, args.credentials, args.users)
    script = lua_script(folder, "flood-token", token_requests("/auth/v1/token", pairs))
    with authserver(url_db) as server:
        url = server.url
        first_tokens(url, "/auth/v1/token", pairs)
        unloaded = wrk(url, script, args.connections, args.duration)
        flood = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "flood.py"),
                f"{url}/auth/v1/token",
                ",".join(client_id for client_id, _ in pairs[:10]),
                str(args.duration + 2),
                str(args.flood),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)
        flooded = wrk(url, script, args.connections, args.duration)
        sent = float(flood.communicate(timeout=60)[0].split()[0])
    return {
        "rps": unloaded["rps"],
        "flood_rps": flooded["rps"],
        "flood_p99_ms": flooded["p99_ms"],
        "flood_sent": sent,
        "ratio": flooded["rps"] / unloaded["rps"],
    }


def dpop_requests(url: str, pairs: Pairs, count: int) -> list[tuple[str, str, str, str]]:
    """``count`` token requests, each with a fresh DPoP proof (one key, as a client has)."""
    signer = DpopSigner()
    token_url = url + "/auth/v1/token"
    return [
        (
            "/auth/v1/token",
            basic(*pairs[i % len(pairs)]),
            "grant_type=client_credentials",
            signer.proof("POST", token_url),
        )
        for i in range(count)
    ]


def dpop_ratio(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """Bound tokens against bearer tokens, alternating in one run on one server process."""
    url_db = f"sqlite:///{folder}/dpop.db"
    pairs = seed(url_db, args.credentials, args.users)
    bearer = lua_script(folder, "bearer-token", token_requests("/auth/v1/token", pairs))
    with authserver(url_db) as server:
        url = server.url
        first_tokens(url, "/auth/v1/token", pairs)
        warm_up(url, bearer, args.connections, args.warmup)
        runs: dict[str, list[dict[str, float]]] = {"bearer": [], "dpop": []}
        for _ in range(max(1, args.rounds)):
            runs["bearer"].append(wrk(url, bearer, args.connections, args.duration))
            # Enough proofs for the run at any plausible rate; made just before it (iat).
            requests = dpop_requests(url, pairs, max(2000, 6000 * args.duration))
            rows = ", ".join(
                "{" + ", ".join(json.dumps(part) for part in r) + "}" for r in requests
            )
            script = folder / "dpop-token.lua"
            script.write_text(DPOP_LUA % rows)
            runs["dpop"].append(wrk(url, script, args.connections, args.duration))
    bearer_run, dpop_run = median_run(runs["bearer"]), median_run(runs["dpop"])
    return {
        "bearer_rps": bearer_run["rps"],
        "bearer_p50_ms": bearer_run["p50_ms"],
        "dpop_rps": dpop_run["rps"],
        "dpop_p50_ms": dpop_run["p50_ms"],
        "dpop_errors": dpop_run["errors"],
        "ratio": dpop_run["rps"] / bearer_run["rps"] if bearer_run["rps"] else 0.0,
    }


def exchange_ratio(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """Token exchanges of federation trusts against client_credentials, alternating."""
    from urllib.parse import urlencode

    url_db = f"sqlite:///{folder}/exchange.db"
    pairs = seed(url_db, args.credentials, args.users)
    bearer = lua_script(folder, "cc-token", token_requests("/auth/v1/token", pairs))
    with running_issuer() as issuer, authserver(url_db) as server:
        url = server.url
        database = Database(url_db)
        store = Store(database)
        settings = load_settings(environ={"AUTHSERVER_DATABASE_URL": url_db})
        trusts = [
            TrustService(store, settings).create(
                caller=Caller.operator(),
                owner_id=owner.id,
                new=NewTrust(
                    issuer=issuer.url, audience=url, condition=EXCHANGE_CONDITION, display_name="ci"
                ),
                now=datetime.now(UTC),
            )
            for owner in store.users.all()
        ]
        database.dispose()
        first_tokens(url, "/auth/v1/token", pairs)
        warm_up(url, bearer, args.connections, args.warmup)

        def exchange_script() -> Path:
            """Distinct job tokens, signed just before a run (their iat must be recent)."""
            forms = [
                urlencode(
                    {
                        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                        "subject_token": issuer.token(github_claims(), audience=url),
                        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                        "client_id": trusts[i % len(trusts)].client_id,
                    }
                )
                for i in range(max(20, args.credentials))
            ]
            rows = ", ".join(
                "{" + ", ".join(json.dumps(p) for p in ("/auth/v1/token", "", form)) + "}"
                for form in forms
            )
            script = folder / "exchange.lua"
            script.write_text(EXCHANGE_LUA % rows)
            return script

        # The issuer's keys fetched and the condition compiled before anything is measured.
        wrk(url, exchange_script(), args.connections, args.warmup)
        runs: dict[str, list[dict[str, float]]] = {"client_credentials": [], "exchange": []}
        for _ in range(max(1, args.rounds)):
            runs["client_credentials"].append(wrk(url, bearer, args.connections, args.duration))
            runs["exchange"].append(wrk(url, exchange_script(), args.connections, args.duration))
        fetches = issuer.jwks_requests
    cc_run, exchange_run = median_run(runs["client_credentials"]), median_run(runs["exchange"])
    return {
        "client_credentials_rps": cc_run["rps"],
        "client_credentials_p50_ms": cc_run["p50_ms"],
        "client_credentials_p99_ms": cc_run["p99_ms"],
        "exchange_rps": exchange_run["rps"],
        "exchange_p50_ms": exchange_run["p50_ms"],
        "exchange_p99_ms": exchange_run["p99_ms"],
        "exchange_errors": exchange_run["errors"],
        "jwks_fetches": float(fetches),
        "ratio": exchange_run["rps"] / cc_run["rps"] if cc_run["rps"] else 0.0,
    }


def seed_with(checkout: Path, database_url: str, credentials: int, users: int) -> Pairs:
    """``seed`` by ``checkout``'s own code (its bench/run.py), so its schema is its own."""
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import run; "
        "print(json.dumps(run.seed(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(checkout / "bench"), database_url]
        + [str(credentials), str(users)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
    )
    return [tuple(pair) for pair in json.loads(done.stdout.strip().splitlines()[-1])]


def baseline_ratio(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """The token load on this checkout's server and ``args.baseline``'s, alternating."""
    checkout = args.baseline.resolve()
    ours_db, base_db = f"sqlite:///{folder}/ours.db", f"sqlite:///{folder}/baseline.db"
    ours_pairs = seed(ours_db, args.credentials, args.users)
    base_pairs = seed_with(checkout, base_db, args.credentials, args.users)
    ours_lua = lua_script(folder, "ours-token", token_requests("/auth/v1/token", ours_pairs))
    base_lua = lua_script(folder, "base-token", token_requests("/auth/v1/token", base_pairs))
    with authserver(ours_db) as ours, authserver(base_db, root=checkout) as base:
        for server, pairs, lua in ((ours, ours_pairs, ours_lua), (base, base_pairs, base_lua)):
            first_tokens(server.url, "/auth/v1/token", pairs)
            warm_up(server.url, lua, args.connections, args.warmup)
        targets = {"ours": Target(ours.url, ours_lua), "baseline": Target(base.url, base_lua)}
        runs = side_by_side(args, targets, "token", args.connections, max(1, args.rounds))
    return {
        "rps": runs["ours"]["rps"],
        "p50_ms": runs["ours"]["p50_ms"],
        "baseline_rps": runs["baseline"]["rps"],
        "baseline_p50_ms": runs["baseline"]["p50_ms"],
        "errors": runs["ours"]["errors"],
        "baseline_errors": runs["baseline"]["errors"],
        "ratio": runs["ours"]["rps"] / runs["baseline"]["rps"] if runs["baseline"]["rps"] else 0.0,
    }


def leak_report_seconds(args: argparse.Namespace, folder: Path) -> list[float]:
    """Seconds a report of 1000 strings takes (999 strangers' secrets and one of ours)."""
    url_db = f"sqlite:///{folder}/leaks.db"
    pairs = seed(url_db, max(args.credentials, 5), args.users)
    timings = []
    with authserver(url_db) as server, httpx.Client(timeout=30) as http:
        for _, secret in pairs[:5]:
            strangers = [new_secret("127.0.0.1").secret for _ in range(999)]
            started = time.perf_counter()
            answer = http.post(
                server.url + "/auth/v1/credentials/revoke",
                json={"credentials": [*strangers, secret]},
            )
            timings.append(time.perf_counter() - started)
            assert answer.status_code == 202, answer.text
    return timings


def first_use_latencies(url: str, pairs: Pairs, spacing: float = 0.2) -> list[float]:
    """The first token of each credential in ``pairs`` (one argon2 verification each), one
    after another ``spacing`` seconds apart over one connection: milliseconds each."""
    latencies = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for client_id, secret in pairs:
            started = time.perf_counter()
            response = http.post(
                "/auth/v1/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            time.sleep(spacing)
    return latencies


def sign_in_flood(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """First-use token p50 while wrong sign-ins arrive at ``args.flood_sign_in`` a second, each
    from a new address (through a trusted proxy), against the same with no flood."""
    url_db = f"sqlite:///{folder}/sign-in-flood.db"
    count = max(args.cold, 2)
    pairs = seed(url_db, 2 * count, args.users)
    with authserver(url_db, trusted_proxies="127.0.0.1/32") as server:
        first_use_latencies(server.url, pairs[:1], spacing=0)  # the server's own first argon2
        idle = first_use_latencies(server.url, pairs[1:count])
        seconds = count * 0.3 + 4
        flood = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "sign_in_flood.py"),
                server.url,
                str(seconds),
                str(args.flood_sign_in),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)
        flooded = first_use_latencies(server.url, pairs[count:])
        sent, refused, busy = (int(n) for n in flood.communicate(timeout=120)[0].split())
    idle_p50, flood_p50 = statistics.median(idle), statistics.median(flooded)
    return {
        "idle_p50_ms": idle_p50,
        "flood_p50_ms": flood_p50,
        "ratio": flood_p50 / idle_p50,
        "seconds": seconds,
        "sent": sent,
        "refused_401": refused,
        "busy_429": busy,
    }


def line(name: str, r: dict[str, float]) -> str:
    return (
        f"  {name:<34} {r['rps']:>8.0f} req/s   p50 {r['p50_ms']:>7.2f} ms   "
        f"p99 {r['p99_ms']:>7.2f} ms   errors {r['errors']:.0f}"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(args: argparse.Namespace, ours: dict[str, Any], peer: dict[str, Any] | None) -> None:
    print(
        f"authserver, {args.credentials} credentials, {args.connections} connections, "
        f"{args.duration} s per run; token and introspection: median of {args.rounds} runs "
        "alternating with the peer (wrk on the same machine)"
    )
    workers = ours["default_workers"]["workers"]
    print(line("token (1 worker)", ours["token"]))
    print(line("introspection (1 worker)", ours["introspection"]))
    print(line(f"token while {args.cold} cold credentials (p99 median)", ours["cold"]))
    print(line(f"token, serve default ({workers} workers)", ours["default_workers"]))
    for stage in args.scale:
        print(line(f"token, {stage:,} credentials in db", ours[f"scale_{stage}"]))
    if peer:
        print("node-oidc-provider 9, same load, one process")
        print(line("token (opaque tokens, its default)", peer["token"]))
        print(line("token (ES256 JWT access tokens)", peer["token_jwt"]))
        print(line("introspection (of its opaque tokens)", peer["introspection"]))
        if "dot_hashed" in peer:
            print("django-oauth-toolkit (gunicorn, 1 sync worker, SQLite), same token load")
            print(line("token (hashed secrets, its default)", peer["dot_hashed"]))
            print(line("token (plaintext secrets)", peer["dot_plain"]))
    print("targets")
    token = ours["token"]
    if peer:
        ratio = token["rps"] / peer["token"]["rps"]
        jwt_ratio = token["rps"] / peer["token_jwt"]["rps"]
        print(
            f"  1. token, one process each: {ratio:.2f}x the peer's opaque tokens, "
            f"{jwt_ratio:.2f}x its JWTs (target >= 1.0: {verdict(ratio >= 1.0)})"
        )
        ratio = ours["introspection"]["rps"] / peer["introspection"]["rps"]
        print(f"  2. introspection: {ratio:.2f}x (target >= 1.0: {verdict(ratio >= 1.0)})")
        mine, theirs = token["p99_ms"], peer["token"]["p99_ms"]
        print(
            f"  3. token p99 {mine:.1f} ms against the peer's {theirs:.1f} ms "
            f"(target <=: {verdict(mine <= theirs)})"
        )
        ratio = ours["default_workers"]["rps"] / peer["token"]["rps"]
        print(
            f"  4. serve's default ({workers} workers): {ratio:.2f}x the peer's single process "
            f"(target >= 1.5: {verdict(ratio >= 1.5)})"
        )
    cold = ours["cold"]
    ratio = cold["p99_ms"] / cold["without_p99_ms"]
    print(
        f"  5. cold path: warm p99 {cold['p99_ms']:.1f} ms in runs where {args.cold} credentials "
        f"did their first argon2 verification (slowest {cold['cold_max_ms']:.0f} ms) against "
        f"{cold['without_p99_ms']:.1f} ms in the runs just before (medians of {args.rounds}): "
        f"{ratio:.2f}x, {cold['errors']:.0f} errors (target <= 1.3x: {verdict(ratio <= 1.3)})"
    )
    for stage in args.scale:
        scale = ours[f"scale_{stage}"]
        ratio = scale["rps"] / scale["plain_rps"]
        floor = 0.9 if stage <= 100_000 else 0.85
        print(
            f"     scale: {stage:,} credentials / {stage // 10:,} users give {ratio:.2f}x the "
            f"throughput of {args.credentials} (target >= {floor}: {verdict(ratio >= floor)}); "
            f"start-up {scale['startup_s']:.1f} s, RSS {scale['rss_mib']:.0f} MiB after the load"
        )
    print(
        f"  one worker, {args.credentials} credentials: start-up {ours['startup_s']:.1f} s, "
        f"RSS {ours['rss_mib']:.0f} MiB after every scenario above"
    )


def plot(path: Path, ours: dict[str, Any], peer: dict[str, Any] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    series = [("authserver (1 worker)", ours["sweep"])]
    if peer:
        series.append(("node-oidc-provider 9, opaque tokens", peer["sweep"]))
        series.append(("node-oidc-provider 9, JWT tokens", peer["sweep_jwt"]))
    for label, runs in series:
        connections = [r["connections"] for r in runs]
        left.plot(connections, [r["rps"] for r in runs], marker="o", label=label)
        right.plot(connections, [r["p99_ms"] for r in runs], marker="o", label=label)
    left.set(xlabel="keep-alive connections", ylabel="tokens/s", title="Token endpoint throughput")
    right.set(xlabel="keep-alive connections", ylabel="ms", title="p99 latency", yscale="log")
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xticks(list(SWEEP), [str(c) for c in SWEEP])
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def scale_stages(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating runs per server (median kept)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--credentials", type=int, default=100)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--cold", type=int, default=20, help="never-used credentials (cold path)")
    parser.add_argument(
        "--scale",
        type=scale_stages,
        default=[100_000, 1_000_000],
        metavar="N,N",
        help="credentials in the scale databases (one user per ten; empty: none)",
    )
    parser.add_argument(
        "--peer",
        nargs="?",
        const="node",
        choices=["node", "dot"],
        help="also run node-oidc-provider 9.x; 'dot' adds django-oauth-toolkit",
    )
    parser.add_argument("--plot", type=Path, help="sweep connection counts and draw this PNG")
    parser.add_argument("--sweep-duration", type=int, default=3)
    parser.add_argument("--flood", type=float, default=0, metavar="RATE", help="wrong secrets/s")
    parser.add_argument(
        "--flood-sign-in",
        type=float,
        default=0,
        metavar="RATE",
        help="only first-use token latency during wrong sign-ins/s from new addresses",
    )
    parser.add_argument(
        "--soak", type=int, default=0, metavar="SECONDS", help="only the memory soak, this long"
    )
    parser.add_argument(
        "--dpop", action="store_true", help="only DPoP-bound tokens against bearer tokens"
    )
    parser.add_argument(
        "--leak-report", action="store_true", help="only: how long a 1000-string report takes"
    )
    parser.add_argument(
        "--exchange",
        action="store_true",
        help="only token exchanges of federation trusts against client_credentials",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="only: the token path of this code against CHECKOUT's, alternating in one run",
    )
    parser.add_argument(
        "--compare",
        type=compared,
        action="append",
        default=[],
        metavar="LABEL=PYTHON[:ROOT]",
        help="only: this checkout against another interpreter or checkout (repeatable)",
    )
    parser.add_argument(
        "--default-workers",
        action="store_true",
        help="with --compare: also this checkout's serve with its default worker count",
    )
    parser.add_argument(
        "--compare-only",
        action="store_true",
        help="only the --compare runs, with no other checkout (this one, and --peer)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--smoke", action="store_true", help="tiny load, for the test suite")
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.warmup, args.connections, args.credentials = 1, 1, 2, 3
        args.rounds = 1
        args.users, args.cold, args.scale = 1, 2, [200, 400]
        args.soak = min(args.soak, 2)

    with tempfile.TemporaryDirectory(prefix="authserver-bench-") as name:
        folder = Path(name)
        if args.soak:
            print(f"soak: mixed token and introspection load, {args.connections} connections")
            samples = soak(args, folder)
            if args.json:
                args.json.write_text(json.dumps({"soak": samples}))
            return
        if args.baseline:
            result = baseline_ratio(args, folder)
            print(
                f"token: {result['rps']:.0f}/s (p50 {result['p50_ms']:.2f} ms) against "
                f"{args.baseline}'s {result['baseline_rps']:.0f}/s (p50 "
                f"{result['baseline_p50_ms']:.2f} ms): {result['ratio']:.2f}x, "
                f"{args.connections} connections, median of {max(1, args.rounds)} alternating runs"
            )
            if args.json:
                args.json.write_text(json.dumps({"baseline": result}))
            return
        if args.leak_report:
            timings = sorted(leak_report_seconds(args, folder))
            print(
                f"leaked-secret report of 1000 strings: median {timings[len(timings) // 2]:.3f} s, "
                f"slowest {timings[-1]:.3f} s ({len(timings)} reports)"
            )
            return
        if args.compare or args.compare_only:
            results = compare(args, folder)
            compare_report(args, results)
            if args.json:
                args.json.write_text(json.dumps({"compare": results}))
            return
        if args.dpop:
            result = dpop_ratio(args, folder)
            print(
                f"DPoP-bound tokens: {result['dpop_rps']:.0f}/s "
                f"(p50 {result['dpop_p50_ms']:.2f} ms, {result['dpop_errors']:.0f} errors) "
                "against bearer tokens "
                f"{result['bearer_rps']:.0f}/s (p50 {result['bearer_p50_ms']:.2f} ms): "
                f"{result['ratio']:.2f}x, {args.connections} connections, same process, same run"
            )
            if args.json:
                args.json.write_text(json.dumps({"dpop": result}))
            return
        if args.exchange:
            result = exchange_ratio(args, folder)
            print(
                f"token exchange (RS256 job token, cached JWKS, CEL condition): "
                f"{result['exchange_rps']:.0f}/s (p50 {result['exchange_p50_ms']:.2f} ms, "
                f"p99 {result['exchange_p99_ms']:.2f} ms, {result['exchange_errors']:.0f} errors) "
                f"against client_credentials {result['client_credentials_rps']:.0f}/s "
                f"(p50 {result['client_credentials_p50_ms']:.2f} ms, "
                f"p99 {result['client_credentials_p99_ms']:.2f} ms): {result['ratio']:.2f}x, "
                f"{args.connections} connections, same process, same run; "
                f"{result['jwks_fetches']:.0f} JWKS fetch(es)"
            )
            if args.json:
                args.json.write_text(json.dumps({"exchange": result}))
            return
        if args.flood_sign_in:
            print(
                f"sign-in flood: {args.flood_sign_in:.0f} wrong sign-ins/s, each from a new "
                f"address; first tokens of never-used credentials, 0.2 s apart"
            )
            result = sign_in_flood(args, folder)
            print(
                f"  first-use token p50 {result['flood_p50_ms']:.1f} ms during the flood "
                f"against {result['idle_p50_ms']:.1f} ms idle: {result['ratio']:.2f}x "
                f"(target <= 2: {verdict(result['ratio'] <= 2)}); the flood sent "
                f"{result['sent']:.0f} in {result['seconds']:.0f} s: {result['refused_401']:.0f} "
                f"answered 401, {result['busy_429']:.0f} 429"
            )
            if args.json:
                args.json.write_text(json.dumps({"sign_in_flood": result}))
            return
        ours, peer_results = run_all(args, folder)
        peer = peer_results or None
        flood = flood_ratio(args, folder) if args.flood else None
    report(args, ours, peer)
    if flood:
        print(
            f"  flood of {args.flood:.0f} wrong secrets/s ({flood['flood_sent']:.0f} sent): "
            f"{flood['flood_rps']:.0f} tokens/s, p99 {flood['flood_p99_ms']:.1f} ms = "
            f"{flood['ratio']:.0%} of {flood['rps']:.0f} unloaded"
        )
    if args.json:
        args.json.write_text(json.dumps({"authserver": ours, "peer": peer, "flood": flood}))
    if args.plot:
        plot(args.plot, ours, peer)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
