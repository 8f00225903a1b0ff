"""A clean copy of the repository, as a fresh clone would have it, for tests of its scripts.

The copy holds every file of the working tree except what ``.gitignore`` keeps
out of a clone (``.venv``, ``var``, caches, the tests' ``node_modules``), so the scripts under test are the
real ones and no state of this checkout leaks in. Installing into a new
``.venv`` would need the package index and a minute, so ``ready_venv`` gives
the copy a ``.venv`` that ``scripts/_venv`` takes as already installed: a
virtual environment of this interpreter that imports the copy's own
``authserver`` package and this run's installed dependencies.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    ".mypy_cache",
    "build",
    "dist",
    "node_modules",
)


# The operator's own configuration, ignored by git: a fresh clone has none.
OPERATOR_CONFIG = ROOT / "config" / "authserver.toml"


def _not_in_a_clone(folder: str, names: list[str]) -> set[str]:
    ignored = set(NOT_IN_A_CLONE(folder, names))
    if Path(folder) == OPERATOR_CONFIG.parent:
        ignored.add(OPERATOR_CONFIG.name)
    return ignored


def clean_copy(dest: Path) -> Path:
    """Copy the repository into ``dest`` (which must not exist) and give it a ready ``.venv``."""
    shutil.copytree(ROOT, dest, ignore=_not_in_a_clone)
    ready_venv(dest, extras="client")  # as scripts/serve installs it
    return dest


def ready_venv(root: Path, extras: str = "") -> None:
    """A ``.venv`` in ``root`` whose install stamp is current, so ``scripts/_venv`` skips pip."""
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site_packages] = (venv / "lib").glob("python*/site-packages")
    # Plain path lines: the copy's package first, then this run's dependencies (their own
    # .pth files, such as this checkout's editable install, are deliberately not read).
    (site_packages / "_authserver_test_copy.pth").write_text(
        "\n".join([str(root), *site.getsitepackages()]) + "\n"
    )
    python = venv / "bin" / "python"
    script = venv / "bin" / "authserver"
    # As pip writes it: guarded, because serve's worker processes (multiprocessing's
    # spawn) import the main script again and must not run the command a second time.
    script.write_text(
        f"#!{python}\nimport sys\nfrom authserver.cli import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    script.chmod(0o755)
    for suffix in ("", *([f"-{extras}"] if extras else [])):
        (venv / f".installed{suffix}").touch()


def script_env(**extra: str) -> dict[str, str]:
    """This environment without this run's virtual environment on PATH (the copy brings its own)."""
    own_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != own_bin)
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "VIRTUAL_ENV" and not k.startswith("AUTHSERVER_")
    }
    return {**env, "PATH": path, **extra}
