"""The Dockerfile and the systemd unit, checked by parsing them (no daemon runs here)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.checkout import ROOT
from tests.support.ports import free_port
from tests.support.servers import ServerProcess

DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "deploy" / "authserver.service"


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    instructions = []
    for line in "\n".join(lines).replace("\\\n", " ").splitlines():
        line = line.strip()
        if line:
            name, _, arguments = line.partition(" ")
            instructions.append((name.upper(), arguments.strip()))
    return instructions


def last(instructions: list[tuple[str, str]], name: str) -> str:
    return [arguments for instruction, arguments in instructions if instruction == name][-1]


def test_dockerfile_builds_from_a_slim_python_image() -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    assert instructions[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", instructions[0][1])


def test_dockerfile_runs_as_a_user_that_is_not_root() -> None:
    user = last(dockerfile_instructions(DOCKERFILE), "USER")
    assert user.split(":")[0] not in ("root", "0")


def test_dockerfile_entry_point_is_authserver_serve_on_all_interfaces() -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    assert json.loads(last(instructions, "ENTRYPOINT")) == ["authserver", "serve"]
    arguments = json.loads(last(instructions, "CMD"))
    assert arguments[arguments.index("--host") + 1] == "0.0.0.0"
    assert arguments[arguments.index("--port") + 1] == last(instructions, "EXPOSE")


def test_dockerfile_health_check_asks_healthz_on_the_served_port() -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    check = last(instructions, "HEALTHCHECK")
    command = json.loads(check[check.index("CMD") + len("CMD") :])
    assert command[0] == "python"  # the slim image has no curl
    assert f"http://127.0.0.1:{last(instructions, 'EXPOSE')}/healthz" in command[-1]


def test_dockerfile_copies_files_that_exist_and_dockerignore_lets_in() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for instruction, arguments in dockerfile_instructions(DOCKERFILE):
        if instruction == "COPY":
            *sources, _ = shlex.split(arguments)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, source


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_systemd_unit_starts_authserver_serve_as_its_own_user() -> None:
    service = unit()["Service"]
    program, *arguments = shlex.split(service["ExecStart"])
    assert (Path(program).name, arguments) == ("authserver", ["serve"])
    assert service["User"] not in ("root", "0")
    assert service["Restart"] == "on-failure"


def test_systemd_unit_runs_in_its_state_folder_with_the_system_config() -> None:
    service = unit()["Service"]
    assert service["WorkingDirectory"] == f"/var/lib/{service['StateDirectory']}"
    assert service["Environment"] == "AUTHSERVER_CONFIG=/etc/authserver/authserver.toml"


def test_systemd_unit_waits_for_serves_graceful_shutdown() -> None:
    service = unit()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 10  # serve: timeout_graceful_shutdown=10


def test_systemd_unit_is_wanted_by_the_multi_user_target() -> None:
    parsed = unit()
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in parsed["Unit"]["After"].split()


def health_check_command(port: int) -> list[str]:
    """The Dockerfile's health check, aimed at ``port`` (this interpreter as its python)."""
    instructions = dockerfile_instructions(DOCKERFILE)
    check = last(instructions, "HEALTHCHECK")
    command: list[str] = json.loads(check[check.index("CMD") + len("CMD") :])
    served = f"127.0.0.1:{last(instructions, 'EXPOSE')}"
    return [sys.executable, *(part.replace(served, f"127.0.0.1:{port}") for part in command[1:])]


def test_dockerfile_health_check_passes_while_serve_runs(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path}/a.db", tmp_path) as server:
        result = subprocess.run(health_check_command(server.port), capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_dockerfile_health_check_fails_without_a_server() -> None:
    result = subprocess.run(health_check_command(free_port()), capture_output=True, timeout=30)
    assert result.returncode != 0
