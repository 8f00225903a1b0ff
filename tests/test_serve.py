"""``authserver serve`` start-up: failures before anything runs, and what it says when it starts."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.servers import assert_one_line_error, run_authserver


def test_port_in_use_is_one_line_before_the_application_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_authserver(
            "serve", "--port", str(port), cwd=tmp_path, AUTHSERVER_LOG_LEVEL="info"
        )
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use")
    assert not (tmp_path / "var").exists()
