"""Token endpoint benchmark: a real ``authserver serve`` process under wrk.

The server runs with its default configuration (argon2id secrets, every
credential rule, ES256 signing, batched lastUsedAt, SQLite file) on a
temporary database seeded through the same code the CLI uses. wrk (C, from
Debian) generates the load, so the generator is not the bottleneck; it shares
the machine's cores with the server, which the numbers include.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authserver import manage  # noqa: E402
from authserver.config import load_settings  # noqa: E402
from authserver.domain.credentials import Caller  # noqa: E402
from authserver.hashing import SecretHasher  # noqa: E402
from authserver.store.database import Database, migrate  # noqa: E402
from authserver.store.repository import Repository  # noqa: E402
from tests.ports import free_port  # noqa: E402

PEER_CACHE = Path.home() / ".cache" / "authserver-bench" / "peer"

LUA = """
local headers = {%s}
local i = 0
request = function()
  i = i + 1
  local h = headers[(i %% #headers) + 1]
  return wrk.format("POST", "/auth/v1/token",
    {["Authorization"] = h, ["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=client_credentials")
end
"""


def seed(database_url: str, credentials: int, users: int) -> list[tuple[str, str]]:
    settings = load_settings(environ={"AUTHSERVER_DATABASE_URL": database_url})
    database = Database(database_url)
    migrate(database)
    repo = Repository(database)
    hasher = SecretHasher(settings)
    now = datetime.now(UTC)
    owners = [
        manage.create_user(
            repo,
            email=f"bench{i}@example.com",
            display_name="",
            role_names=["read", "write"],
            now=now,
        )
        for i in range(users)
    ]
    pairs = []
    for i in range(credentials):
        record, secret = manage.create_credential(
            repo,
            hasher,
            settings,
            caller=Caller.operator(),
            owner=owners[i % users],
            display_name=f"bench {i}",
            allow_source_cidr=(),
            scoped_roles=(),
            expires_in=None,
            now=now,
        )
        pairs.append((record.client_id, secret))
    database.dispose()
    return pairs


def wrk(url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
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

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def run_peer(args: argparse.Namespace) -> dict[str, float]:
    """node-oidc-provider with the same grant, auth method, TTL and number of clients."""
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
    with tempfile.TemporaryDirectory(prefix="authserver-peer-") as folder:
        pairs = [(f"peer-client-{i}", secrets.token_urlsafe(32)) for i in range(args.credentials)]
        clients = Path(folder) / "clients.json"
        clients.write_text(json.dumps(pairs))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        node = subprocess.Popen(
            ["node", str(script), str(port), str(clients)],
            cwd=PEER_CACHE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "NODE_ENV": "production"},
        )
        try:
            assert node.stdout is not None and node.stdout.readline().strip() == "ready"
            for client_id, secret in pairs:
                httpx.post(
                    f"{url}/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secret),
                ).raise_for_status()
            lua = Path(folder) / "token.lua"
            headers = ", ".join(
                json.dumps("Basic " + base64.b64encode(f"{c}:{s}".encode()).decode())
                for c, s in pairs
            )
            lua.write_text((LUA % headers).replace("/auth/v1/token", "/token"))
            return wrk(f"{url}/token", lua, args.connections, args.duration)
        finally:
            node.terminate()
            node.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--credentials", type=int, default=100)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny load, for the test suite")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also run node-oidc-provider 9.x (installed from npm into a cache folder) and compare",
    )
    parser.add_argument(
        "--flood",
        type=float,
        default=0,
        metavar="RATE",
        help="also measure while a second process sends RATE wrong secrets/s (e.g. 200)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.connections, args.credentials, args.users = 1, 2, 3, 1

    with tempfile.TemporaryDirectory(prefix="authserver-bench-") as folder:
        database_url = f"sqlite:///{folder}/bench.db"
        pairs = seed(database_url, args.credentials, args.users)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "AUTHSERVER_DATABASE_URL": database_url, "AUTHSERVER_ISSUER": url}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "authserver",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.1)
            for client_id, secret in pairs:  # first use: one argon2 verification each
                response = httpx.post(
                    f"{url}/auth/v1/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secret),
                )
                response.raise_for_status()
            headers = ", ".join(
                json.dumps("Basic " + base64.b64encode(f"{c}:{s}".encode()).decode())
                for c, s in pairs
            )
            script = Path(folder) / "token.lua"
            script.write_text(LUA % headers)
            result = wrk(f"{url}/auth/v1/token", script, args.connections, args.duration)
            if args.flood:
                targets = ",".join(client_id for client_id, _ in pairs[:10])
                flood = subprocess.Popen(
                    [
                        sys.executable,
                        str(ROOT / "bench" / "flood.py"),
                        f"{url}/auth/v1/token",
                        targets,
                        str(args.duration + 2),
                        str(args.flood),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                time.sleep(1)
                flooded = wrk(f"{url}/auth/v1/token", script, args.connections, args.duration)
                result["flood_sent"] = float(flood.communicate(timeout=60)[0])
                result["flood_rps"] = flooded["rps"]
                result["flood_p99_ms"] = flooded["p99_ms"]
                result["flood_ratio"] = flooded["rps"] / result["rps"]
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.peer:
        result["peer"] = run_peer(args)
        result["ratio"] = result["rps"] / result["peer"]["rps"]
    result.update(workers=args.workers, connections=args.connections, credentials=args.credentials)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"token endpoint  workers={args.workers} connections={args.connections} "
            f"credentials={args.credentials}: {result['rps']:.0f} tokens/s, "
            f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
            f"non-2xx {result['non_2xx']:.0f}, socket errors {result['socket_errors']:.0f}"
        )
        if args.peer:
            peer = result["peer"]
            print(
                f"node-oidc-provider same load: {peer['rps']:.0f} tokens/s, "
                f"p50 {peer['p50_ms']:.2f} ms, "
                f"p99 {peer['p99_ms']:.2f} ms, non-2xx {peer['non_2xx']:.0f} "
                f"-> authserver/peer throughput ratio {result['ratio']:.2f}"
            )
        if args.flood:
            print(
                f"under a flood of {args.flood:.0f} wrong secrets/s "
                f"({result['flood_sent']:.0f} sent): {result['flood_rps']:.0f} tokens/s, "
                f"p99 {result['flood_p99_ms']:.2f} ms = {result['flood_ratio']:.0%} of unloaded"
            )


if __name__ == "__main__":
    main()
