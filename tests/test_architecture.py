"""The layering of docs/architecture.md, checked on the source: every module belongs to a
layer, imports point down the layers only, and only use cases change what is stored."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
from pathlib import Path

import pytest

from authserver.store import Database, Store

PACKAGE = Path(__file__).resolve().parent.parent / "authserver"
# Bottom to top. A module may import modules of lower layers and of its own package; packages
# that share a layer never import each other (the front doors above all). A module belongs to
# the longest entry that names it.
LAYERS: list[tuple[str, ...]] = [
    ("authserver",),  # the package itself: its version
    ("authserver.errors",),
    ("authserver.records",),
    ("authserver.wire",),  # the JSON shapes of the records
    ("authserver.domain",),
    ("authserver.sso.providers",),  # [[login.oidc]] tables: read by config
    ("authserver.config",),
    ("authserver.store",),
    ("authserver.security",),
    ("authserver.usecases", "authserver.client", "authserver.sso"),
    ("authserver.web",),
    ("authserver.oauth", "authserver.api", "authserver.ui"),
    ("authserver.runtime",),
    ("authserver.cli", "authserver.app"),  # the two ways in: a command, the ASGI app
    ("authserver.__main__",),
]
# At most this many modules at the root besides __init__ and __main__.
ROOT_MODULES = {"app", "config", "errors", "records", "wire"}
# The one upward reference: front doors name the service container's type (never import it).
TYPE_ONLY = "authserver.runtime.services"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic's scripts: storage's own history
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _entry(module: str) -> tuple[int, str] | None:
    """(layer index, entry) of the longest layer entry naming ``module``."""
    matches = [
        (len(entry), index, entry)
        for index, entries in enumerate(LAYERS)
        for entry in entries
        if _within(module, entry)
    ]
    if not matches or (max(matches)[2] == "authserver" and module != "authserver"):
        return None
    _, index, entry = max(matches)
    return index, entry


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(imported at run time, imported under ``if TYPE_CHECKING:``)."""
    runtime: set[str] = set()
    typing_only: set[str] = set()

    def visit(node: ast.AST, typing: bool) -> None:
        child: ast.AST
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            # "from authserver.x import y" may import the module authserver.x.y
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        (typing_only if typing else runtime).update(n for n in names if _within(n, "authserver"))
        for child in ast.iter_child_nodes(node):
            visit(child, typing)

    visit(tree, False)
    return runtime, typing_only


def _known_modules() -> set[str]:
    return {name for name, _ in _modules()}


def _resolve(imported: str, known: set[str]) -> str | None:
    """The module an import names (``from a import b`` may name a module or an attribute)."""
    while imported and imported not in known:
        imported = imported.rpartition(".")[0]
    return imported or None


def _violations() -> list[str]:
    known = _known_modules()
    wrong = []
    for module, path in _modules():
        here = _entry(module)
        assert here is not None
        runtime, typing_only = _imports(ast.parse(path.read_text()))
        for imported, typing in [(n, False) for n in runtime] + [(n, True) for n in typing_only]:
            target = _resolve(imported, known)
            if target is None or target == module:
                continue
            there = _entry(target)
            assert there is not None, target
            if here[1] == there[1] or _within(target, here[1]):
                continue  # its own package
            if typing and target == TYPE_ONLY:
                continue
            if there[0] >= here[0]:
                wrong.append(f"{module} imports {target}")
    return sorted(set(wrong))


def test_every_module_belongs_to_a_layer() -> None:
    assert [module for module, _ in _modules() if _entry(module) is None] == []


def test_every_package_is_in_the_layer_order() -> None:
    packages = {
        f"authserver.{path.name}"
        for path in PACKAGE.iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    }
    named = {entry for entries in LAYERS for entry in entries}
    assert packages - named == set()


def test_the_root_holds_only_composition_and_the_shared_vocabulary() -> None:
    root = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert root <= ROOT_MODULES
    assert len(root) <= 6


def test_imports_point_down_the_layers() -> None:
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The rule itself: a storage module importing a front door is found."""
    tree = ast.parse("from authserver.api import routes\n")
    runtime, _ = _imports(tree)
    here, there = _entry("authserver.store.users"), _entry("authserver.api.routes")
    assert runtime == {"authserver.api", "authserver.api.routes"}
    assert here is not None and there is not None and there[0] > here[0]


def _store_writes() -> dict[str, set[str]]:
    """Store attribute → the names of its methods marked ``@writes``."""
    store = Store.__new__(Store)
    Store.__init__(store, Database.__new__(Database))
    return {
        attribute: {
            name
            for name, member in inspect.getmembers(type(repository), inspect.isfunction)
            if getattr(member, "writes_rows", False)
        }
        for attribute, repository in vars(store).items()
        if attribute != "database"
    }


def test_every_store_marks_its_writes() -> None:
    writes = _store_writes()
    assert writes["credentials"] >= {"create", "update", "delete", "record_last_used"}
    assert writes["revocations"] >= {"revoke", "record_assertion"}
    assert writes["keys"] >= {"add_active"}


def test_only_use_cases_change_what_is_stored() -> None:
    writes = _store_writes()
    call = re.compile(r"\bstore\.(\w+)\.(\w+)\(")
    wrong = []
    for module, path in _modules():
        if _within(module, "authserver.usecases") or _within(module, "authserver.store"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for attribute, method in call.findall(line):
                if method in writes.get(attribute, set()):
                    wrong.append(f"{module}:{number}: {line.strip()}")
    assert wrong == []


@pytest.mark.parametrize(
    "line",
    [
        "services.store.credentials.update(id=x, patch=p, now=n)",
        "self.store.revocations.record_assertion(key=k, expires_at=e)",
        "ctx.cases.store.keys.add_active(kid=k)",
    ],
)
def test_the_write_check_sees_a_store_write(line: str) -> None:
    writes = _store_writes()
    ((attribute, method),) = re.findall(r"\bstore\.(\w+)\.(\w+)\(", line)
    assert method in writes[attribute]


def test_no_front_door_reads_the_app_state_itself() -> None:
    """``web.context.services_of`` is the one typed accessor of the service container."""
    wrong = [
        f"{module}:{number}"
        for module, path in _modules()
        if module not in ("authserver.web.context", "authserver.app", "authserver.runtime.tasks")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "app.state" in line
    ]
    assert wrong == []


def test_no_file_under_version_control_holds_a_merge_conflict_marker() -> None:
    repo = PACKAGE.parent
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True
    ).stdout.decode()
    markers = re.compile(r"^(<{7} |>{7} )", re.MULTILINE)
    found = []
    for name in filter(None, listed.split("\0")):
        path = repo / name
        if path.suffix not in {".py", ".md", ".toml", ".html", ".css", ".js", ".ini", ".cfg"}:
            continue
        if path.is_file() and markers.search(path.read_text(errors="replace")):
            found.append(name)
    assert found == []
