"""A/B in one process: CPU per request of the app called as ASGI, with a change on and off.

No socket, no HTTP server, no load generator: the app built by ``create_app``
(default settings, SQLite, its lifespan running) is called directly, 32
requests in flight at a time (as wrk's 32 connections), and the CPU time of
the process (``time.process_time``, every thread: the lastUsedAt writer's
too) is counted around each batch. Variants alternate batch by batch, so a
shared machine's drift hits them alike; the best (least disturbed) batch and the
median per variant are printed.

    .venv/bin/python bench/inprocess.py --lever lines
    .venv/bin/python bench/inprocess.py --lever none   # the app as it is, A against A

Levers: ``lines`` (audit and access lines through ``audit.LineWriter`` against
log records through the same handler), ``none``. The log lines go to
``/dev/null`` through the handler ``configure_logging`` makes, at ``info``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import run  # noqa: E402
import uvloop  # noqa: E402

from authserver.app import create_app  # noqa: E402
from authserver.config import load_settings  # noqa: E402
from authserver.runtime import ops  # noqa: E402
from authserver.security import audit  # noqa: E402


def request(app: Any, path: str, authorization: str, body: bytes) -> Callable[[], Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", authorization.encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def call() -> int:
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        return status

    return call


class Lever:
    """A change measured on (B) and off (A)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.writer = audit.LineWriter(open("/dev/null", "w"), None)  # noqa: SIM115

    def set(self, on: bool) -> None:
        if self.name == "lines":
            audit.use_writer(self.writer if on else None)


async def measure(args: argparse.Namespace, folder: Path) -> None:
    url_db = f"sqlite:///{folder}/inprocess.db"
    pairs = run.seed(url_db, args.credentials, 10)
    settings = load_settings(
        environ={"AUTHSERVER_DATABASE_URL": url_db, "AUTHSERVER_ISSUER": "http://127.0.0.1:8000"}
    )
    ops.configure_logging("info")
    assert ops._handler is not None
    ops._handler.setStream(open("/dev/null", "w"))  # noqa: SIM115
    app = create_app(settings)
    lever = Lever(args.lever)
    async with app.router.lifespan_context(app):
        tokens = []
        for client_id, secret in pairs:
            auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
            calls = [request(app, "/auth/v1/token", auth, b"grant_type=client_credentials")]
            assert await calls[0]() == 200
            tokens.append(auth)
        calls = [
            request(app, "/auth/v1/token", auth, b"grant_type=client_credentials")
            for auth in tokens
        ]

        async def batch() -> float:
            started = time.process_time()
            done = 0
            while done < args.batch:
                statuses = await asyncio.gather(
                    *(calls[(done + i) % len(calls)]() for i in range(args.concurrency))
                )
                assert set(statuses) == {200}, statuses
                done += args.concurrency
            await asyncio.sleep(0)
            return (time.process_time() - started) / done * 1e6

        results: dict[bool, list[float]] = {False: [], True: []}
        lever.set(False)
        await batch()  # warm
        for _ in range(args.rounds):
            for on in (False, True):
                lever.set(on)
                results[on].append(await batch())
        lever.set(False)
    off, on = statistics.median(results[False]), statistics.median(results[True])
    best_off, best_on = min(results[False]), min(results[True])
    print(
        f"lever {args.lever}: {args.rounds} alternating batches of {args.batch} token requests, "
        f"{args.concurrency} at a time; CPU per request: best off {best_off:.1f} us, "
        f"on {best_on:.1f} us, {best_on / best_off:.3f}x; median off {off:.1f} us, "
        f"on {on:.1f} us, {on / off:.3f}x"
    )
    print(f"  off: {' '.join(f'{v:.0f}' for v in results[False])}")
    print(f"  on:  {' '.join(f'{v:.0f}' for v in results[True])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lever", choices=["lines", "none"], default="none")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=3200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--credentials", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authserver-inprocess-") as name:
        uvloop.run(measure(args, Path(name)))


if __name__ == "__main__":
    main()
