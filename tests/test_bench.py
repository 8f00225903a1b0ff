"""The benchmark script runs end to end on a tiny load (the real runs are in docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("token", "introspection", "cold", "workers2", "scale")


def test_bench_smoke_measures_every_scenario(tmp_path: Path) -> None:
    """Needs wrk, which scripts/test installs."""
    results_file = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--json", str(results_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(results_file.read_text())["authserver"]
    for scenario in SCENARIOS:
        assert results[scenario]["rps"] > 0, scenario
        assert results[scenario]["errors"] == 0, scenario
    assert results["cold"]["cold_credentials"] == 2
    assert "serve --workers 2:" in run.stdout
