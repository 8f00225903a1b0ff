"""``authserver serve`` as a real child process, for multi-instance and signal tests."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.checkout import script_env
from tests.support.ports import free_port


def run_authserver(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: what a user sees on stderr, tracebacks included."""
    return subprocess.run(
        [sys.executable, "-m", "authserver", *args],
        cwd=cwd,
        env=script_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line


def wait_ready(url: str, process: subprocess.Popen[Any], seconds: float = 30, **http: Any) -> None:
    """Poll ``/readyz`` until it answers 200; fails if ``process`` exits first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/readyz", **http).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "the server exited before it was ready"
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.1)


class ServerProcess:
    """One ``python -m authserver serve`` on a free loopback port; its issuer is its own URL.

    One worker process unless ``workers`` says otherwise (``serve``'s default is one per CPU).
    """

    def __init__(self, database_url: str, cwd: Path, *, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "AUTHSERVER_DATABASE_URL": database_url,
            "AUTHSERVER_ISSUER": self.url,
            "AUTHSERVER_LOG_LEVEL": "warning",
            "AUTHSERVER_SHUTDOWN_DRAIN": "0",  # no load balancer to wait for
            **env,
        }
        self.cwd = cwd
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "authserver",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.env,
            cwd=self.cwd,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("authserver did not become ready")
            time.sleep(0.1)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()
        self.kill()


def socket_owner(local_port: int, server_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server side of our connection from ``local_port`` (Linux)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == server_port and (
                int(remote.rsplit(":", 1)[1], 16) == local_port
            ):
                inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def connection_per_worker(server: ServerProcess) -> list[http.client.HTTPConnection]:
    """A keep-alive connection held by each worker of ``server`` (found through Linux's /proc).

    A connection stays with the worker that accepted it, and the kernel tends to give
    one worker many fresh connections in a row, so connections are opened until each
    worker holds one; the others are closed.
    """
    assert server.process is not None
    pid = server.process.pid
    # The worker processes among serve's children (multiprocessing may add a helper).
    children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    per_worker: dict[int, http.client.HTTPConnection] = {}
    # A worker still starting (the first to answer /readyz is not the last) accepts nothing
    # yet: keep trying for a while, a little apart, rather than a fixed number of times.
    until = time.monotonic() + 20
    while len(per_worker) < server.workers and time.monotonic() < until:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.connect()
        owner = None
        deadline = time.monotonic() + 5
        while owner is None and time.monotonic() < deadline:
            owner = socket_owner(connection.sock.getsockname()[1], server.port, children)
        if owner is None or owner in per_worker:
            connection.close()
            time.sleep(0.05)
        else:
            per_worker[owner] = connection
    if len(per_worker) < server.workers:
        for held in per_worker.values():
            held.close()
        raise AssertionError("the kernel gave every connection to one worker")
    return list(per_worker.values())
