"""This checkout's token path against another checkout's, in the same run.

    python bench/baseline.py /path/to/other/checkout [--rounds 5] [--duration 10]

Both run ``authserver serve --workers 1`` on a fresh SQLite file of their own,
seeded by their own code (``bench/run.py``'s ``seed``, so each has its own
schema), and get the token load of ``bench/run.py`` (``client_credentials``,
``client_secret_basic``, round-robin over the credentials) in alternating runs:
machine noise hits both alike. The other checkout runs with its own ``.venv``.
Prints each run, the medians and the ratio (this / other). Every credential gets
one token first (its argon2 verification) so that no measured run pays for one.

Against the commit a branch started from, without touching another worktree:
``git archive <commit> | tar -x -C /tmp/base``, then give ``/tmp/base`` a
``.venv`` (``tests.support.checkout.ready_venv``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import Pairs, basic, lua_script, seed, warm_up, wrk  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

SEED = """
import json, sys
sys.path.insert(0, ".")
from bench.run import seed
print(json.dumps(seed(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
"""


def seeded(checkout: Path, python: Path, database_url: str, credentials: int, users: int) -> Pairs:
    """Credentials created by the other checkout's own code, in its own schema."""
    out = subprocess.run(
        [str(python), "-c", SEED, database_url, str(credentials), str(users)],
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [(client_id, secret) for client_id, secret in json.loads(out.splitlines()[-1])]


@contextmanager
def serving(checkout: Path, python: Path, database_url: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AUTHSERVER_DATABASE_URL": database_url, "AUTHSERVER_ISSUER": url}
    env.pop("AUTHSERVER_CONFIG", None)
    command = [str(python), "-m", "authserver", "serve", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(
        command, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{checkout}: authserver did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def prime(url: str, pairs: Pairs) -> None:
    """Every credential gets one token before any measured run: each first use costs an
    argon2 verification, which on a busy machine takes long enough to swamp a run."""
    with httpx.Client(timeout=60) as http:
        for client_id, secret in pairs:
            while True:
                answer = http.post(
                    f"{url}/auth/v1/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secret),
                )
                if answer.status_code == 200:
                    break
                if answer.status_code not in (429, 503):
                    raise SystemExit(f"{url}: {answer.status_code} {answer.text}")
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (with its own .venv)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--credentials", type=int, default=100)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    other = args.other.resolve()
    python = other / ".venv" / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="authserver-baseline-") as name, ExitStack() as stack:
        folder = Path(name)
        (folder / "this").mkdir()
        (folder / "other").mkdir()
        this_db = f"sqlite:///{folder}/this/bench.db"
        other_db = f"sqlite:///{folder}/other/bench.db"
        loads = {
            "this": seed(this_db, args.credentials, args.users),
            "other": seeded(other, python, other_db, args.credentials, args.users),
        }
        urls = {
            "this": stack.enter_context(serving(ROOT, Path(sys.executable), this_db)),
            "other": stack.enter_context(serving(other, python, other_db)),
        }
        scripts = {
            side: lua_script(
                folder,
                f"token-{side}",
                [
                    ("/auth/v1/token", basic(c, s), "grant_type=client_credentials")
                    for c, s in pairs
                ],
            )
            for side, pairs in loads.items()
        }
        for side in ("this", "other"):
            prime(urls[side], loads[side])
            warm_up(urls[side], scripts[side], args.connections, args.warmup)
        runs: dict[str, list[float]] = {"this": [], "other": []}
        for round_ in range(args.rounds):
            order = ("other", "this") if round_ % 2 else ("this", "other")
            for side in order:
                run = wrk(urls[side], scripts[side], args.connections, args.duration)
                runs[side].append(run["rps"])
                print(f"round {round_ + 1} {side:5}: {run['rps']:7.0f} tokens/s "
                      f"(p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                      f"{run['errors']:.0f} errors or timeouts)")  # fmt: skip
        this, base = statistics.median(runs["this"]), statistics.median(runs["other"])
        print(
            f"token path: this {this:.0f}/s, {other} {base:.0f}/s (medians of {args.rounds}); "
            f"ratio {this / base:.3f}, {args.connections} connections, one worker each"
        )


if __name__ == "__main__":
    main()
