"""The layering of docs/architecture.md, checked on the source: imports point one way only,
and no front door writes credentials or users except through the use cases."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "authserver"
FRONT_DOORS = ("authserver.api", "authserver.oauth", "authserver.cli", "authserver.ui")
# Layer → packages it must never import.
FORBIDDEN = {
    "authserver.domain": (
        "authserver.store",
        "authserver.usecases",
        "authserver.api",
        "authserver.oauth",
        "authserver.app",
        "authserver.runtime.services",
        "authserver.ui",
    ),
    "authserver.store": (
        "authserver.usecases",
        "authserver.api",
        "authserver.oauth",
        "authserver.ui",
    ),
    "authserver.usecases": (
        "authserver.api",
        "authserver.oauth",
        "authserver.app",
        "authserver.ui",
    ),
    "authserver.api": ("authserver.oauth", "authserver.ui"),
    "authserver.oauth": ("authserver.api", "authserver.ui"),
    "authserver.ui": ("authserver.api", "authserver.oauth", "authserver.app"),
}
# Store methods that change a credential, a user, a password, a session, an invitation or a
# pending sign-in:
# only use cases call them.
WRITES = re.compile(
    r"store\.(credentials|users|passwords|sessions|invites|pending_sign_ins)\."
    r"(create|update|delete|set|redeem|touch|delete_for_user|purge|take)\("
)


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_one_way(layer: str) -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, path in _modules()
        if _within(module, layer)
        for imported in _imports(path)
        if any(_within(imported, banned) for banned in FORBIDDEN[layer])
    ]
    assert wrong == []


def test_front_doors_change_credentials_and_users_only_through_the_use_cases() -> None:
    wrong = [
        f"{module}:{number}: {line.strip()}"
        for module, path in _modules()
        if any(_within(module, door) for door in FRONT_DOORS)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if WRITES.search(line)
    ]
    assert wrong == []
