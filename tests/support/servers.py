"""``authserver serve`` as a real child process, for multi-instance and signal tests."""

from __future__ import annotations

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
