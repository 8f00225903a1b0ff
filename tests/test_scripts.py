"""The set-up scripts, run from a clean copy of the repository."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.checkout import clean_copy, script_env
from tests.support.ports import free_port
from tests.support.servers import wait_ready

pytestmark = pytest.mark.slow


def test_serve_script_passes_its_arguments_to_authserver_serve(tmp_path: Path) -> None:
    root = clean_copy(tmp_path / "store")
    port = free_port()
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as log:
        process = subprocess.Popen(
            ["./scripts/serve", "--port", str(port)], cwd=root, env=script_env(), stderr=log
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
            process.send_signal(signal.SIGTERM)
            # A graceful stop: uvicorn re-raises the SIGTERM it handled once it has shut down.
            assert process.wait(timeout=20) in (0, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert (root / "var" / "authserver.db").exists()
    assert "Traceback" not in stderr.read_text()
