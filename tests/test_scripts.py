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


BOXED_WARNING = """\
        ********************************************************************************
        Please consider removing the following classifiers in favor of a SPDX license
        !!
        ********************************************************************************
"""


def pip_that_warns(root: Path, *, fails: bool = False) -> None:
    """The copy's ``.venv/bin/python``, wrapped: ``-m pip`` prints setuptools' boxed warning
    (to stderr, as a build does) instead of installing; anything else runs as before."""
    python = root / ".venv" / "bin" / "python"
    real = python.resolve()
    python.unlink()
    python.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1 $2" = "-m pip" ]; then\n'
        f"    cat >&2 <<'BOX'\n{BOXED_WARNING}BOX\n"
        f"    exit {1 if fails else 0}\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    python.chmod(0o755)
    for stamp in (root / ".venv").glob(".installed*"):
        stamp.unlink()


def source_venv(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", 'source scripts/_venv ""'],
        cwd=root,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_first_install_says_what_it_does_and_hides_the_build_backends_warnings(
    tmp_path: Path,
) -> None:
    root = clean_copy(tmp_path / "store")
    pip_that_warns(root)
    result = source_venv(root)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "installing authserver into .venv (first run, about 30 s)\n"


def test_failed_install_shows_pips_output_and_one_error_line(tmp_path: Path) -> None:
    root = clean_copy(tmp_path / "store")
    pip_that_warns(root, fails=True)
    result = source_venv(root)
    assert result.returncode == 1
    assert BOXED_WARNING in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: installing authserver into .venv")
